"""The bases every keras_losses loss derives from."""

import keras
from keras import ops

from keras_losses._checks import check_choice
from keras_losses._distribute import cross_replica_sum


class Loss(keras.losses.Loss):
    """``keras.losses.Loss`` whose config also records ``dtype``.

    Subclasses implement ``call(y_true, y_pred)`` returning per-sample values
    ``(B,)`` (Keras then reduces, scaling correctly under ``tf.distribute``) and
    extend ``get_config`` with their own arguments.
    """

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype}


# The reductions under which a batch-level term can be counted exactly once.
BATCH_TERM_REDUCTIONS = ("sum_over_batch_size", "mean", "sum")


class BatchTermLoss(Loss):
    """A loss made of per-sample values plus one term over the whole **global** batch.

    The batch term (e.g. PEDCC's MSE, a function of a sum over the batch) is computed from sums and
    counts all-reduced over the replicas, and folded into the per-sample values so that Keras'
    reduction counts it exactly once: added to every value for the mean reductions
    (``"sum_over_batch_size"``, ``"mean"``), added as ``term / global batch size`` for ``"sum"``.
    Anything else is rejected rather than silently mis-weighted: ``reduction=None``/``"none"``
    (the values are not per-sample losses) and ``sample_weight`` (a batch term cannot be weighted
    per sample) raise ``ValueError``.

    Subclasses implement ``call`` and end it with :meth:`add_batch_term`.
    """

    def __init__(self, *args, reduction="sum_over_batch_size", **kwargs):
        check_choice("reduction", reduction, BATCH_TERM_REDUCTIONS)
        super().__init__(*args, reduction=reduction, **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"`sample_weight` cannot be used with {type(self).__name__}: part of the loss is one term "
                "over the whole batch, which per-sample weights cannot weight. Train without sample weights "
                "or class weights."
            )
        return super().__call__(y_true, y_pred)

    def add_batch_term(self, per_sample, local_sum, combine):
        """``per_sample`` values with the batch term folded in for this loss's reduction.

        Args:
            per_sample: ``(B,)`` the per-sample part.
            local_sum: this replica's sum over its samples of what the term aggregates.
            combine: ``(global_sum, global_count) -> term``, the batch term from the sums over all
                replicas.
        """
        local_count = ops.cast(ops.shape(per_sample)[0], per_sample.dtype)
        total, count = cross_replica_sum([local_sum, local_count])
        term = combine(total, count)
        return per_sample + (term / count if self.reduction == "sum" else term)
