"""Test harness shared by every component's tests: one line per property.

    assert_standard_checks("mod:case", tmp_path, reference)   all of the below for one component
    assert_config_complete(obj)                     every __init__ argument is in get_config
    assert_keras_round_trip(model, x, tmp_path)     .keras save/load, identical outputs
    assert_distribution_equivalent("mod:case")      1 device vs MirroredStrategy on 2 CPUs
    assert_reductions(loss, y, y_pred, reference)   every Keras reduction, with and without sample_weight
    assert_mixed_precision_trains(case, policy)     finite loss and gradients under a mixed policy
    assert_jit_matches(case)                        jit_compile=True trains like no XLA
    assert_gradients_match_finite_differences(fn, *arrays)   float64 central differences
    numeric_gradient(fn, array)                     central differences of a NumPy reference
    assert_value_error(argument, fn, *args)         ValueError naming `argument`
    value_and_gradients(fn, inputs, variables)      autodiff on whichever Keras backend runs
    compiled(fn)                                    fn under XLA (tf.function / jax.jit)

A *training case* is a zero-argument function (importable as ``"module:function"``
so a subprocess can rebuild it) returning a :class:`TrainingCase`. Cases checked under
distribution are declared with ``@harness.distribution_case``: the first distribution check runs
every declared case in one subprocess (one TensorFlow start, one MirroredStrategy) and keeps
the results for the others.

The backend-independent test modules (``ALL_BACKEND_MODULES`` in ``tests/conftest.py``) also run
on JAX and PyTorch (``KERAS_BACKEND``); checks that need TensorFlow (MirroredStrategy, graph-mode
assertions) are marked ``tensorflow_only`` or skipped by the harness there.
"""

import dataclasses
import importlib
import inspect
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()

# Off TensorFlow, Keras computes float64 in float32 in many ops (keras.backend.result_type maps
# float64 to float32 there: keras-team/keras#23704), so float64 checks hold to float32 precision.
FLOAT64_EXACT = BACKEND == "tensorflow"


def float64_tolerance(tolerance):
    """``tolerance`` for a float64 comparison on TensorFlow; at least 2e-5 on the other backends."""
    return tolerance if FLOAT64_EXACT else max(tolerance, 2e-5)


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


def first_batch(case):
    """``(x, y)`` of the case's first batch (``x`` may be a dict of arrays)."""
    return keras.tree.map_structure(lambda a: a[: case.batch_size], case.x), case.y[: case.batch_size]


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

DISTRIBUTION_EPOCHS = 1  # 2 steps: the second starts from weights the first updated
_DISTRIBUTION_CASES = []  # "module:function" of every declared case, in import order
_DISTRIBUTED_RESULTS = {}


def distribution_case(function):
    """Declares a training case for the grouped distribution run (a decorator); returns it unchanged."""
    path = f"{function.__module__}:{function.__name__}"
    if path not in _DISTRIBUTION_CASES:
        _DISTRIBUTION_CASES.append(path)
    return function


def run_distributed(case_path):
    """The case trained on one device and under MirroredStrategy on 2 logical CPUs.

    Runs, in one fresh subprocess (logical devices must be configured before TensorFlow
    initialises, and only one MirroredStrategy may exist per process), this case and every
    declared case not run yet; results are kept for the session.

    Returns:
        dict with ``single`` and ``mirrored`` runs, each ``{"logs": [...], "weights": [...], "replicas"}``.
    """
    if BACKEND != "tensorflow":
        pytest.skip("MirroredStrategy is TensorFlow's (JAX's DataParallel: tests/test_backends.py)")
    if case_path not in _DISTRIBUTED_RESULTS:
        pending = [c for c in dict.fromkeys([case_path, *_DISTRIBUTION_CASES]) if c not in _DISTRIBUTED_RESULTS]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT)
        completed = subprocess.run(
            [sys.executable, "-m", "tests._distributed_runner", str(DISTRIBUTION_EPOCHS), *pending],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
        if completed.returncode != 0:
            raise AssertionError(f"distributed runner failed:\n{completed.stderr[-4000:]}")
        _DISTRIBUTED_RESULTS.update(json.loads(completed.stdout.strip().splitlines()[-1]))
    result = _DISTRIBUTED_RESULTS[case_path]
    if "error" in result:
        raise AssertionError(f"{case_path} failed in the distributed runner:\n{result['error'][-4000:]}")
    return {
        run: {**values, "weights": [np.asarray(w) for w in values["weights"]]} for run, values in result.items()
    }


def assert_distribution_equivalent(case_path, atol=1e-5):
    """1 device vs 2 replicas, same global batches: logs and weights equal within ``atol``."""
    result = run_distributed(case_path)
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
        x, y = first_batch(case)

        def compute_loss():
            return model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)

        loss, gradients = value_and_gradients(compute_loss, variables=model.trainable_variables)
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


def value_and_gradients(fn, inputs=(), variables=()):
    """``fn(*inputs)`` and the gradients of its sum, on the running Keras backend.

    Args:
        fn: function of one tensor per input, returning a tensor (its sum is differentiated).
        inputs: arrays, converted to tensors with their own dtype.
        variables: Keras variables ``fn`` reads (a layer's kernel, a model's weights); their
            layers must be built.

    Returns:
        ``(value, gradients)``: ``fn``'s output as NumPy and one NumPy gradient per input, then
        per variable (``None`` where the output does not depend on it).
    """
    variables = list(variables)
    if BACKEND == "tensorflow":
        tensors = [tf.convert_to_tensor(a) for a in inputs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
            total = tf.reduce_sum(value)
        gradients = tape.gradient(total, tensors + [v.value for v in variables])
    elif BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def total(tensors, values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                value = fn(*tensors)
            return jnp.sum(value), value

        (_, value), (input_gradients, variable_gradients) = jax.value_and_grad(
            total, argnums=(0, 1), has_aux=True)([jnp.asarray(a) for a in inputs], [v.value for v in variables])
        gradients = list(input_gradients) + list(variable_gradients)
    elif BACKEND == "torch":
        import torch

        tensors = [torch.tensor(np.asarray(a), requires_grad=True) for a in inputs]
        value = fn(*tensors)
        targets = tensors + [v.value for v in variables]
        gradients = torch.autograd.grad(torch.sum(value), targets, allow_unused=True) if targets else []
    else:
        raise NotImplementedError(f"no gradients on the {BACKEND} backend")
    return ops.convert_to_numpy(value), [None if g is None else ops.convert_to_numpy(g) for g in gradients]


def compiled(fn):
    """``fn`` compiled with XLA on the running backend (``tf.function(jit_compile=True)`` or
    ``jax.jit``); skips the test on PyTorch, which has no XLA."""
    if BACKEND == "tensorflow":
        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    pytest.skip(f"no XLA compilation on the {BACKEND} backend")


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
    value, analytic = value_and_gradients(fn, arrays)
    total = float(np.sum(value))
    assert np.isfinite(total)
    if not FLOAT64_EXACT:  # float32 arithmetic inside: a larger step, and the difference quotient's
        step = max(step, 1e-3)  # float32 rounding (~1.2e-7·|fn| / step) in the tolerance
        rtol, atol = max(rtol, 2e-3), max(atol, 1e-3 * max(1.0, abs(total)))
    for index, array in enumerate(arrays):
        numeric = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] = array[position] + step
            plus = float(ops.convert_to_numpy(ops.sum(fn(*[ops.convert_to_tensor(a) for a in shifted]))))
            shifted[index][position] = array[position] - step
            minus = float(ops.convert_to_numpy(ops.sum(fn(*[ops.convert_to_tensor(a) for a in shifted]))))
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


# --- 7. reductions and sample weights -----------------------------------------------------

REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight", "sum", None)


def _with_reduction(loss, reduction):
    return type(loss).from_config({**loss.get_config(), "reduction": reduction})


def assert_reductions(loss, y_true, y_pred, reference, rtol=1e-5, atol=1e-6):
    """Every Keras reduction, without and with ``sample_weight``, against a float64 reference.

    ``reference(y_true, y_pred)`` returns either the per-sample values ``(B,)`` — then every
    reduction must give what Keras' definition gives for them (``None``: ``w·v``; ``"sum"``:
    ``Σ w·v``; ``"sum_over_batch_size"``/``"mean"``: ``Σ w·v / B``; ``"mean_with_sample_weight"``:
    ``Σ w·v / Σ w``) — or, for a loss with a batch-level term, ``(per-sample part, batch term)``:
    then the mean reductions must give ``mean(part) + term`` and ``"sum"`` ``Σ part + term`` (the
    term counted once), while ``None``, ``"mean_with_sample_weight"`` and any ``sample_weight`` must
    be rejected with a ``ValueError`` naming the argument.
    """
    expected = reference(y_true, np.asarray(y_pred, np.float64))
    batch = len(y_true)
    weights = np.random.default_rng(0).uniform(0.2, 2.0, size=batch)
    if isinstance(expected, tuple):  # a batch-level term
        part, term = expected
        for reduction, value in (("sum_over_batch_size", part.mean() + term), ("mean", part.mean() + term),
                                 ("sum", part.sum() + term)):
            got = float(_with_reduction(loss, reduction)(y_true, y_pred))
            np.testing.assert_allclose(got, value, rtol=rtol, atol=atol, err_msg=f"reduction={reduction!r}")
        for reduction in (None, "none", "mean_with_sample_weight"):
            assert_value_error("reduction", _with_reduction, loss, reduction)
        for reduction in ("sum_over_batch_size", "sum"):
            assert_value_error("sample_weight", _with_reduction(loss, reduction), y_true, y_pred,
                               sample_weight=weights)
        return
    values = np.asarray(expected, np.float64)
    for w in (None, weights):
        weighted = values if w is None else values * w
        total_weight = batch if w is None else w.sum()
        wanted = {"sum_over_batch_size": weighted.sum() / batch, "mean": weighted.sum() / batch,
                  "mean_with_sample_weight": weighted.sum() / total_weight, "sum": weighted.sum(), None: weighted}
        for reduction in REDUCTIONS:
            got = np.asarray(_with_reduction(loss, reduction)(y_true, y_pred, sample_weight=w))
            np.testing.assert_allclose(got, wanted[reduction], rtol=rtol, atol=atol,
                                       err_msg=f"reduction={reduction!r}, sample_weight={'yes' if w is not None else 'no'}")


# --- 8. everything at once ------------------------------------------------------------------

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _our_objects(model, loss):
    """The keras_losses loss and layers of a model (whose configs the harness checks)."""
    found = [loss]
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "layers", ()))
    return [obj for obj in found
            if keras.saving.get_registered_name(type(obj)).startswith("keras_losses>")]


def load_case(case_path):
    module_name, function_name = case_path.split(":")
    return getattr(importlib.import_module(module_name), function_name)()


def assert_standard_checks(case_path, tmp_path, reference=None, policies=MIXED_POLICIES, jit=True,
                           distribution=True):
    """The standard checks of one component, in one call, on its training case ``case_path``:

    1. every keras_losses class in it (its loss and layers) has a complete, registered config;
    2. the trained model survives a ``.keras`` round trip with identical outputs and the same loss;
    3. it trains with finite loss and gradients under each mixed-precision policy;
    4. ``jit_compile=True`` trains like no XLA (``jit``; TensorFlow, whose default is no XLA);
    5. 2 replicas train like one device (``distribution``; TensorFlow's MirroredStrategy; the case
       must be declared with :func:`distribution_case`);
    6. with ``reference`` (see :func:`assert_reductions`): every reduction, with and without
       ``sample_weight``, on the trained model's predictions of the first batch.

    Returns the trained model.
    """
    case = load_case(case_path)
    model, _, _ = train_case(case, epochs=1)
    objects = _our_objects(model, model.loss)
    assert objects, f"{case_path}: no keras_losses class in the case"
    for obj in objects:
        assert_config_complete(obj)
    assert_keras_round_trip(model, case.x, tmp_path)
    for policy in policies:
        assert_mixed_precision_trains(case, policy)
    # On JAX every fit above already ran under XLA (Keras' default there); on PyTorch jit_compile
    # means torch.compile, not XLA. The no-XLA/XLA comparison is TensorFlow's.
    if jit and BACKEND == "tensorflow":
        assert_jit_matches(case)
    if distribution and BACKEND == "tensorflow":  # JAX: tests/test_backends.py (DataParallel)
        assert case_path in _DISTRIBUTION_CASES, f"declare {case_path} with @harness.distribution_case"
        assert_distribution_equivalent(case_path)
    if reference is not None:
        x, y = first_batch(case)
        predictions = model.predict(x, verbose=0)
        assert_reductions(case.make_loss(), y, predictions, reference)
    return model
