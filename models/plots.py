"""Figures shared by the tools in ``models/`` and the notebooks in ``colab/``.

Each function returns a ``matplotlib`` figure: a script saves it (``fig.savefig``), a notebook
shows it inline. None of them picks a backend (see ``models._common.pyplot``).
"""

import numpy as np

from models._common import pyplot
from models.evaluation import NUM_BINS, reliability_bins


def reliability_figure(items, title, num_bins=NUM_BINS, max_columns=5):
    """Reliability diagrams, one panel per entry of ``items`` (``{name: (logits, labels)}``), at most
    ``max_columns`` panels a row.

    Top row: accuracy per confidence bin (bars), the gap to the bin's mean confidence (hatched:
    above the bar when over-confident, inside it when under-confident) and the diagonal of perfect
    calibration; the panel title gives accuracy, ECE and the number of samples. Bottom row: the share
    of samples in each bin, so that bins holding few samples can be told apart.
    """
    plt = pyplot()
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    width = 1.0 / num_bins
    columns = min(len(items), max_columns)
    groups = -(-len(items) // columns)  # rows of panels, each an accuracy row over a share row
    fig = plt.figure(figsize=(max(3.3 * columns, 4.5) + 0.4, 4.8 * groups + 0.6), layout="constrained")
    rows = [row.subplots(2, columns, squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
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
                edgecolor="tab:red", linewidth=0.5, label="gap to mean confidence")
        top.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1))
        bottom.set_xlim(0, 1)
        accuracy = float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels).reshape(-1)))
        top.set_title(f"{name}\nacc {accuracy:.3f}, ECE {bins['ece']:.3f} (lower is better)\n"
                      f"n = {int(bins['counts'].sum())} samples", fontsize=9)
        bottom.bar(centers, bins["counts"] / bins["counts"].sum(), width=width, color="gray", edgecolor="black",
                   linewidth=0.5)
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("confidence (max softmax probability)")
        if column == 0:
            top.set_ylabel("accuracy")
            bottom.set_ylabel("share of\nsamples")
    fig.suptitle(f"{title} ({num_bins} equal-width bins)", fontsize=11)
    handles, labels = rows[0][0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) if columns > 1 else 1, fontsize=8,
               frameon=False)
    return fig


def history_figure(histories, keys, title, ylabels=None):
    """Training curves: one panel per metric in ``keys``, one line per run.

    Args:
        histories: ``{run name: History.history}`` (dicts of per-epoch lists, as ``model.fit``
            returns them); a key a run lacks is skipped for that run.
        keys: metric names, e.g. ``("loss", "val_accuracy")``.
        title: the figure's title.
        ylabels: optional ``{key: axis label}``; defaults to the key.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    ylabels = ylabels or {}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.6), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for name, history in histories.items():
            if key in history:
                values = history[key]
                axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(ylabels.get(key, key))
        axis.set_title(ylabels.get(key, key), fontsize=10)
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
