"""models.train: every method trains on embedded data, mirrored equals one device, bad input exits non-zero (resume after a kill: tests/test_multiworker.py)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from models import methods, train
from models.training.fit import load_run
from tests.harness import REPO_ROOT

FAST = ["--epochs", "2", "--batch-size", "64", "--embedding-dim", "16", "--learning-rate", "0.01", "--verbose", "0"]


def _history_epochs(folder):
    with open(os.path.join(folder, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


# Two methods also draw their 2-D / 3-D test embeddings (features.png); the others' 16-D ones are not drawn.
LOW_DIMENSIONAL = {"softmax": 2, "pedcc": 3}


@pytest.mark.slow
@pytest.mark.parametrize("method", methods.names())
def test_every_method_trains_and_writes_its_outputs(method, tmp_path):
    """Each method trains on digits and writes the model, metrics, history, TensorBoard logs and plots,
    and features.png exactly when the embedding is 2-D or 3-D."""
    out = tmp_path / method
    # ICU learns more slowly: its eq. 14 regulariser (~100 at the start) dominates the first epochs.
    epochs = ["--epochs", "6"] if method == "icu" else []
    dim = ["--embedding-dim", str(LOW_DIMENSIONAL[method])] if method in LOW_DIMENSIONAL else []
    metrics = train.main(["--method", method, "--output", str(out), *FAST, *epochs, *dim])
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["ece"] <= 1.0
    assert metrics["accuracy"] > 0.2, metrics  # 10 classes: chance is 0.1
    if method == "icu":  # means started near the origin collapsed the backbone (0.18 after 8 epochs)
        assert metrics["accuracy"] > 0.8, metrics  # measured 0.909
    for name in ("model.keras", "metrics.json", "history.csv", "curves.png", "reliability.png", "run.json"):
        assert (out / name).is_file(), name
    if method in LOW_DIMENSIONAL:
        assert (out / "features.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (out / "features.png").exists()
    assert (out / "tensorboard").is_dir()
    assert _history_epochs(out) == list(range(6 if method == "icu" else 2))


@pytest.mark.slow
def test_verification_reports_tar_at_far(tmp_path):
    """On the open-set verification set, TAR@FAR is measured on held-out identities."""
    metrics = train.main(["--method", "arcface", "--dataset", "verification", "--output", str(tmp_path / "v"), *FAST])
    assert 0.0 <= metrics["tar@far=0.001"] <= metrics["tar@far=0.01"] <= 1.0


# Kills a run the hard way after its epoch-2 backup is on disk (used by tests/test_multiworker.py, whose
# test resumes the killed run on one process and on two workers).
KILLER = """
import os, signal, sys
import keras
from models import methods, train
from models.training.fit import load_run

from models.training.backup import EpochBackup
original = EpochBackup.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    original(self, epoch, logs)
    if epoch == 1:  # the backup of epoch 2 is on disk: die the hard way
        os.kill(os.getpid(), signal.SIGKILL)

EpochBackup.on_epoch_end = on_epoch_end
train.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_mirrored_matches_single_device(tmp_path):
    """--strategy mirrored on 2 logical CPUs gives the single-device metrics for the same global batch.

    Uses embedding-net (Dense + synchronized BN). Conv + BN backbones agree only up to float32
    summation order in the batch variance (E[x²] − E[x]² over other partial sums), which
    training amplifies (small-cnn after one epoch: loss 0.87688 vs 0.87722).
    """
    script = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from models import methods, train
from models.training.fit import load_run
print(json.dumps(train.main(sys.argv[1:])))
"""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    results = {}
    for strategy in ("default", "mirrored"):
        subprocess.run(
            [sys.executable, "-c", script, "--method", "softmax", "--strategy", strategy, *FAST,
             "--backbone", "embedding-net",
             "--output", str(tmp_path / strategy)],
            cwd=REPO_ROOT, env=env, timeout=300, check=True, capture_output=True, text=True,
        )
        results[strategy] = json.loads((tmp_path / strategy / "metrics.json").read_text())
    assert results["mirrored"]["replicas"] == 2 and results["default"]["replicas"] == 1
    for key in ("accuracy", "ece"):
        assert results["mirrored"][key] == pytest.approx(results["default"][key], abs=1e-5), key


def test_bad_input_exits_non_zero_and_keeps_earlier_run(tmp_path, capsys):
    """Unknown method, dataset or backbone, or a different run in --output: exit 2, nothing touched.

    (Bad TF_CONFIG and a batch not divisible by the replicas: tests/test_multiworker.py.)"""
    for argv in (["--method", "bogus"], ["--dataset", "imagenet"], ["--backbone", "alexnet"]):
        with pytest.raises(SystemExit) as info:
            train.main([*argv, "--output", str(tmp_path / "x")])
        assert info.value.code == 2
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "run.json").write_text(json.dumps({"method": "softmax"}))
    (earlier / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as info:
        train.main(["--method", "gsc", "--output", str(earlier), *FAST])
    assert info.value.code == 2
    assert "different run" in capsys.readouterr().err
    assert json.loads((earlier / "run.json").read_text()) == {"method": "softmax"}
    assert sorted(os.listdir(earlier)) == ["metrics.json", "run.json"]


def test_dataset_options_reach_the_data_and_define_the_run(tmp_path, capsys):
    """--dataset-option noise_rate=0.5 trains on noisier labels than the default 0.2: it is stored in
    run.json (only options that differ from their defaults), a finished run is reused only with the
    same options, and load_run reads them back. A bad option or value exits 2 naming it."""
    out = tmp_path / "noisy"
    argv = ["--method", "softmax", "--dataset", "noisy-digits", "--output", str(out), "--epochs", "1",
            "--batch-size", "64", "--embedding-dim", "8", "--verbose", "0"]
    train.main([*argv, "--dataset-option", "noise_rate=0.5", "--dataset-option", "data_seed=0"])
    settings = json.loads((out / "run.json").read_text())
    assert settings["dataset_options"] == {"noise_rate": 0.5}
    config, _ = load_run(str(out))
    assert config.dataset_options == {"noise_rate": 0.5}
    with pytest.raises(SystemExit) as info:  # the default noise rate is another run
        train.main(argv)
    assert info.value.code == 2 and "dataset_options" in capsys.readouterr().err
    for option, expected in (("noise=0.1", "noise"), ("noise_rate=1.5", "noise_rate"), ("noise_rate", "NAME=VALUE")):
        with pytest.raises(SystemExit) as info:
            train.main([*argv[:-8], "--output", str(tmp_path / "bad"), "--dataset-option", option])
        assert info.value.code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


STAGED = ["--method", "pedcc", "--epochs", "3", "--batch-size", "64", "--embedding-dim", "16", "--learning-rate",
          "0.01", "--verbose", "0", "--backbone", "embedding-net", "--fine-tune-epochs", "1"]


def _centroids(folder):
    import numpy as np

    _, model = load_run(str(folder))
    return np.asarray(model.get_layer("head").centroids), model


@pytest.mark.slow
def test_fine_tuning_stage_trains_the_centroids_unless_kept_frozen(tmp_path):
    """--fine-tune-epochs 1 of 3: the first two epochs are the one-stage run's; the last one runs
    with a fresh Adam at a tenth of the learning rate, in which PEDCC's centroids move (kept at unit
    length) — with --keep-head-frozen they stay the generated ones. The stage's settings are stored
    in run.json (only for a run that has the stage) and read back by load_run."""
    import numpy as np

    import keras_losses

    tuned, frozen = tmp_path / "tuned", tmp_path / "frozen"
    train.main([*STAGED, "--output", str(tuned)])
    train.main([*STAGED, "--keep-head-frozen", "--output", str(frozen)])
    generated = keras_losses.pedcc_centroids(10, 16, seed=0).T
    moved, model = _centroids(tuned)
    assert np.abs(moved - generated).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(moved, axis=0), 1.0, atol=1e-5)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    still, _ = _centroids(frozen)
    np.testing.assert_allclose(still, generated, atol=1e-6)
    with open(tuned / "history.csv") as f:
        tuned_rows = list(csv.DictReader(f))
    with open(frozen / "history.csv") as f:
        frozen_rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in tuned_rows] == [int(r["epoch"]) for r in frozen_rows] == [0, 1, 2]
    for a, b in zip(tuned_rows[:2], frozen_rows[:2]):  # the same first stage
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-6)
    assert float(tuned_rows[2]["loss"]) != pytest.approx(float(frozen_rows[2]["loss"]), rel=1e-6)
    settings = json.loads((tuned / "run.json").read_text())
    assert (settings["fine_tune_epochs"], settings["fine_tune_learning_rate"], settings["fine_tune_head"]) == (
        1, pytest.approx(1e-3), True)
    config, _ = load_run(str(frozen))
    assert (config.fine_tune_epochs, config.fine_tune_head) == (1, False)
    assert (tuned / "curves.png").is_file() and not (tuned / "backup").exists()


def test_one_stage_runs_store_no_fine_tuning_settings():
    """Folders of runs without the stage keep their run.json keys (older folders still match)."""
    from models.training import TrainConfig
    from models.training.config import FINE_TUNE_KEYS

    settings = TrainConfig(method="pedcc", output="x").resolved().run_settings()
    assert not set(FINE_TUNE_KEYS) & set(settings)


@pytest.mark.parametrize("argv, names", [
    (["--epochs", "2", "--fine-tune-epochs", "2"], "`fine_tune_epochs` must be smaller than `epochs` (2)"),
    (["--fine-tune-learning-rate", "0.001"], "`fine_tune_learning_rate` and `fine_tune_head` apply"),
    (["--keep-head-frozen"], "`fine_tune_learning_rate` and `fine_tune_head` apply"),
])
def test_bad_fine_tuning_settings_exit_2_naming_them(argv, names, tmp_path, capsys):
    """A stage as long as the run, or stage settings without a stage: exit 2 with the setting named,
    nothing written; the Python API raises UsageError for the same and for a non-positive rate."""
    from models.training import TrainConfig, UsageError

    with pytest.raises(SystemExit) as info:
        train.main(["--method", "pedcc", "--output", str(tmp_path / "run"), *argv])
    assert info.value.code == 2 and names in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    for fields, named in (({"fine_tune_epochs": -1}, "fine_tune_epochs"),
                          ({"fine_tune_epochs": 1, "fine_tune_learning_rate": 0.0}, "fine_tune_learning_rate"),
                          ({"fine_tune_epochs": 1, "fine_tune_head": "no"}, "fine_tune_head")):
        with pytest.raises(UsageError, match=f"`{named}`"):
            TrainConfig(method="pedcc", output="x", **fields).resolved()


@pytest.mark.slow
@pytest.mark.parametrize("fine_tune_epochs", [2, 3])
def test_killed_staged_run_resumes_as_if_uninterrupted(fine_tune_epochs, tmp_path):
    """A run of 4 epochs killed after its epoch-2 backup resumes to the uninterrupted run's losses
    and centroids: killed at the stage boundary (stage from epoch 3: the backup is the first stage's,
    whose optimizer the stage replaces) and inside the stage (from epoch 2: the backup holds the
    fine-tuning optimizer's state, centroid moments included)."""
    import numpy as np

    import keras_losses

    argv = [*STAGED[:-2], "--epochs", "4", "--fine-tune-epochs", str(fine_tune_epochs)]
    broken, whole = tmp_path / "broken", tmp_path / "whole"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    killed = subprocess.run([sys.executable, "-c", KILLER, *argv, "--output", str(broken)], cwd=REPO_ROOT, env=env,
                            timeout=300)
    assert killed.returncode == -9 and _history_epochs(broken) == [0, 1]
    train.main([*argv, "--output", str(broken)])
    train.main([*argv, "--output", str(whole)])
    assert _history_epochs(broken) == [0, 1, 2, 3]
    with open(broken / "history.csv") as f, open(whole / "history.csv") as g:
        for a, b in zip(csv.DictReader(f), csv.DictReader(g), strict=True):
            assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    resumed, uninterrupted = _centroids(broken)[0], _centroids(whole)[0]
    np.testing.assert_allclose(resumed, uninterrupted, atol=1e-6)
    assert np.abs(resumed - keras_losses.pedcc_centroids(10, 16, seed=0).T).max() > 1e-3  # they did train
