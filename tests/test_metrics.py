"""ExpectedCalibrationError against the float64 NumPy reference."""

import keras
import numpy as np
import pytest

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(0)


def _probabilities(batch=64, classes=5, rng=RNG):
    """Softmax rows with a spread of confidences (some peaked, some flat)."""
    logits = rng.normal(size=(batch, classes)) * rng.uniform(0.3, 4.0, size=(batch, 1))
    return reference.softmax(logits)


def _ece(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(y_true, np.asarray(y_pred, np.float32), sample_weight=sample_weight)
    return float(metric.result())


@pytest.mark.parametrize("num_bins", [1, 2, 10, 15, 40])
def test_matches_reference_with_sparse_labels(num_bins):
    """Random probability rows, integer labels: equals the float64 reference for several M."""
    probs = _probabilities()
    labels = RNG.integers(0, 5, size=len(probs))
    expected = reference.expected_calibration_error(labels, probs, num_bins)
    metric = keras_losses.ExpectedCalibrationError(num_bins=num_bins, from_logits=False)
    np.testing.assert_allclose(_ece(metric, labels, probs), expected, rtol=1e-5, atol=1e-6)


def test_label_forms_agree():
    """(B,), (B, 1), float-cast and one-hot labels give the reference value."""
    probs = _probabilities(batch=40, classes=4)
    labels = RNG.integers(0, 4, size=40)
    expected = reference.expected_calibration_error(labels, probs, 15)
    for form in (labels, labels[:, None], labels.astype(np.float32), np.eye(4)[labels]):
        metric = keras_losses.ExpectedCalibrationError(from_logits=False)
        np.testing.assert_allclose(_ece(metric, form, probs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_bins", [1, 15])
def test_from_logits_matches_reference_on_softmax(num_bins):
    """from_logits=True on logits equals the reference on softmax(logits)."""
    logits = RNG.normal(size=(50, 6)) * 2.0
    labels = RNG.integers(0, 6, size=50)
    expected = reference.expected_calibration_error(labels, reference.softmax(logits), num_bins)
    metric = keras_losses.ExpectedCalibrationError(num_bins=num_bins, from_logits=True)
    np.testing.assert_allclose(_ece(metric, labels, logits), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_bins", [1, 15])
def test_sample_weight_matches_reference(num_bins):
    """sample_weight weights bin counts, accuracies and confidences, as in the reference."""
    probs = _probabilities(batch=48)
    labels = RNG.integers(0, 5, size=48)
    weights = RNG.uniform(0.0, 3.0, size=48)
    weights[:5] = 0.0
    expected = reference.expected_calibration_error(labels, probs, num_bins, weights=weights)
    metric = keras_losses.ExpectedCalibrationError(num_bins=num_bins, from_logits=False)
    np.testing.assert_allclose(
        _ece(metric, labels, probs, sample_weight=weights.astype(np.float32)),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )
    # Weights really matter here.
    assert abs(reference.expected_calibration_error(labels, probs, num_bins) - expected) > 1e-3


def test_streaming_equals_reference_on_concatenation_and_reset():
    """Updates over uneven batches equal one pass over all data; reset_state zeroes the state."""
    probs = _probabilities(batch=70)
    labels = RNG.integers(0, 5, size=70)
    weights = RNG.uniform(0.5, 2.0, size=70)
    metric = keras_losses.ExpectedCalibrationError(num_bins=10, from_logits=False)
    for start, stop in [(0, 7), (7, 32), (32, 33), (33, 70)]:
        metric.update_state(
            labels[start:stop],
            probs[start:stop].astype(np.float32),
            sample_weight=weights[start:stop].astype(np.float32),
        )
    expected = reference.expected_calibration_error(labels, probs, 10, weights=weights)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5, atol=1e-6)

    metric.reset_state()
    assert float(metric.result()) == 0.0
    for variable in metric.variables:
        np.testing.assert_array_equal(np.asarray(variable), 0.0)
    # After a reset it accumulates from scratch.
    expected_tail = reference.expected_calibration_error(labels[33:], probs[33:], 10)
    np.testing.assert_allclose(
        _ece(metric, labels[33:], probs[33:]), expected_tail, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("num_bins", [4, 5, 10, 15])
def test_confidences_on_bin_edges(num_bins):
    """Confidences exactly 0.25/0.5/0.6/0.75/1.0 fall in the bin they close, as in the reference."""
    probs = np.array(
        [
            [0.6, 0.4, 0.0],
            [0.2, 0.6, 0.2],
            [0.6, 0.3, 0.1],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
            [0.5, 0.25, 0.25],
            [0.25, 0.75, 0.0],
            [0.75, 0.125, 0.125],
        ]
    )
    labels = np.array([0, 2, 1, 0, 1, 1, 0, 1, 2])
    expected = reference.expected_calibration_error(labels, probs, num_bins)
    metric = keras_losses.ExpectedCalibrationError(num_bins=num_bins, from_logits=False)
    np.testing.assert_allclose(_ece(metric, labels, probs), expected, rtol=1e-6, atol=1e-7)


def test_no_updates_gives_zero():
    """An empty state (or zero total weight) gives 0, not NaN."""
    metric = keras_losses.ExpectedCalibrationError(from_logits=False)
    assert float(metric.result()) == 0.0
    metric.update_state([0, 1], np.array([[0.9, 0.1], [0.3, 0.7]], np.float32), sample_weight=[0, 0])
    assert float(metric.result()) == 0.0


# --- inside model.fit / evaluate and across replicas ----------------------------------


@harness.distribution_case
def training_case():
    x, y = harness.toy_classification()

    def build():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(8, activation="tanh")(inputs)
        return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden))

    return harness.TrainingCase(
        build_model=build,
        make_loss=lambda: keras.losses.SparseCategoricalCrossentropy(),
        x=x,
        y=y,
        batch_size=16,
        make_metrics=lambda: [keras_losses.ExpectedCalibrationError(from_logits=False)],
        learning_rate=0.5,
    )


def test_fit_and_evaluate_match_reference_on_predictions():
    """In compile(metrics=...): fit logs it, evaluate's value is the reference on predict()."""
    case = training_case()
    keras.utils.set_random_seed(0)
    model, logs, _ = harness.train_case(case, epochs=2)
    assert all("ece" in step and np.isfinite(step["ece"]) for step in logs)
    result = model.evaluate(case.x, case.y, batch_size=10, verbose=0, return_dict=True)
    probs = model.predict(case.x, verbose=0)
    expected = reference.expected_calibration_error(case.y, probs, 15)
    assert expected > 0.0
    np.testing.assert_allclose(result["ece"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_distribution_equivalence():
    """1 device vs 2 replicas: per-batch ECE logs (state summed across replicas) and weights match."""
    harness.assert_distribution_equivalent("tests.test_metrics:training_case")


def test_config_complete():
    """Every constructor argument survives get_config/from_config; registered."""
    harness.assert_config_complete(
        keras_losses.ExpectedCalibrationError(num_bins=7, from_logits=True, name="cal", dtype="float64")
    )


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, 15.0, "15", True])
def test_bad_num_bins(num_bins):
    """num_bins < 1 or not an integer raises ValueError naming `num_bins`."""
    harness.assert_value_error("num_bins", keras_losses.ExpectedCalibrationError, num_bins=num_bins)


def test_bad_update_inputs():
    """y_pred of rank != 2 and out-of-range / wrongly shaped labels raise ValueError."""
    metric = keras_losses.ExpectedCalibrationError(from_logits=False)
    probs = np.full((3, 4), 0.25, np.float32)
    harness.assert_value_error("y_pred", metric.update_state, [0, 1, 2], np.full((3,), 0.5))
    harness.assert_value_error("y_pred", metric.update_state, [0, 1, 2], np.full((3, 4, 1), 0.25))
    harness.assert_value_error("y_true", metric.update_state, [0, 1, 4], probs)
    harness.assert_value_error("y_true", metric.update_state, [0, -1, 2], probs)
    harness.assert_value_error("y_true", metric.update_state, np.zeros((3, 2, 2)), probs)
    harness.assert_value_error("y_true", metric.update_state, [0, 1.5, 2], probs)
    harness.assert_value_error("y_true", metric.update_state, np.full((3, 4), 0.25), probs)  # soft rows
    harness.assert_value_error("y_pred", metric.update_state, [0, 1, 2], probs * 3.0)  # not probabilities
    harness.assert_value_error("y_true", metric.update_state, [0, 1], probs)  # batch sizes differ
    harness.assert_value_error("sample_weight", metric.update_state, [0, 1, 2], probs, np.ones(4))
    harness.assert_value_error("sample_weight", metric.update_state, [0, 1, 2], probs, np.ones((3, 2)))
    logits_metric = keras_losses.ExpectedCalibrationError()  # default: logits
    harness.assert_value_error("from_logits", logits_metric.update_state, [0, 1, 2], probs)
    # Nothing was accumulated by the failed updates.
    assert float(metric.result()) == 0.0
    for variable in metric.variables:
        np.testing.assert_array_equal(np.asarray(variable), 0.0)


def test_default_reads_logits_and_never_exceeds_one():
    """The default (from_logits=True) on raw logits gives the reference on their softmax, in [0, 1]."""
    logits = RNG.normal(size=(30, 10)) * 8.0
    labels = RNG.integers(0, 10, size=30)
    value = _ece(keras_losses.ExpectedCalibrationError(), labels, logits)
    np.testing.assert_allclose(value, reference.expected_calibration_error(labels, reference.softmax(logits), 15),
                               rtol=1e-5, atol=1e-6)
    assert 0.0 <= value <= 1.0


def test_empty_batch_adds_nothing():
    """A batch of 0 samples leaves the state unchanged (no crash)."""
    metric = keras_losses.ExpectedCalibrationError()
    metric.update_state(np.zeros((0,), np.int32), np.zeros((0, 3), np.float32))
    assert float(metric.result()) == 0.0
    metric.update_state([0, 1], np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32))
    before = float(metric.result())
    metric.update_state(np.zeros((0,), np.int32), np.zeros((0, 3), np.float32))
    assert float(metric.result()) == before > 0.0


def test_bad_labels_make_compiled_result_nan():
    """Under XLA an out-of-range label makes the ECE NaN, never a number."""
    logits = RNG.normal(size=(4, 3)).astype(np.float32)
    metric = keras_losses.ExpectedCalibrationError()
    update = harness.compiled(metric.stateless_update_state)
    state = update([v.value for v in metric.variables], np.array([0, 1, 3, 2]), logits)
    assert np.isnan(float(metric.stateless_result(state)))
    valid = update([v.value for v in metric.variables], np.array([0, 1, 2, 2]), logits)
    assert np.isfinite(float(metric.stateless_result(valid)))


def test_nan_scores_give_nan():
    """A NaN logit row makes the ECE NaN (it used to land in bin 0 and give a finite value)."""
    metric = keras_losses.ExpectedCalibrationError()
    metric.update_state([0, 1], np.array([[np.nan, 0.0, 1.0], [0.0, 2.0, 0.0]], np.float32))
    assert np.isnan(float(metric.result()))
