"""Training across processes and machines: ``python -m models.train --strategy multiworker``.

Keras 3.15's ``model.fit`` fails under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585, tensorflow/tensorflow#72388: it calls ``strategy.reduce`` on per-replica
data and on scalar logs). The collective maths is fine, so :func:`fit` drives the compiled model
itself, doing per step exactly what Keras' ``train_step`` does on every replica: the forward pass,
``model.compute_loss`` (the compiled loss plus the layers' added losses, already divided by the
number of replicas as under ``fit``), ``optimizer.scale_loss`` (mixed precision) and
``optimizer.apply_gradients`` (which sums the gradients over all replicas). The logs are summed
across replicas inside the step, so every worker sees the global-batch values.

Data: every worker builds the same global-batch pipeline (same seed) and keeps its own slice of
each global batch (:func:`distribute_global_batches`), so the global batches are exactly those a
single process would train on, whatever the number of workers.

Only the chief (task ``chief``, or ``worker`` 0 when the cluster has no chief) writes anything:
history, TensorBoard logs, per-epoch backups, the model and the metrics. A resumed run restores the
chief's backup and copies the chief's variables to every worker (:func:`copy_from_chief`), so the
other workers need no access to the output folder.

Starting it: the same command on every machine, each with its own ``TF_CONFIG``, e.g. on two
machines ``a`` and ``b``::

    a$ TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]}, "task": {"type": "worker", "index": 0}}' \\
         python -m models.train --strategy multiworker --output runs/mw
    b$ TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]}, "task": {"type": "worker", "index": 1}}' \\
         python -m models.train --strategy multiworker --output runs/mw
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

TASK_TYPES = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class ClusterRole:
    """This process's place in the cluster described by ``TF_CONFIG``."""

    task_type: str
    index: int
    num_tasks: int
    has_chief: bool

    @property
    def is_chief(self):
        """The chief task, or worker 0 when the cluster has no chief: the one that writes."""
        return self.task_type == "chief" or (self.index == 0 and not self.has_chief)


def read_tf_config(text=None):
    """Parses and checks ``TF_CONFIG`` (default: the environment variable) → :class:`ClusterRole`.

    Raises:
        ValueError: ``TF_CONFIG`` missing, not JSON, or not a cluster of ``chief``/``worker`` tasks
            given as ``"host:port"`` strings with this task's ``type`` and ``index`` among them.
    """
    if text is None:
        text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {text!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ValueError(f'TF_CONFIG must be a JSON object with a "cluster" object, got {text!r}')
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise ValueError(f"TF_CONFIG cluster has task types {unknown}; only {list(TASK_TYPES)} take part")
    if "worker" not in cluster and "chief" not in cluster:
        raise ValueError('TF_CONFIG cluster must list its "worker" addresses')
    for task_type, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() and a.rpartition(":")[0] for a in addresses
        ):
            raise ValueError(f'TF_CONFIG cluster["{task_type}"] must be a non-empty list of "host:port", '
                             f"got {addresses!r}")
    if len(cluster.get("chief", [])) > 1:
        raise ValueError(f'TF_CONFIG cluster["chief"] must hold one address, got {cluster["chief"]!r}')
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(f'TF_CONFIG "task" must name a "type" among {sorted(cluster)}, got {task!r}')
    index = task.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(f'TF_CONFIG task "index" must be an integer in [0, {len(cluster[task["type"]])}), '
                         f"got {index!r}")
    return ClusterRole(task["type"], index, sum(len(a) for a in cluster.values()), "chief" in cluster)


def make_strategy():
    """The strategy over the ``TF_CONFIG`` cluster; every task must start it before training."""
    return tf.distribute.MultiWorkerMirroredStrategy()


# ----------------------------------------------------------------------------- agreement


def _from_replica_zero(strategy, tensors):
    """``tensors`` as held by global replica 0 (on the chief), on every replica of every worker."""

    def share(values):
        # A sum in which only replica 0 contributes. float64 holds float32 and the optimizer's
        # int64 step counter (below 2**53) exactly.
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        return [
            context.all_reduce("sum", tf.where(first, tf.cast(v, tf.float64), tf.zeros_like(v, tf.float64)))
            for v in values
        ]

    shared = tf.function(lambda values: strategy.run(share, args=(values,)))(list(tensors))
    return [strategy.experimental_local_results(v)[0] for v in shared]


def chief_number(strategy, number):
    """The chief's ``number`` (an integer), on every worker."""
    (value,) = _from_replica_zero(strategy, [tf.constant(number, tf.float64)])
    return int(value.numpy())


def copy_from_chief(strategy, variables):
    """Sets ``variables`` (Keras variables, e.g. model and optimizer state) to the chief's values."""
    variables = list(variables)
    values = _from_replica_zero(strategy, [v.value for v in variables])
    for variable, value in zip(variables, values):
        variable.assign(tf.cast(value, variable.dtype))


# ----------------------------------------------------------------------------- data


def distribute_global_batches(strategy, dataset, global_batch_size):
    """Per-replica batches of ``dataset`` (global batches of ``global_batch_size``, the same on
    every worker): replica ``r`` of the cluster gets rows ``r·b … (r+1)·b − 1`` of each global batch,
    ``b = global_batch_size / replicas``."""

    def worker_dataset(context):
        per_replica = context.get_per_replica_batch_size(global_batch_size)
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local * per_replica

        def own_rows(*batch):
            return tf.nest.map_structure(
                lambda t: tf.reshape(t[first: first + local * per_replica], [local, per_replica, *t.shape[1:]]),
                batch,
            )

        return dataset.map(own_rows).unbatch()  # `local` consecutive elements, one per local replica

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(worker_dataset, options)


# ----------------------------------------------------------------------------- training


def _train_step(model, strategy):
    def replica_step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)  # mean / replicas
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        labels = tf.reshape(tf.cast(y, tf.int32), [-1])
        correct = tf.equal(tf.argmax(tf.cast(y_pred, tf.float32), axis=-1, output_type=tf.int32), labels)
        sums = tf.stack([tf.cast(loss, tf.float32), tf.reduce_sum(tf.cast(correct, tf.float32))])
        return tf.distribute.get_replica_context().all_reduce("sum", sums)

    @tf.function
    def step(iterator):
        x, y = next(iterator)
        return strategy.experimental_local_results(strategy.run(replica_step, args=(x, y)))[0]

    return step


def fit(model, strategy, dataset, *, global_batch_size, steps_per_epoch, epochs, first_epoch=0, callbacks=(),
        chief=True, verbose=1):
    """Trains ``model`` (compiled under ``strategy.scope()``) like ``model.fit`` would.

    Args:
        model: a compiled Keras model; its optimizer, loss and added losses are used as compiled.
        strategy: the ``tf.distribute`` strategy the model was built under.
        dataset: ``tf.data`` of global batches ``(x, y)``, epochs ``first_epoch … epochs − 1`` back to
            back, identical on every worker.
        global_batch_size: rows per global batch (divisible by the replica count).
        steps_per_epoch: global batches per epoch.
        epochs, first_epoch: train epochs ``first_epoch … epochs − 1``.
        callbacks: Keras callbacks (history, TensorBoard, backups); run on the chief only.
        chief: whether this process is the chief.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch (chief only).

    Returns:
        The per-epoch logs (``loss``, ``accuracy``: training values over the epoch, global batch).
    """
    with strategy.scope():  # every worker creates the optimizer's variables, in the same order
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    if chief:
        callbacks = keras.callbacks.CallbackList(list(callbacks), model=model, epochs=epochs, steps=steps_per_epoch,
                                                 verbose=verbose)
        callbacks.on_train_begin()  # restores the chief's backup, if any
    copy_from_chief(strategy, model.variables + model.optimizer.variables)
    iterator = iter(distribute_global_batches(strategy, dataset, global_batch_size))
    step = _train_step(model, strategy)
    history = []
    for epoch in range(first_epoch, epochs):
        if chief:
            callbacks.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        progress = keras.utils.Progbar(steps_per_epoch, verbose=verbose if chief else 0)
        totals = np.zeros(2)
        for batch in range(steps_per_epoch):
            totals += step(iterator).numpy()
            logs = {"loss": totals[0] / (batch + 1), "accuracy": totals[1] / ((batch + 1) * global_batch_size)}
            progress.update(batch + 1, list(logs.items()), finalize=batch + 1 == steps_per_epoch)
        logs = {key: float(value) for key, value in logs.items()}
        history.append(logs)
        if chief:
            callbacks.on_epoch_end(epoch, logs)
    if chief:
        callbacks.on_train_end(history[-1] if history else None)
    return history
