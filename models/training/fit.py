"""Fitting a run, with its run folder and the resume protocol; :func:`train` is the Python API.

    from models.training import TrainConfig, train
    metrics = train(TrainConfig(method="gsc", epochs=5, output="runs/gsc"))

Interrupted runs resume: ``model.fit`` keeps a backup of the last completed epoch under
``<output>/backup``; the same run started again continues from there. A finished run is not
retrained. The run's settings are stored in ``<output>/run.json``; a different run on the same
folder is refused (:class:`UsageError`) and nothing of the earlier run is touched.
"""

import contextlib
import json
import os
import random
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from models import methods
from models._common import write_atomically
from models.training import backup, build, plots
from models.training.config import FINE_TUNE_KEYS, PRECISIONS, RUN_KEYS, TrainConfig, UsageError
from models.evaluation import VERIFICATION_FARS
from models.training.evaluate import EVAL_BATCH_SIZE, evaluate

# What the chief tells the other workers before anything else happens (else: the first epoch).
REFUSED, FINISHED = -2, -1


# ----------------------------------------------------------------------------- run folder


class EpochHistory(keras.callbacks.Callback):
    """Appends one row per epoch to ``history.csv``: ``epoch`` and the epoch's logs, in sorted order.

    Unlike Keras' ``CSVLogger`` it adds no ``val_*`` columns when there is no validation (those were
    all ``NA``); a resumed run appends to the rows of the epochs it keeps (:func:`trim_history`).
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in sorted((logs or {}).items())}
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a") as f:
            if new:
                f.write(",".join(["epoch", *logs]) + "\n")
            f.write(",".join([str(epoch), *(repr(v) for v in logs.values())]) + "\n")


def trim_history(path, epochs):
    """Keeps the history rows of the first ``epochs`` epochs (drops a killed epoch's row)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",")[0]) < epochs]
    with open(path, "w") as f:
        f.write("\n".join(kept) + ("\n" if kept else ""))


def check_output_path(output):
    """``--output`` must be a folder (or not exist yet) that this process can write into."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"--output {output} is a file, not a folder; choose a folder. Nothing was changed.")
    existing = output
    while not os.path.exists(existing):  # the nearest existing ancestor is where the folder will be made
        existing = os.path.dirname(os.path.abspath(existing))
    if not os.path.isdir(existing):
        raise UsageError(f"--output {output}: {existing} is a file, not a folder. Nothing was changed.")
    try:  # the only reliable test (permissions, read-only or special file systems): make and remove a folder
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=existing))
    except OSError as error:
        raise UsageError(f"--output {output}: cannot create folders in {existing} ({error.strerror}). "
                         "Nothing was changed.") from None


def inspect_output(config):
    """Checks, without writing anything, that ``config.output`` can hold this run.

    Returns:
        FINISHED if it holds this run finished, else the epoch to resume after (0 for a new run).

    Raises:
        UsageError: not a writable folder, another run's folder, a non-empty folder without a
            run, or an interrupted run whose backups are all damaged.
    """
    check_output_path(config.output)
    path = os.path.join(config.output, "run.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        settings = config.run_settings()
        differing = {k: (previous.get(k), settings.get(k)) for k in {*previous, *settings}
                     if previous.get(k) != settings.get(k)}
        if differing:
            details = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(differing.items()))
            raise UsageError(
                f"--output {config.output} holds a different run ({details}); choose another --output "
                "or delete the folder. Nothing was changed."
            )
    elif os.path.isdir(config.output) and os.listdir(config.output):
        raise UsageError(
            f"--output {config.output} is not empty and holds no run.json; choose another folder. Nothing was changed."
        )
    if os.path.exists(os.path.join(config.output, "metrics.json")):
        return FINISHED
    return backup.latest_intact(os.path.join(config.output, "backup"), config.output)


def create_output(config):
    """Creates the run folder and its ``run.json`` (the run's settings), once everything is checked."""
    os.makedirs(config.output, exist_ok=True)
    path = os.path.join(config.output, "run.json")
    if not os.path.exists(path):
        write_atomically(path, json.dumps(config.run_settings(), indent=2))


def agree_on_start(config, strategy, role):
    """The first epoch (or FINISHED), decided by the chief and shared with every worker."""
    if role is None:
        return inspect_output(config)
    from models.multiworker import chief_number

    start = REFUSED
    try:
        if role.is_chief:
            start = inspect_output(config)
    finally:  # told even when the chief refuses, so that no worker waits for it forever
        start = chief_number(strategy, start)
    if start == REFUSED:
        raise UsageError("the chief refused this run; its error message says why")
    return start


# ----------------------------------------------------------------------------- process state


@contextlib.contextmanager
def run_state(config):
    """Sets the run's dtype policy and seeds, and restores the caller's afterwards.

    Inside: the policy of ``config.mixed_precision`` and every seed set from ``config.seed``
    (Python, NumPy, TensorFlow and Keras' global seed generator). After: the caller's dtype policy
    and the Python and NumPy random states, so runs in one process do not leak into each other or
    into the caller.
    """
    policy = keras.config.dtype_policy()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        keras.config.set_dtype_policy(PRECISIONS[config.mixed_precision] or "float32")
        keras.utils.set_random_seed(config.seed)
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


# ----------------------------------------------------------------------------- train


def train(config):
    """Trains, evaluates and saves one run; returns its metrics (also in ``<output>/metrics.json``).

    Args:
        config: a :class:`TrainConfig` (checked and completed here).

    Returns:
        ``{"accuracy", "ece"}`` (classification) or ``{"tar@far=…"}`` (verification), with
        ``epochs``, ``train_seconds``, ``replicas`` and ``device``. A worker that is not the chief
        returns ``{"task", "replicas"}``.

    Raises:
        UsageError: a bad setting, or an output folder that holds another run.
    """
    if not isinstance(config, TrainConfig):
        raise UsageError(f"`config` must be a models.training.TrainConfig, got {type(config).__name__}")
    config = config.resolved()
    strategy, role = build.make_strategy(config.strategy, methods.get(config.method))
    chief = role is None or role.is_chief
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas")
    if config.jit_compile and replicas > 1 and config.verbose and keras.backend.backend() == "tensorflow":
        print(f"note: --jit-compile is ignored with {replicas} replicas (XLA fails under tf.distribute in Keras)")
    first_epoch = agree_on_start(config, strategy, role)
    if first_epoch == FINISHED:
        if not chief:
            return {"task": f"{role.task_type}:{role.index}", "replicas": replicas}  # the chief reports
        if config.verbose:
            print(f"{config.output} already holds a finished run; its metrics:", flush=True)
        with open(os.path.join(config.output, "metrics.json")) as f:
            return json.load(f)
    with run_state(config), build.run_scope(strategy):
        return _fit_and_evaluate(config, strategy, role, first_epoch)


def _fit_and_evaluate(config, strategy, role, first_epoch):
    chief = role is None or role.is_chief
    replicas = strategy.num_replicas_in_sync
    bundle = _load_bundle(config, first_epoch)
    if bundle.train_size < config.batch_size:
        raise UsageError(f"--batch-size {config.batch_size} exceeds the {bundle.train_size} training examples")
    method = methods.get(config.method)
    with strategy.scope():
        model = build_checked_model(config, method, bundle, replicas)
    # Everything is checked: only now is anything written.
    train_data = _with_label_input(bundle.train, method)
    steps_per_epoch = bundle.train_size // config.batch_size
    history_path = os.path.join(config.output, "history.csv")
    backup_folder = os.path.join(config.output, "backup")
    if chief:
        create_output(config)
        trim_history(history_path, first_epoch)
        if first_epoch and config.verbose:
            print(f"resuming {config.output} after epoch {first_epoch}", flush=True)
    history = EpochHistory(history_path)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(config.output, "tensorboard"))
    restore_epoch = first_epoch
    if config.fine_tune_epochs and first_epoch == config.fine_tune_from:
        # The last backup is the first stage's (its optimizer state): load it as compiled for that
        # stage, before the fine-tuning stage recompiles with a fresh optimizer.
        if chief:
            with strategy.scope():
                backup.restore(model, backup_folder, first_epoch)
        restore_epoch = 0
    stages = [(0, config.fine_tune_from)] + ([(config.fine_tune_from, config.epochs)] if config.fine_tune_epochs else [])
    start = time.perf_counter()
    for stage_start, stage_end in stages:
        if stage_end <= first_epoch:
            continue
        if stage_start:  # the fine-tuning stage
            with strategy.scope():
                unfrozen = build.start_fine_tuning(model, config, replicas)
            if config.verbose and chief:
                print(f"fine-tuning from epoch {stage_start + 1}: Adam at {config.fine_tune_learning_rate:g}"
                      f"{', the head’s frozen weights now train' if unfrozen else ''}", flush=True)
        begin = max(stage_start, first_epoch)
        data = train_data if begin == first_epoch else _train_data(config, method, begin)
        callbacks = []
        if chief:  # history row first, then the backup: a kill in between only repeats a row
            callbacks = [history, backup.EpochBackup(
                backup_folder, restore_epoch=restore_epoch if begin == first_epoch else 0,
                remove_at_end=stage_end == config.epochs), tensorboard]
        _fit(model, config, strategy, role, data, begin, stage_end, steps_per_epoch, callbacks)
    if role is not None:
        if not chief:
            return {"task": f"{role.task_type}:{role.index}", "replicas": replicas}  # the chief reports
        model = build.local_copy(config, bundle.input_shape, bundle.num_classes, model)
    seconds = time.perf_counter() - start

    x_test, y_test = bundle.test_arrays()
    results, predictions = evaluate(model, config, bundle, x_test, y_test)
    results.update(epochs=config.epochs, train_seconds=seconds, replicas=replicas,
                   device=build.device_type())
    model.save(os.path.join(config.output, "model.keras"))
    plots.curves(config, history_path, os.path.join(config.output, "curves.png"))
    if bundle.kind == "classification":
        plots.reliability(config, predictions, y_test, os.path.join(config.output, "reliability.png"))
    else:  # verification: the pairs' scores
        plots.roc(config, predictions, bundle.pairs[2], os.path.join(config.output, "roc.png"), VERIFICATION_FARS)
    if config.embedding_dim in (2, 3):
        embeddings = build.feature_model(model).predict(x_test, verbose=0, batch_size=EVAL_BATCH_SIZE)
        plots.features(config, embeddings, y_test, bundle.num_classes, os.path.join(config.output, "features.png"))
    with open(os.path.join(config.output, "metrics.json"), "w") as f:
        json.dump(results, f, indent=2)
    if config.verbose:
        print(json.dumps(results, indent=2), flush=True)
    return results


def _with_label_input(dataset, method):
    """The training batches as ``fit`` takes them: the labels also feed a head that uses them."""
    return dataset.map(lambda x, y: (method.fit_inputs(x, y), y)) if method.uses_labels else dataset


def _load_bundle(config, first_epoch):
    """The run's data, its training batches those of epochs ``first_epoch … epochs − 1`` (the ones
    an uninterrupted run sees)."""
    from models.data import load_dataset

    return load_dataset(config.dataset, config.batch_size, seed=config.seed, epochs=config.epochs,
                        first_epoch=first_epoch, **config.dataset_options)


def _train_data(config, method, first_epoch):
    """The training batches of epochs ``first_epoch … epochs − 1``, as ``fit`` takes them."""
    return _with_label_input(_load_bundle(config, first_epoch).train, method)


def _fit(model, config, strategy, role, data, first_epoch, epochs, steps_per_epoch, callbacks):
    """Trains epochs ``first_epoch … epochs − 1``: ``model.fit``, or the multi-worker loop."""
    if role is None:
        model.fit(data, epochs=epochs, initial_epoch=first_epoch, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=config.verbose,
                  shuffle=False)  # load_dataset shuffles every epoch from (seed, epoch)
        return
    from models import multiworker

    multiworker.fit(model, strategy, data, global_batch_size=config.batch_size, steps_per_epoch=steps_per_epoch,
                    epochs=epochs, first_epoch=first_epoch, callbacks=callbacks, chief=role.is_chief,
                    verbose=config.verbose)


def build_checked_model(config, method, bundle, replicas):
    """The compiled model, once the method's settings are checked against the data.

    Checks what needs the data: the loss on the number of classes (e.g. GSC's ``top_k`` ≤ C) and
    the head on the embedding width (e.g. PEDCC's centroids need ``--embedding-dim`` ≥ 2). A value
    the library rejects becomes a :class:`UsageError` naming the setting.
    """
    try:
        method.check_classes(config.hyperparameters, bundle.num_classes)
    except methods.HyperParameterError as error:
        raise UsageError(str(error), error.name, error.detail) from None
    try:
        return build.compile_model(config, bundle.input_shape, bundle.num_classes, replicas)
    except ValueError as error:
        raise UsageError(f"--embedding-dim {config.embedding_dim} / --dataset {config.dataset} do not suit "
                         f"--method {config.method}: {error}") from None


def load_run(folder):
    """A finished run's resolved :class:`TrainConfig` (from ``run.json``) and its trained model.

        config, model = load_run("runs/compare/runs/arcface-seed0")
        logits = models.training.evaluate.predict_logits(model, config, x_test)
    """
    with open(os.path.join(folder, "run.json")) as f:
        settings = json.load(f)
    general = {key: settings.pop(key) for key in list(settings) if key in RUN_KEYS + FINE_TUNE_KEYS}
    dataset_options = settings.pop("dataset_options", {})
    config = TrainConfig(**general, output=folder, hyperparameters=settings, dataset_options=dataset_options).resolved()
    return config, keras.saving.load_model(os.path.join(folder, "model.keras"))
