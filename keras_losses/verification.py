"""Verification metrics for embedding pairs: ROC and TAR at a fixed FAR.

A face-recognition model is judged on pairs of embeddings: a pair is
accepted when its cosine score exceeds a threshold. FAR is the fraction of
different-identity pairs accepted, TAR the fraction of same-identity pairs
accepted. These are NumPy functions for evaluation, not graph ops.
"""

import numpy as np


def _check_pairs(scores, same):
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same)
    if scores.ndim != 1:
        raise ValueError(f"`scores` must be 1-D (one score per pair), got shape {scores.shape}.")
    if same.shape != scores.shape:
        raise ValueError(f"`same` must have the shape of `scores` {scores.shape}, got {same.shape}.")
    if same.dtype != bool:
        if not np.isin(same, (0, 1)).all():
            raise ValueError("`same` must be boolean (or 0/1): True for same-identity pairs.")
        same = same.astype(bool)
    if not np.isfinite(scores).all():
        raise ValueError("`scores` must be finite.")
    if same.all() or not same.any():
        raise ValueError("`same` must contain both same-identity and different-identity pairs.")
    return scores, same


def roc_curve(scores, same):
    """ROC of a verification set: FAR and TAR at every distinct threshold.

    A pair is accepted when ``score > threshold``. Thresholds run from above
    the highest score (nothing accepted) down through every distinct score.

    Args:
        scores: ``(P,)`` similarity of each pair (e.g. cosine of the two embeddings).
        same: ``(P,)`` bool, True for same-identity pairs.

    Returns:
        ``(far, tar, thresholds)``, each ``(T,)``, FAR increasing.

    Example:

    >>> scores = np.array([0.9, 0.8, 0.4, 0.3, 0.1])          # cosine of each pair
    >>> same = np.array([True, False, True, False, False])
    >>> far, tar, thresholds = keras_losses.roc_curve(scores, same)
    >>> far.round(3).tolist(), tar.tolist()
    ([0.0, 0.0, 0.333, 0.333, 0.667, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    """
    scores, same = _check_pairs(scores, same)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order]
    # Cut only between distinct scores: ties are accepted or rejected together.
    last_of_value = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_accepts = np.cumsum(sorted_same)[last_of_value]
    false_accepts = np.cumsum(~sorted_same)[last_of_value]
    distinct = sorted_scores[last_of_value]
    # Accepting everything down to distinct[i] means the threshold lies just below it,
    # i.e. at the next distinct score (or -inf after the last one).
    thresholds = np.r_[np.nextafter(distinct[0], np.inf), distinct[1:], -np.inf]
    far = np.r_[0.0, false_accepts / (~same).sum()]
    tar = np.r_[0.0, true_accepts / same.sum()]
    return far, tar, thresholds


def tar_at_far(scores, same, far=1e-3):
    """True-accept rate at the best threshold whose false-accept rate is ≤ ``far``.

    Args:
        scores: ``(P,)`` similarity of each pair.
        same: ``(P,)`` bool, True for same-identity pairs.
        far: the allowed false-accept rate in ``[0, 1]``. The paper reports 1e-3 and 1e-4
            (and 1e-5/1e-6 on large benchmarks); with N different-identity pairs, rates
            below 1/N can only be met by accepting no negative at all.

    Returns:
        ``(tar, threshold)``: the TAR and the threshold (accept ``score > threshold``).

    Example:

    >>> scores = np.array([0.9, 0.8, 0.4, 0.3, 0.1])          # cosine of each pair
    >>> same = np.array([True, False, True, False, False])
    >>> tar, threshold = keras_losses.tar_at_far(scores, same, far=1e-4)
    >>> tar, threshold                      # accept score > 0.8: one of two genuine pairs
    (0.5, 0.8)
    """
    if isinstance(far, (bool, np.bool_)) or not isinstance(far, (int, float, np.integer, np.floating)) or not (
            0.0 <= float(far) <= 1.0):
        raise ValueError(f"`far` must be a number in [0, 1], got {far!r}.")
    far = float(far)
    far_curve, tar_curve, thresholds = roc_curve(scores, same)
    allowed = np.flatnonzero(far_curve <= far + 1e-15)
    best = allowed[-1]  # FAR is increasing, and so is TAR: the last allowed point is best
    return float(tar_curve[best]), float(thresholds[best])
