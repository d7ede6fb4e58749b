"""CosineDense: margin-free cosine head, float32 under mixed precision, safe at zero vectors."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(11)


def test_outputs_cosines_with_dense_kernel_layout():
    """Output equals the float64 cosine reference; kernel is (D, units)."""
    layer = keras_losses.CosineDense(7)
    x = RNG.normal(size=(5, 4)).astype(np.float32) * 10
    out = ops.convert_to_numpy(layer(x))
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

    # The kernel is a variable: features go through the harness check, the kernel separately.
    layer.kernel.assign(kernel)
    harness.assert_gradients_match_finite_differences(lambda f: layer(f) * ops.cast(weights, f.dtype), x)
    _, (analytic,) = harness.value_and_gradients(lambda: layer(x) * ops.cast(weights, "float64"),
                                                 variables=[layer.kernel])
    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        plus, minus = kernel.copy(), kernel.copy()
        plus[index] += 1e-6
        minus[index] -= 1e-6
        numeric[index] = ((reference.cosines(x, plus) - reference.cosines(x, minus)) * weights).sum() / 2e-6
    tolerance = harness.float64_tolerance(1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=tolerance, atol=tolerance)


def test_zero_feature_vector_is_finite():
    """A zero feature vector gives cosines 0 and finite gradients through any margin loss."""
    layer = keras_losses.CosineDense(4)
    x = np.vstack([np.zeros((1, 5)), RNG.normal(size=(2, 5))]).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x))[0], 0.0)
    for loss in (keras_losses.NPCFaceLoss(), keras_losses.ArcFaceLoss(), keras_losses.CosFaceLoss()):
        value, (d_x, d_kernel) = harness.value_and_gradients(lambda f: loss([0, 1, 2], layer(f)), [x],
                                                             [layer.kernel])
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(d_x)) and np.all(np.isfinite(d_kernel))


@pytest.mark.parametrize("head", ["cosine", "pedcc"])
def test_zero_float16_feature_row_has_zero_gradient(head):
    """mixed_float16: a zero row from a float16 backbone gets gradient 0 (was ±inf), the others finite."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = keras_losses.CosineDense(4) if head == "cosine" else keras_losses.PEDCCDense(4)
        x = np.vstack([np.zeros((1, 6)), RNG.normal(size=(2, 6))]).astype(np.float16)
        _, (gradient,) = harness.value_and_gradients(lambda f: keras_losses.ArcFaceLoss()([0, 1, 2], layer(f)), [x])
    finally:
        keras.config.set_dtype_policy(previous)
    assert gradient.dtype == np.float16
    np.testing.assert_array_equal(gradient[0], 0.0)
    assert np.all(np.isfinite(gradient)) and np.any(gradient[1:] != 0)


def test_feature_equal_to_class_vector_is_finite():
    """x parallel to w_y gives cos ≈ 1 (possibly 1 + ulp): finite loss and gradients."""
    layer = keras_losses.CosineDense(3)
    layer.build((None, 4))
    value, (gradient,) = harness.value_and_gradients(lambda f: keras_losses.ArcFaceLoss()([0, 1, 2], layer(f)),
                                                     [layer.kernel.numpy().T * 3.0])
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient))


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
