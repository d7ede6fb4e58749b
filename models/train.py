"""Train one model with one method: ``python -m models.train``.

    python -m models.train --method gsc --dataset digits --epochs 20 --output runs/gsc
    python -m models.train --method npcface --dataset verification --backbone embedding-net
    python -m models.train --method pedcc --strategy mirrored --batch-size 128

Builds ``backbone → head`` with the head and loss each method needs, compiles
under the chosen ``tf.distribute`` strategy, trains with ``model.fit`` on the
``tf.data`` pipeline of :mod:`models.data`, and evaluates accuracy, ECE and,
on verification data, TAR@FAR on held-out identities. Writes to ``--output``:
``model.keras``, ``metrics.json``, ``history.csv``, TensorBoard logs under
``tensorboard/``, ``curves.png``, ``reliability.png`` and, for 2-/3-D embeddings
(``--embedding-dim 2`` or ``3``), ``features.png``.

Interrupted runs resume: ``model.fit`` keeps a backup of the last completed
epoch under ``<output>/backup``; the same command started again continues
from there. A finished run is not retrained. The run's settings are stored
in ``<output>/run.json``; a different command on the same folder is refused
(non-zero exit) and nothing of the earlier run is touched.

``--strategy multiworker`` trains across processes or machines described by
``TF_CONFIG`` with a custom loop that does what ``model.fit`` does (Keras 3.15's
``model.fit`` is broken under ``MultiWorkerMirroredStrategy``); see
:mod:`models.multiworker` for how to start it. Only the chief writes to ``--output``.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_losses  # noqa: E402
from models._common import non_negative_float, non_negative_int, positive_int, pyplot  # noqa: E402
from models.backbones import default_backbone  # noqa: E402
from models.evaluation import expected_calibration_error  # noqa: E402
from models.plots import reliability_figure  # noqa: E402

METHODS = (
    "softmax",
    "label-smoothing",
    "focal",
    "gsc",
    "scaled-bn",
    "pedcc",
    "icu",
    "npcface",
    "arcface",
    "cosface",
)
COSINE_METHODS = ("npcface", "arcface", "cosface", "pedcc")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
PRECISIONS = {"off": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# Settings that define a run; resuming with different ones is refused.
RUN_KEYS = (
    "method", "dataset", "backbone", "epochs", "batch_size", "seed", "embedding_dim",
    "learning_rate", "gamma", "top_k", "label_smoothing", "focal_gamma", "bn_scale",
    "scale", "margin", "m0", "m1", "t", "alpha", "pedcc_n", "icu_alpha", "icu_gamma",
    "icu_lambda_mu", "icu_lambda_sigma",
    "mixed_precision", "jit_compile",
)  # fmt: skip


class UsageError(Exception):
    """A bad command line or an incompatible output folder: message, exit code 2."""


def parse_args(argv=None):
    from models.backbones import BACKBONES
    from models.data import DATASETS

    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=METHODS, default="softmax")
    p.add_argument("--dataset", choices=DATASETS, default="digits")
    p.add_argument("--backbone", choices=BACKBONES, default=None, help="default: one that suits the dataset")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--batch-size", type=positive_int, default=64, help="global batch size")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--output", default=None, help="default runs/<dataset>-<method>-seed<seed>")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto")
    p.add_argument("--mixed-precision", choices=tuple(PRECISIONS), default="off")
    p.add_argument("--jit-compile", action="store_true")
    p.add_argument("--embedding-dim", type=positive_int, default=64)
    p.add_argument("--learning-rate", type=non_negative_float, default=1e-3)
    p.add_argument("--verbose", type=non_negative_int, default=1, help="0 silent, 1 progress bar, 2 one line per epoch")
    g = p.add_argument_group("method hyper-parameters (SPEC defaults)")
    g.add_argument("--gamma", type=non_negative_float, default=0.01, help="GSC γ")
    g.add_argument("--top-k", type=positive_int, default=2, help="GSC top_k")
    g.add_argument("--label-smoothing", type=non_negative_float, default=0.1)
    g.add_argument("--focal-gamma", type=non_negative_float, default=2.0)
    g.add_argument("--bn-scale", type=non_negative_float, default=1.0, help="scaled-BN m")
    g.add_argument("--scale", type=non_negative_float, default=None,
                   help="cosine scale s (default 64 for npcface/arcface/cosface, 10 for pedcc)")
    g.add_argument("--margin", type=non_negative_float, default=None,
                   help="ArcFace 0.5 / CosFace 0.35 / PEDCC 0.5 by default")
    g.add_argument("--m0", type=non_negative_float, default=0.4)
    g.add_argument("--m1", type=non_negative_float, default=0.2)
    g.add_argument("--t", type=non_negative_float, default=1.1)
    g.add_argument("--alpha", type=non_negative_float, default=0.25)
    g.add_argument("--pedcc-n", type=non_negative_float, default=1.0)
    g.add_argument("--icu-alpha", type=non_negative_float, default=1e-4)
    g.add_argument("--icu-gamma", type=non_negative_float, default=1e-3)
    g.add_argument("--icu-lambda-mu", type=non_negative_float, default=0.1, help="ICU eq. 14 weight λ_μ")
    g.add_argument("--icu-lambda-sigma", type=non_negative_float, default=0.1, help="ICU eq. 14 weight λ_σ")
    args = p.parse_args(argv)
    if args.output is None:
        args.output = os.path.join("runs", f"{args.dataset.replace('/', '_')}-{args.method}-seed{args.seed}")
    if args.scale is None:
        args.scale = 10.0 if args.method == "pedcc" else 64.0
    if args.margin is None:
        args.margin = {"arcface": 0.5, "cosface": 0.35, "pedcc": 0.5}.get(args.method, 0.0)
    return args


# ----------------------------------------------------------------------------- strategy


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
    return _local_strategy(name), None


def _local_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    # auto: mirrored over several GPUs, else the default strategy
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


# ----------------------------------------------------------------------------- model


def make_loss(args):
    m = args.method
    if m == "softmax" or m == "scaled-bn":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if m == "label-smoothing":
        return keras_losses.GSCLoss(gamma=0.0, label_smoothing=args.label_smoothing)
    if m == "focal":
        return keras_losses.GSCLoss(gamma=0.0, focal_gamma=args.focal_gamma)
    if m == "gsc":
        return keras_losses.GSCLoss(gamma=args.gamma, top_k=args.top_k)
    if m == "pedcc":
        return keras_losses.PEDCCLoss(scale=args.scale, margin=args.margin, n=max(args.pedcc_n, 1.0))
    if m == "icu":
        return keras_losses.ICULoss(alpha=args.icu_alpha, gamma=args.icu_gamma)
    if m == "npcface":
        return keras_losses.NPCFaceLoss(scale=args.scale, m0=args.m0, m1=args.m1, t=args.t, alpha=args.alpha)
    if m == "arcface":
        return keras_losses.ArcFaceLoss(scale=args.scale, margin=args.margin)
    return keras_losses.CosFaceLoss(scale=args.scale, margin=args.margin)


def build_model(args, bundle):
    """Returns the training model; its output is logits, or cosines for the cosine heads."""
    from models.backbones import batch_norm, build_backbone

    backbone = build_backbone(args.backbone, bundle.input_shape, args.embedding_dim)
    if args.method == "icu":
        return keras_losses.build_icu_model(backbone, bundle.num_classes, input_shape=bundle.input_shape,
                                            lambda_mu=args.icu_lambda_mu, lambda_sigma=args.icu_lambda_sigma)
    images = keras.Input(bundle.input_shape, name="image")
    features = backbone(images)
    if args.method == "pedcc":
        features = batch_norm("feature_bn", center=False, scale=False)(features)
        outputs = keras_losses.PEDCCDense(bundle.num_classes, seed=args.seed, name="head")(features)
    elif args.method in COSINE_METHODS:
        outputs = keras_losses.CosineDense(bundle.num_classes, name="head")(features)
    else:
        outputs = keras.layers.Dense(bundle.num_classes, name="head", dtype="float32")(features)
        if args.method == "scaled-bn":
            outputs = keras_losses.ScaledBatchNormalization(scale=args.bn_scale, name="scaled_bn")(outputs)
    return keras.Model(images, outputs, name=f"{args.method}_{args.backbone}")


def to_logits(args, outputs):
    """Model outputs → logits whose softmax is the predicted distribution (no margin)."""
    outputs = np.asarray(outputs, np.float64)
    return args.scale * outputs if args.method in COSINE_METHODS else outputs


def feature_model(model):
    """The sub-model that maps images to the embedding (the backbone's output)."""
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return backbone


def completed_epochs(backup_dir):
    """Epochs finished by an interrupted run, from ``BackupAndRestore``'s metadata."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def trim_history(path, epochs):
    """Keeps the history rows of the first ``epochs`` epochs (drops a killed epoch's row)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",")[0]) < epochs]
    with open(path, "w") as f:
        f.write("\n".join(kept) + ("\n" if kept else ""))


# ----------------------------------------------------------------------------- run folder


def check_output_folder(args):
    """Creates the folder or checks that it holds this same run; returns run settings."""
    settings = {key: getattr(args, key) for key in RUN_KEYS}
    path = os.path.join(args.output, "run.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        differing = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
        if differing:
            details = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(differing.items()))
            raise UsageError(
                f"--output {args.output} holds a different run ({details}); choose another --output "
                "or delete the folder. Nothing was changed."
            )
    elif os.path.isdir(args.output) and os.listdir(args.output):
        raise UsageError(
            f"--output {args.output} is not empty and holds no run.json; choose another folder. Nothing was changed."
        )
    else:
        os.makedirs(args.output, exist_ok=True)
        with open(path, "w") as f:
            json.dump(settings, f, indent=2)
    return settings


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, args, bundle, x_test, y_test):
    inputs = {"image": x_test, "label": None} if args.method == "icu" else x_test
    logits = to_logits(args, model.predict(inputs, verbose=0, batch_size=256))
    metrics = {}
    if bundle.kind == "classification":
        metrics["accuracy"] = float(np.mean(np.argmax(logits, axis=1) == y_test))
        metrics["ece"] = expected_calibration_error(logits, y_test)
    else:  # the test identities are not classes of the head: judge the embeddings on pairs
        embed = feature_model(model)
        x_a, x_b, same = bundle.pairs
        a = embed.predict(x_a, verbose=0, batch_size=256)
        b = embed.predict(x_b, verbose=0, batch_size=256)
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        scores = (a * b).sum(axis=1)
        for far in (1e-2, 1e-3):
            metrics[f"tar@far={far:g}"] = keras_losses.tar_at_far(scores, same, far)[0]
    return metrics, logits, y_test


def plot(args, history_path, logits, labels):
    import csv

    plt = pyplot()

    with open(history_path) as f:
        rows = list(csv.DictReader(f))
    if rows and len(rows[0]) > 1:
        epochs = [int(r["epoch"]) + 1 for r in rows]
        def number(text):
            try:
                return float(text)
            except ValueError:
                return None

        keys = [k for k in rows[0] if k != "epoch" and all(number(r[k]) is not None for r in rows)]
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
        for axis, key in zip(axes[0], keys):
            axis.plot(epochs, [float(r[key]) for r in rows], marker="o", markersize=3)
            axis.set_title(key)
            axis.set_xlabel("epoch")
        fig.suptitle(f"{args.method} on {args.dataset}")
        fig.tight_layout()
        fig.savefig(os.path.join(args.output, "curves.png"), dpi=100)
        plt.close(fig)

    if logits is None:
        return
    _plot_reliability(args, logits, labels, plt)


def plot_features(args, model, bundle, x_test, y_test):
    """``features.png``: the test set's 2-D or 3-D embeddings, coloured by class."""
    plt = pyplot()
    features = feature_model(model).predict(x_test, verbose=0, batch_size=256)
    dim = features.shape[1]
    fig = plt.figure(figsize=(5.5, 5))
    axis = fig.add_subplot(projection="3d" if dim == 3 else None)
    points = axis.scatter(*features.T, c=y_test, cmap="tab10" if bundle.num_classes <= 10 else "viridis", s=6,
                          alpha=0.7)
    fig.colorbar(points, ax=axis, label="class", shrink=0.8)
    axis.set_title(f"{args.method}: {dim}-D test embeddings ({args.dataset})")
    fig.tight_layout()
    fig.savefig(os.path.join(args.output, "features.png"), dpi=100)
    plt.close(fig)


def _plot_reliability(args, logits, labels, plt):
    fig = reliability_figure({args.method: (logits, labels)}, f"{args.method} on the {args.dataset} test split")
    fig.savefig(os.path.join(args.output, "reliability.png"), dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


# What the chief tells the other workers before anything else happens (else: the first epoch).
REFUSED, FINISHED = -2, -1


def prepare_output(args):
    """Checks or creates the run folder; returns the first epoch to train, or FINISHED."""
    check_output_folder(args)
    if os.path.exists(os.path.join(args.output, "metrics.json")):
        return FINISHED
    return completed_epochs(os.path.join(args.output, "backup"))


def agree_on_start(args, strategy, role):
    """The first epoch (or FINISHED), decided by the chief and shared with every worker."""
    if role is None:
        return prepare_output(args)
    from models.multiworker import chief_number

    start = REFUSED
    try:
        if role.is_chief:
            start = prepare_output(args)
    finally:  # told even when the chief refuses, so that no worker waits for it forever
        start = chief_number(strategy, start)
    if start == REFUSED:
        raise UsageError("the chief refused this run; its error message says why")
    return start


def compile_model(args, bundle, replicas):
    model = build_model(args, bundle)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=make_loss(args),
        metrics=[] if args.method == "icu" else ["accuracy"],
        jit_compile=args.jit_compile if replicas == 1 else False,
    )
    return model


def local_copy(args, bundle, model):
    """A copy of ``model`` (weights and optimizer state) outside any multi-worker strategy, for
    evaluating and saving on the chief alone."""
    copy = compile_model(args, bundle, replicas=1)
    copy.optimizer.build(copy.trainable_variables)
    for target, source in zip(copy.variables + copy.optimizer.variables, model.variables + model.optimizer.variables):
        target.assign(source.numpy())
    return copy


def run(args):
    from models.data import load_dataset

    if args.backbone is None:
        args.backbone = default_backbone(args.dataset)
    strategy, role = make_strategy(args.strategy)
    chief = role is None or role.is_chief
    replicas = strategy.num_replicas_in_sync
    if args.batch_size % replicas:
        raise UsageError(f"--batch-size {args.batch_size} is not divisible by the {replicas} replicas")
    if args.jit_compile and replicas > 1 and args.verbose:
        print(f"note: --jit-compile is ignored with {replicas} replicas (XLA fails under tf.distribute in Keras)")
    first_epoch = agree_on_start(args, strategy, role)
    metrics_path = os.path.join(args.output, "metrics.json")
    if first_epoch == FINISHED:
        if not chief:
            return {"task": f"{role.task_type}:{role.index}", "replicas": replicas}  # the chief reports
        print(f"{args.output} already holds a finished run; its metrics:", flush=True)
        with open(metrics_path) as f:
            return json.load(f)

    keras.utils.set_random_seed(args.seed)
    if PRECISIONS[args.mixed_precision]:
        keras.config.set_dtype_policy(PRECISIONS[args.mixed_precision])
    bundle = load_dataset(args.dataset, args.batch_size, seed=args.seed, epochs=args.epochs, first_epoch=first_epoch)
    if bundle.train_size < args.batch_size:
        raise UsageError(f"--batch-size {args.batch_size} exceeds the {bundle.train_size} training examples")
    train = bundle.train
    if args.method == "icu":  # labels also feed the head's regulariser
        train = train.map(lambda x, y: ({"image": x, "label": y}, y))
    history_path = os.path.join(args.output, "history.csv")
    callbacks = []
    if chief:
        trim_history(history_path, first_epoch)
        if first_epoch:
            print(f"resuming {args.output} after epoch {first_epoch}", flush=True)
        callbacks = [  # history row first, then the backup: a kill in between only repeats a row
            keras.callbacks.CSVLogger(history_path, append=True),
            keras.callbacks.BackupAndRestore(os.path.join(args.output, "backup")),
            keras.callbacks.TensorBoard(os.path.join(args.output, "tensorboard")),
        ]
    with strategy.scope():
        model = compile_model(args, bundle, replicas)
    steps_per_epoch = bundle.train_size // args.batch_size
    start = time.perf_counter()
    if role is None:
        model.fit(
            train,
            epochs=args.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=args.verbose,
            shuffle=False,  # load_dataset shuffles every epoch from (seed, epoch)
        )
    else:
        from models import multiworker

        multiworker.fit(
            model, strategy, train, global_batch_size=args.batch_size, steps_per_epoch=steps_per_epoch,
            epochs=args.epochs, first_epoch=first_epoch, callbacks=callbacks, chief=chief, verbose=args.verbose,
        )
        if not chief:
            return {"task": f"{role.task_type}:{role.index}", "replicas": replicas}  # the chief reports
        model = local_copy(args, bundle, model)
    seconds = time.perf_counter() - start

    x_test, y_test = bundle.test_arrays()
    results, logits, labels = evaluate(model, args, bundle, x_test, y_test)
    results.update(
        epochs=args.epochs,
        train_seconds=seconds,
        replicas=replicas,
        device=tf.config.list_logical_devices()[0].device_type,
    )
    model.save(os.path.join(args.output, "model.keras"))
    plot(args, history_path, logits if bundle.kind == "classification" else None, labels)
    if args.embedding_dim in (2, 3):
        plot_features(args, model, bundle, x_test, y_test)
    with open(metrics_path, "w") as f:
        json.dump(results, f, indent=2)
    if args.verbose:
        print(json.dumps(results, indent=2), flush=True)
    return results


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
