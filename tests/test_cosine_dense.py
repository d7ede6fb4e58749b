"""CosineDense: margin-free cosine head, float32 under mixed precision, safe at zero vectors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(11)


def test_outputs_cosines_with_dense_kernel_layout():
    """Output equals the float64 cosine reference; kernel is (D, units)."""
    layer = keras_losses.CosineDense(7)
    x = RNG.normal(size=(5, 4)).astype(np.float32) * 10
    out = np.asarray(layer(x))
    assert layer.kernel.shape == (4, 7)
    np.testing.assert_allclose(out, reference.cosines(x, layer.kernel.numpy()), atol=1e-6)
    assert np.abs(out).max() <= 1.0 + 1e-6


def test_gradient_matches_finite_differences():
    """float64 autodiff w.r.t. features and kernel equals central differences."""
    layer = keras_losses.CosineDense(3, dtype="float64")
    x = RNG.normal(size=(2, 4))
    layer.build((None, 4))
    kernel = RNG.normal(size=(4, 3))
    weights = RNG.normal(size=(2, 3))

    # The kernel is a variable: features go through the harness check, the kernel through the tape.
    layer.kernel.assign(kernel)
    harness.assert_gradients_match_finite_differences(lambda f: tf.reduce_sum(layer(f) * weights), x)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(layer(x) * weights)
    analytic = tape.gradient(value, layer.kernel).numpy()
    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        plus, minus = kernel.copy(), kernel.copy()
        plus[index] += 1e-6
        minus[index] -= 1e-6
        numeric[index] = ((reference.cosines(x, plus) - reference.cosines(x, minus)) * weights).sum() / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_zero_feature_vector_is_finite():
    """A zero feature vector gives cosines 0 and finite gradients through any margin loss."""
    layer = keras_losses.CosineDense(4)
    x = tf.constant(np.vstack([np.zeros((1, 5)), RNG.normal(size=(2, 5))]), tf.float32)
    for loss in (keras_losses.NPCFaceLoss(), keras_losses.ArcFaceLoss(), keras_losses.CosFaceLoss()):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            cos = layer(x)
            value = loss([0, 1, 2], cos)
        np.testing.assert_array_equal(cos[0], 0.0)
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(tape.gradient(value, x)))
        assert np.all(np.isfinite(tape.gradient(value, layer.kernel)))


@pytest.mark.parametrize("head", ["cosine", "pedcc"])
def test_zero_float16_feature_row_has_zero_gradient(head):
    """mixed_float16: a zero row from a float16 backbone gets gradient 0 (was ±inf), the others finite."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = keras_losses.CosineDense(4) if head == "cosine" else keras_losses.PEDCCDense(4)
        x = tf.constant(np.vstack([np.zeros((1, 6)), RNG.normal(size=(2, 6))]), tf.float16)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = keras_losses.ArcFaceLoss()([0, 1, 2], layer(x))
        gradient = tape.gradient(value, x).numpy()
    finally:
        keras.config.set_dtype_policy(previous)
    assert gradient.dtype == np.float16
    np.testing.assert_array_equal(gradient[0], 0.0)
    assert np.all(np.isfinite(gradient)) and np.any(gradient[1:] != 0)


def test_feature_equal_to_class_vector_is_finite():
    """x parallel to w_y gives cos ≈ 1 (possibly 1 + ulp): finite loss and gradients."""
    layer = keras_losses.CosineDense(3)
    layer.build((None, 4))
    x = tf.constant(layer.kernel.numpy().T * 3.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = keras_losses.ArcFaceLoss()([0, 1, 2], layer(x))
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(tape.gradient(value, x)))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_float32_under_mixed_policy(policy):
    """Under a mixed policy the layer keeps a float32 kernel and returns float32 cosines."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        layer = keras_losses.CosineDense(3)
        out = layer(keras.ops.cast(RNG.normal(size=(2, 4)), policy.split("_")[1]))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert layer.kernel.dtype == "float32"


def test_predict_needs_no_labels(tmp_path):
    """A model ending in CosineDense predicts from images alone and round-trips through .keras."""
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras_losses.CosineDense(5, kernel_regularizer="l2")(inputs))
    model.compile("sgd", loss=keras_losses.NPCFaceLoss())
    x = RNG.normal(size=(8, 6)).astype(np.float32)
    model.fit(x, RNG.integers(0, 5, 8), verbose=0)
    harness.assert_keras_round_trip(model, x, tmp_path)


def test_config_complete():
    """Every constructor argument is in get_config; registered."""
    harness.assert_config_complete(keras_losses.CosineDense(9, kernel_initializer="he_normal", epsilon=1e-10))


def test_bad_arguments():
    """units < 1 and epsilon <= 0 raise ValueError naming the argument."""
    harness.assert_value_error("units", keras_losses.CosineDense, 0)
    harness.assert_value_error("units", keras_losses.CosineDense, 2.5)
    harness.assert_value_error("epsilon", keras_losses.CosineDense, 3, epsilon=0.0)
