"""Epoch backups of a run that an interruption cannot damage silently.

Keras' ``BackupAndRestore`` overwrites one weights file in place: a Ctrl-C or a kill while it is
written leaves a truncated file, from which the next start "resumes" with skipped optimizer
variables. Here each epoch's backup is written under a temporary name, then renamed (atomic on one
file system), and only then described by a manifest (epoch, size, SHA-256) — itself written and
renamed. A backup counts only with its manifest and matching bytes. The newest backup and the one
before are kept, so a damaged newest backup falls back to the previous one (with a warning); if
every backup is damaged, the run stops with a message instead of starting over silently.

Layout of ``<output>/backup``: ``epoch-0003.weights.h5`` + ``epoch-0003.json`` per kept epoch;
``*.partial*`` files are unfinished writes and are ignored (and removed by the next backup).
"""

import glob
import hashlib
import json
import os
import re
import shutil
import sys

import keras

from models._common import write_atomically
from models.training.config import UsageError

KEEP = 2  # the newest backup and the previous one
_MANIFEST = re.compile(r"epoch-(\d+)\.json$")


def _weights_path(folder, epoch):
    return os.path.join(folder, f"epoch-{epoch:04d}.weights.h5")


def _manifest_path(folder, epoch):
    return os.path.join(folder, f"epoch-{epoch:04d}.json")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _problem(folder, epoch):
    """Why the backup of ``epoch`` cannot be used, or None if it is intact."""
    try:
        with open(_manifest_path(folder, epoch)) as f:
            manifest = json.load(f)
        expected_size, expected_sha = int(manifest["bytes"]), manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    weights = _weights_path(folder, epoch)
    if not os.path.exists(weights):
        return "its weights file is missing"
    if os.path.getsize(weights) != expected_size:
        return f"its weights file has {os.path.getsize(weights)} bytes instead of {expected_size}"
    if _sha256(weights) != expected_sha:
        return "its weights file does not match its checksum"
    return None


def backed_up_epochs(folder):
    """Epochs that have a manifest in ``folder``, newest first (intact or not)."""
    found = (_MANIFEST.search(os.path.basename(p)) for p in glob.glob(os.path.join(folder, "epoch-*.json")))
    return sorted((int(m.group(1)) for m in found if m), reverse=True)


def latest_intact(folder, output, warn=True):
    """The newest epoch whose backup is intact (0 when there is none to resume from).

    A damaged newer backup is skipped with a warning on stderr.

    Raises:
        UsageError: backups exist but every one is damaged.
    """
    damaged = []
    for epoch in backed_up_epochs(folder):
        problem = _problem(folder, epoch)
        if problem is None:
            if damaged and warn:
                skipped = "; ".join(f"epoch {e}: {p}" for e, p in damaged)
                print(f"warning: skipping damaged backups ({skipped}); resuming after epoch {epoch}",
                      file=sys.stderr, flush=True)
            return epoch
        damaged.append((epoch, problem))
    if damaged:
        details = "; ".join(f"epoch {e}: {p}" for e, p in damaged)
        raise UsageError(
            f"--output {output}: every backup of the interrupted run is damaged ({details}); delete "
            f"{folder} to train from the first epoch. Nothing was changed."
        )
    return 0


class EpochBackup(keras.callbacks.Callback):
    """Restores the backup of ``restore_epoch`` when training begins, backs up every epoch's end
    atomically, and removes the backups when training ends (the run's model is saved then).

    Args:
        folder: ``<output>/backup``.
        restore_epoch: the epoch to resume after (0: nothing to restore), from :func:`latest_intact`.
        remove_at_end: remove the backups when this ``fit`` ends (False for a stage that another
            ``fit`` continues: a kill between the two must still find them).
    """

    def __init__(self, folder, restore_epoch=0, remove_at_end=True):
        super().__init__()
        self.folder, self.restore_epoch, self.remove_at_end = folder, restore_epoch, remove_at_end

    def on_train_begin(self, logs=None):
        if self.restore_epoch:
            restore(self.model, self.folder, self.restore_epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch + 1)

    def save(self, epoch):
        """Writes the backup of the model after ``epoch`` epochs, then drops all but the last ``KEEP``."""
        os.makedirs(self.folder, exist_ok=True)
        for leftover in glob.glob(os.path.join(self.folder, "*.partial*")):
            os.remove(leftover)
        partial = os.path.join(self.folder, f"epoch-{epoch:04d}.partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)
        manifest = {"epoch": epoch, "bytes": os.path.getsize(partial), "sha256": _sha256(partial)}
        os.replace(partial, _weights_path(self.folder, epoch))
        write_atomically(_manifest_path(self.folder, epoch), json.dumps(manifest))
        for old in backed_up_epochs(self.folder):
            if old <= epoch - KEEP:
                os.remove(_manifest_path(self.folder, old))  # the manifest first: never one without weights
                if os.path.exists(_weights_path(self.folder, old)):
                    os.remove(_weights_path(self.folder, old))

    def on_train_end(self, logs=None):
        if self.remove_at_end:
            shutil.rmtree(self.folder, ignore_errors=True)


def restore(model, folder, epoch):
    """Loads the backup of ``epoch`` (weights and optimizer state) into ``model``, compiled as it was
    when the backup was written (the same trainable weights, hence the same optimizer variables)."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(_weights_path(folder, epoch))
