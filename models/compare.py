"""Compare methods × seeds on one data set: ``python -m models.compare``.

    python -m models.compare                                   # every method, digits, 2 seeds (~2 min on 2 CPU cores)
    python -m models.compare --methods softmax,gsc,pedcc --seeds 0,1,2 --epochs 20
    python -m models.compare --dataset verification --methods softmax,arcface,cosface,npcface

Each (method, seed) is one run of the training tool (:func:`models.training.train`) in
``<output>/runs/<method>-seed<seed>`` (so an interrupted comparison resumes, and finished runs are
reused); every method trains with its defaults from :mod:`models.methods`. From Python:
:func:`compare`. Prints and writes a markdown table
(mean ± std over seeds of accuracy, ECE, TAR@FAR where the data set has verification pairs, and
seconds per epoch) to ``<output>/results.md``, with ``results.json`` and a bar chart ``results.png``.
"""

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from models import methods
from models._common import name_list, positive_float, positive_int, pyplot, seed_list, write_markdown_and_json
from models.backbones import BACKBONES
from models.data import DATASETS
from models.training import PRECISIONS, TrainConfig, UsageError, train
from models.training.fit import check_output_path, inspect_output

COLUMNS = ("accuracy", "ece", "tar@far=0.01", "tar@far=0.001")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=lambda text: name_list(methods.names(), "method")(text),
                        default=None, help=f"comma-separated (default: all: {','.join(methods.names())})")
    parser.add_argument("--dataset", choices=DATASETS, default="digits", help="default: %(default)s")
    parser.add_argument("--seeds", type=seed_list, default=[0, 1], help="comma-separated (default: 0,1)")
    parser.add_argument("--epochs", type=positive_int, default=8, help="default: %(default)s")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="default: %(default)s")
    parser.add_argument("--learning-rate", type=positive_float, default=3e-3, help="default: %(default)s")
    parser.add_argument("--output", default=os.path.join("runs", "compare"), help="default: %(default)s")
    parser.add_argument("--backbone", choices=BACKBONES, default=None, help="default: one that suits the dataset")
    parser.add_argument("--mixed-precision", choices=tuple(PRECISIONS), default="off", help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.methods is None:
        args.methods = list(methods.names())
    return args


def _cell(values):
    values = np.asarray(values, np.float64)
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def run_folder(output, method, seed):
    """Where ``compare`` keeps the run of (method, seed)."""
    return os.path.join(output, "runs", f"{method}-seed{seed}")


def compare(method_names, seeds, base, output, verbose=True):
    """Trains every method × seed with the settings of ``base`` and summarises them.

    Args:
        method_names: registered method names.
        seeds: seeds; each (method, seed) is one :func:`models.training.train` run in
            ``<output>/runs/<method>-seed<seed>`` (finished runs are reused, interrupted ones resume).
        base: a :class:`models.training.TrainConfig` for everything but method, seed and output
            (its ``hyperparameters`` must be empty: each method trains with its defaults).
        output: folder for the runs, ``results.md``, ``results.json`` and ``results.png``.
        verbose: print one line per finished run and the table.

    Returns:
        ``{method: {metric: [value per seed], "seconds_per_epoch": [...]}}``.
    """
    configs = {(method, seed): dataclasses.replace(base, method=method, seed=seed,
                                                   output=run_folder(output, method, seed), verbose=0)
               for method in method_names for seed in seeds}
    # Every run's settings and folder are checked before the first one trains (nothing is written).
    check_output_path(output)
    for config in configs.values():
        inspect_output(config.resolved())
    runs = {}
    total = len(configs)
    for (method, seed), config in configs.items():
        start = time.perf_counter()
        metrics = train(config)
        runs[(method, seed)] = metrics
        if verbose:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in COLUMNS)
            print(f"[{len(runs)}/{total}] {method} seed {seed}: {shown} ({time.perf_counter() - start:.1f} s)",
                  flush=True)

    columns = [k for k in COLUMNS if k in next(iter(runs.values()))]
    header = "| method | " + " | ".join(columns) + " | s/epoch |"
    lines = [header, "|---|" + "---:|" * (len(columns) + 1)]
    summary = {}
    for method in method_names:
        per_seed = [runs[(method, seed)] for seed in seeds]
        summary[method] = {k: [r[k] for r in per_seed] for k in columns}
        summary[method]["seconds_per_epoch"] = [r["train_seconds"] / r["epochs"] for r in per_seed]
        cells = [_cell(summary[method][k]) for k in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(summary[method]['seconds_per_epoch']):.2f} |")
    table = "\n".join(lines)
    note = (f"{base.dataset}, {base.epochs} epochs, batch {base.batch_size}, Adam {base.learning_rate}, "
            f"seeds {', '.join(map(str, seeds))} (mean ± sample std).")
    if verbose:
        print("\n" + note + "\n\n" + table, flush=True)

    os.makedirs(output, exist_ok=True)
    config = {**dataclasses.asdict(base), "methods": list(method_names), "seeds": list(seeds), "output": output}
    for key in ("method", "seed", "hyperparameters", "verbose"):
        config.pop(key)
    write_markdown_and_json(
        os.path.join(output, "results.md"), f"# Comparison\n\n{note}\n\n{table}\n",
        os.path.join(output, "results.json"), {"config": config, "summary": summary},
    )
    fig = figure(summary, columns, f"{base.dataset}: {len(seeds)} seed(s), {base.epochs} epochs")
    fig.savefig(os.path.join(output, "results.png"), dpi=100)
    pyplot().close(fig)
    return summary


def main(argv=None):
    """``python -m models.compare``: returns the summary (see :func:`compare`)."""
    import tensorflow as tf

    args = parse_args(argv)
    # Many models in one process: TF's "N calls triggered tf.function retracing" warning is expected.
    tf.get_logger().setLevel("ERROR")
    base = TrainConfig(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, backbone=args.backbone,
                       mixed_precision=args.mixed_precision)
    try:
        return compare(args.methods, args.seeds, base, args.output)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


LABELS = {"accuracy": "test accuracy (fraction correct, higher is better)",
          "ece": "test expected calibration error\n(ECE, lower is better)",
          "tar@far=0.01": "test TAR at FAR = 1e-2\n(true accept rate, higher is better)",
          "tar@far=0.001": "test TAR at FAR = 1e-3\n(true accept rate, higher is better)"}


def figure(summary, columns, title):
    """The comparison chart: one panel per metric, a bar per method (mean over seeds, error bars
    ± one sample standard deviation over seeds, none with one seed), the mean written on each bar.
    Every value axis starts at 0; rates (accuracy, TAR) end at 1."""
    plt = pyplot()
    names = list(summary)
    seeds = len(summary[names[0]][columns[0]])

    fig, axes = plt.subplots(1, len(columns), figsize=(max(4.8, 0.45 * len(names) + 2.2) * len(columns), 4.6),
                             squeeze=False)
    for axis, key in zip(axes[0], columns):
        means = np.array([np.mean(summary[m][key]) for m in names])
        errors = np.array([np.std(summary[m][key], ddof=1) for m in names]) if seeds > 1 else None
        axis.bar(range(len(means)), means, yerr=errors, color="tab:blue", capsize=3,
                        error_kw={"elinewidth": 1}, label="mean over seeds" if seeds > 1 else "one seed")
        tops = means + (errors if errors is not None else 0.0)
        for x, (mean, top) in enumerate(zip(means, tops)):  # the mean, written over the error bar
            axis.annotate(f"{mean:.3f}", (x, top), xytext=(0, 2), textcoords="offset points", ha="center",
                          va="bottom", fontsize=7, rotation=90 if len(names) > 5 else 0)
        axis.set_xticks(range(len(means)), names, rotation=45, ha="right")
        axis.set_xlabel("method")
        axis.set_ylabel(LABELS.get(key, key))
        high = float(np.max(tops))
        if key == "ece":  # a small positive number: from 0, with room for the written values
            axis.set_ylim(0.0, max(high, 1e-3) * 1.3)
        else:  # rates: the full range from 0 to 1, so that gaps are not exaggerated
            axis.set_ylim(0.0, max(1.0, high) * 1.15)
            axis.axhline(1.0, color="gray", linewidth=0.8, linestyle=":")
        axis.grid(axis="y", alpha=0.3)
    if seeds > 1:
        bars = f"bars: mean over {seeds} seeds (value written on each bar); error bars: ± 1 sample std over seeds"
    else:
        bars = "bars: a single seed (value written on each bar); no error bars"
    fig.suptitle(f"{title}\n{bars}; value axes start at 0", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
