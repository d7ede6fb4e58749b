"""Building a run: how it is spread over devices (a ``tf.distribute`` strategy on TensorFlow, a
``keras.distribution`` on JAX), and the compiled ``backbone → head`` model of its method."""

import contextlib

import keras
import tensorflow as tf

from models import methods
from models.training.config import UsageError

TENSORFLOW_ONLY = ("mirrored", "multiworker")


class KerasDistribution:
    """A run's ``keras.distribution`` (JAX) or single device (JAX, PyTorch), read by the tool like a
    ``tf.distribute`` strategy.

    Attributes:
        distribution: ``DataParallel`` or ``ModelParallel`` over the local devices; None for one device.
        num_replicas_in_sync: the number of devices the batch is split over.
    """

    def __init__(self, distribution=None, devices=1):
        self.distribution, self.num_replicas_in_sync = distribution, devices

    def scope(self):
        """Inside it, variables are laid out and batches split by the distribution."""
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def run_scope(strategy):
    """What the whole run (build, fit, evaluate) executes in: the JAX distribution's scope; nothing
    for a tf.distribute strategy, whose scope only the model building needs."""
    return strategy.scope() if isinstance(strategy, KerasDistribution) else contextlib.nullcontext()


def make_strategy(name, method=None):
    """Returns ``(strategy, role)``; ``role`` is the :class:`models.multiworker.ClusterRole` of this
    process under ``multiworker``, else None. On JAX and PyTorch the strategy is a
    :class:`KerasDistribution` (``method``, a :class:`models.methods.Method`, names the head's
    weights to shard for ``class-sharded``)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_distribution(name, method), None
    if backend == "torch":
        if name not in ("auto", "default"):
            needs = "TensorFlow (KERAS_BACKEND=tensorflow)" if name in TENSORFLOW_ONLY else "JAX (KERAS_BACKEND=jax)"
            raise UsageError(f"--strategy {name} needs {needs}; on PyTorch Keras trains on one device (use "
                             "--strategy auto or default)")
        return KerasDistribution(), None
    if backend != "tensorflow":
        raise UsageError(f"models.train runs on the tensorflow, jax and torch Keras backends; KERAS_BACKEND is "
                         f"{backend!r}")
    if name == "class-sharded":
        raise UsageError("--strategy class-sharded needs the JAX backend (KERAS_BACKEND=jax): it shards the head with "
                         "keras.distribution.ModelParallel, which Keras implements on JAX only")
    if name == "multiworker":
        from models import multiworker

        try:
            role = multiworker.read_tf_config()
        except ValueError as error:
            raise UsageError(str(error)) from None
        return multiworker.make_strategy(), role
    if name == "default":
        return tf.distribute.get_strategy(), None
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        if strategy.num_replicas_in_sync < 2:
            devices = ", ".join(d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU"))
            raise UsageError(
                f"--strategy mirrored found one device ({devices}): it would train one replica, like --strategy "
                "default. Use --strategy auto or default here, or run it on a machine with several GPUs."
            )
        return strategy, None
    # auto: mirrored over several GPUs, else the default strategy
    gpus = tf.config.list_logical_devices("GPU")
    return (tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()), None


def _jax_distribution(name, method):
    """auto: data parallel over the local devices (one device: none); default: one device;
    class-sharded: data parallel, with the head's class axis split over the same devices."""
    if name in TENSORFLOW_ONLY:
        raise UsageError(f"--strategy {name} is TensorFlow's tf.distribute; on the JAX backend use auto (data "
                         "parallel over the local devices), default (one device) or class-sharded")
    devices = keras.distribution.list_devices()
    if name == "default" or (name == "auto" and len(devices) < 2):
        return KerasDistribution()
    if len(devices) < 2:
        raise UsageError(f"--strategy {name} found one device ({devices[0]}); use auto or default here")
    mesh = keras.distribution.DeviceMesh((len(devices),), ("devices",), devices=devices)
    if name == "auto":
        return KerasDistribution(keras.distribution.DataParallel(device_mesh=mesh), len(devices))
    if not method.class_weights:
        raise UsageError(f"--strategy class-sharded: --method {method.name} has no head with a class axis to shard")
    layout = keras.distribution.LayoutMap(mesh)
    for path, axes in method.class_weights.items():
        layout[path] = tuple("devices" if axis == methods.CLASSES else None for axis in axes)
    # The batch is split over the same devices: each device runs the backbone on B/N samples, and
    # XLA moves the (B, D) features, not the (D, C) class matrix (insightface's "Partial FC").
    return KerasDistribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="devices"),
                           len(devices))


def device_type():
    """The kind of device the run trains on: ``CPU``, ``GPU`` or ``TPU``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return tf.config.list_logical_devices()[0].device_type
    if backend == "torch":
        import torch

        return "GPU" if torch.cuda.is_available() else "CPU"
    return keras.distribution.list_devices()[0].split(":")[0].upper()


def build_model(config, input_shape, num_classes):
    """The training model ``backbone → head`` of ``config.method`` (a resolved config); see
    :meth:`models.methods.Method.build_model`."""
    from models.backbones import build_backbone

    backbone = build_backbone(config.backbone, input_shape, config.embedding_dim)
    return methods.get(config.method).build_model(
        backbone, input_shape, num_classes, config.hyperparameters, seed=config.seed,
        name=f"{config.method}_{config.backbone}".replace("-", "_"),
    )


def compile_model(config, input_shape, num_classes, replicas):
    """Builds and compiles the model (Adam, the method's loss, accuracy)."""
    model = build_model(config, input_shape, num_classes)
    _compile(model, config, config.learning_rate, replicas)
    return model


def start_fine_tuning(model, config, replicas):
    """Enters the fine-tuning stage of a resolved ``config`` (see ``TrainConfig.fine_tune_epochs``):
    unfreezes the head's frozen weights unless ``config.fine_tune_head`` is False, and recompiles
    with a fresh Adam at ``config.fine_tune_learning_rate``. Call it in the strategy's scope.

    Returns:
        Whether head weights were unfrozen.
    """
    unfrozen = config.fine_tune_head and methods.get(config.method).start_fine_tuning(model)
    _compile(model, config, config.fine_tune_learning_rate, replicas)
    return unfrozen


def _compile(model, config, learning_rate, replicas):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=methods.get(config.method).make_loss(config.hyperparameters),
        metrics=["accuracy"],
        jit_compile=_jit_compile(config, replicas),
    )
    # Built now, not inside the first train step: TensorFlow would trace that step twice to create
    # the optimizer's variables (about 2 s of a 1-epoch run on digits).
    model.optimizer.build(model.trainable_variables)


def _jit_compile(config, replicas):
    backend = keras.backend.backend()
    if backend == "jax":
        return True  # JAX compiles every train step with XLA
    if backend == "torch":
        return False  # Keras' jit_compile there is torch.compile, untested here
    return config.jit_compile if replicas == 1 else False  # XLA fails under tf.distribute in Keras


def feature_model(model):
    """The sub-model that maps images to the embedding (the backbone)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def head_input_model(model, method):
    """The sub-model that maps images to the features the head compares with its class vectors: the
    input of the layer that holds the class-axis weights (``method.class_weights``). For PEDCC that
    is after its batch normalisation; for Dense, cosine and ICU heads, the backbone's output."""
    layer = model.get_layer(next(iter(method.class_weights)).split("/")[0])
    features = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
    image = next(tensor for tensor in model.inputs if tensor.name.startswith("image"))
    return keras.Model(image, features)


def local_copy(config, input_shape, num_classes, model):
    """A copy of a trained ``model`` (weights and optimizer state, in its last stage) outside any
    multi-worker strategy, for evaluating and saving on the chief alone."""
    copy = compile_model(config, input_shape, num_classes, replicas=1)
    if config.fine_tune_epochs:
        start_fine_tuning(copy, config, replicas=1)
    for target, source in zip(copy.variables + copy.optimizer.variables, model.variables + model.optimizer.variables):
        target.assign(source.numpy())
    return copy
