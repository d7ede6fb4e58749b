"""GSCLoss, gsc_penalty and GSCRegularizer against the float64 NumPy reference."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(0)


def _per_sample(loss, labels, logits):
    return np.asarray(loss(labels, np.asarray(logits, np.float32)))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"top_k": 1},
        {"top_k": 3, "gamma": 0.5},
        {"top_k": 7, "gamma": 2.0},
        {"normalize_entropy": False, "gamma": 1.0},
        {"label_smoothing": 0.1, "gamma": 0.3},
        {"focal_gamma": 2.0, "gamma": 0.3},
        {"focal_gamma": 0.0, "label_smoothing": 0.2, "top_k": 4},
    ],
)
def test_values_and_gradients_match_reference(options):
    """Per-sample values and d(sum loss)/d(logits) match the float64 reference within 1e-5."""
    logits = RNG.normal(0, 2, size=(6, 7))
    labels = RNG.integers(0, 7, size=6)
    options = {"gamma": 0.01, "top_k": 2, **options}
    loss = keras_losses.GSCLoss(**options, reduction=None)
    ref_options = {k: v for k, v in options.items()}

    np.testing.assert_allclose(
        _per_sample(loss, labels, logits),
        reference.gsc_loss(labels, logits, **ref_options),
        rtol=1e-5,
        atol=1e-5,
    )
    _, (gradient,) = harness.value_and_gradients(lambda z: loss(labels, z), [logits.astype(np.float32)])
    expected = harness.numeric_gradient(lambda v: reference.gsc_loss(labels, v, **ref_options).sum(), logits)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-5)


def test_label_forms_agree():
    """(B,), (B, 1), float-cast and one-hot labels give the same per-sample loss."""
    logits = RNG.normal(size=(5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3])
    loss = keras_losses.GSCLoss(gamma=0.2, reduction=None)
    expected = _per_sample(loss, labels, logits)
    for form in (labels[:, None], labels.astype(np.float32), np.eye(4)[labels]):
        np.testing.assert_allclose(_per_sample(loss, form, logits), expected, rtol=1e-6)


def test_probabilities_input_matches_logits_input():
    """from_logits=False on softmax(z) gives the logits result."""
    logits = RNG.normal(size=(5, 6))
    labels = RNG.integers(0, 6, size=5)
    from_logits = keras_losses.GSCLoss(gamma=0.7, top_k=3, reduction=None)
    from_probs = keras_losses.GSCLoss(gamma=0.7, top_k=3, from_logits=False, reduction=None)
    np.testing.assert_allclose(
        _per_sample(from_probs, labels, reference.softmax(logits)),
        _per_sample(from_logits, labels, logits),
        rtol=1e-5,
        atol=1e-6,
    )


# Table 8 of the paper, column f: binary scores (p, 1-p), σ = unnormalised entropy.
TABLE_8_F = {0.50: 0.197, 0.55: 0.197, 0.60: 0.198, 0.65: 0.198, 0.70: 0.196,
             0.75: 0.187, 0.80: 0.163, 0.85: 0.111, 0.90: 0.031}  # fmt: skip


def test_reproduces_paper_table_8():
    """normalize_entropy=False reproduces the paper's Table 8 `f` column to 3 decimals."""
    p = np.array(sorted(TABLE_8_F))
    probs = np.stack([p, 1 - p], axis=1).astype(np.float32)
    f = np.asarray(
        keras_losses.gsc_penalty(probs, top_k=2, from_logits=False, normalize_entropy=False), np.float64
    )
    np.testing.assert_array_equal(np.round(f, 3), [TABLE_8_F[v] for v in p])
    # The normalised form (the default) does not reproduce it.
    normalised = np.asarray(keras_losses.gsc_penalty(probs, top_k=2, from_logits=False), np.float64)
    assert not np.allclose(np.round(normalised, 3), [TABLE_8_F[v] for v in p])


def test_stop_gradient_sigma_treats_sigma_as_constant():
    """With stop_gradient_sigma, the penalty's gradient is that of f with σ frozen."""
    logits = RNG.normal(size=(3, 5))
    probs = reference.softmax(logits)
    entropy = -(probs * np.log(probs)).sum(-1)
    sigma = entropy / np.log(5)

    def frozen(z):
        top = -np.sort(-reference.softmax(z), axis=-1)[:, :2]
        return (np.exp(-(top**2).sum(-1) / (2 * sigma**2)) / (2 * np.pi * sigma**2)).sum()

    z = [logits.astype(np.float32)]
    _, (stopped,) = harness.value_and_gradients(lambda v: keras_losses.gsc_penalty(v, stop_gradient_sigma=True), z)
    _, (full,) = harness.value_and_gradients(keras_losses.gsc_penalty, z)
    np.testing.assert_allclose(stopped, harness.numeric_gradient(frozen, logits), atol=1e-5)
    assert not np.allclose(full, stopped, atol=1e-4)


def test_float64_gradient_matches_finite_differences():
    """Autodiff of the float64 loss equals central differences (no derivation shortcuts)."""
    logits = RNG.normal(size=(4, 5))
    labels = np.array([0, 4, 2, 2])
    loss = keras_losses.GSCLoss(gamma=0.8, top_k=3, focal_gamma=1.5, dtype="float64")
    harness.assert_gradients_match_finite_differences(lambda z: loss(labels, z), logits)


@pytest.mark.parametrize(
    "logits",
    [
        np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 0.0]]),  # huge logits, ties
        np.array([[30.0, -30.0], [0.0, 0.0], [-50.0, 50.0]]),  # C = 2
        RNG.normal(0, 3, size=(3, 100_000)),  # C = 10^5
    ],
    ids=["huge", "binary", "C=1e5"],
)
def test_finite_for_extreme_inputs(logits):
    """Loss and gradients stay finite for ±1e4 logits, C=2 and C=10^5."""
    labels = np.arange(logits.shape[0]) % logits.shape[1]
    value, (gradient,) = harness.value_and_gradients(
        lambda z: keras_losses.GSCLoss(gamma=1.0, top_k=2)(labels, z), [logits.astype(np.float32)])
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient))


def test_finite_for_one_hot_probabilities():
    """Exactly one-hot softmax outputs (from_logits=False): f = 0, finite gradients."""
    probs = np.eye(4, dtype=np.float32)[[0, 1, 3]]
    np.testing.assert_array_equal(ops.convert_to_numpy(keras_losses.gsc_penalty(probs, from_logits=False)), 0.0)
    value, (gradient,) = harness.value_and_gradients(
        lambda p: keras_losses.GSCLoss(gamma=1.0, from_logits=False)([0, 1, 3], p), [probs])
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient))


# --- model-level properties through the shared harness ------------------------------


@harness.distribution_case
def training_case():
    x, y = harness.toy_classification()

    def build():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(8, activation="tanh")(inputs)
        return keras.Model(inputs, keras.layers.Dense(4)(hidden))

    return harness.TrainingCase(
        build_model=build,
        make_loss=lambda: keras_losses.GSCLoss(gamma=0.5, top_k=3),
        x=x,
        y=y,
        batch_size=16,
    )


def test_config_complete():
    """Every constructor argument survives get_config/from_config; registered."""
    harness.assert_config_complete(
        keras_losses.GSCLoss(gamma=0.3, top_k=3, focal_gamma=2.0, label_smoothing=0.1, name="g")
    )
    harness.assert_config_complete(keras_losses.GSCRegularizer(0.2, top_k=5, normalize_entropy=False))


def test_keras_round_trip(tmp_path):
    """A model compiled with GSCLoss and GSCRegularizer reloads with identical outputs and loss."""
    case = training_case()
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(4, activity_regularizer=keras_losses.GSCRegularizer(0.3))(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=keras_losses.GSCLoss(gamma=0.5, top_k=3))
    model.fit(case.x, case.y, epochs=1, verbose=0)
    reloaded = harness.assert_keras_round_trip(model, case.x, tmp_path)
    assert isinstance(reloaded.layers[-1].activity_regularizer, keras_losses.GSCRegularizer)
    np.testing.assert_allclose(
        reloaded.evaluate(case.x, case.y, verbose=0), model.evaluate(case.x, case.y, verbose=0)
    )


@pytest.mark.slow
def test_standard_checks(tmp_path):
    """Config, .keras round trip, mixed precision, XLA, 2 replicas = 1 device, and every reduction with
    and without sample weights against the float64 reference."""
    harness.assert_standard_checks(
        "tests.test_gsc:training_case", tmp_path,
        reference=lambda y, logits: reference.gsc_loss(y, logits, gamma=0.5, top_k=3),
    )


def test_regularizer_adds_mean_penalty_without_labels():
    """GSCRegularizer adds γ·mean_i f_i (reference) and trains a model from unlabeled data."""
    x = RNG.normal(size=(8, 5)).astype(np.float32)
    layer = keras.layers.Dense(4, activity_regularizer=keras_losses.GSCRegularizer(0.3, top_k=3))
    model = keras.Sequential([keras.Input((5,)), layer])
    logits = ops.convert_to_numpy(model(x))
    expected = 0.3 * reference.gsc_density(reference.softmax(logits), 3).mean()
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-5)

    model.compile(optimizer=keras.optimizers.SGD(0.5))
    before = layer.get_weights()[0].copy()
    history = model.fit(x, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(layer.get_weights()[0], before)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argument, kwargs",
    [
        ("gamma", {"gamma": -0.1}),
        ("top_k", {"top_k": 0}),
        ("top_k", {"top_k": 2.5}),
        ("label_smoothing", {"label_smoothing": 1.5}),
        ("focal_gamma", {"focal_gamma": -1.0}),
    ],
)
def test_bad_constructor_arguments(argument, kwargs):
    """Invalid hyper-parameters raise ValueError naming the argument."""
    harness.assert_value_error(argument, keras_losses.GSCLoss, **kwargs)


def test_bad_call_inputs():
    """top_k > C, labels out of range / wrong rank, logits of rank != 2 raise ValueError."""
    logits = np.zeros((3, 4), np.float32)
    harness.assert_value_error("top_k", keras_losses.GSCLoss(top_k=5), [0, 1, 2], logits)
    harness.assert_value_error("top_k", keras_losses.gsc_penalty, logits, top_k=5)
    harness.assert_value_error("y_true", keras_losses.GSCLoss(), [0, 1, 4], logits)
    harness.assert_value_error("y_true", keras_losses.GSCLoss(), [0, -1, 2], logits)
    harness.assert_value_error("y_true", keras_losses.GSCLoss(), [0.5, 1, 2], logits)
    harness.assert_value_error("y_true", keras_losses.GSCLoss(), np.zeros((3, 2, 2)), logits)
    harness.assert_value_error("y_true", keras_losses.GSCLoss(), [0, 1], logits)
    harness.assert_value_error("y_pred", keras_losses.GSCLoss(), [0, 1, 2], np.zeros((3, 4, 1)))
    harness.assert_value_error("y_pred", keras_losses.GSCLoss(), [0, 1, 2], np.zeros((3, 1)))


@pytest.mark.tensorflow_only  # graph-mode assertion (other backends: NaN, tests/test_bad_inputs.py)
def test_out_of_range_labels_fail_inside_a_graph():
    """Inside tf.function (labels not concrete) out-of-range labels still fail loudly."""
    import tensorflow as tf

    loss = keras_losses.GSCLoss()

    @tf.function
    def compute(labels, logits):
        return loss(labels, logits)

    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        compute(tf.constant([0, 7]), tf.zeros((2, 4)))


@pytest.mark.parametrize("argument, kwargs", [("gamma", {"gamma": -1.0}), ("top_k", {"top_k": 0}),
                                              ("label_smoothing", {"label_smoothing": 1.5}),
                                              ("focal_gamma", {"focal_gamma": -2.0})])
def test_function_form_checks_its_arguments_like_the_class(argument, kwargs):
    """gsc_loss(...) rejects what GSCLoss(...) rejects, naming the argument."""
    logits = np.zeros((3, 4), np.float32)
    harness.assert_value_error(argument, keras_losses.gsc_loss, [0, 1, 2], logits, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"focal_gamma": 2.0}, {"focal_gamma": 0.5, "label_smoothing": 0.2}])
def test_soft_targets_match_reference_and_keras(kwargs):
    """Mixup rows: the float64 reference with soft targets, and (γ = 0) Keras' own categorical
    (focal, alpha = 1) cross-entropy on the same rows — the targets are used, not argmaxed."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 5)) * 2.0
    mix = rng.uniform(0.2, 0.8, size=(6, 1))
    targets = mix * np.eye(5)[rng.integers(0, 5, 6)] + (1 - mix) * np.eye(5)[rng.integers(0, 5, 6)]
    ours = keras_losses.GSCLoss(gamma=0.3, top_k=2, dtype="float64", **kwargs)(targets, logits)
    expected = reference.gsc_loss(targets, logits, 0.3, 2, **kwargs).mean()
    np.testing.assert_allclose(float(ours), expected, rtol=harness.float64_tolerance(1e-10))
    smoothing = kwargs.get("label_smoothing", 0.0)
    if "focal_gamma" in kwargs:
        keras_loss = keras.losses.CategoricalFocalCrossentropy(
            alpha=1.0, gamma=kwargs["focal_gamma"], from_logits=True, label_smoothing=smoothing, dtype="float64")
    else:
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing, dtype="float64")
    np.testing.assert_allclose(
        float(keras_losses.GSCLoss(gamma=0.0, dtype="float64", **kwargs)(targets, logits)),
        float(keras_loss(targets, logits)), rtol=1e-6)
