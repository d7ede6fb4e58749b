"""PEDCC — pre-defined evenly-distributed class centroids as a frozen classifier.

Reference: Zhu, Zhang, Ye, "A New Loss Function for CNN Classifier Based on Pre-defined
Evenly-Distributed Class Centroids"; details and the differences from the authors' code in
``docs/pedcc.md``.
The last layer's class vectors are fixed, evenly spread unit vectors
(:func:`pedcc_centroids`); the loss is AM-softmax on the cosines plus a
pull of every feature towards its class centroid:

    L = AM(s, m) + L_MSE^(1/n),   L_MSE = ½ Σ_i ‖x̂_i − c_{y_i}‖² = Σ_i (1 − cos_{i,y_i}).
"""

import keras
import numpy as np
from keras import ops

from keras_losses._checks import check_choice, check_int, check_number, head_dtype
from keras_losses._loss_base import BatchTermLoss
from keras_losses.cosine_dense import cosine_scores
from keras_losses.margin_losses import CosFaceLoss
from keras_losses.pedcc_centroids import pedcc_centroids

MSE_REDUCTIONS = ("half_sum", "sum", "batch_mean")
# L_MSE is clamped here before the n-th root, whose gradient is infinite at 0 for n > 1.
MSE_FLOOR = 1e-12


def _check_centroids(centroids, num_classes):
    values = np.asarray(centroids, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != num_classes or values.shape[1] < 2:
        raise ValueError(
            f"`centroids` must have shape (num_classes={num_classes}, dim >= 2), got {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError("`centroids` must be finite.")
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("`centroids` must not contain a zero row.")
    return values / norms


@keras.saving.register_keras_serializable(package="keras_losses")
class PEDCCDense(keras.layers.Layer):
    """Cosine classifier over frozen, evenly distributed class centroids.

    Output ``cos_ik = x̂_i · c_k`` of shape ``(B, num_classes)``, margin-free, as
    :class:`CosineDense`. The centroids are a **non-trainable** weight (saved
    with the model), generated at build time by :func:`pedcc_centroids` from
    ``seed`` — or given explicitly. They are stored column-wise, ``(D, C)``,
    the Dense layout, under the weight name ``centroids``.

    The paper's reference network puts ``BatchNormalization(center=False,
    scale=False)`` and L2-normalisation before this layer; the layer normalises
    its input itself, the batch-norm is the model's business.

    Fine-tuning stage (paper §4.1: centroids trained at learning rate 1e-3 from
    epoch 70 of 120): call :meth:`start_fine_tuning`, recompile (with the
    optimizer and learning rate for that stage) and continue ``fit`` with
    ``initial_epoch``; the centroids then train and are renormalised to unit
    length after every update::

        model.fit(ds, epochs=70)
        model.get_layer("pedcc").start_fine_tuning()
        model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss=PEDCCLoss())
        model.fit(ds, initial_epoch=70, epochs=120)

    Args:
        num_classes: C ≥ 2.
        seed: seed of the centroid generation. Defaults to 0.
        centroids: optional explicit centroids ``(C, D)``; normalised to unit rows.
        iterations: passed to :func:`pedcc_centroids`; None (default) is the
            converged method, 200 the authors' schedule.
        epsilon: a feature row with squared norm ``≤ ε`` reads as zero (cosines 0,
            gradient 0); the centroids' squared norms are floored at ``ε``. Defaults to 1e-12.
        fine_tuning: whether the centroids train (the fine-tuning stage). Defaults to
            False (frozen); :meth:`start_fine_tuning` sets it.
        **kwargs: base layer arguments. float32 under a mixed-precision policy.

    Example:

    >>> inputs = keras.Input((8,))
    >>> h = keras.layers.Dense(16)(inputs)                   # any backbone's features
    >>> features = keras.layers.BatchNormalization(center=False, scale=False)(h)
    >>> cosines = keras_losses.PEDCCDense(10, name="pedcc")(features)
    >>> model = keras.Model(inputs, cosines)
    >>> model.compile("sgd", loss=keras_losses.PEDCCLoss())
    >>> tuple(model.get_layer("pedcc").centroids.shape)      # frozen, (D, C)
    (16, 10)
    """

    def __init__(
        self, num_classes, seed=0, centroids=None, iterations=None, epsilon=1e-12, fine_tuning=False, **kwargs
    ):
        kwargs["dtype"] = head_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.seed = check_int("seed", seed, low=0)
        self.initial_centroids = None if centroids is None else _check_centroids(centroids, num_classes)
        self.iterations = None if iterations is None else check_int("iterations", iterations, low=0)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        if not isinstance(fine_tuning, bool):
            raise ValueError(f"`fine_tuning` must be True or False, got {fine_tuning!r}.")
        self.fine_tuning = fine_tuning
        self._generate_on_build = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.initial_centroids is not None:
            if self.initial_centroids.shape[1] != dim:
                raise ValueError(
                    f"`centroids` have dimension {self.initial_centroids.shape[1]} but the "
                    f"features have dimension {dim}."
                )
            values = self.initial_centroids
        elif self._generate_on_build:
            values = pedcc_centroids(self.num_classes, dim, seed=self.seed, iterations=self.iterations)
        else:
            values = None  # being loaded: the saved values replace these right away
        # Created trainable and then frozen: TensorFlow only differentiates variables created
        # trainable, and start_fine_tuning() must be able to unfreeze the centroids later.
        self.centroids = self.add_weight(
            name="centroids",
            shape=(dim, self.num_classes),
            initializer="zeros",
            trainable=True,
            constraint=keras.constraints.UnitNorm(axis=0),
        )
        self.centroids.trainable = self.fine_tuning
        if values is not None:
            self.centroids.assign(np.asarray(values, np.float64).T)

    def build_from_config(self, config):
        # Loading a saved model: skip the (possibly slow) generation, the weights follow.
        self._generate_on_build = False
        try:
            super().build_from_config(config)
        finally:
            self._generate_on_build = True

    def call(self, inputs):
        return cosine_scores(inputs, self.centroids, self.epsilon)

    def start_fine_tuning(self):
        """Makes the centroids trainable (kept unit-norm); recompile the model afterwards.

        The stage is part of the layer's config (``fine_tuning=True``): a model saved
        after this call reloads with trainable centroids.
        """
        self.fine_tuning = True
        self.centroids.trainable = True

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            seed=self.seed,
            centroids=None if self.initial_centroids is None else self.initial_centroids.tolist(),
            iterations=self.iterations,
            epsilon=self.epsilon,
            fine_tuning=self.fine_tuning,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_losses")
class PEDCCLoss(BatchTermLoss, CosFaceLoss):
    """PEDCC-Loss: AM-softmax on centroid cosines plus ``L_MSE^(1/n)`` (paper eq. 7-9).

    ``AM = CE(s·(cos − m·onehot(y)))`` is the CosFace/AM-softmax core. Features
    and centroids are unit vectors, so ``‖x̂_i − c_{y_i}‖² = 2 − 2·cos_{i,y_i}``
    and the MSE term needs only the cosines. It is one term over the
    **global** batch (all replicas are summed), so the loss and gradients are
    the same with 1 or R replicas for the same global batch. It is folded into
    the per-sample values so that the reduction counts it exactly once: added
    to each value for ``"sum_over_batch_size"`` (the default) and ``"mean"``,
    as ``L_MSE^(1/n) / B`` for ``"sum"``. ``reduction=None`` and
    ``sample_weight`` (or ``class_weight`` in ``fit``) are rejected with a
    ``ValueError``: a batch term has no per-sample value to return or weight.

    ``mse_reduction`` — the paper and the authors' code disagree:

    - ``"half_sum"`` (default, paper eq. 8): ``½ Σ_i ‖x̂_i − c_{y_i}‖²`` — grows with the batch size;
    - ``"sum"`` (authors' current code): ``Σ_i ‖x̂_i − c_{y_i}‖²`` = 2 × half_sum;
    - ``"batch_mean"``: ``mean_i ‖x̂_i − c_{y_i}‖²`` (the 2019 code's mean over B·D is this ÷ D).

    The paper takes the n-th **root** (eq. 9); the authors' code a power (equal at n = 1).
    ``L_MSE`` is clamped at 1e-12 before the root.

    Args:
        scale: AM-softmax scale ``s``, or ``"auto"`` (:func:`auto_scale` with ``d = m``). Defaults
            to 10.0: the PEDCC paper only says s and m follow ArcFace; the same group's scaled-BN
            paper pairs s = 10 with m = 0.5 "following the original PEDCC-loss".
        margin: AM-softmax margin ``m``. Defaults to 0.5 (all paper tables).
        n: root ``n ≥ 1``. Defaults to 1.0.
        mse_reduction: one of ``"half_sum"``, ``"sum"``, ``"batch_mean"``.
        reduction: ``"sum_over_batch_size"`` (default), ``"mean"`` or ``"sum"``.
        name, dtype: as for ``keras.losses.Loss``.

    Example:

    >>> inputs = keras.Input((16,))                          # features of any backbone
    >>> model = keras.Model(inputs, keras_losses.PEDCCDense(10)(inputs))
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
    ...               loss=keras_losses.PEDCCLoss(scale=10.0, margin=0.5, n=2))
    """

    def __init__(
        self,
        scale=10.0,
        margin=0.5,
        n=1.0,
        mse_reduction="half_sum",
        reduction="sum_over_batch_size",
        name="pedcc_loss",
        dtype=None,
    ):
        super().__init__(scale=scale, margin=margin, reduction=reduction, name=name, dtype=dtype)
        self.n = check_number("n", n, low=1.0)
        self.mse_reduction = check_choice("mse_reduction", mse_reduction, MSE_REDUCTIONS)

    def margin_loss(self, y_pred, target_mask, cos_y):
        """AM-softmax per sample with the batch's ``L_MSE^(1/n)`` folded in (``call`` is CosFace's)."""
        am_softmax = super().margin_loss(y_pred, target_mask, cos_y)
        squared_distance = 2.0 - 2.0 * cos_y
        return self.add_batch_term(am_softmax, ops.sum(squared_distance), self.mse_term)

    def mse_term(self, total, count):
        """``L_MSE^(1/n)`` from the global batch's sum of squared distances and its size."""
        mse = {"half_sum": 0.5 * total, "sum": total, "batch_mean": total / count}[self.mse_reduction]
        return ops.power(ops.maximum(mse, MSE_FLOOR), 1.0 / self.n)

    def get_config(self):
        return {**super().get_config(), "n": self.n, "mse_reduction": self.mse_reduction}
