"""PEDCCDense and PEDCCLoss against the float64 reference computed from the vectors."""

import keras
import numpy as np
import pytest

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(21)
NUM_CLASSES, DIM = 5, 4


def _centroids():
    return keras_losses.pedcc_centroids(NUM_CLASSES, DIM, seed=3)


@pytest.mark.parametrize("n", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("mse_reduction", ["half_sum", "sum", "batch_mean"])
def test_values_and_gradients_match_reference(n, mse_reduction):
    """Layer + loss from features: per-sample values and d(mean loss)/d(features) match within 1e-5."""
    centroids = _centroids()
    layer = keras_losses.PEDCCDense(NUM_CLASSES, centroids=centroids)
    loss = keras_losses.PEDCCLoss(n=n, mse_reduction=mse_reduction)
    x = RNG.normal(size=(6, DIM))
    labels = RNG.integers(0, NUM_CLASSES, 6)
    # per-sample values: AM-softmax + the batch term
    values, (gradient,) = harness.value_and_gradients(lambda f: loss.call(labels, layer(f)), [x.astype(np.float32)])
    x32 = x.astype(np.float32).astype(np.float64)

    def ref(v):
        return reference.pedcc_loss_from_features(labels, v, centroids, 10.0, 0.5, n, mse_reduction)

    np.testing.assert_allclose(values, ref(x32), rtol=1e-5, atol=1e-5)
    expected = harness.numeric_gradient(lambda v: ref(v).mean(), x32)
    np.testing.assert_allclose(gradient / len(labels), expected, rtol=1e-4, atol=1e-5)


def test_mse_at_zero_is_finite():
    """Features exactly on their centroids (L_MSE = 0, n = 2): finite loss and gradients."""
    centroids = _centroids()
    layer = keras_losses.PEDCCDense(NUM_CLASSES, centroids=centroids)
    labels = np.arange(NUM_CLASSES)
    value, (gradient,) = harness.value_and_gradients(
        lambda f: keras_losses.PEDCCLoss(n=2.0)(labels, layer(f)), [(centroids[labels] * 2.0).astype(np.float32)])
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient))


def test_float64_gradient_matches_finite_differences():
    """Autodiff of the float64 loss over cosines equals central differences."""
    cos = np.tanh(RNG.normal(size=(4, NUM_CLASSES)))
    labels = np.array([0, 3, 1, 1])
    loss = keras_losses.PEDCCLoss(n=2.0, dtype="float64")
    harness.assert_gradients_match_finite_differences(lambda c: loss(labels, c), cos, rtol=1e-5, atol=1e-8)


def test_layer_outputs_cosines_to_generated_centroids():
    """Without explicit centroids the layer uses pedcc_centroids(C, D, seed), frozen."""
    layer = keras_losses.PEDCCDense(NUM_CLASSES, seed=7)
    x = RNG.normal(size=(3, DIM)).astype(np.float32)
    out = np.asarray(layer(x))
    expected_centroids = keras_losses.pedcc_centroids(NUM_CLASSES, DIM, seed=7)
    np.testing.assert_allclose(layer.centroids.numpy().T, expected_centroids, atol=1e-7)
    np.testing.assert_allclose(out, reference.cosines(x, expected_centroids.T), atol=1e-6)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1


def _case(n=1.0, mse_reduction="half_sum"):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = np.argmax(x[:, :NUM_CLASSES], axis=1).astype(np.int32)

    def build():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(DIM)(inputs)
        return keras.Model(inputs, keras_losses.PEDCCDense(NUM_CLASSES, centroids=_centroids(), name="pedcc")(hidden))

    return harness.TrainingCase(
        build_model=build,
        make_loss=lambda: keras_losses.PEDCCLoss(n=n, mse_reduction=mse_reduction),
        x=x,
        y=y,
        batch_size=16,
        learning_rate=0.05,
    )


@harness.distribution_case
def half_sum_root2_case():
    return _case(2.0, "half_sum")


def sum_case():
    return _case(1.0, "sum")


@harness.distribution_case
def batch_mean_root2_case():
    return _case(2.0, "batch_mean")


def _reference_parts(n, mse_reduction):
    """float64 (per-sample AM-softmax, batch term L_MSE^(1/n)) from cosines, eq. 7-9."""

    def parts(labels, cos):
        squared = 2.0 - 2.0 * cos[np.arange(len(labels)), labels]  # ‖x̂ − c_y‖² of unit vectors
        mse = {"half_sum": 0.5 * squared.sum(), "sum": squared.sum(), "batch_mean": squared.mean()}[mse_reduction]
        return reference.cosface(labels, cos, 10.0, 0.5), max(mse, 1e-12) ** (1.0 / n)

    return parts


@pytest.mark.slow
@pytest.mark.parametrize("case, n, mse_reduction", [("half_sum_root2_case", 2.0, "half_sum"), ("sum_case", 1.0, "sum"),
                                                    ("batch_mean_root2_case", 2.0, "batch_mean")])
def test_standard_checks(case, n, mse_reduction, tmp_path):
    """Config, round trip, mixed precision, XLA, 2 replicas = 1 device (the MSE term is global), and the
    reductions: the batch term counted once under the mean reductions and "sum"; reduction=None,
    "mean_with_sample_weight" and sample weights rejected. ("sum" is 2 × "half_sum" in the same code:
    its values and reductions are checked, the model-level checks once for the other two.)"""
    model_checks = mse_reduction != "sum"
    harness.assert_standard_checks(f"tests.test_pedcc:{case}", tmp_path, reference=_reference_parts(n, mse_reduction),
                                   policies=harness.MIXED_POLICIES if model_checks else (), jit=model_checks,
                                   distribution=model_checks)


def test_training_keeps_centroids_frozen():
    """model.fit trains the layers below and leaves the centroids exactly as generated."""
    case = _case()
    model = harness._compile(case)
    before = model.get_layer("pedcc").centroids.numpy().copy()
    model.fit(case.x, case.y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.get_layer("pedcc").centroids.numpy(), before)


def test_fine_tuning_trains_unit_norm_centroids():
    """After start_fine_tuning + recompile, centroids move and stay unit length."""
    case = _case()
    model = harness._compile(case)
    model.fit(case.x, case.y, epochs=1, batch_size=16, verbose=0)
    layer = model.get_layer("pedcc")
    before = layer.centroids.numpy().copy()
    layer.start_fine_tuning()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras_losses.PEDCCLoss())
    model.fit(case.x, case.y, initial_epoch=1, epochs=3, batch_size=16, verbose=0)
    after = layer.centroids.numpy()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(after, axis=0), 1.0, atol=1e-6)


def test_fine_tuning_survives_save_and_reload(tmp_path, recwarn):
    """A model saved in the fine-tuning stage reloads with trainable centroids that keep training,
    and its optimizer state loads without Keras' variable-count warning."""
    case = _case()
    model = harness._compile(case)
    model.get_layer("pedcc").start_fine_tuning()
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9), loss=keras_losses.PEDCCLoss())
    model.fit(case.x, case.y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "fine_tuning.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    layer = reloaded.get_layer("pedcc")
    assert layer.fine_tuning and layer.centroids.trainable
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
    assert not [w for w in recwarn if "variables" in str(w.message)]
    before = layer.centroids.numpy().copy()
    reloaded.fit(case.x, case.y, epochs=1, batch_size=16, verbose=0)
    assert np.abs(layer.centroids.numpy() - before).max() > 1e-4


def test_keras_round_trip_keeps_exact_centroids(tmp_path):
    """.keras round trip: identical outputs and bit-identical centroids (generated ones too)."""
    inputs = keras.Input((DIM,))
    model = keras.Model(inputs, keras_losses.PEDCCDense(12, seed=4, name="pedcc")(inputs))
    model.compile("sgd", loss=keras_losses.PEDCCLoss(n=2.0, mse_reduction="sum"))
    x = RNG.normal(size=(8, DIM)).astype(np.float32)
    reloaded = harness.assert_keras_round_trip(model, x, tmp_path)
    np.testing.assert_array_equal(
        reloaded.get_layer("pedcc").centroids.numpy(), model.get_layer("pedcc").centroids.numpy()
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_cosines_are_float32_under_mixed_precision(policy):
    """PEDCCDense outputs float32 cosines under a mixed policy."""
    model = harness.assert_mixed_precision_trains(half_sum_root2_case(), policy)
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32"


def test_config_complete():
    """Every constructor argument is in get_config; registered."""
    harness.assert_config_complete(keras_losses.PEDCCLoss(scale=30.0, margin=0.3, n=2.0, mse_reduction="batch_mean"))
    harness.assert_config_complete(keras_losses.PEDCCDense(NUM_CLASSES, seed=2, centroids=_centroids(), iterations=5,
                                                          fine_tuning=True))


@pytest.mark.parametrize(
    "argument, factory",
    [
        ("n", lambda: keras_losses.PEDCCLoss(n=0.5)),
        ("scale", lambda: keras_losses.PEDCCLoss(scale=0.0)),
        ("mse_reduction", lambda: keras_losses.PEDCCLoss(mse_reduction="mean")),
        ("margin", lambda: keras_losses.PEDCCLoss(margin=-0.1)),
        ("num_classes", lambda: keras_losses.PEDCCDense(1)),
        ("iterations", lambda: keras_losses.PEDCCDense(3, iterations=-1)),
        ("fine_tuning", lambda: keras_losses.PEDCCDense(3, fine_tuning="yes")),
        ("centroids", lambda: keras_losses.PEDCCDense(3, centroids=np.ones((4, 2)))),
        ("centroids", lambda: keras_losses.PEDCCDense(3, centroids=np.full((3, 2), np.nan))),
        ("centroids", lambda: keras_losses.PEDCCDense(2, centroids=np.zeros((2, 3)))),
        ("centroids", lambda: keras_losses.PEDCCDense(2, centroids=np.eye(2))(np.ones((1, 3), np.float32))),
    ],
)
def test_bad_arguments(argument, factory):
    """Bad hyper-parameters and centroids raise ValueError naming the argument."""
    harness.assert_value_error(argument, factory)


@pytest.mark.tensorflow_only  # the training tool's figure helper (models/)
def test_feature_figure_is_written(tmp_path):
    """models.pedcc_features trains softmax and PEDCC models (2-D, 3-D) and writes the figure."""
    from models import pedcc_features

    accuracies = pedcc_features.main(["--epochs", "1", "--output", str(tmp_path)])
    assert set(accuracies) == {"softmax-2d", "softmax-3d", "pedcc-2d", "pedcc-3d"}
    assert all(0.0 <= a <= 1.0 for a in accuracies.values())
    assert (tmp_path / "pedcc_features.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
