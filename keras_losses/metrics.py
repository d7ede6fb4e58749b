"""Calibration metric."""

import keras
from keras import ops

from keras_losses._checks import check_int, check_scores, sparse_labels
from keras_losses._distribute import cross_replica_sum


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
            Defaults to False (probabilities, like Keras' accuracy metrics).
        name: metric name. Defaults to ``"ece"``.
        dtype: dtype of the state. Defaults to float32.

    Labels may be integer ``(B,)``/``(B, 1)`` or one-hot ``(B, C)``.

    Example:

    >>> model.compile(loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy", keras_losses.ExpectedCalibrationError()])
    """

    def __init__(self, num_bins=15, from_logits=False, name="ece", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = check_int("num_bins", num_bins, low=1)
        self.from_logits = from_logits
        self.bin_weight = self.add_variable((num_bins,), "zeros", name="bin_weight", aggregation="sum")
        self.bin_confidence = self.add_variable(
            (num_bins,), "zeros", name="bin_confidence", aggregation="sum"
        )
        self.bin_correct = self.add_variable((num_bins,), "zeros", name="bin_correct", aggregation="sum")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        num_classes = check_scores("y_pred", y_pred)
        labels = sparse_labels(ops.convert_to_tensor(y_true), num_classes)
        probs = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        confidence = ops.max(probs, axis=-1)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(probs, axis=-1), "int32"), labels), self.dtype)
        # Bin b holds (b/M, (b+1)/M]: ceil(conf·M) - 1, clipped for conf = 0.
        bins = ops.clip(ops.cast(ops.ceil(confidence * self.num_bins), "int32") - 1, 0, self.num_bins - 1)
        membership = ops.one_hot(bins, self.num_bins, dtype=self.dtype)
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1, 1))
            membership = membership * weight
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
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {"num_bins": self.num_bins, "from_logits": self.from_logits, **super().get_config()}

