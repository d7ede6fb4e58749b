"""The benchmark scripts run and write readable tables (tiny cases; the measured tables are in
benchmarks/results)."""

import numpy as np

from benchmarks import pedcc_centroids as centroid_benchmark
from keras_losses.pedcc_centroids import max_cosine_lower_bound, pedcc_centroids


def test_pedcc_centroid_benchmark_writes_bound_structured_and_default_columns(tmp_path):
    """Two tiny cases (C <= 2D and C > 2D in 3-D): the table holds the lower bound, the
    structured-code column ("—" where none applies), the default and its winning candidate,
    and the default it times is the one pedcc_centroids returns."""
    rows = centroid_benchmark.main(["--cases", "20x3,100x64", "--output", str(tmp_path)])
    table = (tmp_path / "pedcc_centroids.md").read_text()
    assert "| C × D | lower bound | structured code |" in table
    bound = max_cosine_lower_bound(20, 3)
    assert f"| 20 × 3 | {bound:+.4f} | — |" in table and "| 100 × 64 | +0.0000 | — |" in table
    assert rows[1]["default_method"] == "36 orthogonal simplices"
    assert rows[0]["default_max_cos"] >= rows[0]["bound"]
    centroids, _ = centroid_benchmark._default(20, 3, seed=0)
    np.testing.assert_array_equal(centroids, pedcc_centroids(20, 3, seed=0))


def test_structured_column_is_the_best_structured_start():
    """Beyond C = 2D the column shows the better of the binary code (certified) and, for D >= 22,
    the McLaughlin start (1/6 at 300×32, below Gold's 7/31); Gold 15/127 at 2000×128 (too many
    classes for the McLaughlin start); none for C <= 2D."""
    value, name = centroid_benchmark._best_structured_start(300, 32)
    assert name == "McLaughlin" and abs(value - 1 / 6) < 1e-12
    assert centroid_benchmark._best_structured_start(2000, 128) == (15 / 127, "Gold, L = 127")
    assert centroid_benchmark._best_structured_start(100, 64) is None
