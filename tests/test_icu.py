"""GaussianClassHead, ICULoss and build_icu_model against the float64 references.

Every number is compared with ``tests/reference.py`` (eq. 9, 14, 17-18 written
out with NumPy in float64), never with the code under test.
"""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_losses
from keras_losses import icu
from tests import harness, reference

RNG = np.random.default_rng(31)
NUM_CLASSES, DIM = 4, 3
ALPHA, GAMMA = 0.1, 0.2  # large enough that a wrong margin shows; defaults tested too
LAMBDA_MU, LAMBDA_SIGMA = 0.3, 0.2


def _as32(*arrays):
    """float32-representable copies in float64: the reference sees what the layer sees."""
    return [np.asarray(a, np.float32).astype(np.float64) for a in arrays]


def _parameters(rng=RNG, num_classes=NUM_CLASSES, dim=DIM):
    means = rng.normal(size=(num_classes, dim))
    log_variances = rng.normal(scale=0.5, size=(num_classes, dim))
    return _as32(means, log_variances)


def _head(means, log_variances, **kwargs):
    kwargs.setdefault("lambda_mu", LAMBDA_MU)
    kwargs.setdefault("lambda_sigma", LAMBDA_SIGMA)
    head = keras_losses.GaussianClassHead(len(means), **kwargs)
    head.batch_term_consumer = True  # the test takes the regulariser itself, as BatchTermModel does
    head.build((None, means.shape[1]))
    head.means.assign(means)
    head.log_variances.assign(log_variances)
    return head


# --- values ------------------------------------------------------------------------------


def test_head_logits_are_minus_eq9_distances():
    """Head output = −d_ik of eq. 9 (Mahalanobis + log-det, diagonal Σ) within 1e-5, float32."""
    means, log_variances = _parameters()
    (x,) = _as32(RNG.normal(size=(7, DIM)))
    logits = ops.convert_to_numpy(_head(means, log_variances)(x.astype(np.float32)))
    assert logits.dtype == np.float32 and logits.shape == (7, NUM_CLASSES)
    np.testing.assert_allclose(logits, -reference.icu_distances(x, means, log_variances), rtol=1e-6, atol=1e-5)


def test_distance_has_no_expanded_square_cancellation():
    """x ≈ μ_k far from the origin (|x| = 1e3): the direct squared term keeps float32 accuracy."""
    means = np.full((2, 2), 1000.0)
    means[1] += 3.0
    log_variances = np.zeros((2, 2))
    x = np.array([[1000.0, 1000.0], [1000.0 + 2**-7, 1000.0 - 2**-6]])
    logits = ops.convert_to_numpy(_head(means, log_variances)(x.astype(np.float32)))
    # x² − 2xμ + μ² would lose everything below ~0.1 here (float32 eps × 1e6).
    np.testing.assert_allclose(logits, -reference.icu_distances(x, means, log_variances), rtol=0, atol=1e-6)


@pytest.mark.parametrize("label_form", ["sparse", "column", "one_hot"])
@pytest.mark.parametrize("alpha, gamma", [(1e-4, 1e-3), (ALPHA, GAMMA), (0.0, 0.0)])
def test_loss_values_match_eq17_18(label_form, alpha, gamma):
    """Per-sample ICU loss = eq. 17 with the eq. 18 target (ln|Σ| + ln(1+γ)) within 1e-5, any label form."""
    logits = RNG.normal(scale=3.0, size=(6, NUM_CLASSES))
    labels = np.array([0, 3, 1, 1, 2, 3])
    y_true = {
        "sparse": labels,
        "column": labels[:, None],
        "one_hot": np.eye(NUM_CLASSES)[labels],
    }[label_form]
    (logits,) = _as32(logits)
    values = keras_losses.ICULoss(alpha=alpha, gamma=gamma, reduction=None)(y_true, logits.astype(np.float32))
    np.testing.assert_allclose(values, reference.icu_loss(labels, -logits, alpha, gamma), rtol=1e-6, atol=1e-5)


def test_regularizer_matches_eq14_over_present_classes():
    """The batch term = eq. 14 with eq. 12-13 class moments over present classes only (class 2 absent:
    its parameters get exactly zero regulariser gradient)."""
    means, log_variances = _parameters()
    (x,) = _as32(RNG.normal(size=(7, DIM)))
    labels = np.array([0, 0, 1, 3, 3, 3, 1])
    head = _head(means, log_variances)

    def batch_term():
        head(x.astype(np.float32), labels, training=True)
        return head.pop_batch_term()

    regularizer, (d_means, d_log_variances) = harness.value_and_gradients(
        batch_term, variables=[head.means, head.log_variances])
    assert head.losses == []  # nothing goes through add_loss
    expected = reference.icu_regularizer(x, labels, means, log_variances, LAMBDA_MU, LAMBDA_SIGMA)
    np.testing.assert_allclose(float(regularizer), expected, rtol=1e-6, atol=1e-5)
    assert np.all(np.asarray(d_means)[2] == 0) and np.all(np.asarray(d_log_variances)[2] == 0)
    assert np.all(np.asarray(d_means)[[0, 1, 3]] != 0)


def test_one_hot_labels_give_the_same_regularizer():
    """The head reads one-hot labels like class indices."""
    means, log_variances = _parameters()
    x = RNG.normal(size=(5, DIM)).astype(np.float32)
    labels = np.array([2, 0, 2, 1, 0])
    head = _head(means, log_variances)
    head(x, labels, training=True)
    sparse = float(head.pop_batch_term())
    head(x, np.eye(NUM_CLASSES, dtype=np.float32)[labels], training=True)
    np.testing.assert_allclose(float(head.pop_batch_term()), sparse, rtol=1e-7)


def test_regularizer_only_with_labels_in_training():
    """No term without labels or with training=False; a later call replaces the term, never adds to it."""
    means, log_variances = _parameters()
    x = RNG.normal(size=(5, DIM)).astype(np.float32)
    labels = np.array([2, 0, 2, 1, 0])
    head = _head(means, log_variances)
    head(x)
    assert head.pop_batch_term() is None
    head(x, labels, training=False)
    assert head.pop_batch_term() is None
    head(x, None, training=True)
    assert head.pop_batch_term() is None
    head(x, labels, training=True)
    once = float(head.pop_batch_term())
    for _ in range(3):
        head(x, labels, training=True)
    assert float(head.pop_batch_term()) == once and head.pop_batch_term() is None


def test_batch_terms_are_kept_per_thread():
    """A term computed in one thread is invisible to others (the MirroredStrategy replica threads)."""
    means, log_variances = _parameters()
    x = RNG.normal(size=(4, DIM)).astype(np.float32)
    head = _head(means, log_variances)
    seen = {}

    def replica(name, labels):
        head(x, labels, training=True)
        term = head.pop_batch_term()
        seen[name] = [] if term is None else [float(ops.convert_to_numpy(term))]

    threads = [
        threading.Thread(target=replica, args=("a", np.array([0, 0, 1, 1]))),
        threading.Thread(target=replica, args=("b", np.array([3, 3, 3, 2]))),
    ]
    for thread in threads:
        thread.start()
        thread.join()
    assert len(seen["a"]) == len(seen["b"]) == 1 and seen["a"] != seen["b"]
    assert head.pop_batch_term() is None  # the main thread computed nothing


def test_plain_model_refuses_to_drop_the_regularizer():
    """A GaussianClassHead trained with labels inside a plain keras.Model (nobody adds its term) raises."""
    images = keras.Input((DIM,), name="image")
    labels = keras.Input((), dtype="int32", name="label", optional=True)
    logits = keras_losses.GaussianClassHead(NUM_CLASSES)(images, labels)
    model = keras.Model({"image": images, "label": labels}, logits)
    model.compile(optimizer="sgd", loss=keras_losses.ICULoss())
    x = RNG.normal(size=(8, DIM)).astype(np.float32)
    y = np.arange(8) % NUM_CLASSES
    assert model.predict({"image": x, "label": None}, verbose=0).shape == (8, NUM_CLASSES)  # predicting is fine
    with pytest.raises(ValueError, match="BatchTermModel"):
        model.fit({"image": x, "label": y}, y, epochs=1, verbose=0)


def test_margin_hazard_when_distance_is_negative():
    """Documented hazard: with d_y < 0 (small variances), α lowers the loss instead of raising it."""
    logits = np.array([[3.0, -1.0, -2.0]], np.float32)  # d_y = −3 < 0
    labels = np.array([0])
    plain = float(keras_losses.ICULoss(alpha=0.0, gamma=0.0)(labels, logits))
    with_alpha = float(keras_losses.ICULoss(alpha=0.5, gamma=0.0)(labels, logits))
    assert with_alpha < plain
    positive = -np.abs(logits) - 1.0  # every d > 0: α is a real penalty
    assert float(keras_losses.ICULoss(alpha=0.5, gamma=0.0)(labels, positive)) > float(
        keras_losses.ICULoss(alpha=0.0, gamma=0.0)(labels, positive)
    )


# --- gradients ---------------------------------------------------------------------------


def _objective_and_gradients(x, labels, means, log_variances, alpha, gamma):
    """float32 mean ICU loss + regulariser through the layer; gradients w.r.t. x, μ, ln σ²."""
    head = _head(means, log_variances)
    loss = keras_losses.ICULoss(alpha=alpha, gamma=gamma)

    def objective(features):
        return loss(labels, head(features, labels, training=True)) + head.pop_batch_term()

    total, gradients = harness.value_and_gradients(objective, [x.astype(np.float32)],
                                                   [head.means, head.log_variances])
    return float(total), gradients


@pytest.mark.parametrize("alpha, gamma", [(1e-4, 1e-3), (ALPHA, GAMMA)])
def test_gradients_match_finite_differences_of_reference(alpha, gamma):
    """d(mean loss + reg)/d(features, means, log-variances) in float32 = float64 reference FD, 1e-5."""
    means, log_variances = _parameters()
    (x,) = _as32(RNG.normal(size=(6, DIM)))
    labels = np.array([0, 1, 1, 3, 3, 3])  # class 2 absent, class 0 a single sample
    total, (d_x, d_means, d_log_variances) = _objective_and_gradients(x, labels, means, log_variances, alpha, gamma)

    def objective(features=x, mu=means, log_var=log_variances):
        return reference.icu_objective(labels, features, mu, log_var, alpha, gamma, LAMBDA_MU, LAMBDA_SIGMA)

    np.testing.assert_allclose(total, objective(), rtol=1e-6, atol=1e-5)
    expected = {
        "features": harness.numeric_gradient(lambda v: objective(features=v), x),
        "means": harness.numeric_gradient(lambda v: objective(mu=v), means),
        "log_variances": harness.numeric_gradient(lambda v: objective(log_var=v), log_variances),
    }
    for name, got in zip(expected, (d_x, d_means, d_log_variances)):
        np.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_float64_autodiff_matches_finite_differences():
    """Autodiff of the float64 distance + loss + regulariser equals central differences."""
    means, log_variances = _parameters(num_classes=3, dim=2)
    x = RNG.normal(size=(4, 2))
    labels = np.array([2, 0, 2, 2])
    loss = keras_losses.ICULoss(alpha=ALPHA, gamma=GAMMA, dtype="float64")

    def fn(features, mu, log_var):
        logits = -icu.gaussian_distances(features, mu, log_var)
        regularizer = icu.icu_regularizer(features, ops.convert_to_tensor(labels, "int32"), mu, log_var, 0.3, 0.2, 3)
        return loss(labels, logits) + regularizer

    harness.assert_gradients_match_finite_differences(fn, x, means, log_variances, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "labels",
    [np.array([1, 1, 1, 1]), np.array([0, 2, 2, 2]), np.array([3])],
    ids=["one-class-present", "single-sample-class", "batch-of-one"],
)
def test_edge_cases_are_finite_and_match_reference(labels):
    """Absent classes, a class with one sample and a batch of one: finite, and equal to the reference."""
    means, log_variances = _parameters()
    (x,) = _as32(RNG.normal(size=(len(labels), DIM)))
    total, gradients = _objective_and_gradients(x, labels, means, log_variances, 1e-4, 1e-3)
    assert np.isfinite(total) and all(np.all(np.isfinite(g)) for g in gradients)
    expected = reference.icu_objective(labels, x, means, log_variances, 1e-4, 1e-3, LAMBDA_MU, LAMBDA_SIGMA)
    np.testing.assert_allclose(total, expected, rtol=1e-6, atol=1e-5)


def test_feature_on_its_mean_is_finite():
    """x = μ_y exactly (zero deviation, σ̄² = 0): finite loss and gradients."""
    means, log_variances = _parameters()
    labels = np.array([1, 2])
    total, gradients = _objective_and_gradients(means[labels].copy(), labels, means, log_variances, 1e-4, 1e-3)
    assert np.isfinite(total) and all(np.all(np.isfinite(g)) for g in gradients)


# --- the model: training with labels, predicting without ---------------------------------


def _backbone(dim=6):
    return keras.Sequential(
        [
            keras.Input((dim,)),
            keras.layers.Dense(DIM, kernel_initializer=keras.initializers.GlorotUniform(seed=1), name="dense"),
        ],
        name="backbone",
    )


def _icu_model(**kwargs):
    return keras_losses.build_icu_model(
        _backbone(),
        NUM_CLASSES,
        means_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=2),
        **kwargs,
    )


def _case_data():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = np.argmax(x[:, :NUM_CLASSES], axis=1).astype(np.int32)
    # Every global batch of 16: the first 8 samples (replica 0) lack classes the last 8 have,
    # so per-replica class moments would differ from the global ones.
    y[:8], y[8:16] = [0, 0, 1, 1, 0, 1, 0, 1], [1, 2, 2, 3, 3, 3, 2, 1]
    y[16:24], y[24:] = [3, 3, 3, 2, 3, 2, 2, 3], [0, 1, 0, 0, 2, 0, 1, 1]
    return x, y


@harness.distribution_case
def regularized_case():
    """ICU loss + regulariser (λ_μ = 0.3, λ_σ = 0.2), inputs {"image", "label"}."""
    x, y = _case_data()
    return harness.TrainingCase(
        build_model=lambda: _icu_model(lambda_mu=LAMBDA_MU, lambda_sigma=LAMBDA_SIGMA),
        make_loss=lambda: keras_losses.ICULoss(alpha=ALPHA, gamma=GAMMA),
        x={"image": x, "label": y},
        y=y,
        batch_size=16,
        make_metrics=lambda: ["accuracy"],
        learning_rate=0.05,
    )


def _zero_loss(y_true, y_pred):
    return ops.zeros_like(y_pred[:, 0])


@harness.distribution_case
def regularizer_only_case():
    """Compiled loss ≡ 0: the logged loss is the eq. 14 regulariser alone."""
    case = regularized_case()
    case.make_loss = lambda: _zero_loss
    case.make_metrics = list
    return case


def _step0_reference(case, split=None):
    """Reference (mean ICU loss, regulariser) of the first batch at the case's initial weights."""
    model = case.build_model()  # seeded initialisers: the runner starts from these weights
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("backbone").get_weights())
    head = model.get_layer("icu_head")
    means, log_variances = (np.asarray(w, np.float64) for w in (head.means, head.log_variances))
    x, y = case.x["image"][: case.batch_size], case.y[: case.batch_size]
    features = x.astype(np.float64) @ kernel + bias
    loss = reference.icu_loss(y, reference.icu_distances(features, means, log_variances), ALPHA, GAMMA).mean()
    parts = [slice(None)] if split is None else [slice(0, split), slice(split, None)]
    regularizer = np.mean(
        [reference.icu_regularizer(features[p], y[p], means, log_variances, LAMBDA_MU, LAMBDA_SIGMA) for p in parts]
    )
    return loss, regularizer


@pytest.mark.slow
def test_distribution_equivalence_with_regularizer():
    """1 vs 2 replicas, same global batch, regulariser on: same logged losses, metrics and weights;
    step 0's loss is the float64 global-batch value (per-replica moments would give another)."""
    result = harness.assert_distribution_equivalent("tests.test_icu:regularized_case")
    loss, regularizer = _step0_reference(regularized_case())
    _, local_regularizer = _step0_reference(regularized_case(), split=8)
    assert abs(local_regularizer - regularizer) > 1e-2  # the case can tell global from local moments
    for run in ("single", "mirrored"):
        np.testing.assert_allclose(result[run]["logs"][0]["loss"], loss + regularizer, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_distributed_regularizer_value_equals_single_device():
    """Regulariser alone (zero compiled loss): the loss logged under 2 replicas equals one device and
    the float64 reference at every step — the batch term is counted once, over the global batch."""
    result = harness.assert_distribution_equivalent("tests.test_icu:regularizer_only_case")
    _, regularizer = _step0_reference(regularizer_only_case())
    np.testing.assert_allclose(result["mirrored"]["logs"][0]["loss"], regularizer, rtol=1e-5, atol=1e-5)
    assert regularizer > 0.1


def test_fit_on_dataset_and_predict_without_labels():
    """fit on ({"image", "label"}, y) batches, then predict({"image": x, "label": None}) = −d of the
    backbone's features (margin-free); evaluate runs too."""
    x, y = _case_data()
    model = _icu_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras_losses.ICULoss(), metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices(({"image": x, "label": y}, y)).batch(8)
    history = model.fit(dataset, epochs=2, shuffle=False, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    logits = model.predict({"image": x, "label": None}, verbose=0)
    head = model.get_layer("icu_head")
    features = ops.convert_to_numpy(model.get_layer("backbone")(x)).astype(np.float64)
    expected = -reference.icu_distances(features, head.means.numpy(), head.log_variances.numpy())
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert np.isfinite(model.evaluate(dataset, verbose=0)[0])


def test_keras_round_trip(tmp_path):
    """.keras save/load with no custom_objects: identical label-free predictions, loss restored."""
    case = regularized_case()
    model = harness._compile(case)
    model.fit(case.x, case.y, batch_size=16, epochs=1, verbose=0)
    x = {"image": case.x["image"], "label": None}
    reloaded = harness.assert_keras_round_trip(model, x, tmp_path)
    assert type(reloaded) is keras_losses.BatchTermModel  # reloads able to train with its regulariser
    reloaded.fit(case.x, case.y, batch_size=16, epochs=1, verbose=0)
    assert reloaded.get_layer("icu_head").get_config() == model.get_layer("icu_head").get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    """Under a mixed policy: float32 head output, finite loss (with the regulariser) and gradients."""
    case = regularized_case()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = harness._compile(case)
        x = {"image": case.x["image"][:16], "label": case.y[:16]}
        y = case.y[:16]

        def compute_loss():
            return model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)

        loss, gradients = harness.value_and_gradients(compute_loss, variables=model.trainable_variables)
        assert keras.backend.standardize_dtype(model(x).dtype) == "float32"
        assert np.isfinite(float(loss))
        for variable, gradient in zip(model.trainable_variables, gradients):
            assert gradient is not None and np.all(np.isfinite(np.asarray(gradient))), variable.path
        logs = model.train_on_batch(x, y, return_dict=True)
        assert all(np.isfinite(v) for v in logs.values()), logs
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.slow
def test_standard_checks(tmp_path):
    """Regulariser on: config, .keras round trip, mixed precision, XLA, 2 replicas = 1 device, and every
    reduction of ICULoss with and without sample weights against the float64 eq. 17-18 reference."""
    harness.assert_standard_checks(
        "tests.test_icu:regularized_case", tmp_path,
        reference=lambda y, logits: reference.icu_loss(y, -logits, ALPHA, GAMMA),
    )


def test_build_icu_model_around_a_layer_and_one_hot_labels():
    """A plain layer backbone (input_shape given) and one-hot labels (label_shape=(C,)) train."""
    x, y = _case_data()
    model = keras_losses.build_icu_model(
        keras.layers.Dense(DIM),
        NUM_CLASSES,
        input_shape=(6,),
        label_shape=(NUM_CLASSES,),
        label_dtype="float32",
        image_name="pixels",
        label_name="target",
    )
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    model.compile(optimizer="sgd", loss=keras_losses.ICULoss())
    history = model.fit({"pixels": x, "target": one_hot}, one_hot, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict({"pixels": x, "target": None}, verbose=0).shape == (32, NUM_CLASSES)


# --- configuration and bad input ---------------------------------------------------------


def test_means_start_standard_normal_by_default():
    """The default means are N(0, 1) (authors' code): classes start apart, so the eq. 14 regulariser
    cannot pull every class's features onto one point (see tests/test_train.py for the training)."""
    head = keras_losses.GaussianClassHead(50)
    head.build((None, 64))
    means = np.asarray(head.means)
    assert abs(means.mean()) < 0.05 and means.std() == pytest.approx(1.0, abs=0.05)
    assert keras_losses.GaussianClassHead.from_config(head.get_config()).means_initializer.stddev == 1.0


def test_config_complete():
    """Every constructor argument (initialisers included) is in get_config; registered."""
    harness.assert_config_complete(keras_losses.ICULoss(alpha=0.01, gamma=0.1))
    head = keras_losses.GaussianClassHead(
        5,
        lambda_mu=0.2,
        lambda_sigma=0.0,
        means_initializer=keras.initializers.RandomNormal(stddev=2.0, seed=3),
        log_variances_initializer=keras.initializers.Constant(-1.0),
    )
    harness.assert_config_complete(head)
    clone = keras_losses.GaussianClassHead.from_config(head.get_config())
    clone.build((None, 2))
    np.testing.assert_array_equal(clone.log_variances.numpy(), -np.ones((5, 2)))


def _head_call(features, labels=None):
    return keras_losses.GaussianClassHead(NUM_CLASSES)(features, labels, training=True)


@pytest.mark.parametrize(
    "argument, factory",
    [
        ("num_classes", lambda: keras_losses.GaussianClassHead(1)),
        ("num_classes", lambda: keras_losses.build_icu_model(_backbone(), 1)),
        ("lambda_mu", lambda: keras_losses.GaussianClassHead(3, lambda_mu=-0.1)),
        ("lambda_sigma", lambda: keras_losses.GaussianClassHead(3, lambda_sigma=-1e-3)),
        ("alpha", lambda: keras_losses.ICULoss(alpha=-1e-4)),
        ("gamma", lambda: keras_losses.ICULoss(gamma=-1e-3)),
        ("features", lambda: _head_call(np.ones((2, 3, 4), np.float32))),
        ("features", lambda: _head_call(np.ones((4,), np.float32))),
        ("labels", lambda: _head_call(np.ones((3, 2), np.float32), np.array([0, 1, NUM_CLASSES]))),
        ("labels", lambda: _head_call(np.ones((3, 2), np.float32), np.array([0, -1, 2]))),
        ("labels", lambda: _head_call(np.ones((3, 2), np.float32), np.array([0, 1]))),
        ("y_true", lambda: keras_losses.ICULoss()(np.array([0, 5]), np.zeros((2, 3), np.float32))),
        ("input_shape", lambda: keras_losses.build_icu_model(keras.layers.Dense(2), 3)),
    ],
)
def test_bad_input(argument, factory):
    """Bad hyper-parameters, feature ranks and labels raise ValueError naming the argument."""
    harness.assert_value_error(argument, factory)
