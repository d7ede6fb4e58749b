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


def as_tensor(x):
    """``x`` as a backend tensor; a TensorFlow variable is read (Keras' ops take a ``tf.Variable``
    for a tensor and then fail on its missing ``ndim``)."""
    x = ops.convert_to_tensor(x)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(x, tf.Variable):
            x = tf.convert_to_tensor(x)
    return x


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


def static_value(tensor):
    """Returns the NumPy value of an eager tensor, or None inside a graph."""
    try:
        return keras.ops.convert_to_numpy(tensor)
    except Exception:  # symbolic tensor (tf.function / XLA / jax.jit / KerasTensor)
        return None


# Tolerance of the value checks: a probability row must sum to 1 within it, a cosine lie within
# [-1 - tol, 1 + tol] (float32 heads round by ~1e-7; float16 ones by ~1e-3).
VALUE_TOLERANCE = 2e-3


def _labels_shape(y_true, num_classes, name):
    """Static shape check; returns ``"rows"`` for ``(B, C)`` rows, ``"indices"`` otherwise."""
    shape = tuple(y_true.shape)
    if len(shape) == 2 and shape[-1] == num_classes and num_classes > 1:
        return "rows"
    if len(shape) == 1 or (len(shape) == 2 and shape[-1] == 1):
        return "indices"
    raise ValueError(
        f"`{name}` must be integer class indices of shape (batch,) or (batch, 1), or one-hot rows of "
        f"shape (batch, {num_classes}); got shape {shape}."
    )


def _index_labels(y_true, num_classes, name):
    """``(B,)``/``(B, 1)`` class indices → ``(labels int32 (B,), valid (B,))``; invalid ones read as 0."""
    if len(y_true.shape) == 2:
        y_true = ops.squeeze(y_true, axis=-1)
    values = static_value(y_true)
    if values is not None and values.size:
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if finite.size != values.size:
            raise ValueError(f"`{name}` must hold class indices, got NaN or infinite values.")
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"`{name}` must hold class indices in [0, {num_classes - 1}], got values in "
                f"[{values.min()}, {values.max()}]."
            )
        if np.any(values != np.round(values)):
            raise ValueError(
                f"`{name}` must hold integer class indices, got non-integer values such as "
                f"{values[values != np.round(values)][0]}."
            )
    valid = ops.logical_and(y_true >= 0, y_true < num_classes)
    if not keras.backend.is_int_dtype(y_true.dtype):
        valid = ops.logical_and(valid, ops.equal(y_true, ops.round(y_true)))
    labels = ops.cast(ops.where(valid, y_true, ops.zeros_like(y_true)), "int32")
    return labels, valid


def class_labels(y_true, num_classes, name="y_true"):
    """Reads labels that name **one** class per sample: ``(B,)``/``(B, 1)`` indices or one-hot ``(B, C)``.

    Keras casts ``y_true`` to the loss dtype before ``call``, so integer labels
    arrive as floats; they must still be whole numbers in ``[0, C)``. Rows of a
    ``(B, C)`` tensor must be exactly one-hot: soft targets (mixup, label
    smoothing) are rejected, never argmaxed.

    Eagerly (concrete labels) a bad label raises ``ValueError``. Inside a
    compiled function the values are unknown when the code is traced, so the
    check becomes the ``valid`` mask: pass the per-sample loss through
    :func:`nan_where_invalid`, which turns the bad samples' losses into NaN
    (and, in a TensorFlow graph without XLA, also raises an assertion).

    Returns:
        ``(labels, valid)``: int32 ``(B,)`` indices (0 where invalid, so gathers stay
        in range) and a boolean ``(B,)`` mask of valid samples.
    """
    y_true = as_tensor(y_true)
    if _labels_shape(y_true, num_classes, name) == "indices":
        return _index_labels(y_true, num_classes, name)
    is_binary = ops.logical_or(ops.equal(y_true, 0), ops.equal(y_true, 1))
    valid = ops.logical_and(ops.all(is_binary, axis=-1), ops.equal(ops.sum(y_true, axis=-1), 1))
    one_hot = static_value(valid)
    if one_hot is not None and not one_hot.all():
        bad = int(np.argmin(one_hot))
        raise ValueError(
            f"`{name}` has shape {tuple(y_true.shape)} and is read as one-hot rows over {num_classes} "
            f"classes, but row {bad} is not one-hot ({static_value(y_true)[bad]}). "
            "This loss needs one target class per sample: soft targets (mixup, label smoothing) are "
            "not supported here; pass class indices or exact one-hot rows."
        )
    return ops.cast(ops.argmax(y_true, axis=-1), "int32"), valid


def class_probabilities(y_true, num_classes, dtype, name="y_true"):
    """Reads labels as target distributions ``(B, C)``: indices become one-hot, rows must be probabilities.

    Rows of a ``(B, C)`` tensor are kept as they are (soft targets: mixup,
    CutMix, smoothed one-hot) and must be non-negative and sum to 1 within
    ``VALUE_TOLERANCE``. Checks as :func:`class_labels`.

    Returns:
        ``(targets, valid)``: ``(B, C)`` targets of ``dtype`` and a boolean ``(B,)`` mask.
    """
    y_true = as_tensor(y_true)
    if _labels_shape(y_true, num_classes, name) == "indices":
        labels, valid = _index_labels(y_true, num_classes, name)
        return ops.one_hot(labels, num_classes, dtype=dtype), valid
    targets = ops.cast(y_true, dtype)
    return targets, check_probability_rows(name, targets, "target probabilities")


def probability_rows(rows, tolerance=VALUE_TOLERANCE):
    """Boolean ``(B,)`` mask: no entry below 0 and a sum within ``tolerance`` of 1.

    Written as the negation of "some entry < 0 or the sum is off" so that NaN rows pass (NaN in, NaN out).
    """
    off_sum = ops.abs(ops.sum(rows, axis=-1) - 1.0) > tolerance
    return ops.logical_not(ops.logical_or(ops.any(rows < 0, axis=-1), off_sum))


def check_probability_rows(name, rows, what="probabilities"):
    """Boolean ``(B,)`` mask of rows that are probability vectors: entries >= 0 summing to 1.

    The sum must be 1 within ``VALUE_TOLERANCE``. Raises ``ValueError`` eagerly
    when a row is not (e.g. logits given where probabilities are expected); rows
    holding NaN pass (NaN in, NaN out).
    """
    valid = probability_rows(rows)
    values = static_value(valid)
    if values is not None and not values.all():
        bad = int(np.argmin(values))
        row = static_value(rows)[bad]
        raise ValueError(
            f"`{name}` is read as {what} over {row.shape[-1]} classes, but row {bad} has entries in "
            f"[{row.min():.4g}, {row.max():.4g}] summing to {row.sum():.6g}; each row must be >= 0 and "
            "sum to 1."
        )
    return valid


def nan_where_invalid(values, valid, message):
    """``values`` with NaN where ``valid`` is False: the check that survives XLA.

    Assertions cannot run inside XLA-compiled code (Keras compiles with XLA
    whenever a GPU is present), so a bad input must make its loss NaN instead of
    a plausible number; ``keras.callbacks.TerminateOnNaN`` then stops training.
    In a TensorFlow graph without XLA an assertion with ``message`` also runs.

    Args:
        values: per-sample values ``(B,)`` (or any shape ``valid`` broadcasts to).
        valid: boolean mask, False for the samples whose inputs failed a check.
        message: what was expected, for the assertion.
    """
    values = ops.where(valid, values, ops.cast(float("nan"), values.dtype))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(valid), [message])]):
                values = tf.identity(values)
    return values


def check_cosines(name, cosines):
    """Boolean ``(B,)`` mask of rows that hold cosines (within ``[-1, 1]`` ± tolerance).

    Raises ``ValueError`` eagerly when a row does not, e.g. raw logits fed to a
    margin loss; NaN entries pass (NaN in → NaN out).
    """
    outside = ops.abs(cosines) > 1.0 + VALUE_TOLERANCE
    values = static_value(outside)
    if values is not None and values.any():
        largest = float(np.nanmax(np.abs(static_value(cosines))))
        raise ValueError(
            f"`{name}` must hold cosines in [-1, 1] (the output of CosineDense or PEDCCDense), got "
            f"|values| up to {largest:.4g}: were logits passed instead of cosines?"
        )
    return ops.logical_not(ops.any(outside, axis=-1))


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
