"""Shared cosine-margin core: target gather, safe cos(θ+m), scaled CE.

Every cosine-margin loss changes the target logit of each sample (B values)
and, for NPCFace/MV-softmax, re-weights some negatives with one masked
select. Nothing here takes ``acos`` or builds more than ``O(B·C)``.
"""

import math

from keras import ops

from keras_losses._checks import check_batch_match, check_scores, class_labels

# Floor of sin²θ: keeps d sinθ/d cosθ = -cosθ/sinθ finite at |cosθ| = 1.
SIN_SQUARED_EPSILON = 1e-7
# Stands in for -inf where the target column is left out of a log-sum-exp: exp of it is 0,
# and unlike -inf it cannot make a NaN if a row were entirely excluded.
EXCLUDED_LOGIT = -1e30


def label_targets(y_true, y_pred):
    """Validates labels against scores ``(B, C)``.

    Returns:
        ``(labels (B,), boolean one-hot (B, C), valid (B,))``; see :func:`class_labels` for ``valid``.
    """
    num_classes = check_scores("y_pred", y_pred)
    labels, valid = class_labels(y_true, num_classes)
    check_batch_match("y_true", labels, y_pred)
    return labels, ops.arange(num_classes, dtype="int32")[None, :] == labels[:, None], valid


def gather_target(scores, labels):
    """Gathers each row's target score ``s_{i, y_i}`` → ``(B,)`` (unclipped): B reads, not a pass over B×C."""
    return ops.take_along_axis(scores, labels[:, None], axis=-1)[:, 0]


def cos_plus_margin(cos_theta, margin):
    """``cos(θ + m) = cosθ·cos m − sinθ·sin m`` without ``acos``.

    ``cos_theta`` is clipped to [-1, 1]; ``sinθ = sqrt(max(1 − cos²θ, ε))`` so
    the gradient stays finite at ``|cosθ| = 1``. ``margin`` may be a Python
    float or a per-sample tensor.
    """
    cos_theta = ops.clip(cos_theta, -1.0, 1.0)
    sin_theta = ops.sqrt(ops.maximum(1.0 - ops.square(cos_theta), SIN_SQUARED_EPSILON))
    if isinstance(margin, (int, float)):
        cos_margin, sin_margin = math.cos(margin), math.sin(margin)
    else:
        cos_margin, sin_margin = ops.cos(margin), ops.sin(margin)
    return cos_theta * cos_margin - sin_theta * sin_margin


def margin_cross_entropy(logits, target_mask, new_target, scale):
    """Per-sample softmax cross-entropy of ``s·logits`` with the target logit replaced.

    Written as ``softplus(LSE_{j≠y}(s·logits_j) − s·new_target)``, which equals
    ``logsumexp(s·logits') − s·new_target``: the log-sum-exp over the negatives
    is a reduction of the same elementwise expression as any mask statistics
    a loss takes over the row, so XLA fuses them into one pass over B×C, and
    the target enters only through B scalars.

    Args:
        logits: ``(B, C)`` cosine logits, possibly with re-weighted negatives.
        target_mask: ``(B, C)`` boolean one-hot of the labels.
        new_target: ``(B,)`` margin-adjusted target logits.
        scale: the scale ``s``.

    Returns:
        ``(B,)`` per-sample losses.
    """
    negatives = ops.where(target_mask, EXCLUDED_LOGIT, scale * logits)
    return ops.softplus(ops.logsumexp(negatives, axis=-1) - scale * new_target)
