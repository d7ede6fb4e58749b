"""The shared harness fails when the property it checks is broken (no check that cannot fail)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import harness


class _ForgetsAnArgument(keras.layers.Layer):
    def __init__(self, width=3, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def get_config(self):
        return {"name": self.name}


def test_config_check_catches_missing_argument():
    """A get_config that omits an __init__ argument is reported by name."""
    with pytest.raises(AssertionError, match="`width`"):
        harness.assert_config_complete(_ForgetsAnArgument())


def test_value_error_check_requires_the_argument_name():
    """A ValueError that does not name the argument fails; one that does passes."""

    def vague():
        raise ValueError("bad value")

    def precise():
        raise ValueError("`gamma` must be >= 0, got -1.")

    with pytest.raises(AssertionError, match="does not name"):
        harness.assert_value_error("gamma", vague)
    harness.assert_value_error("gamma", precise)
    with pytest.raises(pytest.fail.Exception):
        harness.assert_value_error("gamma", lambda: None)


def test_gradient_check_catches_a_wrong_gradient():
    """A custom gradient that is off by a factor 2 is caught by the finite-difference check."""

    @tf.custom_gradient
    def square_with_wrong_gradient(x):
        return tf.reduce_sum(x * x), lambda upstream: upstream * 4.0 * x

    with pytest.raises(AssertionError):
        harness.assert_gradients_match_finite_differences(square_with_wrong_gradient, [1.0, -2.0])
    harness.assert_gradients_match_finite_differences(lambda x: tf.reduce_sum(x * x), [1.0, -2.0])


def test_run_comparison_catches_a_difference():
    """Two runs whose weights differ by 1e-3 are reported as different."""
    logs = [{"loss": 1.0}]
    harness._assert_runs_equal(logs, [np.zeros(3)], logs, [np.zeros(3) + 1e-7], 1e-5, "same")
    with pytest.raises(AssertionError):
        harness._assert_runs_equal(logs, [np.zeros(3)], logs, [np.zeros(3) + 1e-3], 1e-5, "differ")
    with pytest.raises(AssertionError):
        harness._assert_runs_equal(logs, [], [{"loss": 1.1}], [], 1e-5, "loss differs")


def test_mixed_precision_check_catches_overflow():
    """A head that exponentiates in float16 overflows, and the check says so."""

    def build():
        inputs = keras.Input((4,))
        logits = keras.layers.Dense(3)(inputs)
        return keras.Model(inputs, keras.layers.Lambda(lambda z: keras.ops.exp(z * 1e3))(logits))

    case = harness.TrainingCase(
        build_model=build,
        make_loss=lambda: keras.losses.MeanSquaredError(),
        x=np.ones((8, 4), np.float32),
        y=np.zeros((8, 3), np.float32),
        batch_size=8,
    )
    with pytest.raises(AssertionError, match="mixed_float16"):
        harness.assert_mixed_precision_trains(case, "mixed_float16")
    assert keras.config.dtype_policy().name == "float32", "the policy must be restored"


class _ScalarLoss(keras.losses.Loss):
    """Returns the batch mean from call: right under the default reduction, wrong under the others."""

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.sum(keras.ops.square(y_pred), axis=-1))


class _TermOnEverySample(keras.losses.Loss):
    """Adds a batch term to every sample's value under every reduction (counted B times by "sum")."""

    def call(self, y_true, y_pred):
        per_sample = keras.ops.sum(keras.ops.square(y_pred), axis=-1)
        return per_sample + keras.ops.sum(y_pred[:, 0])


def test_reduction_check_catches_a_scalar_call_and_a_term_counted_per_sample():
    """A call() that reduces by itself, and a batch term that "sum" counts B times, are both caught."""
    y = np.zeros((4, 3), np.float32)
    y_pred = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    squares = lambda y_true, p: (p**2).sum(axis=-1)  # noqa: E731
    harness.assert_reductions(keras.losses.MeanSquaredError(), y, y_pred, lambda t, p: ((p - t) ** 2).mean(-1))
    with pytest.raises(AssertionError):
        harness.assert_reductions(_ScalarLoss(), y, y_pred, squares)
    with pytest.raises(AssertionError):
        harness.assert_reductions(_TermOnEverySample(), y, y_pred, lambda t, p: (squares(t, p), p[:, 0].sum()))
