"""Cosine-margin losses over :class:`CosineDense` outputs: NPCFace, ArcFace, CosFace.

References in each class; the maths, the scale rule and the decisions: ``docs/cosine_margins.md``.

All three read cosines ``(B, C)`` (unit features × unit class vectors) and
labels, change the target logit of each sample (and, for NPCFace, the hard
negatives), scale by ``s`` and apply softmax cross-entropy. They share one
core (:mod:`keras_losses._margins`) and differ in one small hook each.
"""

import math

import keras
from keras import ops

from keras_losses._checks import as_tensor, check_cosines, check_int, check_number, nan_where_invalid
from keras_losses._loss_base import Loss
from keras_losses._margins import cos_plus_margin, gather_target, label_targets, margin_cross_entropy

HALF_PI = math.pi / 2
INVALID_INPUT = "y_true must hold class indices in [0, C) or exact one-hot rows, y_pred cosines in [-1, 1]"


# Target probability of scale="auto": softmax(s·logits) can reach it for well-separated classes.
AUTO_SCALE_PROBABILITY = 0.999


def auto_scale(num_classes, target_drop=0.0, probability=AUTO_SCALE_PROBABILITY):
    """The smallest scale ``s`` at which a margin softmax can give the target class ``probability``.

    With C classes spread as well as possible (cosine ``−1/(C−1)`` between any two class vectors), a
    feature on its class vector has target logit ``s·(1 − d)`` — ``d`` the margin's drop of the
    target cosine — and negatives ``−s/(C−1)``, so the target probability reaches ``P`` only if

        s ≥ ln((C − 1)·P / (1 − P)) / (C/(C − 1) − d).

    Without a margin (``d = 0``) this is the lower bound on the scale of normalised softmax in
    Wang et al., "NormFace: L2 Hypersphere Embedding for Face Verification" (ACM MM 2017), and of
    the size of the fixed scale ``√2·ln(C − 1)`` of Zhang et al., "AdaCos: Adaptively Scaling
    Cosine Logits for Effectively Learning Deep Face Representations" (CVPR 2019). ``s = 64``, the face-recognition
    default, is meant for 10⁴–10⁶ identities; for 10 classes this gives s ≈ 9–15 instead, which
    trains faster and steadier with SGD (measured on digits: README).

    Args:
        num_classes: C ≥ 2.
        target_drop: the margin's drop ``d`` of an aligned target cosine: CosFace ``m``, ArcFace
            ``1 − cos m``, NPCFace ``1 − cos m0``. Defaults to 0.
        probability: the target probability ``P`` in (0, 1). Defaults to 0.999.

    Returns:
        ``s`` as a Python float.

    Example:

    >>> round(keras_losses.auto_scale(10, target_drop=0.35), 2)   # CosFace, m = 0.35
    11.96
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    target_drop = check_number("target_drop", target_drop, low=0.0)
    probability = check_number("probability", probability, low=0.0, high=1.0, low_open=True, high_open=True)
    room = num_classes / (num_classes - 1) - target_drop
    if room <= 0:
        raise ValueError(
            f"`target_drop` {target_drop} leaves no scale at which the target can win with {num_classes} "
            "classes; give an explicit `scale` or a smaller margin."
        )
    return math.log((num_classes - 1) * probability / (1 - probability)) / room


def _check_margin(name, value):
    return check_number(name, value, low=0.0, high=HALF_PI, high_open=True)


class CosineMarginLoss(Loss):
    """Base of the cosine-margin losses: labels, target gather, scaled CE.

    Subclasses override :meth:`target_logit`, or :meth:`margin_logits` when
    they also change the negatives. ``call`` returns per-sample losses ``(B,)``.

    Args:
        scale: the logit scale ``s > 0``, or ``"auto"``: :func:`auto_scale` for the number of
            classes of ``y_pred`` and this loss's margin.
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:

    A margin-free normalised softmax (NormFace) as a subclass:

    >>> class NormFaceLoss(keras_losses.CosineMarginLoss):
    ...     def target_logit(self, cos_y):
    ...         return cos_y
    >>> loss = NormFaceLoss(scale=10.0)
    >>> round(float(loss([0], [[0.5, 0.3, -0.2]])), 3)      # ln(1 + e^-2 + e^-7)
    0.128
    """

    def __init__(self, scale, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.scale = scale if scale == "auto" else check_number("scale", scale, low=0.0, low_open=True)

    def target_drop(self):
        """How much the margin lowers the target logit of a feature on its class vector (θ_y = 0)."""
        return 0.0

    def scale_for(self, num_classes):
        """The scale ``s`` used with ``num_classes`` classes (``scale``, or :func:`auto_scale`)."""
        if self.scale != "auto":
            return self.scale
        return auto_scale(num_classes, self.target_drop())

    def target_logit(self, cos_y):
        """Margin-adjusted target logit ``(B,)`` from the clipped target cosine."""
        raise NotImplementedError

    def margin_logits(self, cosines, target_mask, cos_y):
        """Returns ``(logits (B, C) before the target is replaced, new target (B,))``."""
        return cosines, self.target_logit(cos_y)

    def targets(self, y_true, y_pred):
        """Validates the inputs; returns ``(boolean one-hot mask (B, C), clipped cos_y (B,), valid (B,))``.

        ``valid`` is False for samples with a bad label or a row outside [-1, 1] (checks that could
        not run when the function was traced); :meth:`call` turns their losses into NaN.
        """
        labels, target_mask, valid = label_targets(y_true, y_pred)
        valid = ops.logical_and(valid, check_cosines("y_pred", y_pred))
        return target_mask, ops.clip(gather_target(y_pred, labels), -1.0, 1.0), valid

    def margin_loss(self, y_pred, target_mask, cos_y):
        """Per-sample margin cross-entropy ``(B,)``."""
        logits, new_target = self.margin_logits(y_pred, target_mask, cos_y)
        return margin_cross_entropy(logits, target_mask, new_target, self.scale_for(y_pred.shape[-1]))

    def call(self, y_true, y_pred):
        y_pred = as_tensor(y_pred)
        target_mask, cos_y, valid = self.targets(y_true, y_pred)
        return nan_where_invalid(self.margin_loss(y_pred, target_mask, cos_y), valid, INVALID_INPUT)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_losses")
class CosFaceLoss(CosineMarginLoss):
    """CosFace / AM-softmax: target logit ``cos θ_y − m``, then ``CE(s·logits)``.

    References: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face
    Recognition" (CVPR 2018); Wang et al., "Additive Margin Softmax" (2018).

    Args:
        scale: ``s``, or ``"auto"`` (:func:`auto_scale`, for few classes). Defaults to 64.0
            (face recognition; AM-softmax used 30).
        margin: additive cosine margin ``m ∈ [0, π/2)``. Defaults to 0.35 (CosFace paper).
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:

    >>> embeddings = keras.Input((16,))                     # features of any backbone
    >>> num_classes = 10
    >>> cosines = keras_losses.CosineDense(num_classes)(embeddings)
    >>> model = keras.Model(embeddings, cosines)
    >>> model.compile("sgd", loss=keras_losses.CosFaceLoss(scale=30.0, margin=0.35))
    """

    def __init__(self, scale=64.0, margin=0.35, reduction="sum_over_batch_size", name="cosface_loss", dtype=None):
        super().__init__(scale, reduction=reduction, name=name, dtype=dtype)
        self.margin = _check_margin("margin", margin)

    def target_logit(self, cos_y):
        return cos_y - self.margin

    def target_drop(self):
        return self.margin

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="keras_losses")
class ArcFaceLoss(CosineMarginLoss):
    """ArcFace: target logit ``cos(θ_y + m)``, then ``CE(s·logits)``.

    Standard form (insightface, pytorch-metric-learning): ``cos(θ+m)`` while
    ``θ + m ≤ π``; beyond, where ``cos(θ+m)`` would start to increase again,
    ``cos θ − m·sin m`` keeps the penalty monotone.

    Reference: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition" (CVPR 2019).

    Args:
        scale: ``s``, or ``"auto"`` (:func:`auto_scale`, for few classes). Defaults to 64.0 (ArcFace paper).
        margin: additive angular margin ``m ∈ [0, π/2)``. Defaults to 0.5 (ArcFace paper).
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:

    >>> embeddings = keras.Input((16,))                     # features of any backbone
    >>> model = keras.Model(embeddings, keras_losses.CosineDense(1000)(embeddings))
    >>> model.compile("sgd", loss=keras_losses.ArcFaceLoss(scale=64.0, margin=0.5))
    """

    def __init__(self, scale=64.0, margin=0.5, reduction="sum_over_batch_size", name="arcface_loss", dtype=None):
        super().__init__(scale, reduction=reduction, name=name, dtype=dtype)
        self.margin = _check_margin("margin", margin)

    def target_drop(self):
        return 1.0 - math.cos(self.margin)

    def target_logit(self, cos_y):
        # θ + m ≤ π  ⇔  cos θ ≥ cos(π − m) = −cos m
        return ops.where(
            cos_y >= -math.cos(self.margin),
            cos_plus_margin(cos_y, self.margin),
            cos_y - self.margin * math.sin(self.margin),
        )

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="keras_losses")
class NPCFaceLoss(CosineMarginLoss):
    """NPCFace: cooperative positive margin plus hard-negative emphasis.

    For each sample with target cosine ``c = cos θ_y``:

    1. hard negatives ``M_j = [cos_j > cos(θ_y + m_mask)]``, ``j ≠ y`` (no gradient);
    2. cooperative margin ``m̃ = m0 + m1 · mean_{j∈M} cos_j`` (``m0`` if no hard
       negative; no gradient), eq. 11;
    3. target logit ``cos(θ_y + m̃)`` if ``c > 0`` else ``c`` (the authors' guard), eq. 12;
    4. negative logits ``t·cos_j + α`` on hard negatives, ``cos_j`` elsewhere, eq. 10;
    5. ``CE(s·logits)``.

    Reference: Zeng, Shi, Du, Wang, Lei, Mei, "NPCFace: A Negative-Positive
    Cooperation Supervision for Training Large-scale Face Recognition".

    Defaults: ``t=1.1, α=0.25, m0=0.4, m1=0.2`` are the paper's (§V-A);
    ``s=64`` comes from the authors' code. The paper never names the mask
    margin; ``mask_margin=None`` uses ``m0``. The authors' public code differs:
    it uses a separate mask margin (0.5 in code, 0.35 in its config) and α=0.2.
    ``m1 = 0, t = 1, α = 0`` reduces NPCFace to ArcFace with the ``c > 0`` guard.

    Args:
        scale: ``s > 0``, or ``"auto"`` (:func:`auto_scale`, for few classes). Defaults to 64.0.
        m0: base margin in ``[0, π/2)``. Defaults to 0.4.
        m1: cooperative margin range in ``[0, π/2)``, with ``m0 + m1 < π/2``. Defaults to 0.2.
        t: multiplicative negative emphasis ``t ≥ 1``. Defaults to 1.1.
        alpha: additive negative emphasis ``α ≥ 0``. Defaults to 0.25.
        mask_margin: margin of the hard-negative rule in ``[0, π/2)``; None means ``m0``.
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:

    >>> embeddings = keras.Input((16,))                     # features of any backbone
    >>> num_identities = 1000
    >>> cosines = keras_losses.CosineDense(num_identities)(embeddings)
    >>> model = keras.Model(embeddings, cosines)
    >>> model.compile("sgd", loss=keras_losses.NPCFaceLoss())
    """

    def __init__(
        self,
        scale=64.0,
        m0=0.4,
        m1=0.2,
        t=1.1,
        alpha=0.25,
        mask_margin=None,
        reduction="sum_over_batch_size",
        name="npcface_loss",
        dtype=None,
    ):
        super().__init__(scale, reduction=reduction, name=name, dtype=dtype)
        self.m0 = _check_margin("m0", m0)
        self.m1 = _check_margin("m1", m1)
        if self.m0 + self.m1 >= HALF_PI:
            raise ValueError(f"`m1` must keep m0 + m1 < π/2, got m0={m0}, m1={m1}.")
        self.t = check_number("t", t, low=1.0)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.mask_margin = None if mask_margin is None else _check_margin("mask_margin", mask_margin)

    def target_drop(self):
        return 1.0 - math.cos(self.m0)  # no hard negatives once the classes are apart: m̃ = m0

    def margin_logits(self, cosines, target_mask, cos_y):
        mask_margin = self.m0 if self.mask_margin is None else self.mask_margin
        threshold = cos_plus_margin(cos_y, mask_margin)
        hard = ops.logical_and(cosines > threshold[:, None], ops.logical_not(target_mask))
        logits = ops.where(hard, self.t * cosines + self.alpha, cosines)

        hard_count = ops.sum(ops.cast(hard, cosines.dtype), axis=-1)
        hard_mean = ops.sum(ops.where(hard, cosines, 0.0), axis=-1) / ops.maximum(hard_count, 1.0)
        margin = ops.stop_gradient(self.m0 + self.m1 * hard_mean)
        target = ops.where(cos_y > 0, cos_plus_margin(cos_y, margin), cos_y)
        return logits, target

    def get_config(self):
        return {
            **super().get_config(),
            "m0": self.m0,
            "m1": self.m1,
            "t": self.t,
            "alpha": self.alpha,
            "mask_margin": self.mask_margin,
        }
