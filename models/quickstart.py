"""Quickstart: compare every method of the registry on digits.

Trains the same small MLP (64 pixels → Dense(64, relu) → the method's head) on scikit-learn's
bundled 8×8 digits (no download) once per method and seed, then reports test accuracy, expected
calibration error and mean negative log-likelihood:

    python -m models.quickstart                        # every method, 1 seed
    python -m models.quickstart --seeds 0 1 2          # mean ± std over 3 seeds
    python -m models.quickstart --methods softmax,gsc --epochs 5 --output runs/qs

Every method trains with Adam on integer labels, with the head, loss and hyper-parameter defaults
of :mod:`models.methods` (``python -m models.train --help`` lists them); ``--gsc-gamma`` changes
GSC's γ. The cosine heads output cosines; their class probabilities (for ECE and NLL) are
softmax(s·cos), the scale they are trained with, without the margin.

The train/test split (70/30, stratified) is fixed; a seed sets the weights' initialisation and the
shuffling order, through ``keras.utils.set_random_seed`` and the ``tf.data`` shuffle seed, so a run
is reproducible given its seeds.

Writes ``<output>/results.md`` (the markdown table printed at the end), ``<output>/results.json``
(per-run numbers and the summary) and ``<output>/reliability.png`` (one reliability diagram per
method, predictions pooled over seeds).
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

from models import methods
from models._common import name_list, positive_int, pyplot, seed_list, write_markdown_and_json
from models.data import digits_split
from models.evaluation import NUM_BINS, classification_metrics
from models.plots import reliability_figure

DEFAULT_EPOCHS = 30
DEFAULT_OUTPUT = os.path.join("runs", "quickstart")
BATCH_SIZE = 32
EVAL_BATCH_SIZE = 256
LEARNING_RATE = 1e-3
HIDDEN_UNITS = 64
SPLIT_SEED = 0


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
        type=lambda text: name_list(methods.names(), "method")(text),
        default=None,
        help=f"comma-separated methods to run (default all: {','.join(methods.names())})",
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"folder for results.md, results.json and reliability.png (default {DEFAULT_OUTPUT})",
    )
    gsc_gamma = next(hp for hp in methods.get("gsc").hyperparameters if hp.name == "gsc_gamma")
    parser.add_argument(
        "--gsc-gamma",
        type=float,
        default=gsc_gamma.default_value,
        help=f"γ of the gsc method (default {gsc_gamma.default_value}; the GSC paper reports 0.005 to 2)",
    )
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(seed for group in args.seeds for seed in group))
    args.methods = list(methods.names()) if args.methods is None else args.methods
    try:
        gsc_gamma.check(args.gsc_gamma)
    except ValueError as error:
        parser.error(f"--gsc-gamma: {error.detail}")
    return args


# ----------------------------------------------------------------------------- data


def load_data():
    """Digits as 64-pixel vectors in [0, 1], split 70/30 stratified with a fixed seed (the split of
    ``models.data``)."""
    x_train, y_train, x_test, y_test = digits_split(SPLIT_SEED, flatten=True)
    num_classes = int(y_train.max()) + 1
    return x_train, x_test, y_train, y_test, num_classes


def make_dataset(x, y, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- models


def build_model(method, params, num_features, num_classes, seed):
    """The MLP backbone → the method's head (:meth:`models.methods.Method.build_model`)."""
    backbone = keras.Sequential(
        [keras.Input((num_features,)), keras.layers.Dense(HIDDEN_UNITS, activation="relu", name="hidden")],
        name="mlp",
    )
    return method.build_model(backbone, (num_features,), num_classes, params, seed=seed,
                              name="quickstart_" + method.name.replace("-", "_"))


# ----------------------------------------------------------------------------- one run


def run_one(method_name, seed, data, epochs, overrides=None):
    """Trains and evaluates one method with one seed; returns ``(record, test_logits)``."""
    x_train, x_test, y_train, y_test, num_classes = data
    start = time.perf_counter()
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)

    method = methods.get(method_name)
    params = method.resolve(overrides)
    train_ds = make_dataset(method.fit_inputs(x_train, y_train), y_train, BATCH_SIZE, shuffle_seed=seed)
    model = build_model(method, params, x_train.shape[-1], num_classes, seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=method.make_loss(params),
                  metrics=["accuracy"])
    # The dataset is already shuffled (with the seed); shuffle=False only silences Keras.
    history = model.fit(train_ds, epochs=epochs, shuffle=False, verbose=0)
    # A direct call (inference mode) avoids tracing a new predict function per run.
    outputs = model(method.predict_inputs(x_test), training=False)
    logits = method.to_logits(keras.ops.convert_to_numpy(outputs), params)  # cosines → s·cos, no margin
    metrics = classification_metrics(logits, y_test, NUM_BINS)
    record = {
        "method": method_name,
        "seed": seed,
        **metrics,
        "seconds": time.perf_counter() - start,
        "final_train_loss": float(history.history["loss"][-1]),
        "hyperparameters": params,
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
    """One reliability diagram per method, at most four a row (one figure)."""
    seeds_text = "1 seed" if num_seeds == 1 else f"test predictions of {num_seeds} seeds pooled"
    fig = reliability_figure({m: pooled[m] for m in methods}, f"Reliability on the digits test split, {seeds_text}",
                             NUM_BINS, max_columns=4)
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
            overrides = {"gsc_gamma": args.gsc_gamma} if method == "gsc" else {}
            record, logits = run_one(method, seed, data, args.epochs, overrides)
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
            for key in ("accuracy", "ece", "nll", "seconds", "final_train_loss")
        }
        for method in args.methods
    }
    table = markdown_table(summary, len(args.seeds))
    config = {
        "dataset": "sklearn.datasets.load_digits, pixels / 16",
        "train_size": int(len(x_train)),
        "test_size": int(len(x_test)),
        "split_seed": SPLIT_SEED,
        "model": f"Dense({HIDDEN_UNITS}, relu) -> the method's head ({num_classes} classes)",
        "optimizer": f"Adam(learning_rate={LEARNING_RATE})",
        "batch_size": BATCH_SIZE,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "methods": args.methods,
        "hyperparameters": {m: next(r["hyperparameters"] for r in runs if r["method"] == m) for m in args.methods},
        "cosine_heads": "probabilities softmax(scale * cos), without the margin",
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
            "Hyper-parameters: " + "; ".join(
                f"{m} " + ", ".join(f"{k} = {v}" for k, v in config["hyperparameters"][m].items())
                for m in args.methods if config["hyperparameters"][m]) + ".",
            f"Cosine heads: probabilities softmax(s·cos). ECE with {NUM_BINS} equal-width bins; NLL is the mean "
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
