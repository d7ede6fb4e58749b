"""Spherical codes behind the PEDCC centroids beyond C = 2D: Levenshtein's bound against closed
forms and the codes known to attain it, the Gold and Kasami families against brute force, and
the FFT cosines and gradients of the cyclic optimiser against direct Gram matrices."""

import math

import numpy as np
import pytest

from keras_losses import _spherical_codes as codes


def _brute_force_max_cosine(points):
    units = points / np.linalg.norm(points, axis=1, keepdims=True)
    gram = units @ units.T
    np.fill_diagonal(gram, -np.inf)
    return float(gram.max())


def _shifts(generators):
    """Every cyclic shift of every generator, written out with np.roll."""
    return np.array([np.roll(g, -k) for g in generators for k in range(generators.shape[1])])


# --- Levenshtein's bound ------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes,dim", [(300, 32), (2000, 128), (10_000, 512), (100_000, 512), (20_000, 4096)])
def test_levenshtein_bound_solves_the_third_bound_in_closed_form(num_classes, dim):
    """In the range 0 <= s <= t_2 the bound is L_3(n, s) = n(1−s)(2+(n+1)s)/(1−ns²) (Levenshtein);
    L_3 = C is a quadratic in s whose positive root the bisection must find (0.1180, 0.0579,
    0.0238, 0.0416 — the values quoted in the docs; at D = 4096 the binomials alone would
    overflow a float)."""
    n, c = dim, num_classes
    # n(1−s)(2+(n+1)s) = c(1−ns²)  ⇔  (cn − n(n+1))s² + n(n−1)s + (2n − c) = 0
    a, b, k = c * n - n * (n + 1), n * (n - 1), 2 * n - c
    expected = (-b + math.sqrt(b * b - 4 * a * k)) / (2 * a)
    assert codes.levenshtein_bound(num_classes, dim) == pytest.approx(expected, abs=1e-10)
    assert codes.levenshtein_bound(num_classes, dim) <= expected + 1e-13


@pytest.mark.parametrize("num_classes,dim", [(3, 5), (6, 5), (7, 5), (10, 5), (513, 512), (700, 512), (1024, 512),
                                             (6000, 4096)])
def test_levenshtein_bound_is_the_simplex_and_rankin_bound_up_to_2d(num_classes, dim):
    """L_1 = 1 − 1/s and L_2 = 2n(1−s)/(1−ns) give −1/(C−1) for C <= D+1 and 0 at C = 2D; in
    between, the s with 2n(1−s)/(1−ns) = C, i.e. s = (C − 2n)/(n(C − 2))."""
    if num_classes <= dim + 1:
        expected = -1 / (num_classes - 1)
    else:
        expected = (num_classes - 2 * dim) / (dim * (num_classes - 2))
    assert codes.levenshtein_bound(num_classes, dim) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(
    "num_classes,dim,cosine",
    # Codes attaining Levenshtein's bound (Levenshtein 1992; Conway & Sloane, SPLAG ch. 14):
    # icosahedron, E6/E7-related codes, E8 roots, the 275- and 4600-point codes, Leech lattice.
    [(12, 3, 1 / math.sqrt(5)), (27, 6, 1 / 4), (56, 7, 1 / 3), (240, 8, 1 / 2), (275, 22, 1 / 6),
     (4600, 23, 1 / 3), (196_560, 24, 1 / 2)],
)
def test_levenshtein_bound_is_attained_by_the_tight_codes(num_classes, dim, cosine):
    """Where a code meets the bound, the bound equals its maximum cosine, and never exceeds it."""
    bound = codes.levenshtein_bound(num_classes, dim)
    assert bound == pytest.approx(cosine, abs=1e-10)
    assert bound <= cosine


@pytest.mark.parametrize("dim", [3, 8, 32, 128])
def test_levenshtein_pieces_join_at_the_jacobi_zeros(dim):
    """L(n, s) is continuous: on both sides of every breakpoint t_k^{1,0}, t_k^{1,1} (k <= 5) the
    odd and even pieces agree to 1e-6 relative (a wrong polynomial family or binomial breaks
    this), and the bound increases with C."""
    half = (dim - 1) / 2
    for k in range(1, 6):
        for breakpoint in (codes._largest_jacobi_zero(k, half, half - 1), codes._largest_jacobi_zero(k, half, half)):
            below = codes._log_levenshtein_size(dim, breakpoint - 1e-10)
            above = codes._log_levenshtein_size(dim, breakpoint + 1e-10)
            assert above == pytest.approx(below, abs=1e-6)  # log L: relative 1e-6
    bounds = [codes.levenshtein_bound(c, dim) for c in range(2 * dim + 1, 2 * dim + 60)]
    assert (np.diff(bounds) > 0).all()


# --- structured codes ---------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [3, 4, 5, 7])
def test_m_sequence_is_balanced_with_two_level_autocorrelation(degree):
    """A maximal-length sequence of period L = 2^m − 1: sum −1 (2^(m−1) ones) and every
    non-zero cyclic shift correlates to exactly −1."""
    sequence = codes._m_sequence(degree)
    length = (1 << degree) - 1
    assert sequence.shape == (length,) and set(np.unique(sequence)) == {-1.0, 1.0}
    assert sequence.sum() == -1
    correlations = [sequence @ np.roll(sequence, k) for k in range(1, length)]
    assert set(correlations) == {-1.0}


@pytest.mark.parametrize(
    "kind,degree,values",
    [("gold", 5, {-9, -1, 7}), ("gold", 6, {-17, -1, 15}), ("kasami", 6, {-9, -1, 7}), ("kasami", 8, {-17, -1, 15})],
)
def test_families_have_the_three_valued_correlations(kind, degree, values):
    """All cyclic shifts of all sequences of the family, written out, Gram matrix by brute
    force: the off-diagonal correlations take exactly Gold's / Kasami's three values, so the
    certified maximum cosine is exact."""
    generators = codes._family(kind, degree)
    length = (1 << degree) - 1
    count, peak = codes._family_shape(kind, degree)
    assert generators.shape == (count, length)
    vectors = _shifts(generators)
    gram = vectors @ vectors.T
    np.fill_diagonal(gram, min(values))  # the diagonal (L) is not a correlation
    hits = [gram == value for value in sorted(values)]
    assert np.logical_or.reduce(hits).all() and all(hit.any() for hit in hits)
    assert peak == max(values)


@pytest.mark.parametrize("kind,degree", [("gold", 7), ("gold", 9), ("kasami", 10)])
def test_larger_families_meet_their_certified_cosine(kind, degree):
    """Families too large to write out: the maximum over all cyclic shifts (by FFT, itself checked
    against brute force below) equals the certified peak / L."""
    _, peak = codes._family_shape(kind, degree)
    length = (1 << degree) - 1
    assert codes.cyclic_max_cosine(codes._family(kind, degree)) == pytest.approx(peak / length, abs=1e-12)


def test_structured_generators_pick_the_best_family_that_fits():
    """The family with the smallest certified cosine among those with L <= D and enough shifts;
    K = ⌈C/L⌉ generators; None when nothing fits."""
    generators, certified, name = codes.structured_generators(300, 32)
    assert generators.shape == (10, 31) and certified == pytest.approx(7 / 31) and name == "Gold, L = 31"
    generators, certified, name = codes.structured_generators(4000, 256)   # Kasami 16·255 = 4080
    assert generators.shape == (16, 255) and certified == pytest.approx(15 / 255) and "Kasami" in name
    generators, certified, _ = codes.structured_generators(5000, 256)      # only Gold L = 127 fits
    assert generators.shape == (40, 127) and certified == pytest.approx(15 / 127)
    assert codes.structured_generators(40, 4) is None                      # no L = 2^m − 1 <= 4 family
    assert codes.structured_generators(2000, 31) is None                   # Gold L = 31 has 1023 shifts


# --- cosines, gradients, optimisers -------------------------------------------------------------


@pytest.mark.parametrize("num_generators,length", [(3, 7), (4, 8), (1, 5)])
def test_cyclic_max_cosine_matches_the_gram_matrix_of_all_shifts(num_generators, length):
    """FFT correlations folded from zero-padded linear ones equal the Gram matrix of the
    written-out shifts (prime and power-of-two lengths)."""
    generators = np.random.default_rng(length).normal(size=(num_generators, length))
    expected = _brute_force_max_cosine(_shifts(generators))
    assert codes.cyclic_max_cosine(generators) == pytest.approx(expected, abs=1e-12)


def _energy(vectors, beta, reference):
    gram = vectors @ vectors.T
    np.fill_diagonal(gram, -np.inf)
    return np.exp(beta * (gram - reference)).sum()


def _numerical_gradient(function, point, step=1e-6):
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] += step
        upper = function(shifted)
        shifted[index] -= 2 * step
        gradient[index] = (upper - function(shifted)) / (2 * step)
    return gradient


@pytest.mark.parametrize("parametrisation", ["gram", "cyclic"])
def test_measure_gradients_match_finite_differences(parametrisation):
    """The optimisers' gradients are those of Σ_{pairs} exp(β(cos − m)) (the smooth maximum),
    up to a positive factor: 2β, and 2β·L for the cyclic one (each generator-level correlation
    occurs for L pairs of shifts). Checked against central differences of the energy of the
    written-out vectors (for the cyclic one, as a function of the generators)."""
    rng = np.random.default_rng(0)
    beta, reference = 3.0, 0.5
    if parametrisation == "gram":
        point = rng.normal(size=(6, 4))
        vectors_of, factor = (lambda p: p), 2 * beta
        measure = codes._gram_measure
    else:
        point = rng.normal(size=(3, 7))
        vectors_of, factor = _shifts, 2 * beta * 7
        measure = codes._cyclic_measure
    gradient = np.empty_like(point)
    maximum = measure(point, reference, beta, gradient)
    vectors = vectors_of(point)
    inner = vectors @ vectors.T
    assert maximum == pytest.approx(inner[~np.eye(len(vectors), dtype=bool)].max(), abs=1e-12)
    expected = _numerical_gradient(lambda p: _energy(vectors_of(p), beta, reference), point)
    np.testing.assert_allclose(factor * gradient, expected, rtol=1e-6, atol=1e-6)


def test_optimisers_never_return_worse_than_their_start():
    """Both optimisers keep the best iterate (the start included) and improve a random start."""
    rng = np.random.default_rng(1)
    generators = rng.normal(size=(4, 16))
    start = codes.cyclic_max_cosine(generators)
    refined, value = codes.refine_cyclic(generators, 200)
    assert value == pytest.approx(codes.cyclic_max_cosine(refined), abs=1e-12)
    assert value < start - 0.1
    points = rng.normal(size=(30, 5))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    polished, value = codes.minimise_max_cosine(points, 200)
    assert value == pytest.approx(_brute_force_max_cosine(polished), abs=1e-6)  # measured in float32
    assert value < _brute_force_max_cosine(points) - 0.1


@pytest.mark.parametrize("num_rows,entries", [(17, 9), (40, 100), (5, 1 << 22)])
def test_max_cosine_tiles_match_brute_force(num_rows, entries, monkeypatch):
    """Upper-triangular tiles (uneven last tile, diagonal tiles masked) give the brute-force
    maximum."""
    monkeypatch.setattr(codes, "_BLOCK_ENTRIES", entries)
    points = np.random.default_rng(num_rows).normal(size=(num_rows, 6))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert codes.max_cosine(points) == pytest.approx(_brute_force_max_cosine(points), abs=1e-12)


# --- the McLaughlin code ------------------------------------------------------------------------


def test_golay_heptads_are_the_steiner_system_s_4_7_23():
    """253 blocks of 7 of the 23 points, and every 4-subset of the points in exactly one block
    (253 · C(7, 4) = 8855 = C(23, 4), all distinct); two blocks meet in 1 or 3 points."""
    import itertools

    blocks = codes._golay_heptads()
    assert blocks.shape == (253, 23) and set(blocks.sum(axis=1)) == {7}
    quadruples = {four for block in blocks for four in itertools.combinations(np.flatnonzero(block), 4)}
    assert len(quadruples) == 253 * 35 == math.comb(23, 4)
    meet = blocks @ blocks.T
    assert set(meet[~np.eye(253, dtype=bool)]) == {1, 3}


def test_mclaughlin_code_is_a_tight_spherical_four_design():
    """275 = 22·25/2 unit vectors in R^22; every row has cosine −1/4 with 112 others and 1/6 with
    162 (the graph's degree); and it is a spherical 4-design: for random directions y the mean of
    (x·y)^k over the code equals the sphere's for k <= 4, 0 for odd k and 1/22, 3/(22·24) for
    k = 2, 4 (and not for k = 5: no 5-design)."""
    units = codes.mclaughlin_code()
    assert units.shape == (275, 22)
    np.testing.assert_allclose(np.linalg.norm(units, axis=1), 1.0, atol=1e-12)
    gram = units @ units.T
    np.fill_diagonal(gram, np.nan)
    assert (np.abs(gram + 0.25) < 1e-9).sum(axis=1).tolist() == [112] * 275
    assert (np.abs(gram - 1 / 6) < 1e-9).sum(axis=1).tolist() == [162] * 275
    directions = codes.normalise_rows(np.random.default_rng(0).normal(size=(20, 22)))
    projections = units @ directions.T
    for power, sphere in ((1, 0.0), (2, 1 / 22), (3, 0.0), (4, 3 / (22 * 24))):
        np.testing.assert_allclose((projections ** power).mean(axis=0), sphere, atol=1e-12)
    assert np.abs((projections ** 5).mean(axis=0)).max() > 1e-5
    assert _brute_force_max_cosine(units) == pytest.approx(codes.MCLAUGHLIN_COSINE, abs=1e-12)
    units[0, 0] = 7.0  # a copy: the cached code is untouched
    assert codes.mclaughlin_code()[0, 0] != 7.0


# --- tightening ---------------------------------------------------------------------------------


def test_lbfgs_minimises_a_least_squares_problem():
    """½|A·x − b|² from 0: L-BFGS ends at the least-squares solution (NumPy's lstsq)."""
    rng = np.random.default_rng(3)
    matrix, target = rng.normal(size=(30, 8)), rng.normal(size=30)
    solution, used = codes._lbfgs(lambda x: (0.5 * float(np.sum((matrix @ x - target) ** 2)),
                                             matrix.T @ (matrix @ x - target)), np.zeros(8), 500)
    np.testing.assert_allclose(solution, np.linalg.lstsq(matrix, target, rcond=None)[0], atol=1e-6)
    assert used <= 500


def test_excess_gradient_matches_finite_differences():
    """The gradient of ½ Σ_{i≠j} max(0, cos_ij − t)² with respect to the unnormalised rows, by
    central differences of the value written out from its definition."""
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(7, 4))
    target = 0.1

    def value(flat):
        units = codes.normalise_rows(flat.reshape(7, 4))
        cosines = units @ units.T
        return 0.5 * sum(max(0.0, cosines[i, j] - target) ** 2 for i in range(7) for j in range(7) if i != j)

    computed_value, gradient = codes._excess(rows.ravel(), rows.shape, target)
    assert computed_value == pytest.approx(value(rows.ravel()), rel=1e-12)
    step = 1e-6
    numeric = [(value(rows.ravel() + step * e) - value(rows.ravel() - step * e)) / (2 * step) for e in np.eye(28)]
    np.testing.assert_allclose(gradient, numeric, atol=1e-7)


def test_tighten_reaches_the_simplex_and_never_worsens():
    """6 points in R^5 perturbed from a regular simplex (optimum −1/5): tightening gets within 1e-4
    of it; an input it cannot improve comes back no worse."""
    simplex = np.eye(6) - 1 / 6
    basis = np.linalg.svd(simplex)[2][:5]
    start = codes.normalise_rows(simplex @ basis.T + 0.05 * np.random.default_rng(5).normal(size=(6, 5)))
    tightened, value = codes.tighten(start, 20_000)
    assert value == pytest.approx(_brute_force_max_cosine(tightened), abs=1e-12)
    assert -0.2 <= value < -0.2 + 1e-4 and value < _brute_force_max_cosine(start)
    again, same = codes.tighten(tightened, 50)
    assert same <= value
