"""models.compare: a short comparison writes its table, JSON and chart; bad names exit non-zero."""

import json

import pytest

from models import compare


@pytest.mark.slow
def test_short_comparison_writes_table(tmp_path):
    """Two methods × two seeds: mean ± std table rows, JSON summary and PNG are written."""
    summary = compare.main(
        ["--methods", "softmax,gsc", "--seeds", "0,1", "--epochs", "1", "--output", str(tmp_path)]
    )
    assert list(summary) == ["softmax", "gsc"]
    assert all(len(summary[m]["accuracy"]) == 2 for m in summary)
    table = (tmp_path / "results.md").read_text()
    assert "| softmax | " in table and "| gsc | " in table and " ± " in table
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["gsc"]["accuracy"] == summary["gsc"]["accuracy"]
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    # A second call reuses the finished runs instead of retraining them.
    assert compare.main(["--methods", "softmax,gsc", "--seeds", "0,1", "--epochs", "1", "--output", str(tmp_path)]) == summary


def test_unknown_method_exits_non_zero(tmp_path):
    """An unknown method name is an argparse error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        compare.main(["--methods", "softmax,bogus", "--output", str(tmp_path)])
    assert info.value.code == 2
