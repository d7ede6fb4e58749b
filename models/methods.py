"""The method registry: the one place that knows how each method is built, trained and read.

Every tool in this repository (``models.train``, ``models.compare``, ``models.quickstart``, the
notebooks, the benchmarks and the tests) asks this registry, so adding a method is its library
class, one :func:`register` call here and its tests. An entry says

- how to build its head on a feature tensor (``build_head``), and whether that head also takes
  the labels as a second input (``uses_labels``, ICU's regulariser);
- how to make its loss (``make_loss``);
- how the model's outputs become logits whose softmax is the predicted distribution
  (``to_logits``: cosine heads are scaled by ``s``, without the margin);
- its hyper-parameters: each one is an argument of a library class, whose default is read from
  that class's signature (unless the method states its own, with the reason) and whose valid range
  is the library's own check — the command line derives its flags, help and validation from them.

    >>> from models import methods
    >>> method = methods.get("arcface")
    >>> params = method.resolve({"scale": 30.0})        # defaults filled in, values checked
    >>> params
    {'scale': 30.0, 'margin': 0.5}
    >>> loss = method.make_loss(params)                  # keras_losses.ArcFaceLoss(scale=30, margin=0.5)
"""

import dataclasses
import inspect
from typing import Callable

import keras
import numpy as np

import keras_losses

_NO_DEFAULT = object()
CLASSES = "classes"  # the class axis in Method.class_weights


class HyperParameterError(ValueError):
    """A value the library rejects for hyper-parameter ``name``; ``detail`` is the library's message."""

    def __init__(self, name, detail):
        super().__init__(f"`{name}`: {detail}")
        self.name, self.detail = name, detail


@dataclasses.dataclass(frozen=True)
class HyperParameter:
    """One hyper-parameter of a method: an argument of a library class.

    Attributes:
        name: the key in a method's parameters and a run's settings; the command-line flag is
            ``--name`` with ``_`` written ``-``.
        owner: the library class (loss or layer) that takes the value.
        argument: the argument of ``owner`` it is passed to.
        help: one line for ``--help``.
        default: the method's default when it differs from ``owner``'s (say why in ``help``);
            otherwise the default in ``owner``'s signature.
        owner_arguments: other arguments ``owner`` needs to be built when checking a value
            (e.g. ``{"num_classes": 2}`` for a layer).
        aliases: older flags that still work (e.g. ``("--gamma",)``).
    """

    name: str
    owner: type
    argument: str
    help: str
    default: object = _NO_DEFAULT
    owner_arguments: dict = dataclasses.field(default_factory=dict)
    aliases: tuple = ()

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def default_value(self):
        if self.default is not _NO_DEFAULT:
            return self.default
        parameter = inspect.signature(self.owner.__init__).parameters[self.argument]
        if parameter.default is inspect.Parameter.empty:
            raise TypeError(f"{self.owner.__name__}.{self.argument} has no default; give one in the registry")
        return parameter.default

    @property
    def type(self):
        """``int`` or ``float``, from the default's type."""
        return int if isinstance(self.default_value, (int, np.integer)) and not isinstance(
            self.default_value, bool) else float

    def check(self, value):
        """Returns ``value`` as the library accepts it; raises ``ValueError`` naming ``name`` otherwise.

        The check is the library's own: ``owner`` is built with the value.
        """
        if self.type is int and isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        try:
            self.owner(**{**self.owner_arguments, self.argument: value})
        except (ValueError, TypeError) as error:
            raise HyperParameterError(self.name, f"{str(error).rstrip('.')} (checked by {self.owner.__name__}).") from None
        return self.type(value)


def identity_logits(outputs, params):
    """The head's outputs already are logits."""
    return np.asarray(outputs, np.float64)


def scaled_cosines(outputs, params):
    """Cosine heads: ``s · cos``, the logits the head trains with, without the margin."""
    return params["scale"] * np.asarray(outputs, np.float64)


@dataclasses.dataclass(frozen=True)
class Method:
    """One registry entry.

    Attributes:
        name: the method's name on the command line (``--method NAME``).
        summary: one line: the head and loss it trains with.
        build_head: ``(features, num_classes, params, seed, labels)`` → the model's output. ``labels``
            is the optional label input (``None`` unless ``uses_labels``); ``seed`` seeds anything the
            head generates (e.g. PEDCC's centroids).
        make_loss: ``(params)`` → a ``keras.losses.Loss``.
        hyperparameters: its :class:`HyperParameter` tuple.
        to_logits: ``(outputs, params)`` → float64 logits whose softmax is the predicted distribution.
        uses_labels: the head takes the labels as a second input while training; the model then has
            inputs ``{"image": ..., "label": ...}`` (the label optional) and is a
            ``keras_losses.BatchTermModel``, which adds the head's batch-level term to the loss.
        class_weights: ``{weight path: layout}`` of the head's weights that have a class axis, the
            layout naming that axis :data:`CLASSES` and the others None (``{"head/kernel": (None,
            CLASSES)}``); ``--strategy class-sharded`` splits those axes over the devices.
        :meth:`start_fine_tuning`: what a fine-tuning stage unfreezes in the head (PEDCC's centroids);
            like ``class_weights``, set beside the head (``build_head.start_fine_tuning``).
    """

    name: str
    summary: str
    build_head: Callable
    make_loss: Callable
    hyperparameters: tuple = ()
    to_logits: Callable = identity_logits
    uses_labels: bool = False

    @property
    def class_weights(self):
        """The head's weights with a class axis (see the class docstring), set beside each head."""
        return getattr(self.build_head, "class_weights", {})

    def start_fine_tuning(self, model):
        """Makes the frozen weights of ``model``'s head trainable (PEDCC: the centroids, kept at unit
        length); recompile afterwards. Returns whether the head has frozen weights (False: nothing
        changed)."""
        unfreeze = getattr(self.build_head, "start_fine_tuning", None)
        if unfreeze is not None:
            unfreeze(model)
        return unfreeze is not None

    def defaults(self):
        """``{name: default}`` of every hyper-parameter."""
        return {hp.name: hp.default_value for hp in self.hyperparameters}

    def resolve(self, overrides=None):
        """Every hyper-parameter's value: ``overrides`` checked by the library, defaults for the rest.

        Raises:
            ValueError: a name the method does not have, or a value the library rejects.
        """
        overrides = dict(overrides or {})
        known = {hp.name: hp for hp in self.hyperparameters}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ValueError(
                f"`hyperparameters`: method {self.name!r} has no {', '.join(map(repr, unknown))}; its "
                f"hyper-parameters are: {valid}."
            )
        params = {name: hp.check(overrides[name]) if name in overrides else hp.default_value
                  for name, hp in known.items()}
        try:  # constraints between arguments (e.g. NPCFace's m0 + m1 < π/2) are checked by the loss
            self.make_loss(params)
        except ValueError as error:
            raise self._blame(error) from None
        return params

    def _blame(self, error, context=""):
        """The library's ``error`` as a :class:`HyperParameterError` of the hyper-parameter whose
        argument its message names first (``ValueError`` naming the method's hyper-parameters if none)."""
        message = str(error).rstrip(".")
        for hp in self.hyperparameters:
            if message.startswith(f"`{hp.argument}`"):
                return HyperParameterError(hp.name, f"{message}{context}.")
        return ValueError(f"`hyperparameters` of method {self.name!r}: {message}{context}.")

    def check_classes(self, params, num_classes):
        """Checks resolved ``params`` against a problem of ``num_classes`` classes (e.g. GSC's
        ``top_k`` ≤ C) by computing the loss on a dummy batch of that width.

        Raises:
            HyperParameterError: naming the hyper-parameter whose library argument the loss's
                message names (``ValueError`` if it names none).
        """
        labels = np.arange(2) % num_classes
        try:
            self.make_loss(params)(labels, np.zeros((2, num_classes), np.float32))
        except ValueError as error:
            raise self._blame(error, f" (the data set has {num_classes} classes)") from None

    def predict_inputs(self, images):
        """What ``model.predict`` takes for these images (the label input left empty)."""
        return {"image": images, "label": None} if self.uses_labels else images

    def fit_inputs(self, images, labels):
        """What ``model.fit`` takes as ``x`` for these images and labels."""
        return {"image": images, "label": labels} if self.uses_labels else images

    def build_model(self, backbone, input_shape, num_classes, params, seed=0, name=None):
        """``backbone → head``: the model this method trains (uncompiled).

        Args:
            backbone: a ``keras.Model`` or layer from images to features ``(B, D)``.
            input_shape: image shape without the batch axis.
            num_classes: C.
            params: the method's resolved hyper-parameters (:meth:`resolve`).
            seed: seeds what the head generates (PEDCC's centroids).
            name: the model's name.

        Returns:
            A ``keras.Model`` from the input ``"image"`` to what the loss reads; with
            ``uses_labels``, a ``keras_losses.BatchTermModel`` from ``{"image", "label"}`` (the label
            optional, so that it predicts without labels).
        """
        images = keras.Input(tuple(input_shape), name="image")
        features = backbone(images)
        if self.uses_labels:
            labels = keras.Input((), dtype="int32", name="label", optional=True)
            outputs = self.build_head(features, num_classes, params, seed, labels=labels)
            return keras_losses.BatchTermModel({"image": images, "label": labels}, outputs, name=name)
        return keras.Model(images, self.build_head(features, num_classes, params, seed), name=name)


_REGISTRY = {}


def register(method, replace=False):
    """Adds ``method`` to the registry; returns it. A name already taken raises unless ``replace``."""
    if not isinstance(method, Method):
        raise TypeError(f"expected a models.methods.Method, got {type(method).__name__}")
    if method.name in _REGISTRY and not replace:
        raise ValueError(f"`method`: {method.name!r} is already registered")
    names = [hp.name for hp in method.hyperparameters]
    if len(set(names)) != len(names):
        raise ValueError(f"`method`: {method.name!r} lists a hyper-parameter twice: {names}")
    for hp in method.hyperparameters:
        hp.check(hp.default_value)  # the default itself must pass the library's check
    _REGISTRY[method.name] = method
    return method


def unregister(name):
    """Removes a method (e.g. a test's toy method)."""
    _REGISTRY.pop(name, None)


def names():
    """Registered method names, in registration order."""
    return tuple(_REGISTRY)


def get(name):
    """The :class:`Method` called ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"`method`: unknown method {name!r}; valid methods are: {', '.join(_REGISTRY)}") from None


# ----------------------------------------------------------------------------- heads


def dense_head(features, num_classes, params, seed, labels=None):
    """A float32 ``Dense`` layer: logits."""
    return keras.layers.Dense(num_classes, name="head", dtype="float32")(features)


dense_head.class_weights = {"head/kernel": (None, CLASSES), "head/bias": (CLASSES,)}


def scaled_bn_head(features, num_classes, params, seed, labels=None):
    logits = dense_head(features, num_classes, params, seed)
    return keras_losses.ScaledBatchNormalization(scale=params["bn_scale"], name="scaled_bn")(logits)


scaled_bn_head.class_weights = dense_head.class_weights  # its (C,) moving statistics stay whole


def cosine_head(features, num_classes, params, seed, labels=None):
    """``CosineDense``: margin-free cosines, the margin loss adds the margin."""
    return keras_losses.CosineDense(num_classes, name="head")(features)


cosine_head.class_weights = {"head/kernel": (None, CLASSES)}


def pedcc_head(features, num_classes, params, seed, labels=None):
    """Batch-norm without centre/scale (the PEDCC paper's network) and the frozen centroids."""
    from models.backbones import batch_norm

    features = batch_norm("feature_bn", center=False, scale=False)(features)
    return keras_losses.PEDCCDense(num_classes, seed=seed, name="head")(features)


pedcc_head.class_weights = {"head/centroids": (None, CLASSES)}
pedcc_head.start_fine_tuning = lambda model: model.get_layer("head").start_fine_tuning()


def icu_head(features, num_classes, params, seed, labels=None):
    head = keras_losses.GaussianClassHead(
        num_classes, lambda_mu=params["icu_lambda_mu"], lambda_sigma=params["icu_lambda_sigma"], name="icu_head"
    )
    return head(features, labels)


icu_head.class_weights = {"icu_head/means": (CLASSES, None), "icu_head/log_variances": (CLASSES, None)}


def sparse_cross_entropy(params):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# ----------------------------------------------------------------------------- entries

_GSC, _ICU, _NPC = keras_losses.GSCLoss, keras_losses.ICULoss, keras_losses.NPCFaceLoss


def _cosine_scale(owner):
    return HyperParameter("scale", owner, "scale", "cosine scale s: logits are s·cos")


def _margin(owner):
    return HyperParameter("margin", owner, "margin", "additive margin m")


register(Method("softmax", "Dense logits + cross-entropy", dense_head, sparse_cross_entropy))
register(Method(
    "label-smoothing", "Dense logits + cross-entropy on smoothed targets (GSCLoss with γ = 0)", dense_head,
    lambda p: _GSC(gamma=0.0, label_smoothing=p["label_smoothing"]),
    (HyperParameter("label_smoothing", _GSC, "label_smoothing",
                    "smoothing ε of the targets (the method's default; the library's 0 means none)", default=0.1),),
))
register(Method(
    "focal", "Dense logits + focal loss (GSCLoss with γ = 0)", dense_head,
    lambda p: _GSC(gamma=0.0, focal_gamma=p["focal_gamma"]),
    (HyperParameter("focal_gamma", _GSC, "focal_gamma",
                    "focusing exponent η (the method's default, Lin et al.; the library's None means plain CE)",
                    default=2.0),),
))
register(Method(
    "gsc", "Dense logits + GSCLoss (cross-entropy + Gaussian score calibration)", dense_head,
    lambda p: _GSC(gamma=p["gsc_gamma"], top_k=p["gsc_top_k"]),
    (HyperParameter("gsc_gamma", _GSC, "gamma", "weight γ of the calibration term", aliases=("--gamma",)),
     HyperParameter("gsc_top_k", _GSC, "top_k", "number k of top non-target scores", aliases=("--top-k",))),
))
register(Method(
    "scaled-bn", "Dense logits → ScaledBatchNormalization → cross-entropy", scaled_bn_head, sparse_cross_entropy,
    (HyperParameter("bn_scale", keras_losses.ScaledBatchNormalization, "scale", "scale m of the normalised logits"),),
))
register(Method(
    "pedcc", "BatchNorm → PEDCCDense (frozen centroids) + PEDCCLoss (AM-softmax + MSE)", pedcc_head,
    lambda p: keras_losses.PEDCCLoss(scale=p["scale"], margin=p["margin"], n=p["pedcc_n"]),
    (_cosine_scale(keras_losses.PEDCCLoss), _margin(keras_losses.PEDCCLoss),
     HyperParameter("pedcc_n", keras_losses.PEDCCLoss, "n", "root n of the MSE term")),
    to_logits=scaled_cosines,
))
register(Method(
    "icu", "GaussianClassHead (with labels: eq. 14 regulariser) + ICULoss margins", icu_head,
    lambda p: _ICU(alpha=p["icu_alpha"], gamma=p["icu_gamma"]),
    (HyperParameter("icu_alpha", _ICU, "alpha", "inter-class margin α"),
     HyperParameter("icu_gamma", _ICU, "gamma", "intra-class margin γ"),
     HyperParameter("icu_lambda_mu", keras_losses.GaussianClassHead, "lambda_mu", "regulariser weight λ_μ (eq. 14)",
                    owner_arguments={"num_classes": 2}),
     HyperParameter("icu_lambda_sigma", keras_losses.GaussianClassHead, "lambda_sigma",
                    "regulariser weight λ_σ (eq. 14)", owner_arguments={"num_classes": 2})),
    uses_labels=True,
))
register(Method(
    "npcface", "CosineDense + NPCFaceLoss (cooperative positive/negative margins)", cosine_head,
    lambda p: _NPC(scale=p["scale"], m0=p["npcface_m0"], m1=p["npcface_m1"], t=p["npcface_t"],
                   alpha=p["npcface_alpha"]),
    (_cosine_scale(_NPC),
     HyperParameter("npcface_m0", _NPC, "m0", "base margin m0", aliases=("--m0",)),
     HyperParameter("npcface_m1", _NPC, "m1", "cooperative margin range m1", aliases=("--m1",)),
     HyperParameter("npcface_t", _NPC, "t", "multiplicative hard-negative emphasis t", aliases=("--t",)),
     HyperParameter("npcface_alpha", _NPC, "alpha", "additive hard-negative emphasis α", aliases=("--alpha",))),
    to_logits=scaled_cosines,
))
register(Method(
    "arcface", "CosineDense + ArcFaceLoss (additive angular margin)", cosine_head,
    lambda p: keras_losses.ArcFaceLoss(scale=p["scale"], margin=p["margin"]),
    (_cosine_scale(keras_losses.ArcFaceLoss), _margin(keras_losses.ArcFaceLoss)),
    to_logits=scaled_cosines,
))
register(Method(
    "cosface", "CosineDense + CosFaceLoss (additive cosine margin)", cosine_head,
    lambda p: keras_losses.CosFaceLoss(scale=p["scale"], margin=p["margin"]),
    (_cosine_scale(keras_losses.CosFaceLoss), _margin(keras_losses.CosFaceLoss)),
    to_logits=scaled_cosines,
))
