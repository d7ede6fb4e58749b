"""models.compare: bad names and runs exit non-zero before anything trains. (A short comparison writing its table, JSON and chart, and
reusing finished runs: tests/test_methods.py, with a method registered by the test.)"""


import pytest

from models import compare


def test_unknown_method_exits_non_zero(tmp_path):
    """An unknown method name is an argparse error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        compare.main(["--methods", "softmax,bogus", "--output", str(tmp_path)])
    assert info.value.code == 2


def test_every_run_is_checked_before_the_first_trains(tmp_path, capsys):
    """A later run's folder holding another run, or --output naming a file: exit 2 with one line,
    before any run trains or anything is written."""
    import json
    import os

    out = tmp_path / "cmp"
    taken = out / "runs" / "gsc-seed1"
    taken.mkdir(parents=True)
    (taken / "run.json").write_text(json.dumps({"method": "gsc", "epochs": 99}))
    with pytest.raises(SystemExit) as info:
        compare.main(["--methods", "softmax,gsc", "--seeds", "0,1", "--epochs", "1", "--output", str(out)])
    assert info.value.code == 2
    assert "holds a different run" in capsys.readouterr().err
    assert sorted(os.listdir(out / "runs")) == ["gsc-seed1"]  # softmax-seed0 was not trained

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as info:
        compare.main(["--methods", "softmax", "--output", str(blocker)])
    assert info.value.code == 2 and "--output" in capsys.readouterr().err
