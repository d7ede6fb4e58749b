"""models/evaluation.py: accuracy, ECE, NLL and reliability bins agree with float64 references
written here from the definitions (ECE and the reliability bins come from the library's streaming
metric, which computes in float32)."""

import numpy as np

from models.evaluation import classification_metrics, expected_calibration_error, mean_nll, reliability_bins


def _reference(logits, labels, num_bins):
    """ECE and NLL straight from the definitions, one sample at a time."""
    ece_sum = np.zeros((num_bins, 3))  # count, confidence sum, correct sum
    nll = 0.0
    for row, label in zip(np.asarray(logits, np.float64), labels):
        p = np.exp(row - row.max())
        p /= p.sum()
        b = min(num_bins - 1, max(0, int(np.ceil(p.max() * num_bins)) - 1))  # (b/M, (b+1)/M]
        ece_sum[b] += (1, p.max(), float(np.argmax(p) == label))
        nll -= np.log(p[label])
    ece = np.abs(ece_sum[:, 2] - ece_sum[:, 1]).sum() / len(labels)
    return ece, nll / len(labels), ece_sum


def test_metrics_match_the_definitions():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(500, 7))
    labels = rng.integers(0, 7, size=500)
    ece, nll, sums = _reference(logits, labels, 15)
    metrics = classification_metrics(logits, labels)
    assert abs(metrics["accuracy"] - np.mean(np.argmax(logits, 1) == labels)) < 1e-12
    assert abs(metrics["nll"] - nll) < 1e-10 and abs(mean_nll(logits, labels) - nll) < 1e-10
    assert abs(metrics["ece"] - ece) < 1e-5  # the library metric runs in float32
    bins = reliability_bins(logits, labels, 15)
    assert abs(bins["ece"] - ece) < 1e-5
    np.testing.assert_array_equal(bins["counts"], sums[:, 0])
    filled = sums[:, 0] > 0
    np.testing.assert_allclose(bins["confidence"][filled], sums[filled, 1] / sums[filled, 0], rtol=1e-6)
    np.testing.assert_allclose(bins["accuracy"][filled], sums[filled, 2] / sums[filled, 0], rtol=1e-6)
    assert np.isnan(bins["accuracy"][~filled]).all()  # empty bins have no accuracy, not 0


def test_other_bin_counts_and_column_labels():
    logits = np.array([[2.0, 0.0], [0.0, 0.1], [5.0, -5.0]])
    labels = np.array([[0], [0], [1]])  # (N, 1) labels are accepted like (N,)
    for num_bins in (1, 4, 40):
        ece, _, _ = _reference(logits, labels.ravel(), num_bins)
        assert abs(reliability_bins(logits, labels, num_bins)["ece"] - ece) < 1e-6
        assert abs(expected_calibration_error(logits, labels, num_bins) - ece) < 1e-6
