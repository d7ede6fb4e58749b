"""The library on Keras' JAX and PyTorch backends.

- The backend matrix: the backend-independent test modules (``ALL_BACKEND_MODULES`` in
  tests/conftest.py: every loss, layer and metric against the float64 references, bad inputs, the
  standard checks) run again under ``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch``.
- tests/backend_probe.py: every head trains, saves and reloads on each backend, and ``.keras`` files
  saved on one backend load on the others.
- keras.distribution on 2 virtual JAX devices: DataParallel and class-sharded heads (ModelParallel),
  and the training tool there and on PyTorch (tests/training_probe.py).

Each runs in a subprocess (but TensorFlow's part of the file exchange) because the backend is fixed
when Keras is imported. JAX and PyTorch are
in the ``test`` extra; a test is skipped where its backend is not installed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import backend_probe
from tests.conftest import ALL_BACKEND_MODULES, BACKEND_MODULE_GROUPS
from tests.harness import REPO_ROOT



TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
# float64 tensors on JAX need x64 (float64 checks there still hold to float32 precision only:
# see tests/harness.py, FLOAT64_EXACT).
BACKEND_ENV = {"jax": {"JAX_ENABLE_X64": "1"}, "torch": {}}


def _backend_env(backend, **extra):
    return dict(os.environ, KERAS_BACKEND=backend, REPO_ROOT=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _run_backend_tests(backend, modules, folder, *options):
    """Runs the test ``modules`` under ``backend`` in a subprocess; returns pytest's summary line."""
    env = _backend_env(backend, **BACKEND_ENV[backend])
    paths = [os.path.join(REPO_ROOT, "tests", name) for name in modules]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           f"--basetemp={folder}", *options, *paths],
                          env=env, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, f"on {backend}: {summary}\n{done.stdout[-6000:]}"
    return summary


def _count(summary, word):
    found = [int(part.split()[0]) for part in summary.split(",") if part.strip().split()[1:2] == [word]]
    return found[0] if found else 0


@pytest.mark.slow
@pytest.mark.parametrize("group", range(len(BACKEND_MODULE_GROUPS)), ids=lambda g: f"group{g}")
def test_backend_independent_tests_pass_on_jax(group, tmp_path):
    """The library's own tests (values and gradients against the float64 references, bad inputs,
    config, .keras round trip, mixed precision) pass on JAX, in three groups that run in parallel;
    tests that need TensorFlow APIs are skipped there, and most of each group runs. The tests marked
    slow (the harness's standard checks, which train models) run on TensorFlow and PyTorch only: Keras
    compiles every eager op on JAX, which would take this suite past its time; JAX's training is
    covered by the distribution, training-tool and cross-backend tests below."""
    pytest.importorskip("jax")
    summary = _run_backend_tests("jax", BACKEND_MODULE_GROUPS[group], tmp_path / "pytest", "-m", "not slow")
    assert _count(summary, "passed") > 4 * _count(summary, "skipped"), summary


@pytest.mark.slow
def test_backend_independent_tests_pass_on_torch(tmp_path):
    """The same modules, all at once, pass on PyTorch (no XLA there: the compiled-code checks skip)."""
    pytest.importorskip("torch")
    summary = _run_backend_tests("torch", ALL_BACKEND_MODULES, tmp_path / "pytest")
    assert _count(summary, "passed") > 4 * _count(summary, "skipped"), summary


def _run_script(script, backend, folder, **extra):
    """Runs ``tests/<script>`` under ``backend`` in ``folder``; returns the JSON it prints on its
    ``RESULTS`` line."""
    env = _backend_env(backend, **extra)
    folder.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tests", script)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(folder))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS "):]), done.stdout


def _probe(backend, folder, **extra):
    results, stdout = _run_script("backend_probe.py", backend, folder, PROBE_OUTPUT=str(folder), **extra)
    assert f"backend {backend}" in stdout
    failures = {name: outcome for name, outcome in results.items() if outcome != "ok"}
    assert not failures, (backend, failures)


@pytest.mark.slow
def test_every_head_trains_saves_and_loads_across_backends(tmp_path):
    """Every head (CosineDense, PEDCCDense, Dense + GSC with the ECE, ScaledBatchNormalization
    (synchronized=True), the ICU model) trains, saves and reloads on TensorFlow (this process), then
    on JAX, which first loads TensorFlow's files and predicts the same, then on PyTorch (loads
    JAX's), and TensorFlow loads PyTorch's."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    (tmp_path / "tf").mkdir()
    backend_probe.save_heads(str(tmp_path / "tf"))
    _probe("jax", tmp_path / "jax", PROBE_LOAD_FROM=str(tmp_path / "tf"), **BACKEND_ENV["jax"])
    _probe("torch", tmp_path / "torch", PROBE_LOAD_FROM=str(tmp_path / "jax"))
    backend_probe.load_heads(str(tmp_path / "torch"))


@pytest.mark.slow
def test_data_parallel_on_two_jax_devices_equals_one_device(tmp_path):
    """keras.distribution.DataParallel over 2 virtual CPU devices: PEDCC (batch MSE), ICU (regulariser)
    and GSC with the ECE metric train to the same weights and logs as one device (the batch terms
    and the metric's bins see the global batch: JAX's global arrays make the sums global)."""
    pytest.importorskip("jax")
    results, _ = _run_script("jax_data_parallel_probe.py", "jax", tmp_path, **TWO_DEVICES)
    for method, gaps in results.items():
        assert gaps["weight_gap"] < 1e-5 and gaps["log_gap"] < 1e-5, (method, gaps)
    assert "ece" in results["gsc"]["logs"]


@pytest.mark.slow
def test_class_sharded_heads_with_model_parallel_on_two_jax_devices(tmp_path):
    """ModelParallel with the class axis of CosineDense / PEDCCDense sharded: each device holds C/2
    class vectors, training equals one device, and the compiled margin losses on class-sharded
    cosines move only per-sample values between devices (no all-gather, no collective over C); with
    the training tool's layout a whole train step gathers the (B, D) features, never a class axis."""
    pytest.importorskip("jax")
    results, _ = _run_script("jax_model_parallel_probe.py", "jax", tmp_path, **TWO_DEVICES)
    for kind, run in results["training"].items():
        assert run["shards"] == [[6, 8], [6, 8]], (kind, run)  # D = 6, C = 16 → 8 classes per device
        assert run["loss_gap"] < 1e-5 and run["weight_gap"] < 1e-5, (kind, run)
    for kind, found in results["collectives"].items():
        assert found["all_reduces"] > 0, (kind, found)  # the pattern does see collectives
        assert found["all_gathers"] == 0 and not found["full_class_axis"], (kind, found)
    tool = results["tool_layout"]  # models.train --strategy class-sharded: batch and classes on one axis
    assert tool["kernel_shards"] == [[64, 2048], [64, 2048]], tool
    assert tool["features_gathered"] and not tool["full_class_axis"], tool


@pytest.mark.slow
def test_training_tool_on_two_jax_devices(tmp_path):
    """models.train on JAX: data parallel (auto) and class-sharded runs of softmax and ICU train like
    one device, ArcFace and PEDCC train class-sharded (the backbone's batch norm sees the global batch, as
    synchronized=True does on TensorFlow), and class-sharded splits every class-axis weight of the
    head in halves over the 2 devices; TensorFlow's strategies are refused naming the flag."""
    pytest.importorskip("jax")
    found, _ = _run_script("training_probe.py", "jax", tmp_path, PROBE_OUTPUT=str(tmp_path), **TWO_DEVICES)
    for strategy in ("mirrored", "multiworker"):
        assert f"--strategy {strategy}" in found["refusals"].get(strategy, ""), found["refusals"]
    results = found["runs"]
    assert set(results) == {"softmax", "icu", "arcface", "pedcc"}
    for method, runs in results.items():
        for strategy in set(runs) - {"default", "shards"}:
            run = runs[strategy]
            assert run["metrics"]["replicas"] == 2 and np.isfinite(run["losses"]).all(), (method, strategy, run)
            if "default" not in runs:  # ArcFace, PEDCC: equal to one device at the library level
                continue
            single = runs["default"]
            assert single["metrics"]["replicas"] == 1
            np.testing.assert_allclose(run["losses"], single["losses"], rtol=2e-4, err_msg=f"{method} {strategy}")
            for name in ("accuracy", "ece"):
                assert abs(run["metrics"][name] - single["metrics"][name]) <= 0.01, (method, strategy, name)
        assert runs["shards"], method
        for path, pieces in runs["shards"].items():
            assert len(pieces) == 2 and pieces[0] == pieces[1], (method, path, pieces)
            assert 5 in pieces[0], (method, path, pieces)  # digits: 10 classes → 5 per device


@pytest.mark.slow
def test_training_tool_on_torch(tmp_path):
    """models.train on PyTorch: ArcFace trains two epochs on one device (the loss falls),
    report their metrics and save the model; the multi-device strategies are refused naming the flag."""
    pytest.importorskip("torch")
    found, _ = _run_script("training_probe.py", "torch", tmp_path, PROBE_OUTPUT=str(tmp_path))
    for strategy in ("mirrored", "multiworker", "class-sharded"):
        assert f"--strategy {strategy}" in found["refusals"].get(strategy, ""), found["refusals"]
    for method, runs in found["runs"].items():
        metrics = runs["default"]["metrics"]
        assert metrics["replicas"] == 1 and metrics["device"] == "CPU", (method, metrics)
        losses = runs["default"]["losses"]
        assert len(losses) == 2 and losses[1] < losses[0], (method, losses)
        assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["ece"]), (method, metrics)
    assert (tmp_path / "arcface-default" / "model.keras").exists()
