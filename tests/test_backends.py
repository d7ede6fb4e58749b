"""The library on Keras' JAX backend: values against the float64 references, a gradient against
finite differences, a bad label turning into NaN under jax.jit, fit / save / reload of every head
(tests/backend_probe.py, run in a subprocess because the backend is fixed at import).

Skipped when JAX is not installed (it is not part of the `test` extra yet; the TensorFlow backend is
covered by the rest of the suite).
"""

import json
import os
import subprocess
import sys

import pytest

from tests.harness import REPO_ROOT

# On JAX with float64, ScaledBatchNormalization and NPCFaceLoss agree with the references to ~1e-7
# (float32 rounding somewhere on that backend), the others to 1e-10.
JAX_TOLERANCE = "3e-7"


TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _run_script(script, backend, folder, **extra):
    """Runs ``tests/<script>`` under ``backend`` in ``folder``; returns the JSON it prints on its
    ``RESULTS`` line."""
    env = dict(os.environ, KERAS_BACKEND=backend, REPO_ROOT=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3", **extra)
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
def test_every_component_on_jax_and_files_cross_backends(tmp_path):
    """The probe on TensorFlow (which saves .keras files), then on JAX, which also loads TensorFlow's
    files and predicts the same (and saves its own, which TensorFlow then loads)."""
    pytest.importorskip("jax")
    _probe("tensorflow", tmp_path / "tf")
    _probe("jax", tmp_path / "jax", JAX_ENABLE_X64="1", PROBE_TOLERANCE=JAX_TOLERANCE,
           PROBE_LOAD_FROM=str(tmp_path / "tf"))
    _probe("tensorflow", tmp_path / "tf-again", PROBE_LOAD_FROM=str(tmp_path / "jax"))


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
    cosines move only per-sample values between devices (no all-gather, no collective over C)."""
    pytest.importorskip("jax")
    results, _ = _run_script("jax_model_parallel_probe.py", "jax", tmp_path, **TWO_DEVICES)
    for kind, run in results["training"].items():
        assert run["shards"] == [[6, 8], [6, 8]], (kind, run)  # D = 6, C = 16 → 8 classes per device
        assert run["loss_gap"] < 1e-5 and run["weight_gap"] < 1e-5, (kind, run)
    for kind, found in results["collectives"].items():
        assert found["all_reduces"] > 0, (kind, found)  # the pattern does see collectives
        assert found["all_gathers"] == 0 and not found["full_class_axis"], (kind, found)
