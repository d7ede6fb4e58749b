"""Compare methods × seeds on one data set: ``python -m models.compare``.

    python -m models.compare                                   # every method, digits, 2 seeds (~2 min on 2 CPU cores)
    python -m models.compare --methods softmax,gsc,pedcc --seeds 0,1,2 --epochs 20
    python -m models.compare --dataset verification --methods softmax,arcface,cosface,npcface

Each (method, seed) is one :mod:`models.train` run in ``<output>/runs/<method>-seed<seed>`` (so an
interrupted comparison resumes, and finished runs are reused). Prints and writes a markdown table
(mean ± std over seeds of accuracy, ECE, TAR@FAR where the data set has verification pairs, and
seconds per epoch) to ``<output>/results.md``, with ``results.json`` and a bar chart ``results.png``.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from models import train  # noqa: E402
from models._common import name_list, positive_int, pyplot, seed_list, write_markdown_and_json  # noqa: E402
from models.backbones import BACKBONES  # noqa: E402
from models.data import DATASETS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=name_list(train.METHODS, "method"), default=list(train.METHODS))
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--seeds", type=seed_list, default=[0, 1])
    parser.add_argument("--epochs", type=positive_int, default=8)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--output", default=os.path.join("runs", "compare"))
    parser.add_argument("--backbone", choices=BACKBONES, default=None, help="default: one that suits the dataset")
    parser.add_argument("--mixed-precision", choices=tuple(train.PRECISIONS), default="off")
    return parser.parse_args(argv)


def _cell(values):
    values = np.asarray(values, np.float64)
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    # Many models in one process: TF's "N calls triggered tf.function retracing" warning is expected.
    tf.get_logger().setLevel("ERROR")
    runs = {}
    total = len(args.methods) * len(args.seeds)
    for method in args.methods:
        for seed in args.seeds:
            folder = os.path.join(args.output, "runs", f"{method}-seed{seed}")
            start = time.perf_counter()
            metrics = train.main([
                "--method", method, "--dataset", args.dataset, "--seed", str(seed),
                "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                "--learning-rate", str(args.learning_rate), "--output", folder, "--verbose", "0",
                "--mixed-precision", args.mixed_precision,
                *(["--backbone", args.backbone] if args.backbone else []),
            ])  # fmt: skip
            runs[(method, seed)] = metrics
            done = len(runs)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k == "accuracy" or k.startswith(("ece", "tar")))
            print(f"[{done}/{total}] {method} seed {seed}: {shown} ({time.perf_counter() - start:.1f} s)", flush=True)

    columns = [k for k in ("accuracy", "ece", "tar@far=0.01", "tar@far=0.001") if k in next(iter(runs.values()))]
    header = "| method | " + " | ".join(columns) + " | s/epoch |"
    lines = [header, "|---|" + "---:|" * (len(columns) + 1)]
    summary = {}
    for method in args.methods:
        per_seed = [runs[(method, seed)] for seed in args.seeds]
        summary[method] = {k: [r[k] for r in per_seed] for k in columns}
        summary[method]["seconds_per_epoch"] = [r["train_seconds"] / r["epochs"] for r in per_seed]
        cells = [_cell(summary[method][k]) for k in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(summary[method]['seconds_per_epoch']):.2f} |")
    table = "\n".join(lines)
    note = (f"{args.dataset}, {args.epochs} epochs, batch {args.batch_size}, Adam {args.learning_rate}, "
            f"seeds {', '.join(map(str, args.seeds))} (mean ± sample std).")
    print("\n" + note + "\n\n" + table, flush=True)

    os.makedirs(args.output, exist_ok=True)
    write_markdown_and_json(
        os.path.join(args.output, "results.md"), f"# Comparison\n\n{note}\n\n{table}\n",
        os.path.join(args.output, "results.json"), {"config": vars(args), "summary": summary},
    )
    fig = figure(args, summary, columns)
    fig.savefig(os.path.join(args.output, "results.png"), dpi=100)
    pyplot().close(fig)
    return summary


LABELS = {"accuracy": "test accuracy (higher is better)", "ece": "test ECE (lower is better)",
          "tar@far=0.01": "TAR at FAR 1e-2 (higher is better)", "tar@far=0.001": "TAR at FAR 1e-3 (higher is better)"}


def figure(args, summary, columns):
    """The comparison chart: one panel per metric, a bar per method (mean over seeds, error bars
    ± one sample standard deviation over seeds)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.9), squeeze=False)
    for axis, key in zip(axes[0], columns):
        means = [np.mean(summary[m][key]) for m in args.methods]
        errors = [np.std(summary[m][key], ddof=1) if len(args.seeds) > 1 else 0.0 for m in args.methods]
        axis.bar(range(len(means)), means, yerr=errors, color="tab:blue", capsize=3)
        axis.set_xticks(range(len(means)), args.methods, rotation=45, ha="right")
        axis.set_ylabel(LABELS.get(key, key))
        axis.set_title(LABELS.get(key, key), fontsize=10)
        if key != "ece":  # accuracy-like: zoom in on the range the methods span
            low = min(m - e for m, e in zip(means, errors))
            axis.set_ylim(max(0.0, low - 0.05 * (1.0 - low) - 0.01), 1.0)
    bars = "mean ± sample std over seeds" if len(args.seeds) > 1 else "one seed, no error bars"
    fig.suptitle(f"{args.dataset}: {len(args.seeds)} seed(s), {args.epochs} epochs ({bars})")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
