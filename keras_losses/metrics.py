"""Calibration metric (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017); details in ``docs/calibration.md``."""

import keras
from keras import ops

from keras_losses._checks import (
    as_tensor,
    check_batch_match,
    check_int,
    check_probability_rows,
    check_scores,
    class_labels,
    probability_rows,
    nan_where_invalid,
    static_value,
)
from keras_losses._distribute import cross_replica_sum


INVALID_INPUT = "y_true must hold class indices in [0, C) or one-hot rows; y_pred probability rows when from_logits=False"


def _per_sample_weights(sample_weight, y_pred, dtype):
    """``sample_weight`` of shape ``(B,)`` or ``(B, 1)`` as a ``(B, 1)`` column; a clear error otherwise."""
    sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), dtype)
    shape, batch = tuple(sample_weight.shape), y_pred.shape[0]
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[-1] != 1) or (
        shape[0] is not None and batch is not None and shape[0] != batch
    ):
        raise ValueError(
            f"`sample_weight` must have shape (batch,) or (batch, 1) with batch = {batch}, got shape {shape}."
        )
    return ops.reshape(sample_weight, (-1, 1))


def _check_not_probabilities(y_pred):
    """With ``from_logits=True``, a batch whose every row is a probability vector was almost surely
    meant as probabilities (softmax of it would understate every confidence): raise eagerly."""
    finite = ops.all(ops.isfinite(y_pred), axis=-1)  # NaN rows are NaN in, NaN out, not probabilities
    rows = static_value(ops.logical_and(probability_rows(y_pred, tolerance=1e-6), finite))
    if rows is not None and rows.size and rows.all():
        raise ValueError(
            "`y_pred` rows are all probability vectors but the metric was built with `from_logits`=True "
            "(the default: the models of this library output logits). Build it with "
            "ExpectedCalibrationError(from_logits=False) for probabilities."
        )


@keras.saving.register_keras_serializable(package="keras_losses")
class ExpectedCalibrationError(keras.metrics.Metric):
    """Streaming expected calibration error (Guo et al., 2017; reported by the GSC paper).

    Confidence is the maximum class probability, the prediction its argmax.
    Samples fall into ``num_bins`` equal-width bins over (0, 1] (bin ``b``
    holds confidences in ``(b/M, (b+1)/M]``) and

        ECE = Σ_b (n_b / n) · |acc_b − conf_b|.

    The state is three per-bin sums (weight, weighted confidence, weighted
    correctness), so it accumulates exactly over batches and, being summed,
    over replicas under ``tf.distribute``.

    Args:
        num_bins: number of bins M ≥ 1. Defaults to 15.
        from_logits: whether predictions are logits (a softmax is applied).
            Defaults to True: every model of this library, and the losses'
            defaults, output logits. With False, each row must be a probability
            vector (entries >= 0 summing to 1); logits given there raise a
            ``ValueError`` eagerly and make the result NaN in compiled code.
            A batch of probability vectors given with True raises too.
        name: metric name. Defaults to ``"ece"``.
        dtype: dtype of the state. Defaults to float32.

    Labels may be integer ``(B,)``/``(B, 1)`` or exact one-hot ``(B, C)`` (soft targets are
    rejected: correctness needs one class). Bad labels raise ``ValueError`` eagerly and make
    the result NaN in compiled code. An empty batch adds nothing.

    Example:

    >>> inputs = keras.Input((8,))
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(inputs))   # outputs logits
    >>> model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...               metrics=["accuracy", keras_losses.ExpectedCalibrationError()])

    Standalone, on two samples (confidences 0.881 right, 0.622 wrong):

    >>> ece = keras_losses.ExpectedCalibrationError(num_bins=10)
    >>> ece.update_state([0, 1], [[2.0, 0.0], [1.0, 0.5]])
    >>> round(float(ece.result()), 3)          # ½·|1 − 0.881| + ½·|0 − 0.622|
    0.371
    """

    def __init__(self, num_bins=15, from_logits=True, name="ece", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = check_int("num_bins", num_bins, low=1)
        self.from_logits = from_logits
        self.bin_weight = self.add_variable((num_bins,), "zeros", name="bin_weight", aggregation="sum")
        self.bin_confidence = self.add_variable(
            (num_bins,), "zeros", name="bin_confidence", aggregation="sum"
        )
        self.bin_correct = self.add_variable((num_bins,), "zeros", name="bin_correct", aggregation="sum")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(as_tensor(y_pred), self.dtype)
        num_classes = check_scores("y_pred", y_pred)
        labels, valid = class_labels(y_true, num_classes)
        check_batch_match("y_true", labels, y_pred)
        if self.from_logits:
            _check_not_probabilities(y_pred)
            probs = ops.softmax(y_pred, axis=-1)
        else:
            valid = ops.logical_and(valid, check_probability_rows("y_pred", y_pred))
            probs = y_pred
        prediction = ops.cast(ops.argmax(probs, axis=-1), "int32")
        # The max read by its argmax: ops.max refuses an empty batch, a gather does not.
        confidence = ops.take_along_axis(probs, prediction[:, None], axis=-1)[:, 0]
        correct = ops.cast(ops.equal(prediction, labels), self.dtype)
        # NaN scores in, NaN ECE out (argmax skips NaN, so the row's confidence alone cannot show it).
        correct = ops.where(ops.any(ops.isnan(probs), axis=-1), float("nan"), correct)
        correct = nan_where_invalid(correct, valid, INVALID_INPUT)  # a bad sample makes the ECE NaN
        # Bin b holds (b/M, (b+1)/M]: ceil(conf·M) - 1, clipped for conf = 0.
        bins = ops.clip(ops.cast(ops.ceil(confidence * self.num_bins), "int32") - 1, 0, self.num_bins - 1)
        membership = ops.one_hot(bins, self.num_bins, dtype=self.dtype)
        if sample_weight is not None:
            membership = membership * _per_sample_weights(sample_weight, y_pred, self.dtype)
        self.bin_weight.assign_add(ops.sum(membership, axis=0))
        self.bin_confidence.assign_add(ops.matmul(confidence[None, :], membership)[0])
        self.bin_correct.assign_add(ops.matmul(correct[None, :], membership)[0])

    def bin_totals(self):
        """Per-bin totals over everything seen (all replicas): ``(weight, confidence, correct)``.

        ``weight[b]`` is the (weighted) number of samples in bin ``b``, ``confidence[b]`` and
        ``correct[b]`` the sums of their confidences and correctness: a reliability diagram plots
        ``correct / weight`` against ``confidence / weight``.
        """
        # model.fit reads result() inside each replica and averages the results; ECE is
        # not linear in the bin sums, so the sums are all-reduced first.
        return tuple(cross_replica_sum([self.bin_weight, self.bin_confidence, self.bin_correct]))

    def result(self):
        weight, confidence, correct = self.bin_totals()
        gap = ops.sum(ops.abs(correct - confidence))
        return ops.divide_no_nan(gap, ops.sum(weight))

    def reset_state(self):
        for variable in (self.bin_weight, self.bin_confidence, self.bin_correct):
            # ops.zeros, not zeros_like: JAX cannot take a Keras variable as an array there.
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {"num_bins": self.num_bins, "from_logits": self.from_logits, **super().get_config()}

