"""models.multiworker: TF_CONFIG checks, and two worker processes on localhost train like one process."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from models import multiworker, train
from tests.harness import REPO_ROOT
from tests.test_train import KILLER

FAST = ["--epochs", "2", "--batch-size", "64", "--embedding-dim", "16", "--learning-rate", "0.01", "--verbose", "0",
        "--backbone", "embedding-net"]  # Dense + synchronized BN: replicas agree to float32 rounding
ENV = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
TIMEOUT = 240


def _tf_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(argv, count=2, chief_task=False):
    """Starts ``count`` tasks of ``models.train argv`` on localhost — workers, or with ``chief_task``
    a ``chief`` and ``count − 1`` workers — and returns their CompletedProcesses (chief first). Fails
    the test, killing every task, if they are not done within TIMEOUT s."""
    addresses = [f"localhost:{port}" for port in _free_ports(count)]
    if chief_task:
        cluster = {"chief": addresses[:1], "worker": addresses[1:]}
        tasks = [("chief", 0)] + [("worker", i) for i in range(count - 1)]
    else:
        cluster, tasks = {"worker": addresses}, [("worker", i) for i in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "models.train", "--strategy", "multiworker", *argv],
            cwd=REPO_ROOT,
            env=dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for kind, index in tasks
    ]
    finished = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    except subprocess.TimeoutExpired:
        pytest.fail(f"multi-worker run not done after {TIMEOUT} s")
    finally:
        for process in processes:
            process.kill()
    return finished


def _train_one_process(argv):
    """The reference: the same run on one process, in this one (train() sets and restores its own
    dtype policy and seeds, so earlier tests do not change it)."""
    from models import train

    train.main(["--strategy", "default", *argv])


def _weights(folder):
    import keras  # (keras_losses' classes are registered: models.train imports them)

    model = keras.saving.load_model(os.path.join(folder, "model.keras"))
    return model.get_weights(), [np.asarray(v.numpy(), np.float64) for v in model.optimizer.variables]


def _assert_same_state(a_arrays, b_arrays):
    """Tensor by tensor: relative L2 error ≤ 1e-3 and no element off by more than 1e-3.

    Not 1e-5: Adam divides by √v, so weights fed by rarely active pixels turn the replicas' float32
    summation order into steps of ~1e-4, and ICU's large early regulariser (~170) shows it in the
    optimizer moments (relative L2 1.8e-4 measured). A wrong split of the data or a wrong gradient
    scale moves every tensor by O(1) relative."""
    assert len(a_arrays) == len(b_arrays)
    for a, b in zip(a_arrays, b_arrays):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert a.shape == b.shape
        assert np.linalg.norm(a - b) <= 1e-3 * max(np.linalg.norm(b), 1e-12) + 1e-7, np.abs(a - b).max()
        np.testing.assert_allclose(a, b, atol=1e-3)


def _history(folder):
    with open(os.path.join(folder, "history.csv")) as f:
        return [{k: float(v) for k, v in row.items() if v != "NA"} for row in csv.DictReader(f)]


# ----------------------------------------------------------------------------- TF_CONFIG


def test_read_tf_config_finds_this_task_and_the_chief():
    """Worker 0 is the chief without a chief task; with one, only the chief is."""
    workers = ["a:1", "b:2"]
    assert multiworker.read_tf_config(_tf_config(workers, 0)) == multiworker.ClusterRole("worker", 0, 2, False)
    assert multiworker.read_tf_config(_tf_config(workers, 0)).is_chief
    assert not multiworker.read_tf_config(_tf_config(workers, 1)).is_chief
    with_chief = {"cluster": {"chief": ["c:3"], "worker": workers}}
    chief = multiworker.read_tf_config(json.dumps({**with_chief, "task": {"type": "chief", "index": 0}}))
    worker0 = multiworker.read_tf_config(json.dumps({**with_chief, "task": {"type": "worker", "index": 0}}))
    assert chief.is_chief and not worker0.is_chief and chief.num_tasks == 3


BAD_TF_CONFIGS = {
    "not JSON": "{cluster: }",
    "not an object": "[1, 2]",
    "no cluster": json.dumps({"task": {"type": "worker", "index": 0}}),
    "parameter servers": json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:2"]},
                                     "task": {"type": "worker", "index": 0}}),
    "address without port": json.dumps({"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}),
    "empty worker list": json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
    "no task": json.dumps({"cluster": {"worker": ["a:1"]}}),
    "index out of range": _tf_config(["a:1", "b:2"], 2),
    "index not an integer": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}),
    "two chiefs": json.dumps({"cluster": {"chief": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}),
}


@pytest.mark.parametrize("case", sorted(BAD_TF_CONFIGS))
def test_read_tf_config_rejects_malformed_config(case):
    """Each malformed TF_CONFIG raises a ValueError that names TF_CONFIG."""
    with pytest.raises(ValueError, match="TF_CONFIG"):
        multiworker.read_tf_config(BAD_TF_CONFIGS[case])


@pytest.mark.parametrize("text", [None, "{cluster: }"])
def test_training_with_missing_or_broken_tf_config_exits_2_and_writes_nothing(text, tmp_path, monkeypatch, capsys):
    """--strategy multiworker without a usable TF_CONFIG: exit 2, an error naming TF_CONFIG, no folder."""
    if text is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(SystemExit) as info:
        train.main(["--strategy", "multiworker", "--output", str(tmp_path / "run"), *FAST])
    assert info.value.code == 2
    assert "TF_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- two workers


@pytest.mark.slow
@pytest.mark.parametrize("method, chief_task", [("icu", False)])
def test_two_workers_train_like_one_process(method, chief_task, tmp_path):
    """Two worker processes (one replica each) end with the weights, optimizer state and history of one
    process on the same global batch; ICU also checks its batch-level regulariser with cross-replica class
    moments. (A chief task and a worker: the killed-run test below.)"""
    argv = ["--method", method, *FAST]
    workers = _run_workers([*argv, "--output", str(tmp_path / "workers")], chief_task=chief_task)
    assert [w.returncode for w in workers] == [0, 0], workers[0].stderr[-2000:] + workers[1].stderr[-2000:]
    _train_one_process([*argv, "--output", str(tmp_path / "single")])

    metrics = {k: json.loads((tmp_path / k / "metrics.json").read_text()) for k in ("workers", "single")}
    assert metrics["workers"]["replicas"] == 2 and metrics["single"]["replicas"] == 1
    (w_weights, w_opt), (s_weights, s_opt) = _weights(tmp_path / "workers"), _weights(tmp_path / "single")
    _assert_same_state(w_weights + w_opt, s_weights + s_opt)
    assert metrics["workers"]["accuracy"] == pytest.approx(metrics["single"]["accuracy"], abs=1e-9)
    assert metrics["workers"]["ece"] == pytest.approx(metrics["single"]["ece"], abs=1e-5)
    for a, b in zip(_history(tmp_path / "workers"), _history(tmp_path / "single"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)  # float32 summation order
    assert sorted(os.listdir(tmp_path / "workers")) == sorted(os.listdir(tmp_path / "single"))


@pytest.mark.slow
def test_killed_run_resumes_on_one_process_and_on_two_workers(tmp_path):
    """A run SIGKILLed after epoch 2 of 4 (a copy of its folder for each) is finished (1) by the same
    command on one process: it resumes at epoch 3 and ends exactly like an unbroken run; and (2) by a
    cluster of a chief task and a worker: only the chief reads the backup and writes, the worker gets
    its weights through the cluster, and the run ends like an unbroken one — weights, optimizer state and
    the run folder's files — up to the replicas' float32 summation order.

    Softmax: GSC's top-k σ is not smooth, and some seeds amplify the replicas' float32 summation
    order to 1e-3 in the weights after 4 epochs (seed 1), resumed or not."""
    argv = ["--method", "softmax", *FAST, "--epochs", "4"]
    broken, whole = tmp_path / "broken", tmp_path / "whole"
    killed = subprocess.run([sys.executable, "-c", KILLER, *argv, "--output", str(broken)],
                            cwd=REPO_ROOT, env=ENV, timeout=TIMEOUT)
    assert killed.returncode == -9 and not (broken / "metrics.json").exists()
    assert [int(row["epoch"]) for row in _history(broken)] == [0, 1]
    resumed = tmp_path / "resumed"
    shutil.copytree(broken, resumed)
    train.main([*argv, "--output", str(resumed)])  # the same command again, on one process
    workers = _run_workers([*argv, "--output", str(broken)], chief_task=True)  # a chief task and a worker
    assert [w.returncode for w in workers] == [0, 0], workers[0].stderr[-2000:]
    _train_one_process([*argv, "--output", str(whole)])

    for folder in (resumed, broken):
        assert [int(row["epoch"]) for row in _history(folder)] == [0, 1, 2, 3]
    single, uninterrupted = (json.loads((f / "metrics.json").read_text()) for f in (resumed, whole))
    for key in ("accuracy", "ece"):
        assert single[key] == pytest.approx(uninterrupted[key], abs=1e-6), key
    for a, b in zip(_history(resumed), _history(whole), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for a, b in zip(_history(broken), _history(whole), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)  # float32 summation order
    (w_weights, w_opt), (s_weights, s_opt) = _weights(broken), _weights(whole)
    _assert_same_state(w_weights + w_opt, s_weights + s_opt)
    assert sorted(os.listdir(broken)) == sorted(os.listdir(whole))


@pytest.mark.slow
@pytest.mark.parametrize(
    "problem, extra, chief_says, worker_says",
    [
        ("indivisible batch", ["--batch-size", "63"], "not divisible by the 2 replicas", "not divisible"),
        ("earlier run", [], "holds a different run", "the chief refused"),
    ],
)
def test_bad_run_stops_every_worker(problem, extra, chief_says, worker_says, tmp_path):
    """A run the chief refuses ends on every worker with exit 2 (no worker left waiting), and the
    earlier run in --output is untouched."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"method": "softmax"}) if problem == "earlier run" else "{}")
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    workers = _run_workers(["--method", "gsc", *FAST, *extra, "--output", str(out)])
    assert [w.returncode for w in workers] == [2, 2]
    assert chief_says in workers[0].stderr and worker_says in workers[1].stderr
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
