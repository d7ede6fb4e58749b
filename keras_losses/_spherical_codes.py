"""Spherical codes for PEDCC beyond C = 2D: a lower bound, structured codes, cyclic refinement.

Pure NumPy, float64. Used by :mod:`keras_losses.pedcc_centroids`; nothing here is public API.

* ``levenshtein_bound(C, D)``: no C unit vectors in R^D have a smaller maximum pairwise cosine
  (V. I. Levenshtein, "Universal bounds for codes and designs", Handbook of Coding Theory, 1998,
  §6: the bounds L_m(n, s) on the size of a code with maximum inner product s).
* ``structured_generators(C, D)``: binary sequences of length L <= D (Gold or small-Kasami
  families of m-sequences) whose cyclic shifts, as ±1/√L vectors, have a known small maximum
  cosine.
* ``minimise_max_cosine(units, iterations)``: projected gradient descent on a smooth maximum of
  all pairwise cosines, O(C²·D) per step.
* ``refine_cyclic(generators, iterations)``: the same for the cyclic shifts of K generators of
  length L, all cosines at once by FFT: O(K²·L·log L) per step for C = K·L vectors.
* ``mclaughlin_code()``: 275 unit vectors in R^22 with pairwise cosines 1/6 and −1/4 only.
* ``tighten(units, evaluations)``: lowers the maximum cosine of a converged configuration by
  minimising the squared excess of every cosine over a falling target, with L-BFGS.
* ``max_cosine(units)``: the exact maximum pairwise cosine, O(C²·D / 2), memory one tile.
"""

import functools
import math

import numpy as np

# Blocks of pairwise terms hold at most this many entries (32 MiB in float64).
_BLOCK_ENTRIES = 1 << 22

# --- Levenshtein's bound ----------------------------------------------------------------------


def _gegenbauer(dim, degree, s):
    """[P_0(s), …, P_degree(s)]: Gegenbauer polynomials for R^dim normalised to P_i(1) = 1.

    ``(i + n − 2)·P_{i+1} = (2i + n − 2)·s·P_i − i·P_{i−1}``, ``P_0 = 1``, ``P_1 = s``.
    """
    values = [1.0, s]
    for i in range(1, degree):
        values.append(((2 * i + dim - 2) * s * values[i] - i * values[i - 1]) / (i + dim - 2))
    return values


@functools.lru_cache(maxsize=None)
def _largest_jacobi_zero(degree, alpha, beta):
    """Largest zero of the Jacobi polynomial P_degree^(alpha, beta), degree >= 1: the largest
    eigenvalue of its symmetric tridiagonal Jacobi matrix (Golub & Welsch, Math. Comp. 23, 1969)."""
    i = np.arange(degree, dtype=np.float64)
    total = 2 * i + alpha + beta
    with np.errstate(divide="ignore", invalid="ignore"):
        diagonal = (beta**2 - alpha**2) / (total * (total + 2))
    diagonal[0] = (beta - alpha) / (alpha + beta + 2)
    j = i[1:]
    total = 2 * j + alpha + beta
    off = np.sqrt(4 * j * (j + alpha) * (j + beta) * (j + alpha + beta) / (total**2 * (total + 1) * (total - 1)))
    matrix = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    return float(np.linalg.eigvalsh(matrix)[-1])


def _log_binomial(n, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_levenshtein_size(dim, s):
    """log L(n, s), where L(n, s) is Levenshtein's upper bound on the size of a code in R^n with
    maximum cosine s (in logs: the binomials overflow floats from n ≈ 2400).

    With ``t_k^{1,0}``, ``t_k^{1,1}`` the largest zeros of the Jacobi polynomials
    P_k^((n−1)/2, (n−3)/2) and P_k^((n−1)/2, (n−1)/2), and P_i the normalised Gegenbauer
    polynomials, for ``t_{k−1}^{1,1} <= s <= t_k^{1,0}``:
        L_{2k−1} = C(k+n−3, k−1)·[(2k+n−3)/(n−1) − (P_{k−1}(s) − P_k(s)) / ((1−s)·P_k(s))]
    and for ``t_k^{1,0} <= s <= t_k^{1,1}``:
        L_{2k} = C(k+n−2, k)·[(2k+n−1)/(n−1) − (1+s)(P_k(s) − P_{k+1}(s)) / ((1−s)(P_k(s) + P_{k+1}(s)))].
    L_1 = 1 − 1/s is the simplex bound, L_2 = 2n(1−s)/(1−ns) gives Rankin's 2n at s = 0.
    L is continuous and increasing in s, infinite at s = 1.
    """
    if s >= 1.0:
        return math.inf
    half = (dim - 1) / 2
    k = 1
    while True:
        if s <= _largest_jacobi_zero(k, half, half - 1):
            p = _gegenbauer(dim, k, s)
            bracket = (2 * k + dim - 3) / (dim - 1) - (p[k - 1] - p[k]) / ((1 - s) * p[k])
            log_binomial = _log_binomial(k + dim - 3, k - 1)
            break
        if s <= _largest_jacobi_zero(k, half, half):
            p = _gegenbauer(dim, k + 1, s)
            ratio = (1 + s) * (p[k] - p[k + 1]) / ((1 - s) * (p[k] + p[k + 1]))
            bracket = (2 * k + dim - 1) / (dim - 1) - ratio
            log_binomial = _log_binomial(k + dim - 2, k)
            break
        k += 1
    return log_binomial + math.log(bracket) if bracket > 0 else -math.inf


def levenshtein_bound(num_classes, dim):
    """The largest s with L(dim, s) < num_classes, found by bisection to 1e-12 and rounded down:
    every code of ``num_classes`` unit vectors in R^dim has maximum pairwise cosine > s.

    The upper end of the bracket grows from 1/dim by doublings, so that large dimensions never
    evaluate L far above the answer (where its degree k would be in the hundreds).
    """
    target = math.log(num_classes)
    low, high = -1.0, 1.0 / dim
    while _log_levenshtein_size(dim, high) < target:
        low, high = high, min(1.0, 2 * high)
    while high - low > 1e-12:
        middle = (low + high) / 2
        if _log_levenshtein_size(dim, middle) >= target:
            high = middle
        else:
            low = middle
    return low


# --- structured codes ---------------------------------------------------------------------


def _m_sequence(degree):
    """A maximal-length binary sequence of period 2^degree − 1 as ±1 floats: the output of the
    first (smallest feedback mask) linear-feedback shift register whose state runs through all
    2^degree − 1 non-zero states."""
    length = (1 << degree) - 1
    for taps in range(1, 1 << degree, 2):
        state, bits = 1, np.empty(length, np.int8)
        for t in range(length):
            bits[t] = state & 1
            feedback = bin(state & taps).count("1") & 1
            state = (state >> 1) | (feedback << (degree - 1))
            if state == 1:
                break
        if t == length - 1 and state == 1:
            return 1.0 - 2.0 * bits
    raise AssertionError(f"no m-sequence of degree {degree}")  # cannot happen: primitive polynomials exist


def _family_shape(kind, degree):
    """(number of sequences, largest cross-correlation value) of a family of length 2^degree − 1."""
    if kind == "gold":
        return (1 << degree) + 1, (1 << ((degree + 2) // 2)) - 1
    half = 1 << (degree // 2)
    return half, half - 1


def _family(kind, degree, count=None):
    """The first ``count`` (default: all) generators of a structured family, ±1 rows of length
    L = 2^degree − 1.

    * Gold (degree odd or ≡ 2 mod 4): u, v = u decimated by 2^e + 1 (e = 1 for odd degree, 2
      otherwise: a preferred pair) and u·(v shifted by k) for every k: L + 2 sequences whose
      correlations (all shifts, all pairs) lie in {−1, −t, t − 2}, t = 2^⌊(degree+2)/2⌋ + 1
      (R. Gold, IEEE Trans. Inf. Theory 14, 1968).
    * small Kasami (degree even): u and u·(w shifted by k), w = u decimated by 2^(degree/2) + 1,
      k < 2^(degree/2) − 1: 2^(degree/2) sequences, correlations in {−1, −2^(degree/2) − 1,
      2^(degree/2) − 1} (T. Kasami, 1966).
    """
    size, _ = _family_shape(kind, degree)
    count = size if count is None else min(count, size)
    u = _m_sequence(degree)
    length = len(u)
    if kind == "gold":
        decimation = 3 if degree % 2 else 5
        v = u[(decimation * np.arange(length)) % length]
        rows = [u, v] + [u * np.roll(v, -k) for k in range(count - 2)]
    else:
        half = 1 << (degree // 2)
        w = u[((half + 1) * np.arange(length)) % length]
        rows = [u] + [u * np.roll(w, -k) for k in range(count - 1)]
    return np.array(rows[:count])


def structured_generators(num_classes, dim):
    """The best Gold or small-Kasami family that fits: sequences of length L <= dim whose
    cyclic shifts give >= num_classes vectors, with the smallest certified maximum cosine.

    Returns ``(generators, certified max cosine, name)`` with generators the first
    ``K = ⌈num_classes / L⌉`` sequences as ±1 rows ``(K, L)`` and name e.g. ``"Gold, L = 511"``,
    or ``None`` when none fits.
    """
    best = None
    for degree in range(3, dim.bit_length() + 1):
        length = (1 << degree) - 1
        if length > dim:
            break
        kinds = (["kasami"] if degree % 2 == 0 else []) + (["gold"] if degree % 4 else [])
        for kind in kinds:
            count, peak = _family_shape(kind, degree)
            if count * length >= num_classes and (best is None or peak / length < best[2]):
                best = (kind, degree, peak / length)
    if best is None:
        return None
    kind, degree, certified = best
    length = (1 << degree) - 1
    name = f"{'Gold' if kind == 'gold' else 'small Kasami'}, L = {length}"
    return _family(kind, degree, count=-(-num_classes // length)), certified, name


# --- the McLaughlin code ----------------------------------------------------------------------

MCLAUGHLIN_SIZE, MCLAUGHLIN_DIM, MCLAUGHLIN_COSINE = 275, 22, 1.0 / 6.0


def _golay_heptads():
    """The 253 words of weight 7 of the cyclic binary Golay code of length 23 (generator
    polynomial 1 + x² + x⁴ + x⁵ + x⁶ + x¹⁰ + x¹¹), as 0/1 rows ``(253, 23)``: the blocks of the
    Steiner system S(4, 7, 23) (every 4 of the 23 points lie in exactly one block)."""
    generator = np.zeros(23, np.int64)
    generator[[0, 2, 4, 5, 6, 10, 11]] = 1
    basis = np.array([np.roll(generator, shift) for shift in range(12)])
    messages = (np.arange(1 << 12)[:, None] >> np.arange(12)) & 1
    words = messages @ basis % 2
    return words[words.sum(axis=1) == 7]


def _mclaughlin_graph():
    """Adjacency ``(275, 275)`` of the McLaughlin graph, the strongly regular graph
    SRG(275, 112, 30, 56), from S(4, 7, 23) with the point ∞ = 22 set apart. Vertices: the 22
    other points, the 77 blocks through ∞, the 176 blocks avoiding ∞. Two points are never
    adjacent; a point and a block through ∞ are adjacent when the point is not in the block, a
    point and a block avoiding ∞ when it is; two blocks of the same kind when they meet in 1
    point, of different kinds when they meet in 3. (That is the graph on all 23 points and 253
    blocks — point joined to the blocks containing it, blocks joined when they meet in one
    point — Seidel-switched so that ∞ is isolated, then ∞ removed.) Checked: A² = k·I + λ·A +
    μ·(J − I − A)."""
    blocks = _golay_heptads()
    through = blocks[:, 22] == 1
    blocks = np.vstack([blocks[through], blocks[~through]])
    kind = np.arange(len(blocks)) < through.sum()
    meet = blocks @ blocks.T
    between_blocks = np.where(kind[:, None] == kind[None, :], meet == 1, meet == 3).astype(np.int64)
    np.fill_diagonal(between_blocks, 0)
    incidence = blocks[:, :22]
    point_block = np.where(kind[:, None], 1 - incidence, incidence).T
    adjacency = np.zeros((MCLAUGHLIN_SIZE, MCLAUGHLIN_SIZE), np.int64)
    adjacency[:22, 22:], adjacency[22:, :22], adjacency[22:, 22:] = point_block, point_block.T, between_blocks
    identity, ones = np.eye(MCLAUGHLIN_SIZE, dtype=np.int64), np.ones_like(adjacency)
    if not np.array_equal(adjacency @ adjacency, 112 * identity + 30 * adjacency + 56 * (ones - identity - adjacency)):
        raise AssertionError("the McLaughlin graph construction is not SRG(275, 112, 30, 56)")
    return adjacency


@functools.lru_cache(maxsize=1)
def _mclaughlin_rows():
    adjacency = _mclaughlin_graph()
    eigenvalues, eigenvectors = np.linalg.eigh(adjacency.astype(np.float64))
    units = normalise_rows(eigenvectors[:, np.abs(eigenvalues + 28.0) < 1e-6])
    gram = units @ units.T
    expected = np.where(adjacency == 1, -0.25, MCLAUGHLIN_COSINE)
    np.fill_diagonal(expected, 1.0)
    if units.shape[1] != MCLAUGHLIN_DIM or np.abs(gram - expected).max() > 1e-9:
        raise AssertionError("the McLaughlin eigenspace does not give cosines 1/6 and -1/4")
    units.flags.writeable = False
    return units


def mclaughlin_code():
    """The McLaughlin code: 275 unit vectors in R^22 whose pairwise cosines are only 1/6 and −1/4,
    a tight spherical 4-design, optimal for its size and dimension (P. Delsarte, J.-M. Goethals,
    J. J. Seidel, "Spherical codes and designs", Geometriae Dedicata 6, 1977). Built as the rows
    of the projection onto the eigenvalue −28 eigenspace (multiplicity 22) of the McLaughlin
    graph: adjacent vertices get −28/112 = −1/4, the others 27/162 = 1/6. Returns a float64
    ``(275, 22)`` copy (built once, checked to 1e-9)."""
    return np.array(_mclaughlin_rows())


# --- tightening: a falling target on the squared excess cosines --------------------------------


def _excess(units_flat, shape, target):
    """½ Σ_{i≠j} max(0, cos_ij − target)² over the rows of ``units_flat`` normalised, and its
    gradient with respect to the unnormalised rows."""
    rows = units_flat.reshape(shape)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    units = rows / norms
    excess = units @ units.T
    np.fill_diagonal(excess, -np.inf)
    excess -= target
    np.maximum(excess, 0.0, out=excess)
    gradient = 2.0 * (excess @ units)
    gradient -= np.einsum("ij,ij->i", gradient, units)[:, None] * units
    return 0.5 * float(np.einsum("ij,ij->", excess, excess)), (gradient / norms).ravel()


def _lbfgs(function, start, iterations, memory=30):
    """Minimises ``function(x) -> (value, gradient)`` from ``start`` with limited-memory BFGS and a
    backtracking (Armijo) line search for at most ``iterations`` evaluations; stops early at a
    zero value. Returns ``(x, evaluations used)``."""
    x = start
    value, gradient = function(x)
    used, history = 1, []
    while used < iterations and value > 0.0:
        direction = -gradient
        coefficients = []
        for s, y, rho in reversed(history):
            coefficient = rho * float(s @ direction)
            direction -= coefficient * y
            coefficients.append(coefficient)
        if history:
            s, y, _ = history[-1]
            direction *= float(s @ y) / float(y @ y)
        else:
            direction /= max(float(np.abs(direction).max()), 1e-300) * 1e3  # a first move of 1e-3
        for (s, y, rho), coefficient in zip(history, reversed(coefficients)):
            direction += (coefficient - rho * float(y @ direction)) * s
        slope = float(gradient @ direction)
        if slope >= 0.0:  # not a descent direction: start the memory afresh
            history, direction = [], -gradient / max(float(np.abs(gradient).max()), 1e-300) * 1e-3
            slope = float(gradient @ direction)
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_gradient = function(candidate)
            used += 1
            if new_value <= value + 1e-4 * step * slope or used >= iterations:
                break
            step *= 0.5
        if new_value > value:
            break
        s, y = candidate - x, new_gradient - gradient
        if float(s @ y) > 1e-18:
            history = (history + [(s, y, 1.0 / float(s @ y))])[-memory:]
        x, value, gradient = candidate, new_value, new_gradient
    return x, used


_TIGHTEN_SOLVE = 1000              # evaluations per target at most
_TIGHTEN_STEP, _TIGHTEN_MIN_STEP = 5e-4, 2.5e-5


def tighten(units, evaluations):
    """Lowers the maximum cosine of unit rows that a smooth-maximum optimiser has converged:
    for a target t a little below the best maximum so far, minimises Σ max(0, cos − t)² with
    L-BFGS (the pairs above t pushed down, the others free); reached, the target falls by the
    same step below the new best, else the step halves (5e-4 down to 2.5e-5). At most
    ``evaluations`` function evaluations (each O(C²·D), memory C²); deterministic. Returns
    float64 ``(unit rows, their exact maximum cosine)``, never worse than the start."""
    best = normalise_rows(np.asarray(units, np.float64))
    best_value = max_cosine(best)
    step, left = _TIGHTEN_STEP, evaluations
    while left > 0 and step >= _TIGHTEN_MIN_STEP:
        target = best_value - step
        solution, used = _lbfgs(lambda flat: _excess(flat, best.shape, target), best.ravel().copy(),
                                min(left, _TIGHTEN_SOLVE))
        left -= used
        candidate = normalise_rows(solution.reshape(best.shape))
        value = max_cosine(candidate)
        if value < best_value:
            best, best_value = candidate, value
        if value > target + 1e-7:
            step /= 2
    return best, best_value


# --- pairwise maximum -------------------------------------------------------------------------


def normalise_rows(array):
    return array / np.linalg.norm(array, axis=1, keepdims=True)



def row_blocks(num_rows, num_columns):
    """Yields ``slice`` objects covering ``range(num_rows)`` with <= _BLOCK_ENTRIES per block."""
    step = max(1, _BLOCK_ENTRIES // max(num_columns, 1))
    for start in range(0, num_rows, step):
        yield slice(start, min(num_rows, start + step))


def max_cosine(units):
    """Maximum pairwise inner product of unit rows, in float64, over the upper-triangular square
    tiles of the Gram matrix (each pair computed once, memory one tile)."""
    num_rows = len(units)
    side = max(1, math.isqrt(_BLOCK_ENTRIES))
    best = -np.inf
    for start in range(0, num_rows, side):
        rows = units[start:start + side]
        for column in range(start, num_rows, side):
            tile = rows @ units[column:column + side].T
            if column == start:
                np.fill_diagonal(tile, -np.inf)
            best = max(best, float(tile.max()))
    return float(min(1.0, max(-1.0, best)))


# --- annealed minimisation of the maximum cosine ----------------------------------------------

# Smooth maximum Σ exp(β·(cos − m)): β and the step η annealed geometrically from start to end.
_BETA_START, _BETA_END = 10.0, 3000.0
_STEP_START, _STEP_END = 0.1, 1e-4
_EXPONENT_CLIP = 40.0


def _anneal(units, iterations, measure):
    """The optimiser shared by both parametrisations.

    ``measure(units, reference, beta, gradient)`` returns the current maximum cosine and, when
    ``gradient`` is an array, fills it with the gradient of ``Σ exp(β·(cos − reference))`` (up to
    a positive factor). ``reference`` is the previous step's maximum (it only prevents
    overflow). Each step moves the rows against the tangential part of their gradient, scaled so
    that the largest move is η, and renormalises. β grows from 10 to 3000: at first every pair
    repels (global spreading), at the end only the pairs near the maximum do. Returns
    ``(the iterate with the smallest maximum seen, that maximum)``; the start counts.
    """
    best_units, best_value = units, np.inf
    reference = 1.0
    gradient = np.empty_like(units)
    for iteration in range(iterations + 1):
        fraction = iteration / max(iterations - 1, 1)
        beta = _BETA_START * (_BETA_END / _BETA_START) ** fraction
        eta = _STEP_START * (_STEP_END / _STEP_START) ** fraction
        last = iteration == iterations
        maximum = measure(units, reference, beta, None if last else gradient)
        if maximum < best_value:
            best_units, best_value = units, maximum
        if last:
            break
        reference = maximum
        tangential = gradient - np.einsum("ij,ij->i", gradient, units)[:, None] * units
        largest = float(np.sqrt(np.einsum("ij,ij->i", tangential, tangential).max()))
        if largest == 0.0:
            break
        units = units - (eta / largest) * tangential  # a new array: best_units is never mutated
        units /= np.linalg.norm(units, axis=1, keepdims=True)
    return best_units, best_value


def _weights(cosines, reference, beta):
    """exp(β·(cos − reference)) in place, the exponent clipped to [−40, 40]: the lower clip keeps
    the weights out of subnormal floats (which slow the next matrix product several-fold). A row
    with itself (cosine -inf) gets the smallest weight; its term is radial and is projected out.
    """
    cosines -= reference
    cosines *= beta
    np.clip(cosines, -_EXPONENT_CLIP, _EXPONENT_CLIP, out=cosines)
    return np.exp(cosines, out=cosines)


def _gram_measure(units, reference, beta, gradient):
    num_rows = len(units)
    maximum = -np.inf
    for rows in row_blocks(num_rows, num_rows):
        gram = units[rows] @ units.T
        gram[np.arange(gram.shape[0]), np.arange(rows.start, rows.stop)] = -np.inf
        maximum = max(maximum, float(gram.max()))
        if gradient is not None:
            gradient[rows] = _weights(gram, reference, beta) @ units
    return maximum


def minimise_max_cosine(units, iterations):
    """Anneals C unit rows in R^D (all C²/2 cosines per step) in float32 (twice as fast as float64;
    callers measure the result exactly with ``max_cosine``). Returns float64 ``(units, max)``,
    the maximum as float32 measured it."""
    best, value = _anneal(units.astype(np.float32), iterations, _gram_measure)
    best = best.astype(np.float64)
    return normalise_rows(best), value


# --- cyclic codes -----------------------------------------------------------------------------


def _fft_size(length):
    """A power of two >= 2·length: cyclic correlations of length ``length`` are folded from
    linear ones, so prime lengths (2^m − 1) get a fast FFT too."""
    return 1 << (2 * length - 1).bit_length()


def _cyclic_correlations(spectra_a, spectra_b, length, size):
    """R[a, b, τ] = Σ_t x_a[t]·y_b[(t + τ) mod L] from zero-padded spectra of x_a and y_b."""
    linear = np.fft.irfft(np.conj(spectra_a)[:, None, :] * spectra_b[None, :, :], n=size, axis=-1)
    return linear[..., :length] + linear[..., size - length:]


def _cyclic_measure(units, reference, beta, gradient):
    """Cosines of all cyclic shifts: R_ab[τ]; the gradient of Σ_ab Σ_τ w_ab[τ]·R_ab[τ] with
    respect to g_a is 2·Σ_b Σ_τ w_ab[τ]·g_b[t + τ], again a cyclic correlation."""
    num_generators, length = units.shape
    size = _fft_size(length)
    spectra = np.fft.rfft(units, n=size, axis=1)
    maximum = -np.inf
    for rows in row_blocks(num_generators, num_generators * size):
        correlations = _cyclic_correlations(spectra[rows], spectra, length, size)
        own = np.arange(rows.start, rows.stop)
        correlations[own - rows.start, own, 0] = -np.inf
        maximum = max(maximum, float(correlations.max()))
        if gradient is not None:
            weight_spectra = np.fft.rfft(_weights(correlations, reference, beta), n=size, axis=2)
            linear = np.fft.irfft(np.einsum("abw,bw->aw", np.conj(weight_spectra), spectra), n=size, axis=1)
            gradient[rows] = linear[:, :length] + linear[:, size - length:]
    return maximum


def cyclic_max_cosine(generators):
    """Maximum cosine between distinct cyclic shifts of the (normalised) generators."""
    units = normalise_rows(generators)
    return _cyclic_measure(units, 0.0, 0.0, None)


def refine_cyclic(generators, iterations):
    """Anneals K generators of length L; the vectors are their K·L cyclic shifts. Returns
    ``(unit generators, max cosine over all their shifts)``, never worse than the start."""
    units = normalise_rows(generators)
    return _anneal(units, iterations, _cyclic_measure)


def all_shifts(generators, count):
    """The first ``count`` rows of [every cyclic shift of generator 0, of generator 1, …]."""
    num_generators, length = generators.shape
    index = (np.arange(length)[:, None] + np.arange(length)[None, :]) % length
    # np.take, not generators[:, index]: the fancy index builds a strided array (10x slower here)
    return np.take(generators, index, axis=1).reshape(num_generators * length, length)[:count]
