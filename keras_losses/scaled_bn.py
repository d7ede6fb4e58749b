"""Scaled batch-normalisation before softmax.

Reference: Zhu, He, Zhang, Cui, "Improving Classification Performance of Softmax Loss Function
Based on Scalable Batch-Normalization" (2020); details in ``docs/scaled_bn.md``.

Eq. 9: ``z' = m · (z - E[z]) / sqrt(Var[z] + ε)`` per logit channel, with no learnable γ/β. Putting it on the logits bounds their scale, which the paper
shows improves accuracy and calibration of the softmax classifier.
"""

import keras
from keras import ops

from keras_losses._checks import check_int, check_number, head_dtype


@keras.saving.register_keras_serializable(package="keras_losses")
class ScaledBatchNormalization(keras.layers.Layer):
    """Batch-normalises logits without affine parameters, then multiplies by ``scale``.

    Training uses the statistics of the current batch; inference uses moving
    statistics, so ``predict`` returns the normalised logits ``z'``.
    Statistics follow ``keras.layers.BatchNormalization``: the batch variance
    is the biased one (divide by B), for normalisation and for the moving
    variance alike (PyTorch updates its running variance with the unbiased
    one; the difference is a factor B/(B-1)).

    Args:
        scale: the multiplier ``m > 0``. Defaults to 1.0 (0.8, 0.9 and 1.0 each
            win three of the paper's nine settings).
        epsilon: variance epsilon ε. Defaults to 1e-5 (PyTorch's default; the
            paper's eq. 9 states none).
        momentum: moving-average momentum in Keras' convention. Defaults to 0.9
            (PyTorch's 0.1).
        synchronized: if True, the batch statistics are those of the global batch
            (all replicas) under ``tf.distribute``. On JAX, ``keras.distribution``
            shards one global batch, so the statistics are global with either value;
            on PyTorch, Keras trains on one device, whose batch is the whole batch.
            Either value is accepted on every backend, so a saved model loads anywhere.
        axis: the channel (logit) axis. Defaults to -1.
        **kwargs: base layer arguments (``name``, ``dtype``...). The default
            dtype is float32 under a mixed-precision policy.

    Example:

    >>> inputs = keras.Input((8,))
    >>> features = keras.layers.Dense(16, activation="relu")(inputs)   # any backbone
    >>> logits = keras.layers.Dense(10)(features)
    >>> logits = keras_losses.ScaledBatchNormalization(scale=0.9)(logits)
    >>> model = keras.Model(inputs, logits)
    >>> model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    """

    def __init__(self, scale=1.0, epsilon=1e-5, momentum=0.9, synchronized=False, axis=-1, **kwargs):
        kwargs["dtype"] = head_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        self.scale = check_number("scale", scale, low=0.0, low_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0)
        self.synchronized = bool(synchronized)
        self.axis = check_int("axis", axis)
        self.batch_norm = keras.layers.BatchNormalization(
            axis=axis,
            momentum=momentum,
            epsilon=epsilon,
            center=False,
            scale=False,
            # Keras' own flag exists on TensorFlow only (see `synchronized` above).
            synchronized=self.synchronized and keras.backend.backend() == "tensorflow",
            dtype=self.dtype_policy,
            name="batch_norm",
        )

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(f"`axis` must be in [{-rank}, {rank - 1}] for inputs of rank {rank} (shape "
                             f"{tuple(input_shape)}), got {self.axis}.")
        self.batch_norm.build(input_shape)

    @property
    def moving_mean(self):
        return self.batch_norm.moving_mean

    @property
    def moving_variance(self):
        return self.batch_norm.moving_variance

    def call(self, inputs, training=None):
        normalized = self.batch_norm(inputs, training=training)
        # convert_to_tensor with the dtype, not ops.cast: a cast goes through float32 first and
        # would round the scale of a float64 layer.
        return normalized * ops.convert_to_tensor(self.scale, dtype=normalized.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            scale=self.scale,
            epsilon=self.epsilon,
            momentum=self.momentum,
            synchronized=self.synchronized,
            axis=self.axis,
        )
        return config
