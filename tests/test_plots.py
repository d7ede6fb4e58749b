"""The figures the tools write (models/plots.py and the figure functions of models.train, models.compare
and models.quickstart): labelled axes, legends, explained error bars, value axes from 0, bin counts,
a grid of panels, and the ROC of a verification run. Checked on the matplotlib objects, not on pixels."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

import keras_losses
from models import compare, quickstart, train
from models._common import pyplot
from models.evaluation import reliability_bins
from models.plots import describe, history_figure, reliability_figure, roc_figure
from models.training import plots as training_plots

CONFIG = SimpleNamespace(method="gsc", dataset="digits", seed=0, fine_tune_epochs=0)


def _items(count, rows=50, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return {f"m{i}": (rng.normal(size=(rows, classes)), rng.integers(0, classes, rows)) for i in range(count)}


def _labelled(axis):
    return axis.get_xlabel().strip() and axis.get_ylabel().strip()


@pytest.fixture
def captured(monkeypatch):
    """The figures models.training.plots would save, kept open instead (closed at the end)."""
    figures = []
    monkeypatch.setattr(training_plots, "save", lambda fig, path: figures.append(fig))
    yield figures
    for fig in figures:
        pyplot().close(fig)


def test_reliability_figure_wraps_panels_and_labels_them():
    fig = reliability_figure(_items(7), "test", max_columns=5)
    axes = np.array(fig.axes).reshape(4, 5)  # two groups of (accuracy row, count row)
    assert all(not axis.axison for axis in axes[2:, 2:].ravel())  # the 3 empty places are off
    assert axes[0, 0].get_ylabel().startswith("accuracy in bin") and "n = 50 samples" in axes[2, 1].get_title()
    assert axes[1, 0].get_xlabel().startswith("confidence (max softmax probability)")
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "accuracy in bin", "gap to mean confidence in bin", "perfect calibration"}
    pyplot().close(fig)


def test_reliability_figure_shows_the_samples_per_bin():
    (name, (logits, labels)), = _items(1, rows=200).items()
    fig = reliability_figure({name: (logits, labels)}, "test", num_bins=10)
    top, bottom = fig.axes
    counts = reliability_bins(logits, labels, 10)["counts"]
    assert [patch.get_height() for patch in bottom.patches] == pytest.approx(counts)  # a bar per bin: its count
    written = [text.get_text() for text in bottom.texts]  # and the count written over it
    assert written == [str(int(c)) if c else "" for c in counts] and sum(map(int, filter(None, written))) == 200
    assert "samples" in bottom.get_ylabel() and bottom.get_ylim()[0] == 0
    assert _labelled(bottom) and top.get_ylabel()
    diagonal, = [line for line in top.lines if line.get_label() == "perfect calibration"]
    assert list(diagonal.get_xdata()) == [0, 1] == list(diagonal.get_ydata())
    assert "perfect calibration" in [t.get_text() for t in fig.legends[0].get_texts()]
    pyplot().close(fig)


def test_quickstart_reliability_is_a_grid_of_at_most_four_panels_a_row(tmp_path, monkeypatch):
    figures = []

    def keep(*args, **kwargs):
        figures.append(reliability_figure(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(quickstart, "reliability_figure", keep)
    items = _items(7)
    quickstart.plot_reliability(str(tmp_path / "reliability.png"), list(items), items, num_seeds=2)
    fig, = figures
    assert os.path.exists(tmp_path / "reliability.png")
    assert len(fig.subfigs) == 2 and len(fig.axes) == 2 * 2 * 4  # 7 panels: rows of 4 and 3 (+1 empty place)
    width, height = fig.get_size_inches()
    assert width < 16 and height > width / 2  # not one long row
    assert "2 seeds pooled" in fig._suptitle.get_text()


def test_history_figure_has_a_line_per_run_and_a_legend_where_several():
    fig = history_figure({"a": {"loss": [3, 2, 1]}, "b": {"loss": [2, 1, 0.5], "val_ece": [0.1, 0.2, 0.3]}},
                         ("loss", "val_ece"), "title", {"loss": "training loss"})
    loss_axis, ece_axis = fig.axes
    assert len(loss_axis.lines) == 2 and len(ece_axis.lines) == 1  # a run without the key is skipped
    assert (loss_axis.get_xlabel(), loss_axis.get_ylabel()) == ("epoch", "training loss")
    assert [t.get_text() for t in loss_axis.get_legend().get_texts()] == ["a", "b"]
    assert ece_axis.get_legend() is None  # one line: the title names the run
    assert ece_axis.get_ylabel() == "validation expected calibration error (ECE, lower is better)"
    pyplot().close(fig)


def test_describe_leaves_no_bare_metric_name():
    assert describe("ece") == "expected calibration error (ECE, lower is better)"
    assert describe("val_accuracy").startswith("validation accuracy (fraction correct")
    assert describe("val_top_k") == "validation top k"


def test_training_figures_are_labelled(captured):
    (_, (logits, labels)), = _items(1).items()
    training_plots.reliability(CONFIG, logits, labels, "unused.png")
    rng = np.random.default_rng(0)
    training_plots.features(CONFIG, rng.normal(size=(30, 2)), rng.integers(0, 3, 30), 3, "unused.png")
    training_plots.features(CONFIG, rng.normal(size=(30, 3)), rng.integers(0, 3, 30), 3, "unused.png")
    reliability, features_2d, features_3d = captured
    assert all(_labelled(axis) for axis in reliability.axes[1:])  # the count row; the accuracy row's x is shared
    assert "seed 0" in reliability._suptitle.get_text()
    assert _labelled(features_2d.axes[0]) and features_2d.axes[1].get_ylabel() == "class (test label)"
    assert features_3d.axes[0].get_zlabel().startswith("embedding dimension 3")


def test_training_curves_are_labelled(tmp_path, captured):
    path = tmp_path / "history.csv"
    path.write_text("epoch,accuracy,loss\n0,0.5,2.0\n1,0.8,1.0\n")
    training_plots.curves(CONFIG, str(path), "unused.png")
    fig, = captured
    assert [axis.get_xlabel() for axis in fig.axes] == ["epoch", "epoch"]
    assert [axis.get_ylabel() for axis in fig.axes] == [training_plots.LABELS["accuracy"], training_plots.LABELS["loss"]]


def test_training_curves_mark_the_fine_tuning_stage(tmp_path, captured):
    """A run with a fine-tuning stage (the last epoch of 3): every panel has a dashed line between
    epochs 2 and 3 (x = 2.5, epochs counted from 1), named in its legend."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,accuracy,loss\n0,0.5,2.0\n1,0.8,1.0\n2,0.85,0.9\n")
    staged = SimpleNamespace(method="pedcc", dataset="digits", seed=0, fine_tune_epochs=1, fine_tune_from=2)
    training_plots.curves(staged, str(path), "unused.png")
    fig, = captured
    for axis in fig.axes:
        marker, = [line for line in axis.lines if line.get_linestyle() == "--"]
        assert list(marker.get_xdata()) == [2.5, 2.5]
        assert "fine-tuning from epoch 3" in [text.get_text() for text in axis.get_legend().get_texts()]


def _summary(methods, seeds, keys=("accuracy", "ece")):
    rng = np.random.default_rng(1)
    return {m: {**{k: list(0.9 + 0.05 * rng.random(seeds)) if k != "ece" else list(0.05 * rng.random(seeds))
                   for k in keys}, "seconds_per_epoch": [1.0] * seeds} for m in methods}


def _error_bars(axis):
    from matplotlib.container import ErrorbarContainer

    return [container for container in axis.containers if isinstance(container, ErrorbarContainer)]


def test_compare_figure_starts_rates_at_zero_and_explains_its_error_bars():
    fig = compare.figure(_summary(["softmax", "gsc", "arcface"], 3), ["accuracy", "ece"], "digits")
    accuracy, ece = fig.axes
    assert accuracy.get_ylim()[0] == 0 and accuracy.get_ylim()[1] >= 1 and ece.get_ylim()[0] == 0
    assert all(_labelled(axis) for axis in fig.axes) and accuracy.get_xlabel() == "method"
    assert ece.get_ylabel().replace("\n", " ") == "test expected calibration error (ECE, lower is better)"
    assert len(_error_bars(accuracy)) == 1 and len(_error_bars(accuracy)[0].lines[1]) == 2  # both caps
    assert "mean over 3 seeds" in fig._suptitle.get_text() and "± 1 sample std" in fig._suptitle.get_text()
    assert len(accuracy.texts) == 3  # the mean written on each bar
    pyplot().close(fig)

    fig = compare.figure(_summary(["softmax", "arcface"], 1, ("tar@far=0.01", "tar@far=0.001")),
                         ["tar@far=0.01", "tar@far=0.001"], "verification")
    assert all(axis.get_ylim()[0] == 0 and "TAR at FAR" in axis.get_ylabel() for axis in fig.axes)
    assert not any(_error_bars(axis) for axis in fig.axes)
    assert "no error bars" in fig._suptitle.get_text()
    pyplot().close(fig)


def test_roc_figure_marks_the_tar_at_each_far():
    rng = np.random.default_rng(0)
    same = rng.random(4000) < 0.5
    scores = rng.normal(size=4000) + 1.5 * same
    fig = roc_figure({"arcface": (scores, same)}, "roc")
    axis, = fig.axes
    assert axis.get_xscale() == "log" and "FAR" in axis.get_xlabel() and "TAR" in axis.get_ylabel()
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    for far, text in ((1e-2, "1e-2"), (1e-3, "1e-3")):
        tar = keras_losses.tar_at_far(scores, same, far)[0]
        assert f"TAR at FAR = {text}: {tar:.3f}" in legend
        marker, = [line for line in axis.lines if line.get_label().startswith(f"TAR at FAR = {text}")]
        assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (far, tar)
    pyplot().close(fig)


def test_a_verification_run_writes_its_roc(tmp_path):
    out = tmp_path / "v"
    metrics = train.main(["--method", "arcface", "--dataset", "verification", "--epochs", "1", "--batch-size", "128",
                          "--embedding-dim", "8", "--verbose", "0", "--output", str(out)])
    assert "tar@far=0.001" in metrics
    assert os.path.getsize(out / "roc.png") > 0 and not os.path.exists(out / "reliability.png")
