"""Test harness shared by every component's tests: one line per property.

    assert_config_complete(obj)                     every __init__ argument is in get_config
    assert_keras_round_trip(model, x, tmp_path)     .keras save/load, identical outputs
    assert_distribution_equivalent("mod:case")      1 device vs MirroredStrategy on 2 CPUs
    assert_mixed_precision_trains(case, policy)     finite loss and gradients under a mixed policy
    assert_jit_matches(case)                        jit_compile=True trains like no XLA
    assert_gradients_match_finite_differences(fn, *arrays)   float64 central differences
    numeric_gradient(fn, array)                     central differences of a NumPy reference
    assert_value_error(argument, fn, *args)         ValueError naming `argument`

A *training case* is a zero-argument function (importable as ``"module:function"``
so a subprocess can rebuild it) returning a :class:`TrainingCase`.
"""

import dataclasses
import inspect
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class TrainingCase:
    """A small model, its loss and data, trained with plain SGD by the helpers.

    Attributes:
        build_model: () -> uncompiled ``keras.Model``; called inside the strategy scope.
        make_loss: () -> loss object for ``compile``.
        x, y: training data; ``len(x)`` should be a multiple of ``batch_size``.
        batch_size: global batch size.
        make_metrics: () -> list of metrics for ``compile``.
        learning_rate: SGD learning rate.
    """

    build_model: callable
    make_loss: callable
    x: object
    y: np.ndarray
    batch_size: int
    make_metrics: callable = list
    learning_rate: float = 0.1


def toy_classification(num_samples=32, dim=6, seed=1):
    """Small 4-class data set for training cases: x ``(N, dim)`` float32, y int32 in [0, 4)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_samples, dim)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] > 0).astype(np.int32) + 2 * (x[:, 2] > 0)).astype(np.int32)
    return x, y


def _compile(case, jit_compile=False):
    model = case.build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(case.learning_rate),
        loss=case.make_loss(),
        metrics=case.make_metrics(),
        jit_compile=jit_compile,
    )
    return model


class _BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(v) for k, v in (logs or {}).items()})


def train_case(case, epochs=2, initial_weights=None, jit_compile=False):
    """Trains ``case`` with ``shuffle=False``; returns (model, per-batch logs, weights)."""
    model = _compile(case, jit_compile=jit_compile)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    recorder = _BatchLogs()
    model.fit(
        case.x,
        case.y,
        batch_size=case.batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[recorder],
    )
    return model, recorder.logs, [np.asarray(w) for w in model.get_weights()]


def _assert_runs_equal(a_logs, a_weights, b_logs, b_weights, atol, what):
    assert len(a_logs) == len(b_logs) > 0, f"{what}: different number of steps"
    for step, (a, b) in enumerate(zip(a_logs, b_logs)):
        assert a.keys() == b.keys(), f"{what}: step {step} logs differ in keys"
        for key in a:
            assert np.isfinite(a[key]), f"{what}: step {step} {key} is not finite"
            np.testing.assert_allclose(
                b[key], a[key], rtol=atol, atol=atol, err_msg=f"{what}: step {step} `{key}`"
            )
    assert len(a_weights) == len(b_weights)
    for index, (a, b) in enumerate(zip(a_weights, b_weights)):
        np.testing.assert_allclose(b, a, rtol=atol, atol=atol, err_msg=f"{what}: weight {index}")


# --- 1. configuration and saving -------------------------------------------------------


def assert_config_complete(obj):
    """Every ``__init__`` argument is in ``get_config`` and ``from_config`` rebuilds it."""
    config = obj.get_config()
    parameters = inspect.signature(type(obj).__init__).parameters
    for name, parameter in parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        assert name in config, f"{type(obj).__name__}.get_config() lacks `{name}`"
    clone = type(obj).from_config(config)
    assert clone.get_config() == config, "from_config(get_config()) changes the config"
    registered = keras.saving.get_registered_name(type(obj))
    assert registered.startswith("keras_losses>"), f"{type(obj).__name__} is not registered"


def assert_keras_round_trip(model, x, tmp_path):
    """Saves to ``.keras``, reloads without custom_objects, outputs are identical."""
    path = os.path.join(str(tmp_path), "model.keras")
    expected = model.predict(x, verbose=0)
    model.save(path)
    reloaded = keras.saving.load_model(path)
    actual = reloaded.predict(x, verbose=0)
    for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_array_equal(b, a)
    if model.compiled and model.loss is not None:
        assert type(reloaded.loss) is type(model.loss)
        assert reloaded.loss.get_config() == model.loss.get_config()
    return reloaded


# --- 2. distribution --------------------------------------------------------------------


def run_distributed(case_path, epochs=2):
    """Trains the case on one device and under MirroredStrategy on 2 logical CPUs.

    Runs in a fresh subprocess (logical devices must be configured before
    TensorFlow initialises, and only one MirroredStrategy may exist per process).

    Returns:
        dict with ``single`` and ``mirrored`` runs, each ``{"logs": [...], "weights": [...]}``.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT)
    completed = subprocess.run(
        [sys.executable, "-m", "tests._distributed_runner", case_path, str(epochs)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise AssertionError(f"distributed runner failed:\n{completed.stderr[-4000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    for run in result.values():
        run["weights"] = [np.asarray(w) for w in run["weights"]]
    return result


def assert_distribution_equivalent(case_path, epochs=2, atol=1e-5):
    """1 device vs 2 replicas, same global batches: logs and weights equal within ``atol``."""
    result = run_distributed(case_path, epochs)
    single, mirrored = result["single"], result["mirrored"]
    assert mirrored["replicas"] == 2
    _assert_runs_equal(
        single["logs"], single["weights"], mirrored["logs"], mirrored["weights"], atol, "mirrored"
    )
    return result


# --- 3. mixed precision -----------------------------------------------------------------


def assert_mixed_precision_trains(case, policy):
    """Under ``policy`` the case trains a step with finite loss and finite gradients."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = _compile(case)
        x, y = case.x[: case.batch_size], case.y[: case.batch_size]
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        assert np.isfinite(float(loss)), f"{policy}: loss {float(loss)}"
        for variable, gradient in zip(model.trainable_variables, gradients):
            assert gradient is not None, f"{policy}: no gradient for {variable.path}"
            assert np.all(np.isfinite(np.asarray(gradient))), f"{policy}: gradient of {variable.path}"
        logs = model.train_on_batch(x, y, return_dict=True)
        assert all(np.isfinite(v) for v in logs.values()), f"{policy}: {logs}"
        return model
    finally:
        keras.config.set_dtype_policy(previous)


# --- 4. XLA -----------------------------------------------------------------------------


def assert_jit_matches(case, epochs=2, atol=1e-5):
    """``jit_compile=True`` trains and matches the non-XLA run within ``atol``."""
    keras.utils.set_random_seed(0)
    initial = _compile(case).get_weights()
    _, ref_logs, ref_weights = train_case(case, epochs, initial_weights=initial)
    _, jit_logs, jit_weights = train_case(case, epochs, initial_weights=initial, jit_compile=True)
    _assert_runs_equal(ref_logs, ref_weights, jit_logs, jit_weights, atol, "jit_compile=True")


# --- 5. gradients -----------------------------------------------------------------------


def numeric_gradient(fn, array, step=1e-6):
    """Central-difference gradient of scalar NumPy ``fn`` at float64 ``array``."""
    array = np.array(array, dtype=np.float64)
    gradient = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[index] += step
        minus[index] -= step
        gradient[index] = (fn(plus) - fn(minus)) / (2 * step)
    return gradient


def assert_gradients_match_finite_differences(fn, *arrays, step=1e-6, rtol=1e-5, atol=1e-7):
    """Autodiff gradients of scalar ``fn(*tensors)`` equal float64 central differences.

    ``fn`` receives float64 tensors and must return a scalar; every array is
    differentiated element by element (keep them small).
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    variables = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        value = fn(*variables)
    analytic = tape.gradient(value, variables)
    assert np.isfinite(float(value))
    for index, array in enumerate(arrays):
        numeric = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] = array[position] + step
            plus = float(fn(*[tf.constant(a) for a in shifted]))
            shifted[index][position] = array[position] - step
            minus = float(fn(*[tf.constant(a) for a in shifted]))
            numeric[position] = (plus - minus) / (2 * step)
        got = np.zeros_like(array) if analytic[index] is None else np.asarray(analytic[index])
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol, err_msg=f"input {index}")


# --- 6. bad input -----------------------------------------------------------------------


def assert_value_error(argument, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` raises ValueError whose message names `argument`."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert f"`{argument}`" in str(info.value), (
        f"ValueError does not name `{argument}`: {info.value}"
    )
    return info.value
