"""A ``keras.Model`` that adds its layers' batch-level loss terms — with public Keras APIs only.

Some terms of a loss are not per sample but one value for the whole (global) batch: ICU's eq. 14
regulariser is built from per-class moments of the batch's features. Keras' ``add_loss`` keeps
added terms in one list per layer; under ``MirroredStrategy`` the replicas run the forward pass in
threads on the same layer object, and an all-reduce inside the forward pass hands control from one
replica thread to the next, so a replica can read both replicas' terms and the reported loss counts
the term twice. Keeping the terms per thread would mean overriding private Keras methods.

Instead, a layer with a batch term (see :class:`keras_losses.GaussianClassHead`) computes it in its
forward pass and keeps it for the current thread; :class:`BatchTermModel` overrides the public
``Model.compute_loss`` hook, takes each layer's term for the current thread and adds it once,
divided by the number of replicas as Keras divides every mean loss, so 1 and N replicas give the
same loss, the same gradients and the same reported value for the same global batch.

The protocol, for a layer: ``takes_batch_term = True`` and ``pop_batch_term()`` returning the
term of the last training-mode call in this thread (or None); the model sets
``layer.batch_term_consumer = True`` on each such layer it contains, so the layer can refuse to
compute a term that nobody would add.
"""

import keras
from keras import ops

from keras_losses._distribute import divide_by_replicas


def batch_term_layers(layer):
    """Every layer under ``layer`` (itself included) that has a batch-level loss term."""
    found = [layer] if getattr(layer, "takes_batch_term", False) else []
    for child in getattr(layer, "layers", ()):
        if child is not layer:
            found += batch_term_layers(child)
    return found


@keras.saving.register_keras_serializable(package="keras_losses")
class BatchTermModel(keras.Model):
    """A ``keras.Model`` whose loss also holds its layers' batch-level terms (e.g. ICU's regulariser).

    Built like a functional model, ``BatchTermModel(inputs, outputs)``; everything else is a
    ``keras.Model``. While training, ``compute_loss`` adds each batch-term layer's term of the
    current step once (divided by the number of replicas under ``tf.distribute``, so the total
    over replicas is the term); evaluation and prediction add nothing. Sample weights do not
    weight these terms (they are not per sample), as for Keras' weight regularisers.

    Saved ``.keras`` files reload as ``BatchTermModel`` (after ``import keras_losses``).

    Example:

    >>> import keras, keras_losses
    >>> images = keras.Input((8,), name="image")
    >>> labels = keras.Input((), dtype="int32", name="label", optional=True)
    >>> logits = keras_losses.GaussianClassHead(3)(keras.layers.Dense(4)(images), labels)
    >>> model = keras_losses.BatchTermModel({"image": images, "label": labels}, logits)
    >>> model.compile(optimizer="adam", loss=keras_losses.ICULoss())
    >>> model.output_shape
    (None, 3)

    (:func:`keras_losses.build_icu_model` builds such a model around any backbone.)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for layer in batch_term_layers(self):
            if layer is not self:
                layer.batch_term_consumer = True

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        for layer in batch_term_layers(self):
            if layer is self:
                continue
            term = layer.pop_batch_term()
            if term is not None and training:
                term = divide_by_replicas(ops.cast(term, "float32"))
                loss = term if loss is None else loss + ops.cast(term, loss.dtype)
        return loss
