"""Cosine classifier layer: the head every cosine-margin loss sits on."""

import keras
from keras import ops

from keras_losses._checks import check_int, check_number, head_dtype


def l2_normalize_rows(x, squared_epsilon=1e-12):
    """``x / ‖x‖`` along the last axis; rows with ``‖x‖² ≤ ε`` (zero rows) give 0 with gradient 0.

    A zero row has no direction: its cosines are 0 and, by the double ``where``,
    so is its gradient. Flooring the norm instead (``x·rsqrt(max(‖x‖², ε))``)
    gives a gradient of ``1/√ε`` = 1e6 per unit of upstream gradient there, which
    overflows to ±inf when cast back to a float16 backbone.
    """
    squared_norm = ops.sum(ops.square(x), axis=-1, keepdims=True)
    nonzero = squared_norm > squared_epsilon
    safe = ops.where(nonzero, squared_norm, ops.ones_like(squared_norm))
    return ops.where(nonzero, x * ops.rsqrt(safe), ops.zeros_like(x))


def cosine_scores(features, kernel, squared_epsilon=1e-12):
    """Cosines ``(B, C)`` between feature rows and kernel columns ``(D, C)``.

    The product ``x̂·W`` is rescaled column by column by ``1/‖w_k‖`` instead of
    normalising a copy of ``W``: ``B·C`` extra work instead of ``D·C``.
    """
    column_norms = ops.sum(ops.square(kernel), axis=0)
    unit_features = l2_normalize_rows(features, squared_epsilon)
    return ops.matmul(unit_features, kernel) * ops.rsqrt(ops.maximum(column_norms, squared_epsilon))


@keras.saving.register_keras_serializable(package="keras_losses")
class CosineDense(keras.layers.Layer):
    """Cosine similarities between unit features and unit class vectors.

    Output ``cos_ik = x̂_i · ŵ_k``, shape ``(B, units)``, margin-free: the
    argmax is the prediction and ``predict`` needs no labels. Pair it with a
    margin loss (:class:`NPCFaceLoss`, :class:`ArcFaceLoss`,
    :class:`CosFaceLoss`) that reads the labels. Computed in float32 under any
    mixed-precision policy.

    The kernel has the usual Dense layout ``(D, units)``. A normalised copy of
    the kernel is never built: the product ``x̂·W`` is rescaled column by column
    by ``1/‖w_k‖``, which costs ``B·C`` instead of ``D·C`` extra work.

    Args:
        units: number of classes C ≥ 1.
        kernel_initializer: initializer of the class vectors. Defaults to
            ``"glorot_uniform"``.
        kernel_regularizer: optional regularizer of the kernel.
        epsilon: a feature row with squared norm ``≤ ε`` reads as zero (cosines 0,
            gradient 0, also under ``mixed_float16``); the squared norms of the
            class vectors are floored at ``ε``. Defaults to 1e-12.
        **kwargs: base layer arguments (``name``, ``dtype``...).

    Example:

    >>> images = keras.Input((8,))
    >>> backbone = keras.layers.Dense(16)                  # any feature extractor
    >>> embeddings = backbone(images)                       # (B, 16)
    >>> num_identities = 5
    >>> cosines = keras_losses.CosineDense(num_identities)(embeddings)
    >>> model = keras.Model(images, cosines)
    >>> model.compile("sgd", loss=keras_losses.ArcFaceLoss())
    >>> x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    >>> tuple(model(x).shape)                               # cosines in [-1, 1]
    (4, 5)
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        epsilon=1e-12,
        **kwargs,
    ):
        kwargs["dtype"] = head_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        self.units = check_int("units", units, low=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def call(self, inputs):
        return cosine_scores(inputs, self.kernel, self.epsilon)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            epsilon=self.epsilon,
        )
        return config
