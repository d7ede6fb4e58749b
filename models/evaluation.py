"""Evaluation of classifier outputs, shared by the tools and notebooks in ``models/`` and ``colab/``.

    metrics = classification_metrics(logits, labels)   # {"accuracy", "ece", "nll"}
    bins = reliability_bins(logits, labels)             # what a reliability diagram draws

``logits`` are NumPy ``(N, C)`` scores whose softmax is the predicted distribution (for the cosine
heads: ``scale · cos`` without the margin).
"""

import numpy as np

NUM_BINS = 15
# The false-accept rates at which verification runs report (and plot) the true-accept rate.
VERIFICATION_FARS = (1e-2, 1e-3)


def log_softmax(logits):
    """Row-wise log-softmax in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def mean_nll(logits, labels):
    """Mean negative log-likelihood of integer ``labels`` under ``softmax(logits)``."""
    labels = np.asarray(labels).reshape(-1)
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def _calibration_metric(logits, labels, num_bins):
    import keras_losses

    metric = keras_losses.ExpectedCalibrationError(num_bins=num_bins, from_logits=True)
    metric.update_state(np.asarray(labels).reshape(-1), np.asarray(logits, np.float32))
    return metric


def expected_calibration_error(logits, labels, num_bins=NUM_BINS):
    """ECE of ``softmax(logits)``, computed by the library's streaming metric."""
    return float(_calibration_metric(logits, labels, num_bins).result())


def classification_metrics(logits, labels, num_bins=NUM_BINS):
    """``{"accuracy", "ece", "nll"}`` of ``softmax(logits)`` against integer ``labels``."""
    labels = np.asarray(labels).reshape(-1)
    return {
        "accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels)),
        "ece": expected_calibration_error(logits, labels, num_bins),
        "nll": mean_nll(logits, labels),
    }


def reliability_bins(logits, labels, num_bins=NUM_BINS):
    """Per-bin sample counts, mean confidence and accuracy, from the bins of the library's
    ``ExpectedCalibrationError`` (bin ``b`` holds confidences in ``(b/M, (b+1)/M]``); empty bins hold
    NaN. ``ece`` is the metric's value."""
    metric = _calibration_metric(logits, labels, num_bins)
    counts, conf_sum, correct_sum = (np.asarray(t, np.float64) for t in metric.bin_totals())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        accuracy = np.where(counts > 0, correct_sum / counts, np.nan)
    return {"counts": counts, "confidence": mean_conf, "accuracy": accuracy, "ece": float(metric.result())}
