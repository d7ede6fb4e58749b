"""ICU — intra-class uncertainty loss: Gaussian class head, margins, variance regulariser.

Reference: Zhu, Yu, "Intra-Class Uncertainty Loss Function for Classification"; details in
``docs/icu.md``. Each class ``k`` is a diagonal Gaussian
``N(μ_k, diag(σ²_k))``; a sample's decision distance (eq. 9) is

    d_ik = ½ [ Σ_d (x_id − μ_kd)² / σ²_kd + Σ_d ln σ²_kd ],

so the class uncertainty ``ln|Σ_k|`` takes part in the decision. Three pieces:

- :class:`GaussianClassHead` owns ``μ`` and ``ln σ²`` and outputs the
  margin-free logits ``−d`` ``(B, C)``. Given labels while training, it also
  computes the moment-matching regulariser of eq. 14, which its
  :class:`~keras_losses.BatchTermModel` adds to the loss.
- :class:`ICULoss` applies the inter-class margin ``α`` and intra-class margin
  ``γ`` to the target logit (eq. 17–18), then softmax cross-entropy.
- :func:`build_icu_model` wraps any feature extractor into a model whose labels
  are an *optional* second input, so one model trains with labels and predicts
  without them.

The authors' code (``kratos236/ICU-loss``) differs from the paper and is **not**
followed here: its distance sums ``x²/σ²`` over all classes (a bug that changes
predictions), it halves the log-determinant term, its intra-class margin is
multiplicative (``(1+γ)·ln|Σ|`` rather than ``ln|Σ| + ln(1+γ)``), and it replaces
eq. 14 by a per-sample centre term plus an L1 variance term. (In its published
``classification/models/ICUNormClassifier.py`` that variance classifier is
commented out; the active one uses a plain Euclidean distance, the ``α``
margin and a centre term.) This module implements the paper.
"""

import math
import threading

import keras
from keras import ops

from keras_losses._checks import (
    as_tensor,
    check_batch_match,
    check_int,
    check_number,
    class_labels,
    head_dtype,
    nan_where_invalid,
)
from keras_losses._distribute import cross_replica_sum
from keras_losses._loss_base import Loss
from keras_losses._margins import gather_target, label_targets, margin_cross_entropy
from keras_losses.batch_term_model import BatchTermModel

INVALID_LABELS = "labels must be class indices in [0, C) or exact one-hot rows"


def gaussian_distances(features, means, log_variances):
    """Decision distances ``d_ik`` (eq. 9) → ``(B, C)``.

    The squared term is computed directly, ``Σ_d (x_id − μ_kd)² · exp(−ln σ²_kd)``,
    never through the expanded square ``x² − 2xμ + μ²``, which cancels
    catastrophically in float32 when ``x`` is close to ``μ_k``. This builds a
    ``(B, C, D)`` intermediate (fused by XLA).

    Args:
        features: ``(B, D)``.
        means: ``(C, D)``.
        log_variances: ``(C, D)``, ``ln σ²``.
    """
    inverse_variances = ops.exp(-log_variances)
    differences = features[:, None, :] - means[None, :, :]
    mahalanobis = ops.sum(ops.square(differences) * inverse_variances[None, :, :], axis=-1)
    log_determinants = ops.sum(log_variances, axis=-1)
    return 0.5 * (mahalanobis + log_determinants[None, :])


def icu_regularizer(features, labels, means, log_variances, lambda_mu, lambda_sigma, num_classes):
    """Eq. 14 over the classes present in the **global** batch → scalar.

    ``λ_μ Σ_k ‖μ_k − μ̄_k‖² + λ_σ Σ_k ‖σ²_k − σ̄²_k‖²`` with per-dimension batch
    moments ``μ̄_k = mean{x_i : y_i = k}`` and ``σ̄²_k = mean{(x_i − μ_k)² : y_i = k}``
    (eq. 13, around the parameter ``μ_k``). Per-class sums and counts are
    all-reduced over the replicas before dividing, so every replica gets the
    single-device value for the same global batch. One-hot matmuls, no
    data-dependent shapes (XLA-safe). Gradients flow to the features, the
    means and the log-variances.

    Args:
        features: ``(B, D)`` float.
        labels: ``(B,)`` int32 class indices.
        means, log_variances: ``(C, D)``.
        lambda_mu, lambda_sigma: the weights ``λ_μ``, ``λ_σ``.
        num_classes: ``C``.
    """
    one_hot = ops.one_hot(labels, num_classes, dtype=features.dtype)  # (B, C)
    class_means_per_sample = ops.matmul(one_hot, means)  # μ_{y_i}, (B, D)
    squared_deviations = ops.square(features - class_means_per_sample)
    sums = ops.matmul(ops.transpose(one_hot), features)  # (C, D)
    squared_sums = ops.matmul(ops.transpose(one_hot), squared_deviations)  # (C, D)
    counts = ops.sum(one_hot, axis=0)  # (C,)
    sums, squared_sums, counts = cross_replica_sum([sums, squared_sums, counts])
    present = ops.cast(counts > 0, features.dtype)
    denominators = ops.maximum(counts, 1.0)[:, None]
    batch_means = sums / denominators
    batch_variances = squared_sums / denominators
    mean_term = ops.sum(ops.square(means - batch_means), axis=-1)
    variance_term = ops.sum(ops.square(ops.exp(log_variances) - batch_variances), axis=-1)
    return ops.sum(present * (lambda_mu * mean_term + lambda_sigma * variance_term))


@keras.saving.register_keras_serializable(package="keras_losses")
class GaussianClassHead(keras.layers.Layer):
    """Per-class diagonal Gaussians; outputs margin-free logits ``−d_ik`` (ICU, eq. 9).

    Weights ``means`` ``(C, D)`` (``μ_k``) and ``log_variances`` ``(C, D)``
    (``ln σ²_k``, initialised to 0, i.e. unit variances). The output
    ``−d_ik = −½[Σ_d (x_id − μ_kd)²/σ²_kd + Σ_d ln σ²_kd]`` is the
    class-conditional Gaussian log-density up to a constant, so
    ``argmax`` is the maximum-likelihood class and softmax of the output is
    the posterior under equal priors (eq. 6–8). The head computes in float32
    under mixed precision (``exp(−ln σ²)`` overflows in float16).

    **Regulariser (eq. 14).** ``call(features, labels, training=True)`` computes
    ``λ_μ Σ_k ‖μ_k − μ̄_k‖² + λ_σ Σ_k ‖σ²_k − σ̄²_k‖²``, which the model adds
    to the loss once per step — the model must be a
    :class:`~keras_losses.BatchTermModel` (a plain ``keras.Model`` raises a
    ``ValueError`` when trained with labels rather than silently dropping it) —
    summed over the classes present in the batch, with per-dimension moments
    ``μ̄_k`` (class mean of the features) and ``σ̄²_k`` (class mean of
    ``(x − μ_k)²``, eq. 13) of the **global** batch: under ``tf.distribute``
    the per-class sums and counts are all-reduced, so 1 and N replicas give the
    same value and gradients. Without labels, or outside training (``predict``,
    ``evaluate``: the validation loss has no regulariser), nothing is added.
    Gradients of the regulariser reach the features too (the batch moments are
    not stopped), as well as ``μ`` and ``ln σ²``. The model divides the term by
    the number of replicas, as Keras divides mean losses; the reported ``loss``
    equals the single-device value. Sample weights do not weight it.

    The paper adds the regulariser because the variances converge poorly
    through ``ln|Σ|`` in the cross-entropy alone (§3.2). The learned variances
    are those of the *features*: a jointly trained backbone may reshape the
    classes' spreads (``models/icu_demo.py`` shows the head recovering the
    ranking of known spreads).

    Cost: the distance builds a ``(B, C, D)`` intermediate (fused under XLA),
    the regulariser three ``(C, B) × (B, D)`` matmuls.

    Differences from the authors' code (``kratos236/ICU-loss``), not followed:
    its distance sums ``x²/σ²`` over all classes (a bug that changes
    predictions) and halves the log-determinant; its regulariser is a
    per-sample centre term plus an L1 variance term instead of eq. 14.

    Args:
        num_classes: C ≥ 2.
        lambda_mu: ``λ_μ ≥ 0``, weight of the mean term. Defaults to 0.1 (paper §4.1).
        lambda_sigma: ``λ_σ ≥ 0``, weight of the variance term. Defaults to 0.1 (paper §4.1).
        means_initializer: initializer of ``μ``. Defaults to a standard normal
            (``keras.initializers.RandomNormal(stddev=1.0)``, as the authors'
            code): the classes start apart. With means near the origin
            (Keras' ``"random_normal"``, stddev 0.05) the eq. 14 regulariser
            pulls every class's features onto nearly the same point before the
            means can separate, and a jointly trained backbone collapses
            (digits, small CNN, 8 epochs: test accuracy 0.18 instead of 0.93).
        log_variances_initializer: initializer of ``ln σ²``. Defaults to
            ``"zeros"`` (σ² = 1, as the paper).
        **kwargs: base layer arguments. ``dtype`` defaults to float32 under a
            mixed-precision policy.

    Input: ``features`` ``(B, D)`` and optional ``labels`` — ``(B,)``,
    ``(B, 1)`` integer class indices or one-hot ``(B, C)``.

    Example:

    >>> images = keras.Input((8,), name="image")
    >>> labels = keras.Input((), dtype="int32", name="label", optional=True)
    >>> backbone = keras.layers.Dense(4)                  # any feature extractor
    >>> features = backbone(images)
    >>> logits = keras_losses.GaussianClassHead(3)(features, labels)
    >>> model = keras_losses.BatchTermModel({"image": images, "label": labels}, logits)
    >>> model.compile("adam", loss=keras_losses.ICULoss())
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 8)).astype("float32")
    >>> y = rng.integers(0, 3, size=8).astype("int32")
    >>> history = model.fit({"image": x, "label": y}, y, batch_size=8, epochs=1, verbose=0)
    >>> model.predict({"image": x, "label": None}, verbose=0).shape
    (8, 3)

    (:func:`build_icu_model` builds exactly this.)
    """

    def __init__(
        self,
        num_classes,
        lambda_mu=0.1,
        lambda_sigma=0.1,
        means_initializer=None,
        log_variances_initializer="zeros",
        **kwargs,
    ):
        kwargs["dtype"] = head_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.lambda_mu = check_number("lambda_mu", lambda_mu, low=0.0)
        self.lambda_sigma = check_number("lambda_sigma", lambda_sigma, low=0.0)
        self.means_initializer = (
            keras.initializers.RandomNormal(stddev=1.0) if means_initializer is None
            else keras.initializers.get(means_initializer)
        )
        self.log_variances_initializer = keras.initializers.get(log_variances_initializer)
        # Set by the BatchTermModel that adds this head's regulariser to the loss.
        self.batch_term_consumer = False
        self._batch_terms = {}  # regulariser by thread id, see pop_batch_term

    def build(self, features_shape, labels_shape=None):
        features_shape = tuple(features_shape)
        _check_features_shape(features_shape)
        dim = features_shape[-1]
        self.means = self.add_weight(
            name="means", shape=(self.num_classes, dim), initializer=self.means_initializer
        )
        self.log_variances = self.add_weight(
            name="log_variances", shape=(self.num_classes, dim), initializer=self.log_variances_initializer
        )

    def call(self, features, labels=None, training=None):
        _check_features_shape(tuple(features.shape))
        distances = gaussian_distances(features, self.means, self.log_variances)
        if labels is not None:
            labels, valid = class_labels(labels, self.num_classes, name="labels")
            check_batch_match("labels", labels, features)
        if labels is not None and training:
            if not self.batch_term_consumer:
                raise ValueError(
                    "GaussianClassHead got `labels` in training, but its model does not add the eq. 14 "
                    "regulariser to the loss: build the model with keras_losses.BatchTermModel(inputs, "
                    "outputs) or keras_losses.build_icu_model (a plain keras.Model would train without it)."
                )
            regularizer = icu_regularizer(
                features, labels, self.means, self.log_variances, self.lambda_mu, self.lambda_sigma,
                self.num_classes,
            )
            self._batch_terms[threading.get_ident()] = nan_where_invalid(
                regularizer, ops.all(valid), INVALID_LABELS
            )
        return -distances

    # --- the batch-level term, kept per thread ----------------------------------------------
    # Under MirroredStrategy the replicas call this same layer from their own threads, and the
    # all-reduce in the regulariser switches threads mid-call; each thread's term is therefore
    # kept under its thread id until BatchTermModel.compute_loss takes it (see batch_term_model).

    takes_batch_term = True

    def pop_batch_term(self):
        """The regulariser of this thread's last training call with labels (None if none); forgets it."""
        return self._batch_terms.pop(threading.get_ident(), None)

    def compute_output_shape(self, features_shape, labels_shape=None):
        return (*tuple(features_shape)[:-1], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            lambda_mu=self.lambda_mu,
            lambda_sigma=self.lambda_sigma,
            means_initializer=keras.initializers.serialize(self.means_initializer),
            log_variances_initializer=keras.initializers.serialize(self.log_variances_initializer),
        )
        return config


def _check_features_shape(shape):
    if len(shape) != 2:
        raise ValueError(f"`features` must have rank 2 (batch, dim), got shape {shape}.")
    if shape[-1] is None:
        raise ValueError(f"`features` must have a known feature dimension, got shape {shape}.")


@keras.saving.register_keras_serializable(package="keras_losses")
class ICULoss(Loss):
    """ICU loss: inter- and intra-class margins on the target, then softmax CE (eq. 17–18).

    Reads the margin-free logits ``−d`` of :class:`GaussianClassHead` and
    replaces each sample's target logit by

        −(1 + α) · (d_iy + ½ ln(1 + γ)),

    leaving the others at ``−d_ik``. Eq. 18's ``ln(1+γ)|Σ|`` is read as
    ``ln((1+γ)|Σ|) = ln|Σ| + ln(1+γ)``, the only reading consistent with eq. 21
    (``σ²_k − σ²_y > γ σ²_y``). The margins apply in training only: predictions
    use the head's margin-free output. The eq. 14 regulariser is added by the
    head, not here (it needs the features).

    **Hazard:** ``(1+α)·d`` is a penalty only when ``d > 0``. ``d`` contains
    ``½ Σ_d ln σ²`` and is negative when the variances are small and the
    sample close to its mean; there ``α`` *raises* the target logit (an
    inverted margin). With the paper's ``α = 1e-4`` the effect is tiny
    either way.

    The authors' code (``kratos236/ICU-loss``) uses ``(1+γ)·ln|Σ|`` (a
    multiplicative intra-class margin) with a halved log-determinant and a
    distance that sums ``x²/σ²`` over all classes; this follows the paper.

    Args:
        alpha: inter-class margin ``α ≥ 0``. Defaults to 1e-4 (paper §4.1).
        gamma: intra-class margin ``γ ≥ 0``. Defaults to 1e-3 (paper §4.1).
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Labels: ``(B,)``, ``(B, 1)`` integer class indices or one-hot ``(B, C)``.

    Example:

    >>> model = keras_losses.build_icu_model(keras.layers.Dense(4), num_classes=3, input_shape=(8,))
    >>> model.compile(optimizer="adam", loss=keras_losses.ICULoss(alpha=1e-4, gamma=1e-3))

    On the head's logits ``−d`` directly:

    >>> loss = keras_losses.ICULoss()
    >>> round(float(loss([0], keras.ops.array([[-1.0, -3.0, -2.5]]))), 3)
    0.307
    """

    def __init__(self, alpha=1e-4, gamma=1e-3, reduction="sum_over_batch_size", name="icu_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.gamma = check_number("gamma", gamma, low=0.0)

    def call(self, y_true, y_pred):
        y_pred = as_tensor(y_pred)
        labels, target_mask, valid = label_targets(y_true, y_pred)
        target_distance = -gather_target(y_pred, labels)  # the target logit is −d_iy
        new_target = -(1.0 + self.alpha) * (target_distance + 0.5 * math.log1p(self.gamma))
        return nan_where_invalid(
            margin_cross_entropy(y_pred, target_mask, new_target, 1.0), valid, INVALID_LABELS
        )

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


def build_icu_model(
    backbone,
    num_classes,
    input_shape=None,
    lambda_mu=0.1,
    lambda_sigma=0.1,
    means_initializer=None,
    image_name="image",
    label_name="label",
    label_shape=(),
    label_dtype="int32",
    head_name="icu_head",
    name="icu_model",
):
    """Wraps a feature extractor into one model that trains with labels and predicts without.

    The model has inputs ``{image_name: images, label_name: labels}``, the
    labels being an optional input (``keras.Input(..., optional=True)``), and
    outputs the margin-free logits ``−d`` ``(B, C)`` of a
    :class:`GaussianClassHead`. Compile it with :class:`ICULoss`.

    Args:
        backbone: a ``keras.Model`` or layer mapping images to features ``(B, D)``.
        num_classes: C ≥ 2.
        input_shape: image shape without the batch axis. Defaults to
            ``backbone.input_shape[1:]`` when the backbone is a built model.
        lambda_mu, lambda_sigma, means_initializer: passed to :class:`GaussianClassHead`.
        image_name, label_name: names of the two inputs (the dict keys).
        label_shape: shape of one label: ``()`` (default) for class indices,
            ``(num_classes,)`` for one-hot labels.
        label_dtype: dtype of the label input. Defaults to ``"int32"``; use a
            float dtype for one-hot labels.
        head_name: name of the head layer. Defaults to ``"icu_head"``.
        name: model name.

    Returns:
        An uncompiled :class:`~keras_losses.BatchTermModel` (a ``keras.Model``).

    Example:

    >>> import tensorflow as tf
    >>> backbone = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> model = keras_losses.build_icu_model(backbone, num_classes=3)
    >>> model.compile(optimizer="adam", loss=keras_losses.ICULoss(), metrics=["accuracy"])
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 4, 4, 1)).astype("float32")
    >>> y = rng.integers(0, 3, size=8).astype("int32")
    >>> ds = tf.data.Dataset.from_tensor_slices(({"image": x, "label": y}, y)).batch(8)
    >>> history = model.fit(ds, epochs=1, verbose=0)
    >>> x_test = x[:2]
    >>> logits = model.predict({"image": x_test, "label": None}, verbose=0)
    >>> logits.shape
    (2, 3)

    With NumPy arrays: ``model.fit({"image": x, "label": y}, y, batch_size=128)``.
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    if input_shape is None:
        try:
            input_shape = tuple(backbone.input_shape)[1:]
        except (AttributeError, ValueError) as error:
            raise ValueError(
                "`input_shape` is required when the backbone has no known input shape."
            ) from error
    images = keras.Input(tuple(input_shape), name=image_name)
    labels = keras.Input(tuple(label_shape), dtype=label_dtype, name=label_name, optional=True)
    features = backbone(images)
    head = GaussianClassHead(
        num_classes,
        lambda_mu=lambda_mu,
        lambda_sigma=lambda_sigma,
        means_initializer=means_initializer,
        name=head_name,
    )
    logits = head(features, labels)
    return BatchTermModel({image_name: images, label_name: labels}, logits, name=name)
