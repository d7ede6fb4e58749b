"""models/quickstart.py: a short run writes its table, JSON and reliability diagram."""

import json

import pytest

from models import methods, quickstart


def test_quickstart_short_run_writes_results(tmp_path):
    results = quickstart.main(["--epochs", "2", "--methods", "softmax,gsc", "--output", str(tmp_path)])

    for name in ("results.md", "results.json", "reliability.png"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    markdown = (tmp_path / "results.md").read_text()
    assert "| method | accuracy | ECE | NLL | seconds |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "method" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["softmax", "gsc"]

    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    assert saved["summary"] == json.loads(json.dumps(results["summary"]))
    assert list(results["summary"]) == ["softmax", "gsc"]
    assert [(run["method"], run["seed"]) for run in results["runs"]] == [("softmax", 0), ("gsc", 0)]
    for run in results["runs"]:
        assert 0.3 < run["accuracy"] <= 1.0, run  # 10 classes: chance is 0.1
        assert 0.0 <= run["ece"] <= 1.0, run
        assert run["nll"] > 0.0, run
        assert run["seconds"] > 0.0, run


def test_quickstart_rejects_unknown_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        quickstart.main(["--methods", "softmax,bogus", "--output", str(tmp_path)])
    assert excinfo.value.code not in (0, None)
    error = capsys.readouterr().err
    assert "bogus" in error
    for method in methods.names():
        assert method in error
    assert not (tmp_path / "results.json").exists()
