"""Argument and input validation shared by every loss, layer and metric.

Every check raises a ``ValueError`` whose message starts with the offending
argument's name and says what was expected, so bad input never turns into a
silent loss.
"""

import math

import keras
import numpy as np
from keras import ops


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Checks that ``value`` is a finite real number inside the given bounds.

    Args:
        name: argument name used in the error message.
        value: the value to check.
        low, high: optional bounds.
        low_open, high_open: whether the bound itself is excluded.

    Returns:
        ``value`` as a Python float.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a real number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        relation = ">" if low_open else ">="
        raise ValueError(f"`{name}` must be {relation} {low}, got {value!r}.")
    if high is not None and (value > high or (high_open and value == high)):
        relation = "<" if high_open else "<="
        raise ValueError(f"`{name}` must be {relation} {high}, got {value!r}.")
    return value


def check_int(name, value, *, low=None, high=None):
    """Checks that ``value`` is an integer in ``[low, high]``; returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer, got {value!r}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be >= {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}, got {value}.")
    return value


def check_choice(name, value, choices):
    """Checks that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_scores(name, scores):
    """Checks that class scores have static rank 2 ``(batch, num_classes)``, C >= 2.

    Returns:
        The number of classes ``C``.
    """
    shape = tuple(scores.shape)
    if len(shape) != 2:
        raise ValueError(
            f"`{name}` must have rank 2 (batch, num_classes), got shape {shape}."
        )
    num_classes = shape[-1]
    if num_classes is None:
        raise ValueError(f"`{name}` must have a known number of classes, got shape {shape}.")
    if num_classes < 2:
        raise ValueError(f"`{name}` must have at least 2 classes, got shape {shape}.")
    return num_classes


def _static_value(tensor):
    """Returns the NumPy value of an eager tensor, or None inside a graph."""
    try:
        return keras.ops.convert_to_numpy(tensor)
    except Exception:  # symbolic tensor (tf.function / XLA / KerasTensor)
        return None


def sparse_labels(y_true, num_classes, name="y_true"):
    """Converts ``(B,)``, ``(B, 1)`` or one-hot ``(B, C)`` labels to int32 ``(B,)``.

    Keras casts ``y_true`` to the loss dtype before ``call``, so integer labels
    arrive as floats; they are cast back here. Shapes are checked statically;
    values are checked eagerly when the labels are concrete and, on the
    TensorFlow backend, by a runtime assertion inside graphs.

    Args:
        y_true: labels.
        num_classes: C, the number of classes of the scores.
        name: argument name used in error messages.

    Returns:
        int32 tensor of shape ``(B,)``.
    """
    y_true = ops.convert_to_tensor(y_true)
    shape = tuple(y_true.shape)
    if len(shape) == 2 and shape[-1] == num_classes and num_classes > 1:
        values = _static_value(y_true)
        if values is not None and not np.all(
            np.isclose(values.sum(axis=-1), 1.0, atol=1e-3) & (values >= -1e-6).all(axis=-1)
        ):
            raise ValueError(
                f"`{name}` has shape {shape} and is read as one-hot/probability rows over "
                f"{num_classes} classes, but its rows do not sum to 1."
            )
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    if len(shape) == 2 and shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif len(shape) != 1:
        raise ValueError(
            f"`{name}` must be integer class indices of shape (batch,) or (batch, 1), or "
            f"one-hot of shape (batch, {num_classes}); got shape {shape}."
        )
    values = _static_value(y_true)
    if values is not None:
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`{name}` must hold class indices in [0, {num_classes - 1}], got values in "
                f"[{values.min()}, {values.max()}]."
            )
        if values.size and np.any(values != np.round(values)):
            raise ValueError(f"`{name}` must hold integer class indices, got non-integer values.")
    labels = ops.cast(y_true, "int32")
    if values is None and keras.backend.backend() == "tensorflow":
        labels = _assert_in_range_tf(labels, num_classes, name)
    return labels


def _assert_in_range_tf(labels, num_classes, name):
    import tensorflow as tf

    message = f"`{name}` must hold class indices in [0, {num_classes - 1}]"
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, tf.constant(num_classes, labels.dtype), message=message),
        ]
    ):
        return tf.identity(labels)


def check_batch_match(name, labels, scores):
    """Checks statically that labels and scores share the batch dimension."""
    b_labels, b_scores = labels.shape[0], scores.shape[0]
    if b_labels is not None and b_scores is not None and b_labels != b_scores:
        raise ValueError(
            f"`{name}` has batch size {b_labels} but the scores have batch size {b_scores}."
        )


def head_dtype(dtype):
    """Default dtype for classifier heads: float32 under a mixed policy.

    Heads normalise, take cosines and exponentiate; in float16/bfloat16 that
    loses the precision the margins live in and overflows. A head therefore
    computes in float32 unless the user asks otherwise; under a plain float32
    or float64 global policy it follows the global policy.
    """
    if dtype is not None:
        return dtype
    if keras.config.dtype_policy().compute_dtype in ("float16", "bfloat16"):
        return "float32"
    return None
