"""models.training.backup: interrupted backups are never used silently; damaged ones fall back or stop."""

import json
import os
import shutil

import keras
import pytest

from models import train
from models.training import backup
from tests.test_train import FAST

ARGV = ["--method", "softmax", *FAST, "--epochs", "3"]


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def _epochs(folder):
    return [int(line.split(",")[0]) for line in (folder / "history.csv").read_text().splitlines()[1:]]


def _interrupt_after_backup_of(epochs, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) right after the backup of ``epochs`` epochs is on disk."""
    original = backup.EpochBackup.save

    def save(self, epoch):
        original(self, epoch)
        if epoch == epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(backup.EpochBackup, "save", save)


def _files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_damaged_newest_backup_falls_back_and_all_damaged_stops(tmp_path, monkeypatch, capsys):
    """A run interrupted after epoch 2 of 3 keeps the backups of epochs 1 and 2. With the newest one
    truncated, the same command warns, resumes after epoch 1 and ends exactly like an uninterrupted
    run; with both damaged, it exits 2 naming the damage and changes nothing."""
    whole = tmp_path / "whole"
    train.main([*ARGV, "--output", str(whole)])

    broken = tmp_path / "broken"
    with monkeypatch.context() as patch:
        _interrupt_after_backup_of(2, patch)
        with pytest.raises(KeyboardInterrupt):
            train.main([*ARGV, "--output", str(broken)])
    folder = broken / "backup"
    assert backup.backed_up_epochs(folder) == [2, 1]
    newest = folder / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # damaged on purpose

    all_damaged = tmp_path / "all-damaged"
    shutil.copytree(broken, all_damaged)
    oldest = all_damaged / "backup" / "epoch-0001.weights.h5"
    oldest.write_bytes(b"\0" * oldest.stat().st_size)  # same size, wrong bytes: the checksum sees it
    before = _files(all_damaged)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        train.main([*ARGV, "--output", str(all_damaged)])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert "every backup" in error and "checksum" in error and "bytes" in error
    assert _files(all_damaged) == before

    train.main([*ARGV, "--output", str(broken)])
    assert "resuming after epoch 1" in capsys.readouterr().err
    assert _epochs(broken) == [0, 1, 2]
    for key in ("accuracy", "ece"):
        assert _metrics(broken)[key] == pytest.approx(_metrics(whole)[key], abs=1e-6), key
    assert not (broken / "backup").exists()


def test_interrupt_while_a_backup_is_written_leaves_no_backup_of_that_epoch(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle of writing epoch 2's weights: that backup never appears (only a partial
    file), and the next start resumes after epoch 1 without a warning."""
    original = keras.Model.save_weights

    def save_weights(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        if "epoch-0002" in str(filepath):
            with open(filepath, "r+b") as f:  # the write was cut short
                f.truncate(os.path.getsize(filepath) // 3)
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "save_weights", save_weights)
        with pytest.raises(KeyboardInterrupt):
            train.main([*ARGV, "--output", str(out)])
    assert backup.backed_up_epochs(out / "backup") == [1]
    capsys.readouterr()
    train.main([*ARGV, "--output", str(out)])
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert _epochs(out) == [0, 1, 2]
