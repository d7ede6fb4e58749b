"""What one training run is: :class:`TrainConfig`, checked and completed by :meth:`TrainConfig.resolved`."""

import dataclasses
import os

from models import methods

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "class-sharded")
PRECISIONS = {"off": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# Settings that define a run besides the method's hyper-parameters; resuming with others is refused.
RUN_KEYS = ("method", "dataset", "backbone", "epochs", "batch_size", "seed", "embedding_dim", "learning_rate",
            "mixed_precision", "jit_compile")
# The fine-tuning stage's settings: in run.json only when the run has the stage (older folders still match).
FINE_TUNE_KEYS = ("fine_tune_epochs", "fine_tune_learning_rate", "fine_tune_head")


class UsageError(ValueError):
    """A bad setting or an output folder that holds another run: the command line exits with code 2.

    ``hyperparameter`` names the method hyper-parameter at fault, if one is; ``detail`` is then the
    library's message about it.
    """

    def __init__(self, message, hyperparameter=None, detail=None):
        super().__init__(message)
        self.hyperparameter, self.detail = hyperparameter, detail


@dataclasses.dataclass
class TrainConfig:
    """One training run of ``models.train``; every field is also a command-line flag.

    Attributes:
        method: a name in :mod:`models.methods`.
        dataset: a name in ``models.data.DATASETS``.
        backbone: a name in ``models.backbones.BACKBONES``; None picks one that suits the dataset.
        epochs: epochs to train.
        batch_size: global batch size (divided among the replicas).
        seed: seeds the initial weights, the shuffling and anything the head generates.
        output: the run folder; None means ``runs/<dataset>-<method>-seed<seed>``.
        strategy: ``auto`` (TensorFlow: mirrored over several GPUs; JAX: data parallel over the
            local devices; else one device), ``default`` (one device), ``mirrored`` or
            ``multiworker`` (TensorFlow; ``TF_CONFIG``, see :mod:`models.multiworker`), or
            ``class-sharded`` (JAX: data parallel with the head's class axis split over the devices).
        mixed_precision: ``off``, ``float16`` or ``bfloat16``.
        jit_compile: XLA on TensorFlow (ignored with several replicas); JAX always compiles.
        embedding_dim: width of the backbone's output.
        learning_rate: Adam's learning rate.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        hyperparameters: the method's hyper-parameters that differ from their defaults
            (``{"scale": 30.0}``); :meth:`resolved` fills in the rest.
        dataset_options: options of the data set (``models.data.OPTIONS[dataset]``), e.g.
            ``{"noise_rate": 0.4}`` for noisy-digits or ``{"imbalance_ratio": 50}`` for longtail;
            :meth:`resolved` keeps the ones that differ from their defaults.
        fine_tune_epochs: the last ``fine_tune_epochs`` of ``epochs`` form a second, fine-tuning
            stage (0, the default: one stage). Training continues there with a fresh Adam at
            ``fine_tune_learning_rate``, and a head with frozen weights makes them trainable
            (PEDCC's centroids, the PEDCC paper's §4.1) unless ``fine_tune_head`` is False.
        fine_tune_learning_rate: Adam's learning rate in that stage; None (default) is a tenth of
            ``learning_rate``.
        fine_tune_head: whether the head's frozen weights train in that stage (default True);
            False keeps them frozen, so that the stage differs from a one-stage run only by the
            lower learning rate (the control of a fine-tuning comparison).
    """

    method: str = "softmax"
    dataset: str = "digits"
    backbone: str = None
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    output: str = None
    strategy: str = "auto"
    mixed_precision: str = "off"
    jit_compile: bool = False
    embedding_dim: int = 64
    learning_rate: float = 1e-3
    verbose: int = 1
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    dataset_options: dict = dataclasses.field(default_factory=dict)
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = None
    fine_tune_head: bool = True

    def resolved(self):
        """A copy with every setting checked and every default filled in.

        Raises:
            ValueError: naming the setting and what was expected.
        """
        from models.backbones import BACKBONES, default_backbone
        from models.data import DATASETS
        from models.data import OPTIONS as DATASET_OPTIONS
        from models.data import check_options as check_dataset_options

        try:
            method = methods.get(self.method)
        except ValueError as error:
            raise UsageError(str(error)) from None
        _choice("dataset", self.dataset, DATASETS)
        if self.backbone is not None:
            _choice("backbone", self.backbone, BACKBONES)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("mixed_precision", self.mixed_precision, tuple(PRECISIONS))
        for name in ("epochs", "batch_size", "embedding_dim"):
            _integer(name, getattr(self, name), low=1)
        for name in ("seed", "verbose"):
            _integer(name, getattr(self, name), low=0)
        _learning_rate("learning_rate", self.learning_rate)
        fine_tune_learning_rate = self._fine_tune_settings()
        try:
            hyperparameters = method.resolve(self.hyperparameters)
        except methods.HyperParameterError as error:
            raise UsageError(str(error), error.name, error.detail) from None
        except ValueError as error:
            raise UsageError(str(error)) from None
        if not isinstance(self.dataset_options, dict):
            raise UsageError(f"`dataset_options` must be a dict, got {type(self.dataset_options).__name__}")
        try:
            merged = check_dataset_options(self.dataset, self.dataset_options)
        except ValueError as error:
            raise UsageError(f"--dataset-option: {error}") from None
        dataset_options = {k: v for k, v in merged.items() if v != DATASET_OPTIONS[self.dataset][k]}
        backbone = self.backbone or default_backbone(self.dataset)
        output = self.output or os.path.join("runs", f"{self.dataset.replace('/', '_')}-{self.method}-seed{self.seed}")
        return dataclasses.replace(self, backbone=backbone, output=output, hyperparameters=hyperparameters,
                                   dataset_options=dataset_options,
                                   jit_compile=bool(self.jit_compile), learning_rate=float(self.learning_rate),
                                   fine_tune_learning_rate=fine_tune_learning_rate)

    def _fine_tune_settings(self):
        """Checks the fine-tuning stage's settings; returns its learning rate (None without the stage)."""
        _integer("fine_tune_epochs", self.fine_tune_epochs, low=0)
        if self.fine_tune_epochs >= self.epochs:
            raise UsageError(f"`fine_tune_epochs` must be smaller than `epochs` ({self.epochs}): the stage is the "
                             f"last epochs of the run, after at least one ordinary epoch; got {self.fine_tune_epochs}")
        if not isinstance(self.fine_tune_head, bool):
            raise UsageError(f"`fine_tune_head` must be True or False, got {self.fine_tune_head!r}")
        if not self.fine_tune_epochs:
            if self.fine_tune_learning_rate is not None or not self.fine_tune_head:
                raise UsageError("`fine_tune_learning_rate` and `fine_tune_head` apply to the fine-tuning stage only; "
                                 "set `fine_tune_epochs` > 0 to have one")
            return None
        if self.fine_tune_learning_rate is None:
            return float(self.learning_rate) / 10
        _learning_rate("fine_tune_learning_rate", self.fine_tune_learning_rate)
        return float(self.fine_tune_learning_rate)

    @property
    def fine_tune_from(self):
        """The first epoch of the fine-tuning stage (``epochs`` when the run has none)."""
        return self.epochs - self.fine_tune_epochs

    def run_settings(self):
        """The settings stored in ``run.json`` (of a resolved config): what defines the run. Data-set
        options appear only when some differ from their defaults, the fine-tuning stage's settings only
        when the run has one (so older run folders still match)."""
        options = {"dataset_options": dict(self.dataset_options)} if self.dataset_options else {}
        stage = {key: getattr(self, key) for key in FINE_TUNE_KEYS} if self.fine_tune_epochs else {}
        return {**{key: getattr(self, key) for key in RUN_KEYS}, **stage, **options, **self.hyperparameters}


def _choice(name, value, choices):
    if value not in choices:
        raise UsageError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")


def _learning_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
        raise UsageError(f"`{name}` must be a finite number > 0, got {value!r}")


def _integer(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"`{name}` must be an integer >= {low}, got {value!r}")
