"""Figures shared by the tools in ``models/`` and the notebooks in ``colab/``.

Each function returns a ``matplotlib`` figure: a script saves it (``fig.savefig``), a notebook
shows it inline. None of them picks a backend (see ``models._common.pyplot``).
"""

import numpy as np

from models._common import pyplot
from models.evaluation import NUM_BINS, VERIFICATION_FARS, reliability_bins


# What a history/metric key shows, for axis labels (``describe`` builds one for other keys).
METRIC_LABELS = {
    "loss": "loss",
    "accuracy": "accuracy (fraction correct, higher is better)",
    "ece": "expected calibration error (ECE, lower is better)",
    "nll": "negative log-likelihood (nats, lower is better)",
}


def describe(key):
    """An axis label for a metric key: ``"val_accuracy"`` → ``"validation accuracy (fraction correct, …)"``."""
    prefix = ""
    if key.startswith("val_"):
        prefix, key = "validation ", key[len("val_"):]
    return prefix + METRIC_LABELS.get(key, key.replace("_", " "))


def _far_text(far):
    exponent = np.log10(far)
    return f"1e{int(round(exponent))}" if np.isclose(exponent, round(exponent)) else f"{far:g}"


def reliability_figure(items, title, num_bins=NUM_BINS, max_columns=4):
    """Reliability diagrams, one panel per entry of ``items`` (``{name: (logits, labels)}``), at most
    ``max_columns`` panels a row.

    Top row: accuracy per confidence bin (bars), the gap to the bin's mean confidence (hatched:
    above the bar when over-confident, inside it when under-confident) and the diagonal of perfect
    calibration; the panel title gives accuracy, ECE and the number of samples. Bottom row: the
    number of samples in each bin (written over each bar), so that bins holding few samples can be
    told apart. A legend under the panels names the bars and the diagonal.
    """
    plt = pyplot()
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / num_bins
    columns = min(len(items), max_columns)
    groups = -(-len(items) // columns)  # rows of panels, each an accuracy row over a count row
    fig = plt.figure(figsize=(max(3.6 * columns, 5.6) + 0.4, 5.0 * groups + 0.9), layout="constrained")
    rows = [row.subplots(2, columns, squeeze=False, sharex="col", gridspec_kw={"height_ratios": [3, 1.3]})
            for row in fig.subfigures(groups, 1, squeeze=False)[:, 0]]
    for index in range(len(items), groups * columns):  # the empty places of the last row
        rows[-1][0, index % columns].set_axis_off()
        rows[-1][1, index % columns].set_axis_off()
    for index, (name, (logits, labels)) in enumerate(items.items()):
        group, column = divmod(index, columns)
        top, bottom = rows[group][0, column], rows[group][1, column]
        bins = reliability_bins(logits, labels, num_bins)
        filled = bins["counts"] > 0
        top.bar(centers[filled], bins["accuracy"][filled], width=width, color="tab:blue", alpha=0.75,
                edgecolor="black", linewidth=0.5, label="accuracy in bin")
        gap = bins["confidence"][filled] - bins["accuracy"][filled]
        top.bar(centers[filled], gap, bottom=bins["accuracy"][filled], width=width, fill=False, hatch="////",
                edgecolor="tab:red", linewidth=0.5, label="gap to mean confidence in bin")
        top.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1))
        top.tick_params(labelbottom=False)
        accuracy = float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels).reshape(-1)))
        top.set_title(f"{name}\nacc {accuracy:.3f}, ECE {bins['ece']:.3f} (lower is better)\n"
                      f"n = {int(bins['counts'].sum())} samples", fontsize=9)
        counts = bins["counts"]
        bars = bottom.bar(centers, counts, width=width, color="gray", edgecolor="black", linewidth=0.5,
                          label="samples in bin")
        bottom.bar_label(bars, labels=[f"{int(c)}" if c else "" for c in counts], fontsize=6, padding=1,
                         rotation=90 if counts.max() >= 1000 else 0)
        bottom.set_ylim(0, max(counts.max(), 1) * 1.45)  # room for the counts over the bars
        bottom.set_xlim(0, 1)
        bottom.set_xlabel("confidence (max softmax probability)")
        top.set_ylabel("accuracy in bin (fraction correct)" if column == 0 else "accuracy in bin")
        bottom.set_ylabel("samples in bin\n(count)")
    fig.suptitle(f"{title}\n{num_bins} equal-width confidence bins; bottom: samples per bin", fontsize=11)
    handles, labels = rows[0][0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) if columns > 1 else 1, fontsize=8,
               frameon=False)
    return fig


def history_figure(histories, keys, title, ylabels=None):
    """Training curves: one panel per metric in ``keys``, one line per run (a legend names the runs
    wherever a panel holds more than one line).

    Args:
        histories: ``{run name: History.history}`` (dicts of per-epoch lists, as ``model.fit``
            returns them); a key a run lacks is skipped for that run.
        keys: metric names, e.g. ``("loss", "val_accuracy")``.
        title: the figure's title.
        ylabels: optional ``{key: axis label}``; defaults to :func:`describe` of the key.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    ylabels = ylabels or {}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.8 * len(keys), 3.8), squeeze=False)
    for axis, key in zip(axes[0], keys):
        label = ylabels.get(key) or describe(key)
        for name, history in histories.items():
            if key in history:
                values = history[key]
                axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
        if len(axis.lines) > 1:
            axis.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def roc_figure(items, title, fars=VERIFICATION_FARS):
    """Verification ROC: true-accept rate against false-accept rate (log scale), one line per entry
    of ``items`` (``{name: (scores, same)}``: each pair's similarity and whether it is a
    same-identity pair), from :func:`keras_losses.roc_curve`. The TAR at each FAR of ``fars`` (as
    :func:`keras_losses.tar_at_far` reports it) is marked and written in the legend; FARs below
    ``1 / (number of different-identity pairs)`` cannot be measured and are shaded.
    """
    import keras_losses

    plt = pyplot()
    fig, axis = plt.subplots(figsize=(6.4, 4.8))
    styles = ("o", "s", "^", "D", "v")
    items = {name: (np.asarray(scores), np.asarray(same, bool)) for name, (scores, same) in items.items()}
    # The left end: below every marked FAR and below 1 / (different pairs), where FAR = 0 is drawn.
    left = min([min(fars) / 3] + [0.5 / max(int((~same).sum()), 1) for _, same in items.values()])
    for name, (scores, same) in items.items():
        negatives, positives = int((~same).sum()), int(same.sum())
        prefix = f"{name}: " if len(items) > 1 else ""
        far, tar, _ = keras_losses.roc_curve(scores, same)
        # TAR at FAR ≤ x is a step: the TAR of the last threshold whose FAR is ≤ x.
        line, = axis.plot(np.maximum(far, left), tar, drawstyle="steps-post", linewidth=1.5,
                          label=f"{name} ({positives} same / {negatives} different pairs)")
        for far_index, target in enumerate(fars):
            value = keras_losses.tar_at_far(scores, same, target)[0]
            axis.plot([target], [value], styles[far_index % len(styles)], color=line.get_color(), markersize=7,
                      markeredgecolor="black", label=f"{prefix}TAR at FAR = {_far_text(target)}: {value:.3f}")
    fewest = min(int((~same).sum()) for _, same in items.values())
    axis.axvspan(left, 1.0 / max(fewest, 1), color="gray", alpha=0.12, linewidth=0)
    for target in fars:
        axis.axvline(target, color="gray", linestyle=":", linewidth=1)
    chance = np.logspace(np.log10(left), 0, 50)
    axis.plot(chance, chance, "--", color="gray", linewidth=1, label="chance (TAR = FAR)")
    axis.set_xscale("log")
    axis.set(xlim=(left, 1.0), ylim=(0.0, 1.02))
    axis.set_xlabel("false accept rate (FAR, log scale)")
    axis.set_ylabel("true accept rate (TAR)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8, loc="upper left")
    axis.set_title(f"{title}\na pair is accepted when its similarity score > threshold\n"
                   "shaded: FAR below 1 / (number of different pairs), not measurable", fontsize=9)
    fig.tight_layout()
    return fig
