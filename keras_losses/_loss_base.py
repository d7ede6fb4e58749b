"""The base every keras_losses loss derives from."""

import keras


class Loss(keras.losses.Loss):
    """``keras.losses.Loss`` whose config also records ``dtype``.

    Subclasses implement ``call(y_true, y_pred)`` returning per-sample values
    ``(B,)`` (Keras then reduces, scaling correctly under ``tf.distribute``) and
    extend ``get_config`` with their own arguments.
    """

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype}
