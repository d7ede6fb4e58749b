"""models/plots.py: the shared figures carry labelled axes and legends, and wrap many panels into rows."""

import numpy as np

from models._common import pyplot
from models.plots import history_figure, reliability_figure


def test_reliability_figure_wraps_panels_and_labels_them():
    rng = np.random.default_rng(0)
    items = {f"m{i}": (rng.normal(size=(50, 4)), rng.integers(0, 4, 50)) for i in range(7)}
    fig = reliability_figure(items, "test", max_columns=5)
    axes = np.array(fig.axes).reshape(4, 5)  # two groups of (accuracy row, share row)
    assert all(not axis.axison for axis in axes[2:, 2:].ravel())  # the 3 empty places are off
    assert axes[0, 0].get_ylabel() == "accuracy" and "n = 50 samples" in axes[2, 1].get_title()
    assert axes[1, 0].get_xlabel().startswith("confidence")
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "accuracy in bin", "gap to mean confidence", "perfect calibration"}
    pyplot().close(fig)


def test_history_figure_has_a_line_per_run():
    fig = history_figure({"a": {"loss": [3, 2, 1]}, "b": {"loss": [2, 1, 0.5], "acc": [0.1, 0.2, 0.3]}},
                         ("loss", "acc"), "title", {"loss": "training loss"})
    loss_axis, acc_axis = fig.axes
    assert len(loss_axis.lines) == 2 and len(acc_axis.lines) == 1  # a run without the key is skipped
    assert (loss_axis.get_xlabel(), loss_axis.get_ylabel()) == ("epoch", "training loss")
    assert [t.get_text() for t in loss_axis.get_legend().get_texts()] == ["a", "b"]
    pyplot().close(fig)
