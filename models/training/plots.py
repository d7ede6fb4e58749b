"""The figures of a training run: ``curves.png``, ``reliability.png`` (classification),
``roc.png`` (verification) and, for 2-/3-D embeddings, ``features.png``."""

import csv

from models._common import pyplot
from models.plots import history_figure, reliability_figure, roc_figure

LABELS = {"loss": "training loss (the method's loss, lower is better)",
          "accuracy": "training accuracy (fraction correct, higher is better)"}


def read_history(path):
    """``history.csv`` as ``{column: [per-epoch floats]}``; columns with a missing value are left out."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for key in rows[0] if rows else ():
        if key == "epoch":
            continue
        try:
            columns[key] = [float(row[key]) for row in rows]
        except (TypeError, ValueError):
            pass  # e.g. all-"NA" validation columns
    return columns


def save(fig, path):
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def curves(config, history_path, path):
    """Per-epoch training curves of the run."""
    history = read_history(history_path)
    if history:
        keys = list(history)
        title = f"{config.method} on {config.dataset}: training curves (seed {config.seed})"
        figure = history_figure({config.method: history}, keys, title, LABELS)
        if config.fine_tune_epochs:  # the stage starts after epoch fine_tune_from (epochs count from 1)
            for axis in figure.axes:
                axis.axvline(config.fine_tune_from + 0.5, color="grey", linestyle="--", linewidth=1,
                             label=f"fine-tuning from epoch {config.fine_tune_from + 1}")
                axis.legend(fontsize=8)
        save(figure, path)


def reliability(config, logits, labels, path):
    """Reliability diagram of the test predictions."""
    save(reliability_figure({config.method: (logits, labels)},
                            f"{config.method} on the {config.dataset} test split (seed {config.seed})"), path)


def roc(config, scores, same, path, fars):
    """TAR against FAR (log scale) on the test pairs, the TAR at each FAR of ``fars`` marked."""
    save(roc_figure({config.method: (scores, same)},
                    f"{config.method} on the {config.dataset} test pairs (seed {config.seed}): ROC", fars), path)


def features(config, embeddings, labels, num_classes, path):
    """The test split's 2-D or 3-D embeddings, coloured by class."""
    plt = pyplot()
    dim = embeddings.shape[1]
    fig = plt.figure(figsize=(5.5, 5))
    axis = fig.add_subplot(projection="3d" if dim == 3 else None)
    points = axis.scatter(*embeddings.T, c=labels, cmap="tab10" if num_classes <= 10 else "viridis", s=6, alpha=0.7)
    fig.colorbar(points, ax=axis, label="class (test label)", shrink=0.8)
    for index, setter in enumerate((axis.set_xlabel, axis.set_ylabel, getattr(axis, "set_zlabel", None))[:dim]):
        setter(f"embedding dimension {index + 1} (backbone output)")
    axis.set_title(f"{config.method}: {dim}-D test embeddings ({config.dataset})")
    fig.tight_layout()
    save(fig, path)
