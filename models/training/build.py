"""Building a run: its ``tf.distribute`` strategy, and the compiled ``backbone → head`` model of its method."""

import keras
import tensorflow as tf

from models import methods
from models.training.config import UsageError


def make_strategy(name):
    """Returns ``(strategy, role)``; ``role`` is the :class:`models.multiworker.ClusterRole` of this
    process under ``multiworker``, else None."""
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
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=methods.get(config.method).make_loss(config.hyperparameters),
        metrics=["accuracy"],
        jit_compile=config.jit_compile if replicas == 1 else False,
    )
    return model


def feature_model(model):
    """The sub-model that maps images to the embedding (the backbone)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def local_copy(config, input_shape, num_classes, model):
    """A copy of ``model`` (weights and optimizer state) outside any multi-worker strategy, for
    evaluating and saving on the chief alone."""
    copy = compile_model(config, input_shape, num_classes, replicas=1)
    copy.optimizer.build(copy.trainable_variables)
    for target, source in zip(copy.variables + copy.optimizer.variables, model.variables + model.optimizer.variables):
        target.assign(source.numpy())
    return copy
