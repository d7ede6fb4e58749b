"""GSC — Gaussian Score Calibrating loss.

Reference: Zhao, Jiang, Dou, Zhao, Ji, Wang, "GSC Loss: A Gaussian Score Calibrating Loss for Deep
Learning" (preprint, 2022). The maths as implemented, the paper's ambiguities and what we chose:
``docs/gsc.md`` in the repository.
The loss adds ``γ·f`` to cross-entropy,
where ``f`` is the density of the top-``k`` softmax scores under an isotropic
Gaussian centred at 0 whose standard deviation is the prediction's entropy:

    S = softmax(z),  E = -Σ_j S_j ln S_j,  σ = E / ln C  (or σ = E),
    K = top_k(S, k),  f = (2πσ²)^(-k/2) · exp(-‖K‖² / (2σ²)),
    L = CE(S, y) + γ·f.

Confident, low-entropy predictions make ``f`` collapse to 0, so the term
stops pushing them further; uncertain predictions get a steady gradient.
"""

import math

import keras
from keras import ops

from keras_losses._loss_base import Loss
from keras_losses._checks import (
    as_tensor,
    check_batch_match,
    check_int,
    check_number,
    check_probability_rows,
    check_scores,
    class_probabilities,
    nan_where_invalid,
)

INVALID_INPUT = (
    "y_true must hold class indices in [0, C) or probability rows; with from_logits=False, y_pred "
    "probability rows"
)

# σ is floored so that a one-hot prediction (E = 0) gives f = exp(-huge) = 0
# instead of inf·0. In float32, ‖K‖²/(2σ²) ≈ 5e11 at the floor: finite, and its
# exponential underflows cleanly to 0 with a zero gradient.
SIGMA_FLOOR = 1e-6
# Smallest probability used inside logarithms when `from_logits=False`.
PROB_EPSILON = 1e-7


def _log_probabilities(y_pred, from_logits):
    """Log-probabilities and the ``(B,)`` mask of valid rows (probability rows when ``from_logits=False``)."""
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1), ops.ones(ops.shape(y_pred)[:1], "bool")
    valid = check_probability_rows("y_pred", y_pred)
    probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    return ops.log(ops.clip(probs, PROB_EPSILON, 1.0)), valid


def _focal_weights(log_probs, focal_gamma):
    """``(1 − p)^η`` elementwise, with the exact derivative 0 (not NaN) where ``p`` rounds to 1.

    ``1 − p`` is ``−expm1(ln p)``, exact for ``p`` near 1. For ``0 < η < 1`` the
    derivative of ``q^η`` is infinite at ``q = 0`` and times 0 gives NaN; the
    loss ``q^η·(−ln p)`` has derivative 0 there, which the double ``where`` yields.
    """
    if focal_gamma == 0:
        return 1.0
    one_minus_p = -ops.expm1(log_probs)
    positive = one_minus_p > 0
    safe = ops.where(positive, one_minus_p, ops.ones_like(one_minus_p))
    return ops.where(positive, ops.power(safe, focal_gamma), ops.zeros_like(one_minus_p))


def _check_top_k(top_k, num_classes):
    check_int("top_k", top_k, low=1)
    if top_k > num_classes:
        raise ValueError(
            f"`top_k` must be in [1, num_classes={num_classes}], got {top_k}."
        )


def _gsc_from_log_probs(log_probs, top_k, normalize_entropy, stop_gradient_sigma):
    num_classes = log_probs.shape[-1]
    probs = ops.exp(log_probs)
    entropy = -ops.sum(probs * log_probs, axis=-1)
    sigma = entropy / math.log(num_classes) if normalize_entropy else entropy
    if stop_gradient_sigma:
        sigma = ops.stop_gradient(sigma)
    sigma = ops.maximum(sigma, SIGMA_FLOOR)
    top_scores, _ = ops.top_k(probs, k=top_k, sorted=False)
    squared_norm = ops.sum(ops.square(top_scores), axis=-1)
    log_density = (
        -0.5 * top_k * math.log(2.0 * math.pi)
        - top_k * ops.log(sigma)
        - squared_norm / (2.0 * ops.square(sigma))
    )
    return ops.exp(log_density)


def gsc_penalty(
    y_pred,
    top_k=2,
    from_logits=True,
    normalize_entropy=True,
    stop_gradient_sigma=False,
):
    """Label-free GSC calibration term ``f`` per sample (paper eq. 5-9, §4.4).

    Needs no labels, so it can regularise predictions on unlabeled data.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), shape ``(B, C)``.
        top_k: number of top scores ``K`` probed (the paper's ``top_c``), in ``[1, C]``.
            Defaults to 2.
        from_logits: whether ``y_pred`` holds logits. Defaults to True.
        normalize_entropy: ``σ = E / ln C`` (eq. 8, default) or ``σ = E``
            (what the paper's Table 8 uses).
        stop_gradient_sigma: treat σ as a constant in the backward pass.
            Defaults to False (gradient flows through σ and ``K``).

    Returns:
        Tensor ``(B,)`` of densities ``f`` (not multiplied by γ).

    Example:

    >>> logits = keras.ops.array([[2.0, 1.0, 0.1]])
    >>> f = keras_losses.gsc_penalty(logits, top_k=2)
    >>> round(float(f[0]), 4)
    0.1769
    """
    y_pred = as_tensor(y_pred)
    num_classes = check_scores("y_pred", y_pred)
    _check_top_k(top_k, num_classes)
    log_probs, valid = _log_probabilities(y_pred, from_logits)
    penalty = _gsc_from_log_probs(log_probs, top_k, normalize_entropy, stop_gradient_sigma)
    return nan_where_invalid(penalty, valid, "y_pred must hold probability rows with from_logits=False")


def gsc_loss(
    y_true,
    y_pred,
    gamma=0.01,
    top_k=2,
    from_logits=True,
    normalize_entropy=True,
    label_smoothing=0.0,
    focal_gamma=None,
    stop_gradient_sigma=False,
):
    """Per-sample GSC loss ``base(y, S) + γ·f`` (paper eq. 9, eq. 18 for focal).

    Args:
        y_true: integer labels ``(B,)``/``(B, 1)`` or target probability rows ``(B, C)``
            (one-hot or soft: mixup, CutMix, smoothed).
        y_pred: logits (or probability rows with ``from_logits=False``) ``(B, C)``.
        gamma, top_k, from_logits, normalize_entropy, label_smoothing,
        focal_gamma, stop_gradient_sigma: see :class:`GSCLoss`.

    Returns:
        Tensor ``(B,)``.

    Example:

    >>> y_true = np.array([0, 2])
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 0.2, 3.0]], dtype="float32")
    >>> loss = keras_losses.gsc_loss(y_true, logits, gamma=0.01, top_k=2)
    >>> [round(float(v), 3) for v in loss]
    [0.419, 0.135]
    """
    _check_gsc_args(gamma, top_k, label_smoothing, focal_gamma)  # the checks GSCLoss makes
    y_pred = as_tensor(y_pred)
    num_classes = check_scores("y_pred", y_pred)
    _check_top_k(top_k, num_classes)
    log_probs, valid_scores = _log_probabilities(y_pred, from_logits)
    target, valid = class_probabilities(y_true, num_classes, log_probs.dtype)
    check_batch_match("y_true", target, y_pred)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    if focal_gamma is not None:
        target = target * _focal_weights(log_probs, focal_gamma)
    loss = -ops.sum(target * log_probs, axis=-1)
    if gamma:
        loss = loss + gamma * _gsc_from_log_probs(log_probs, top_k, normalize_entropy, stop_gradient_sigma)
    return nan_where_invalid(loss, ops.logical_and(valid, valid_scores), INVALID_INPUT)


def _at_least_float32(x):
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def _check_gsc_args(gamma, top_k, label_smoothing=0.0, focal_gamma=None):
    check_number("gamma", gamma, low=0.0)
    check_int("top_k", top_k, low=1)
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    if focal_gamma is not None:
        check_number("focal_gamma", focal_gamma, low=0.0)


@keras.saving.register_keras_serializable(package="keras_losses")
class GSCLoss(Loss):
    """Gaussian Score Calibrating loss: cross-entropy plus ``γ·f``.

    ``f = Π_{i≤k} N(K_i; 0, σ²)`` is the Gaussian density of the top-``k``
    softmax scores ``K`` with σ the (normalised) prediction entropy, computed
    in log space so one-hot predictions give ``f = 0`` instead of NaN.

    Args:
        gamma: weight γ ≥ 0 of the calibration term. Defaults to 0.01 (the
            paper starts every experiment there; it reports γ ∈ [0.005, 2]).
        top_k: number of top scores probed, ``1 ≤ top_k ≤ C``. Defaults to 2
            (the paper uses 2 or 3; up to 11 on ImageNet-scale problems).
        from_logits: whether ``y_pred`` holds logits. Defaults to True.
        normalize_entropy: ``σ = E / ln C`` (paper eq. 8, default). With False,
            ``σ = E``, which reproduces the paper's appendix Table 8.
        label_smoothing: smoothing ε of the cross-entropy target. Defaults to 0.
        focal_gamma: if set, the base term is the focal loss
            ``Σ_j t_j (1 − p_j)^η (−ln p_j)`` with ``η = focal_gamma``, which for
            a one-hot target is ``(1 − p_y)^η · CE`` (paper eq. 18) and for soft or
            smoothed targets Keras' ``CategoricalFocalCrossentropy(alpha=1)`` form.
        stop_gradient_sigma: treat σ as constant in the backward pass (the
            paper does so only to simplify a derivation). Defaults to False.
        reduction: Keras reduction. Defaults to ``"sum_over_batch_size"``.
        name: loss name. Defaults to ``"gsc_loss"``.
        dtype: dtype of the computation. Defaults to float32 (Keras' default),
            also under mixed precision.

    Labels may be integer ``(B,)``/``(B, 1)`` or probability rows ``(B, C)``:
    one-hot, or soft targets (mixup, CutMix, smoothed), which the cross-entropy
    uses as they are, like Keras' ``CategoricalCrossentropy`` (the ``f`` term
    needs no labels). A label outside ``[0, C)``, a non-integer index or a row
    that is not a probability vector raises ``ValueError`` when the labels are
    concrete, and makes that sample's loss NaN inside compiled functions (XLA
    cannot raise), so ``keras.callbacks.TerminateOnNaN`` stops the run. With
    ``from_logits=False``, ``y_pred`` rows must be probability vectors too.

    Example:

    >>> inputs = keras.Input((8,))
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(inputs))   # outputs logits
    >>> model.compile(optimizer="adam", loss=keras_losses.GSCLoss(gamma=0.01, top_k=2))

    Note: the paper's eq. 17 and Table 8's ``f'`` column are mis-derived
    (``1 - p`` should be ``1 - 2p``); the gradients here are the exact ones.
    """

    def __init__(
        self,
        gamma=0.01,
        top_k=2,
        from_logits=True,
        normalize_entropy=True,
        label_smoothing=0.0,
        focal_gamma=None,
        stop_gradient_sigma=False,
        reduction="sum_over_batch_size",
        name="gsc_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        _check_gsc_args(gamma, top_k, label_smoothing, focal_gamma)
        self.gamma = gamma
        self.top_k = top_k
        self.from_logits = from_logits
        self.normalize_entropy = normalize_entropy
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma
        self.stop_gradient_sigma = stop_gradient_sigma

    def call(self, y_true, y_pred):
        return gsc_loss(
            y_true,
            y_pred,
            gamma=self.gamma,
            top_k=self.top_k,
            from_logits=self.from_logits,
            normalize_entropy=self.normalize_entropy,
            label_smoothing=self.label_smoothing,
            focal_gamma=self.focal_gamma,
            stop_gradient_sigma=self.stop_gradient_sigma,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            gamma=self.gamma,
            top_k=self.top_k,
            from_logits=self.from_logits,
            normalize_entropy=self.normalize_entropy,
            label_smoothing=self.label_smoothing,
            focal_gamma=self.focal_gamma,
            stop_gradient_sigma=self.stop_gradient_sigma,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_losses")
class GSCRegularizer(keras.regularizers.Regularizer):
    """The label-free GSC term as an activity regulariser (paper §4.4).

    Attach it to the layer that outputs logits; Keras adds ``γ · mean_i f_i``
    to the training loss whether or not the batch has labels, which is how
    the paper uses GSC on unlabeled data (e.g. unsupervised segmentation,
    where it reports γ ∈ [0.1, 0.5] and top_k ∈ {7, 9}).

    Args:
        gamma: weight γ ≥ 0. Defaults to 0.1.
        top_k: number of top scores probed. Defaults to 2.
        from_logits: whether the activity holds logits. Defaults to True.
        normalize_entropy: see :class:`GSCLoss`. Defaults to True.
        stop_gradient_sigma: see :class:`GSCLoss`. Defaults to False.

    Example:

    >>> inputs = keras.Input((8,))
    >>> gsc = keras_losses.GSCRegularizer(0.1, top_k=7)
    >>> logits = keras.layers.Dense(10, activity_regularizer=gsc)(inputs)
    >>> model = keras.Model(inputs, logits)
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    >>> history = model.fit(x, epochs=1, verbose=0)   # no labels: the loss is the GSC term
    """

    def __init__(
        self,
        gamma=0.1,
        top_k=2,
        from_logits=True,
        normalize_entropy=True,
        stop_gradient_sigma=False,
    ):
        _check_gsc_args(gamma, top_k)
        self.gamma = gamma
        self.top_k = top_k
        self.from_logits = from_logits
        self.normalize_entropy = normalize_entropy
        self.stop_gradient_sigma = stop_gradient_sigma

    def __call__(self, x):
        # Keras divides an activity regulariser by the batch size: return the sum.
        penalty = gsc_penalty(
            _at_least_float32(x),
            top_k=self.top_k,
            from_logits=self.from_logits,
            normalize_entropy=self.normalize_entropy,
            stop_gradient_sigma=self.stop_gradient_sigma,
        )
        return self.gamma * ops.sum(penalty)

    def get_config(self):
        return {
            "gamma": self.gamma,
            "top_k": self.top_k,
            "from_logits": self.from_logits,
            "normalize_entropy": self.normalize_entropy,
            "stop_gradient_sigma": self.stop_gradient_sigma,
        }
