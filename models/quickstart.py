"""Quickstart: compare every shipped loss and head on digits.

Trains the same small MLP (64 pixels → Dense(64, relu) → a 10-class head) on
scikit-learn's bundled 8×8 digits (no download) once per method and seed, then
reports test accuracy, expected calibration error and mean negative
log-likelihood:

    python -m models.quickstart                        # all methods, 1 seed
    python -m models.quickstart --seeds 0 1 2          # mean ± std over 3 seeds
    python -m models.quickstart --methods softmax,gsc --epochs 5 --output runs/qs

Methods (every one trains the model with Adam on integer labels unless noted):

    softmax          cross-entropy on the logits (SparseCategoricalCrossentropy)
    label-smoothing  cross-entropy against one-hot targets smoothed by ε = 0.1
                     (Keras' CategoricalCrossentropy; its sparse version has no
                     label smoothing)
    gsc              keras_losses.GSCLoss(gamma=1.0, top_k=2); the GSC paper
                     reports γ ∈ [0.005, 2] (``--gsc-gamma`` changes it)
    scaled-bn        logits → keras_losses.ScaledBatchNormalization(scale=1.0)
                     → cross-entropy
    cosface          keras_losses.CosineDense(10) + CosFaceLoss(scale=16, margin=0.35)
    arcface          keras_losses.CosineDense(10) + ArcFaceLoss(scale=16, margin=0.5)
    npcface          keras_losses.CosineDense(10) + NPCFaceLoss(scale=16), paper margins

The cosine heads output cosines; their class probabilities (for ECE and NLL)
are softmax(16·cos), the same scale they are trained with, without the margin.

The train/test split (70/30, stratified) is fixed; a seed sets the weights'
initialisation and the shuffling order, through ``keras.utils.set_random_seed``
and the ``tf.data`` shuffle seed, so a run is reproducible given its seeds.

Writes ``<output>/results.md`` (the markdown table printed at the end),
``<output>/results.json`` (per-run numbers and the summary) and
``<output>/reliability.png`` (one reliability diagram per method, predictions
pooled over seeds).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_losses  # noqa: E402
from models._common import (  # noqa: E402
    name_list, non_negative_float, positive_int, pyplot, seed_list, write_markdown_and_json,
)
from models.evaluation import mean_nll  # noqa: E402
from models.plots import reliability_figure  # noqa: E402

METHODS = ("softmax", "label-smoothing", "gsc", "scaled-bn", "cosface", "arcface", "npcface")
COSINE_METHODS = ("cosface", "arcface", "npcface")
COSINE_SCALE = 16.0
DEFAULT_EPOCHS = 30
DEFAULT_OUTPUT = os.path.join("runs", "quickstart")
BATCH_SIZE = 32
EVAL_BATCH_SIZE = 256
LEARNING_RATE = 1e-3
HIDDEN_UNITS = 64
SPLIT_SEED = 0
NUM_BINS = 15
LABEL_SMOOTHING = 0.1
GSC_GAMMA = 1.0
GSC_TOP_K = 2
BN_SCALE = 1.0


# ----------------------------------------------------------------------------- CLI


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m models.quickstart",
        description="Train a small MLP on scikit-learn's digits with each loss/head and "
        "compare test accuracy, ECE and NLL.",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs per run (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        nargs="+",
        default=[[0]],
        metavar="SEED",
        help="one or more seeds, space- or comma-separated (default 0); with several, "
        "the table reports mean ± std",
    )
    parser.add_argument(
        "--methods",
        type=name_list(METHODS, "method"),
        default=list(METHODS),
        help=f"comma-separated methods to run (default all: {','.join(METHODS)})",
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"folder for results.md, results.json and reliability.png (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--gsc-gamma",
        type=non_negative_float,
        default=GSC_GAMMA,
        help=f"γ of the gsc method (default {GSC_GAMMA}; the GSC paper reports 0.005 to 2)",
    )
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(seed for group in args.seeds for seed in group))
    return args


# ----------------------------------------------------------------------------- data


def load_data():
    """Digits scaled to [0, 1] as 64-pixel vectors, split 70/30 stratified with a fixed seed (the
    split of ``models.data``)."""
    from models.data import digits_split

    x_train, y_train, x_test, y_test = digits_split(SPLIT_SEED)
    num_classes = int(y_train.max()) + 1
    return x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1), y_train, y_test, num_classes


def make_dataset(x, y, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- models


def build_model(method, num_features, num_classes):
    inputs = keras.Input((num_features,), name="pixels")
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu", name="hidden")(inputs)
    if method in COSINE_METHODS:
        cosines = keras_losses.CosineDense(num_classes, name="cosines")(hidden)
        return keras.Model(inputs, cosines, name="quickstart_" + method)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    if method == "scaled-bn":
        logits = keras_losses.ScaledBatchNormalization(scale=BN_SCALE, name="scaled_bn")(logits)
    return keras.Model(inputs, logits, name="quickstart_" + method.replace("-", "_"))


def make_loss(method, gsc_gamma):
    """Returns ``(loss, one_hot_labels)`` for a method."""
    if method in ("softmax", "scaled-bn"):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), False
    if method == "label-smoothing":
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=LABEL_SMOOTHING)
        return loss, True
    if method == "gsc":
        return keras_losses.GSCLoss(gamma=gsc_gamma, top_k=GSC_TOP_K, from_logits=True), False
    if method == "cosface":
        return keras_losses.CosFaceLoss(scale=COSINE_SCALE), False
    if method == "arcface":
        return keras_losses.ArcFaceLoss(scale=COSINE_SCALE), False
    if method == "npcface":
        return keras_losses.NPCFaceLoss(scale=COSINE_SCALE), False
    raise ValueError(f"unknown method {method!r}; valid methods are: {', '.join(METHODS)}")


# ----------------------------------------------------------------------------- evaluation


# ----------------------------------------------------------------------------- one run


def run_one(method, seed, data, epochs, gsc_gamma):
    """Trains and evaluates one method with one seed; returns ``(record, test_logits)``."""
    x_train, x_test, y_train, y_test, num_classes = data
    start = time.perf_counter()
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)

    loss, one_hot = make_loss(method, gsc_gamma)
    train_labels = np.eye(num_classes, dtype="float32")[y_train] if one_hot else y_train
    test_labels = np.eye(num_classes, dtype="float32")[y_test] if one_hot else y_test
    train_ds = make_dataset(x_train, train_labels, BATCH_SIZE, shuffle_seed=seed)
    test_ds = make_dataset(x_test, test_labels, EVAL_BATCH_SIZE)

    model = build_model(method, x_train.shape[-1], num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=loss,
        metrics=["accuracy"],
    )
    # The dataset is already shuffled (with the seed); shuffle=False only silences Keras.
    history = model.fit(train_ds, epochs=epochs, shuffle=False, verbose=0)
    scores = model.evaluate(test_ds, verbose=0, return_dict=True)
    # A direct call (inference mode) avoids tracing a new predict function per run.
    logits = keras.ops.convert_to_numpy(model(x_test, training=False))
    if method in COSINE_METHODS:
        logits = COSINE_SCALE * logits  # cosines → the logits the head was trained on, no margin
    ece = keras_losses.ExpectedCalibrationError(num_bins=NUM_BINS, from_logits=True)
    ece.update_state(y_test, logits)
    seconds = time.perf_counter() - start

    record = {
        "method": method,
        "seed": seed,
        "accuracy": float(scores["accuracy"]),
        "ece": float(ece.result()),
        "nll": mean_nll(logits, y_test),
        "seconds": seconds,
        "test_loss": float(scores["loss"]),
        "final_train_loss": float(history.history["loss"][-1]),
    }
    return record, logits


# ----------------------------------------------------------------------------- reporting

COLUMNS = (("accuracy", "accuracy", 4), ("ece", "ECE", 4), ("nll", "NLL", 4), ("seconds", "seconds", 1))


def _summary(values):
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "values": values}


def _cell(stats, digits, several):
    text = f"{stats['mean']:.{digits}f}"
    return text + f" ± {stats['std']:.{digits}f}" if several else text


def markdown_table(summary, num_seeds):
    several = num_seeds > 1
    lines = [
        "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for method, stats in summary.items():
        cells = [_cell(stats[key], digits, several) for key, _, digits in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_reliability(path, methods, pooled, num_seeds):
    seeds_text = "1 seed" if num_seeds == 1 else f"{num_seeds} seeds pooled"
    fig = reliability_figure({m: pooled[m] for m in methods}, f"Reliability on the digits test split, {seeds_text}",
                             NUM_BINS)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


# ----------------------------------------------------------------------------- main


def main(argv=None):
    """Runs the comparison; returns the results dict also written to results.json."""
    args = parse_args(argv)
    data = load_data()
    x_train, x_test, _, y_test, num_classes = data
    os.makedirs(args.output, exist_ok=True)

    total = len(args.methods) * len(args.seeds)
    print(
        f"digits: {len(x_train)} train / {len(x_test)} test, {num_classes} classes; "
        f"{len(args.methods)} method(s) × {len(args.seeds)} seed(s), {args.epochs} epochs each",
        flush=True,
    )
    started = time.perf_counter()
    runs, pooled = [], {}
    for method in args.methods:
        method_logits = []
        for seed in args.seeds:
            record, logits = run_one(method, seed, data, args.epochs, args.gsc_gamma)
            runs.append(record)
            method_logits.append(logits)
            counter = f"[{len(runs):>{len(str(total))}}/{total}]"
            print(
                f"{counter} {method:<15} seed {seed}: accuracy {record['accuracy']:.4f}  "
                f"ECE {record['ece']:.4f}  NLL {record['nll']:.4f}  ({record['seconds']:.1f} s)",
                flush=True,
            )
        pooled[method] = (np.concatenate(method_logits), np.tile(y_test, len(args.seeds)))
    total_seconds = time.perf_counter() - started

    summary = {
        method: {
            key: _summary([r[key] for r in runs if r["method"] == method])
            for key in ("accuracy", "ece", "nll", "seconds", "test_loss", "final_train_loss")
        }
        for method in args.methods
    }
    table = markdown_table(summary, len(args.seeds))
    config = {
        "dataset": "sklearn.datasets.load_digits, pixels / 16",
        "train_size": int(len(x_train)),
        "test_size": int(len(x_test)),
        "split_seed": SPLIT_SEED,
        "model": f"Dense({HIDDEN_UNITS}, relu) -> Dense({num_classes}) logits",
        "optimizer": f"Adam(learning_rate={LEARNING_RATE})",
        "batch_size": BATCH_SIZE,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "methods": args.methods,
        "label_smoothing": LABEL_SMOOTHING,
        "gsc": {"gamma": args.gsc_gamma, "top_k": GSC_TOP_K},
        "scaled_bn_scale": BN_SCALE,
        "cosine_heads": {"scale": COSINE_SCALE, "probabilities": "softmax(scale * cos)"},
        "ece_bins": NUM_BINS,
    }
    paths = {
        "markdown": os.path.join(args.output, "results.md"),
        "json": os.path.join(args.output, "results.json"),
        "reliability": os.path.join(args.output, "reliability.png"),
    }
    results = {
        "config": config,
        "summary": summary,
        "runs": runs,
        "table": table,
        "total_seconds": total_seconds,
        "files": paths,
    }

    std_note = " (mean ± sample std over seeds)" if len(args.seeds) > 1 else ""
    markdown = "\n".join(
        [
            "# Quickstart: digits",
            "",
            f"{config['model']}, {config['optimizer']}, batch {BATCH_SIZE}, {args.epochs} epochs; "
            f"{config['train_size']} train / {config['test_size']} test (stratified, split seed "
            f"{SPLIT_SEED}); seeds {', '.join(map(str, args.seeds))}{std_note}.",
            f"label-smoothing ε = {LABEL_SMOOTHING}; gsc γ = {args.gsc_gamma}, top_k = {GSC_TOP_K}; "
            f"scaled-bn scale = {BN_SCALE}; cosine heads (cosface, arcface, npcface) scale = "
            f"{COSINE_SCALE}, probabilities softmax(scale·cos). ECE with {NUM_BINS} equal-width bins; NLL is the mean "
            "test negative log-likelihood; seconds cover building, training and evaluating one run.",
            "",
            table,
            "",
        ]
    )
    write_markdown_and_json(paths["markdown"], markdown, paths["json"], results)
    plot_reliability(paths["reliability"], args.methods, pooled, len(args.seeds))

    print()
    print(table)
    if std_note:
        print(std_note.strip().strip("()").capitalize() + ".")
    print()
    print(f"total {total_seconds:.1f} s; wrote {', '.join(paths.values())}", flush=True)
    return results


if __name__ == "__main__":
    main()
