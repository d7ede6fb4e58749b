"""models/notebook.py: the runtime and data-source choices of the Colab notebooks, and the honest
comparison sentences they print."""

import keras
import pytest

from models import notebook
from tests.harness import assert_value_error


def test_data_source_choice():
    assert not notebook.in_colab()
    assert notebook.data_source("auto") == "embedded"  # outside Colab: no download
    assert notebook.data_source("tfds") == "tfds" and notebook.data_source("embedded") == "embedded"
    error = assert_value_error("DATA_SOURCE", notebook.data_source, "cifar")
    assert "'auto'" in str(error) and "'cifar'" in str(error)


def test_setup_on_a_cpu_ignores_mixed_precision(capsys, monkeypatch):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("checks the CPU-only path")
    for name in ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE"):
        monkeypatch.delenv(name, raising=False)
    try:
        runtime = notebook.setup(mixed_precision=True, seed=3)
        assert (runtime.device, runtime.replicas, runtime.policy) == ("CPU", 1, "float32")
        assert keras.config.dtype_policy().name == "float32"
        printed = capsys.readouterr().out
        assert "CPU only" in printed and "no GPU found" in printed and "TPU" not in printed
    finally:
        keras.config.set_dtype_policy("float32")
    assert_value_error("mixed_precision", notebook.setup, mixed_precision="yes")


def test_setup_warns_on_a_tpu_runtime(capsys, monkeypatch):
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    try:
        notebook.setup()
    finally:
        keras.config.set_dtype_policy("float32")
    assert "TPU runtimes are not supported" in capsys.readouterr().out


@pytest.mark.parametrize(
    "values, lower, expected",
    [
        ({"base": [0.90], "new": [0.95]}, False, "one seed only"),
        ({"base": [0.90, 0.91, 0.90], "new": [0.95, 0.96, 0.95]}, False, "better than base"),
        ({"base": [0.90, 0.91, 0.90], "new": [0.95, 0.96, 0.95]}, True, "worse than base"),
        ({"base": [0.90, 0.95, 0.85], "new": [0.92, 0.97, 0.87]}, False, "not distinguishable"),
    ],
)
def test_compare_to_baseline_says_what_the_seeds_allow(values, lower, expected):
    (sentence,) = notebook.compare_to_baseline(values, "base", "accuracy", lower_is_better=lower)
    assert sentence.startswith("new: accuracy") and expected in sentence


def test_results_table():
    table = notebook.results_table({"a": [{"accuracy": 0.5, "ece": 0.1, "nll": 1.0},
                                          {"accuracy": 0.7, "ece": 0.3, "nll": 2.0}]})
    assert "| a | 0.6000 ± 0.1414 | 0.2000 ± 0.1414 | 1.5000 ± 0.7071 |" in table
    assert "2 seed(s)" in table
    single = notebook.results_table({"a": [{"x": 0.25}]}, keys=("x",))
    assert "| a | 0.2500 |" in single and "±" not in single.splitlines()[2]
