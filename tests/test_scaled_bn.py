"""ScaledBatchNormalization against the float64 NumPy reference."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(0)
EPSILON = 1e-5


def _logits(batch=8, channels=5, seed=None):
    """Logits whose channels have distinct means and scales."""
    rng = RNG if seed is None else np.random.default_rng(seed)
    return rng.normal(size=(batch, channels)) * rng.uniform(0.5, 3.0, channels) + rng.normal(
        0, 2, channels
    )


@pytest.mark.parametrize("scale", [0.8, 1.0, 2.5])
def test_training_output_matches_reference(scale):
    """training=True normalises with the batch mean and biased variance, times `scale` (eq. 9)."""
    z = _logits()
    layer = keras_losses.ScaledBatchNormalization(scale=scale)
    out = np.asarray(layer(z.astype(np.float32), training=True))
    np.testing.assert_allclose(out, reference.scaled_batch_norm(z, scale, EPSILON), atol=1e-5)


@pytest.mark.parametrize("scale", [0.8, 2.5])
def test_inference_uses_moving_statistics(scale):
    """One training call from (0, 1) moves the stats by 10% (biased var); predict uses them."""
    z = _logits(batch=16).astype(np.float32)
    layer = keras_losses.ScaledBatchNormalization(scale=scale)
    layer(z, training=True)

    z64 = z.astype(np.float64)
    expected_mean = 0.9 * 0.0 + 0.1 * z64.mean(axis=0)
    expected_variance = 0.9 * 1.0 + 0.1 * z64.var(axis=0)  # biased (divide by B)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(layer.moving_variance), expected_variance, rtol=1e-5, atol=1e-6
    )
    # The unbiased (PyTorch) update would be visibly different for B = 16.
    assert not np.allclose(
        np.asarray(layer.moving_variance), 0.9 + 0.1 * z64.var(axis=0, ddof=1), rtol=1e-4
    )

    fresh = _logits(batch=6, seed=7)
    expected = reference.scaled_batch_norm(fresh, scale, EPSILON, expected_mean, expected_variance)
    np.testing.assert_allclose(
        np.asarray(layer(fresh.astype(np.float32), training=False)), expected, atol=1e-5
    )
    model = keras.Sequential([keras.Input((z.shape[1],)), layer])
    np.testing.assert_allclose(model.predict(fresh.astype(np.float32), verbose=0), expected, atol=1e-5)
    # Inference does not touch the moving statistics.
    np.testing.assert_allclose(np.asarray(layer.moving_mean), expected_mean, rtol=1e-5, atol=1e-6)


def test_has_no_learnable_weights():
    """No γ/β: the layer has no trainable weights, only the two moving statistics."""
    layer = keras_losses.ScaledBatchNormalization(scale=0.9)
    layer.build((None, 4))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 2
    assert [tuple(w.shape) for w in layer.weights] == [(4,), (4,)]


@pytest.mark.parametrize("scale", [0.8, 2.5])
def test_gradient_matches_reference_finite_differences(scale):
    """float32 autodiff through the training-mode layer equals numeric d/dz of the reference."""
    z = _logits(batch=6, channels=4)
    projection = RNG.normal(size=z.shape)  # sum(z') is constant, so project on random weights
    layer = keras_losses.ScaledBatchNormalization(scale=scale)
    _, (gradient,) = harness.value_and_gradients(
        lambda v: layer(v, training=True) * ops.convert_to_tensor(projection, "float32"), [z.astype(np.float32)])
    expected = harness.numeric_gradient(
        lambda v: (reference.scaled_batch_norm(v, scale, EPSILON) * projection).sum(), z
    )
    np.testing.assert_allclose(gradient, expected, atol=1e-4)


def test_float64_layer_matches_reference_to_float64_precision():
    """dtype="float64" keeps the scale in float64 (a float32 round of 0.9 would be 2e-8 off)."""
    z = _logits()
    layer = keras_losses.ScaledBatchNormalization(scale=0.9, dtype="float64")
    out = ops.convert_to_numpy(layer(z, training=True))
    tolerance = harness.float64_tolerance(1e-12)
    np.testing.assert_allclose(out, reference.scaled_batch_norm(z, 0.9, EPSILON), rtol=tolerance, atol=tolerance)


def test_float64_gradient_matches_finite_differences():
    """Autodiff of the float64 layer (training mode) equals float64 central differences."""
    z = _logits(batch=5, channels=3)
    projection = RNG.normal(size=z.shape)
    layer = keras_losses.ScaledBatchNormalization(scale=1.7, dtype="float64")
    harness.assert_gradients_match_finite_differences(
        lambda v: layer(v, training=True) * ops.cast(projection, v.dtype), z
    )


# --- model-level properties through the shared harness ------------------------------


def _case(synchronized, shifted):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + 2 * (x[:, 2] > 0)
    if shifted:
        # The second half of every global batch (replica 1's shard) is shifted, so the
        # two replicas' local batch statistics differ from the global ones.
        x = x.reshape(2, 2, 8, 6)
        x[:, 1] += 3.0
        x = x.reshape(32, 6)

    def build():
        inputs = keras.Input((6,))
        logits = keras.layers.Dense(4)(inputs)
        outputs = keras_losses.ScaledBatchNormalization(scale=0.9, synchronized=synchronized)(logits)
        return keras.Model(inputs, outputs)

    return harness.TrainingCase(
        build_model=build,
        make_loss=lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        x=x,
        y=y,
        batch_size=16,
    )


def training_case():
    return _case(synchronized=False, shifted=False)


@harness.distribution_case
def synchronized_case():
    return _case(synchronized=True, shifted=True)


@harness.distribution_case
def unsynchronized_shifted_case():
    return _case(synchronized=False, shifted=True)


def test_config_complete():
    """Every constructor argument survives get_config/from_config; registered."""
    harness.assert_config_complete(
        keras_losses.ScaledBatchNormalization(
            scale=0.8, epsilon=1e-3, momentum=0.99, synchronized=True, axis=1, name="sbn"
        )
    )


def test_keras_round_trip(tmp_path):
    """Dense -> ScaledBatchNormalization trained 1 epoch reloads with identical outputs and stats."""
    case = training_case()
    model = case.build_model()
    model.compile(optimizer="sgd", loss=case.make_loss())
    model.fit(case.x, case.y, batch_size=case.batch_size, epochs=1, verbose=0)
    layer = model.layers[-1]
    assert not np.allclose(np.asarray(layer.moving_mean), 0.0)  # the statistics were trained
    reloaded = harness.assert_keras_round_trip(model, case.x, tmp_path)
    restored = reloaded.layers[-1]
    assert isinstance(restored, keras_losses.ScaledBatchNormalization)
    assert restored.scale == 0.9
    np.testing.assert_array_equal(np.asarray(restored.moving_mean), np.asarray(layer.moving_mean))
    np.testing.assert_array_equal(
        np.asarray(restored.moving_variance), np.asarray(layer.moving_variance)
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    """Trains a step with finite loss and gradients; the layer computes and outputs float32."""
    model = harness.assert_mixed_precision_trains(training_case(), policy)
    layer = model.layers[-1]
    assert layer.compute_dtype == "float32"
    assert model.layers[1].compute_dtype != "float32"  # the Dense below does run mixed
    x = training_case().x[:4]
    assert keras.backend.standardize_dtype(model(x, training=True).dtype) == "float32"
    assert keras.backend.standardize_dtype(model(x, training=False).dtype) == "float32"


@pytest.mark.slow
def test_standard_checks(tmp_path):
    """synchronized=True, replicas with different local statistics: config, round trip, mixed precision,
    XLA, 1 device == 2 replicas (the layer adds no loss of its own: no reduction check)."""
    harness.assert_standard_checks("tests.test_scaled_bn:synchronized_case", tmp_path)


@pytest.mark.slow
@pytest.mark.tensorflow_only  # MirroredStrategy
def test_unsynchronized_replicas_differ_from_single_device():
    """synchronized=False normalises per replica: with shifted shards, training differs (>1e-3)."""
    result = harness.run_distributed("tests.test_scaled_bn:unsynchronized_shifted_case")
    single, mirrored = result["single"], result["mirrored"]
    assert mirrored["replicas"] == 2
    loss_gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(single["logs"], mirrored["logs"]))
    weight_gap = max(
        float(np.max(np.abs(a - b))) for a, b in zip(single["weights"], mirrored["weights"])
    )
    assert loss_gap > 1e-3, loss_gap
    assert weight_gap > 1e-3, weight_gap


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argument, kwargs",
    [
        ("scale", {"scale": 0.0}),
        ("scale", {"scale": -1.0}),
        ("epsilon", {"epsilon": 0.0}),
        ("epsilon", {"epsilon": -1e-5}),
    ],
)
def test_bad_constructor_arguments(argument, kwargs):
    """Non-positive scale or epsilon raises ValueError naming the argument."""
    harness.assert_value_error(argument, keras_losses.ScaledBatchNormalization, **kwargs)


@pytest.mark.parametrize("axis", [5, -3, 2])
def test_axis_outside_the_input_rank(axis):
    """An axis the rank-2 logits do not have raises a ValueError naming `axis` (was an IndexError)."""
    harness.assert_value_error("axis", keras_losses.ScaledBatchNormalization(axis=axis), np.zeros((4, 3), np.float32))
