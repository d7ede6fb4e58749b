"""roc_curve and tar_at_far against a brute-force NumPy reference."""

import numpy as np
import pytest

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(2)


def _pairs(n=3000, separation=2.0, rounding=None):
    same = RNG.random(n) < 0.3
    scores = RNG.normal(size=n) + separation * same
    if rounding is not None:
        scores = np.round(scores, rounding)  # many ties
    return scores, same


@pytest.mark.parametrize("far", [0.0, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("rounding", [None, 1])
def test_tar_at_far_matches_brute_force(far, rounding):
    """TAR@FAR equals the best TAR over all thresholds with FAR ≤ far, ties included."""
    scores, same = _pairs(rounding=rounding)
    tar, threshold = keras_losses.tar_at_far(scores, same, far)
    assert tar == pytest.approx(reference.tar_at_far_brute_force(scores, same, far), abs=1e-12)
    accepted = scores > threshold
    assert accepted[~same].mean() <= far
    assert accepted[same].mean() == pytest.approx(tar, abs=1e-12)


def test_roc_points_are_consistent_with_their_thresholds():
    """Each ROC point is the (FAR, TAR) of accepting score > threshold; both are monotone."""
    scores, same = _pairs(500, rounding=1)
    far, tar, thresholds = keras_losses.roc_curve(scores, same)
    for f, t, threshold in zip(far, tar, thresholds):
        accepted = scores > threshold
        assert accepted[~same].mean() == pytest.approx(f, abs=1e-12)
        assert accepted[same].mean() == pytest.approx(t, abs=1e-12)
    assert far[0] == tar[0] == 0.0 and far[-1] == tar[-1] == 1.0
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)


def test_perfect_separation():
    """Separable scores give TAR = 1 at FAR = 0."""
    scores = np.r_[np.linspace(0.6, 0.9, 10), np.linspace(-0.5, 0.5, 30)]
    same = np.r_[np.ones(10, bool), np.zeros(30, bool)]
    assert keras_losses.tar_at_far(scores, same, 0.0)[0] == 1.0


def test_bad_input():
    """Shape mismatch, non-boolean labels, one-class sets and far outside [0, 1] raise ValueError."""
    scores, same = _pairs(50)
    harness.assert_value_error("same", keras_losses.tar_at_far, scores, same[:-1])
    harness.assert_value_error("same", keras_losses.tar_at_far, scores, same * 2 + 1)
    harness.assert_value_error("same", keras_losses.tar_at_far, scores, np.ones(50, bool))
    harness.assert_value_error("scores", keras_losses.tar_at_far, scores[:, None], same[:, None])
    harness.assert_value_error("scores", keras_losses.tar_at_far, np.r_[np.nan, scores[1:]], same)
    harness.assert_value_error("far", keras_losses.tar_at_far, scores, same, 1.5)
    harness.assert_value_error("far", keras_losses.tar_at_far, scores, same, "0.01")  # was a TypeError
    harness.assert_value_error("far", keras_losses.tar_at_far, scores, same, True)
