"""PEDCC: pre-defined evenly-distributed class centroids on the unit hypersphere.

Pure NumPy, float64 results:

    pedcc_centroids(num_classes, dim, seed=0, iterations=None, init=None)   (C, D) unit rows
    centroid_quality(centroids)                   max pairwise cosine, with .lower_bound
    known_optimum(num_classes, dim)               the optimum where known, else None
    max_cosine_lower_bound(num_classes, dim)      no C unit vectors in R^D do better

Pairwise terms go through blocks of the Gram matrix, so memory is O(C·D + block), never a
C×C×D tensor. The structured codes, the cyclic and general optimisers and Levenshtein's bound
live in ``keras_losses._spherical_codes``.
"""

import math

import numpy as np

from keras_losses import _spherical_codes as codes
from keras_losses._checks import check_int

# Authors' charge model.
_MIN_DISTANCE = 0.01
_VELOCITY_STEP = 0.01
AUTHORS_ITERATIONS = 200

# Beyond C = 2D (see ``_beyond_twice_the_dimension``). Step counts follow from fixed amounts of
# work, never from the clock, so a seed always gives the same centroids.
_CYCLIC_WORK, _CYCLIC_MAX_STEPS = 1.5e9, 3000      # K²·L per cyclic step
_CYCLIC_MIN_STEPS_FROM_CODE = 300                  # fewer only spread a structured start out
_POLISH_WORK, _POLISH_MAX_STEPS = 5e11, 3000       # C²·(D + 32) per general step and start
_POLISH_MIN_STEPS = 100                            # fewer would not move a converged code
_RANDOM_START_UP_TO = 1e8                          # C²·D: small problems also start at random
_TIGHTEN_WORK = 2e10                               # C²·(D + 32) per evaluation; small problems only


def _check_matrix(name, value, shape=None):
    """Returns ``value`` as a finite float64 rank-2 array with non-zero rows, each row divided by
    its largest absolute entry (directions unchanged; norms of rows like 1e308 or 1e-200 would
    overflow or underflow)."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a real-valued array, got {type(value).__name__}.") from error
    if array.ndim != 2:
        raise ValueError(f"`{name}` must have rank 2 (num_classes, dim), got shape {array.shape}.")
    if shape is not None and array.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape} (num_classes, dim), got {array.shape}.")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"`{name}` must hold at least 2 rows of dimension >= 1, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite; it contains NaN or inf.")
    largest = np.abs(array).max(axis=1, keepdims=True)
    if np.any(largest == 0):
        raise ValueError(f"`{name}` must not contain zero rows (row {int(np.argmin(largest))} is zero).")
    return array / largest


class CentroidQuality(float):
    """The maximum pairwise cosine (this float) with the lower bound for its C and D beside it.

    Returned by ``centroid_quality``; compares, formats and serialises as the float it is.

    Args:
        max_cosine: the achieved maximum pairwise cosine (the float value itself; also the
            attribute ``.max_cosine``).
        lower_bound: ``max_cosine_lower_bound(C, D)``, below which no C unit vectors in R^D
            go (attribute ``.lower_bound``).

    Example:
        >>> quality = keras_losses.centroid_quality(keras_losses.pedcc_centroids(20, 3))
        >>> f"{quality:.3f} (bound {quality.lower_bound:.3f})"    # 20 points in 3-D
        '0.676 (bound 0.655)'
    """

    def __new__(cls, max_cosine, lower_bound):
        quality = super().__new__(cls, max_cosine)
        quality.lower_bound = lower_bound
        return quality

    @property
    def max_cosine(self):
        return float(self)

    def __reduce__(self):  # pickle and copy: float's own would drop the bound
        return type(self), (float(self), self.lower_bound)


def centroid_quality(centroids):
    """Maximum pairwise cosine between the rows of ``centroids`` (lower is better), with the
    lower bound for their number and dimension.

    The quality measure of a PEDCC: the cosine of the smallest angle between two class
    centroids. Rows are normalised first, so any non-zero rows are accepted. Computed exactly in
    float64 over square tiles of the Gram matrix, each pair once: O(C²·D/2) time (100,000 × 512
    in about 45 s on 2 CPU cores), memory one tile.

    Args:
        centroids: array of shape ``(C, D)``, C >= 2, finite, no zero row.

    Returns:
        ``CentroidQuality``: a float in [-1, 1] (the maximum cosine) that also carries
        ``.max_cosine`` and ``.lower_bound`` (``max_cosine_lower_bound(C, D)``: no C unit
        vectors in R^D have a smaller maximum cosine).

    Example:
        >>> quality = keras_losses.centroid_quality([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
        >>> quality
        0.0
        >>> round(quality.lower_bound, 4)        # 3 points in the plane: the triangle, cos 120°
        -0.5
    """
    array = _check_matrix("centroids", centroids)
    achieved = codes.max_cosine(codes.normalise_rows(array))
    return CentroidQuality(achieved, max_cosine_lower_bound(*array.shape))


def max_cosine_lower_bound(num_classes, dim):
    """A lower bound on the maximum pairwise cosine of any ``num_classes`` unit vectors in R^dim.

    * ``C <= 2D`` or ``D == 2``: ``known_optimum(C, D)`` (the simplex bound ``−1/(C−1)`` for
      ``C <= D + 1``; 0 for ``D + 1 < C <= 2D`` (Rankin 1955); ``cos(2π/C)`` in the plane),
      which the default centroids attain.
    * otherwise: Levenshtein's bound (V. I. Levenshtein, "Universal bounds for codes and
      designs", Handbook of Coding Theory, 1998): the smallest s with ``L(D, s) >= C``, where
      ``L(D, s)`` bounds the size of a code with maximum cosine s (built from Gegenbauer
      polynomials and the zeros of Jacobi polynomials; ``L(D, 0) = 2D`` is Rankin's bound).
      E.g. 0.1180 at 300 × 32, 0.0579 at 2000 × 128, 0.0238 at 10,000 × 512.
    * ``D == 1``: −1 for two classes, else 1.

    Args:
        num_classes: C >= 2.
        dim: D >= 1.

    Returns:
        float.

    Example:
        >>> keras_losses.max_cosine_lower_bound(100, 64)        # Rankin: C <= 2D
        0.0
        >>> round(keras_losses.max_cosine_lower_bound(2000, 128), 4)   # Levenshtein
        0.0579
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    dim = check_int("dim", dim, low=1)
    if dim == 1:
        return -1.0 if num_classes == 2 else 1.0
    optimum = known_optimum(num_classes, dim)
    return optimum if optimum is not None else codes.levenshtein_bound(num_classes, dim)


def known_optimum(num_classes, dim):
    """The smallest achievable maximum pairwise cosine of ``num_classes`` unit vectors in R^dim,
    where it is known in closed form, else ``None``.

    * ``C <= D + 1``: ``-1/(C-1)``, the regular simplex (no C unit vectors have a smaller
      maximum: their sum has non-negative squared norm, ``C + C(C-1)·mean cos >= 0``).
    * ``D + 1 < C <= 2D``: ``0``. Any D+2 vectors in R^D contain a pair with non-negative inner
      product (Rankin 1955), and ± an orthonormal basis reaches 0.
    * ``D == 2``: ``cos(2π/C)``, the regular polygon (agrees with the two cases above for C <= 4).
    * otherwise (C > 2D, D >= 3) ``None``: these are open spherical-code problems.

    Args:
        num_classes: C >= 2.
        dim: D >= 2.

    Returns:
        float or None.

    Example:
        >>> round(keras_losses.known_optimum(10, 512), 4)    # regular simplex: -1/(C-1)
        -0.1111
        >>> keras_losses.known_optimum(100, 64)               # D + 1 < C <= 2D
        0.0
        >>> print(keras_losses.known_optimum(300, 32))        # C > 2D: open problem
        None
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    dim = check_int("dim", dim, low=2)
    if num_classes <= dim + 1:
        return -1.0 / (num_classes - 1)
    if num_classes <= 2 * dim:
        return 0.0
    if dim == 2:
        return math.cos(2 * math.pi / num_classes)
    return None


def _random_orthonormal(rng, dim, rank):
    """(dim, rank) matrix with orthonormal columns, Haar-distributed (QR with sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, rank)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _simplex(size):
    """Regular simplex of ``size`` unit vectors in R^(size-1), pairwise cosine -1/(size-1).

    The centred standard basis ``e_k - 1/size`` expressed in the Helmert basis of the
    hyperplane orthogonal to (1, …, 1), then normalised.
    """
    coords = np.zeros((size, size - 1))
    for j in range(1, size):
        coords[:j, j - 1] = 1.0
        coords[j, j - 1] = -float(j)
        coords[:, j - 1] /= math.sqrt(j * (j + 1))
    return codes.normalise_rows(coords)


def _orthogonal_simplices(num_classes, dim, rng):
    """Optimal configuration for C <= 2D: C − D (or 1) mutually orthogonal regular simplices.

    ``g = max(1, C − D)`` groups of balanced sizes ``n_i`` (differing by at most one), group i a
    regular simplex spanning ``n_i − 1`` dimensions; together they span ``C − g <= D`` dimensions,
    embedded in R^D by a random orthonormal basis drawn from ``rng``.
    """
    groups = max(1, num_classes - dim)
    sizes = [num_classes // groups + (1 if i < num_classes % groups else 0) for i in range(groups)]
    span = num_classes - groups
    coords = np.zeros((num_classes, span))
    row = col = 0
    for size in sizes:
        coords[row:row + size, col:col + size - 1] = _simplex(size)
        row += size
        col += size - 1
    basis = _random_orthonormal(rng, dim, span)
    return codes.normalise_rows(coords @ basis.T)


def _regular_polygon(num_classes, rng):
    angles = 2 * np.pi * np.arange(num_classes) / num_classes + rng.uniform(0, 2 * np.pi)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _charge_model(units, iterations):
    """The authors' charge-repulsion iteration, as the authors' code runs it, in float64.

    ``d_kj = max(|u_k - u_j|, 0.01)``, ``F_k = Σ_j (u_k - u_j)/d_kj³``, ``T_k = F_k - (F_k·u_k)u_k``,
    ``u_k <- normalise(u_k + v_k)`` with the old velocity, then ``v_k <- v_k + 0.01·T_k``.
    Distances come from the Gram matrix (``|u_k|² + |u_j|² - 2u_k·u_j``, clamped at 0);
    ``F_k = u_k·Σ_j w_kj - Σ_j w_kj u_j`` with ``w_kj = 1/d_kj³`` and ``w_kk = 0``.
    """
    num_classes = len(units)
    velocity = np.zeros_like(units)
    force = np.empty_like(units)
    for _ in range(iterations):
        squared = np.einsum("ij,ij->i", units, units)
        for rows in codes.row_blocks(num_classes, num_classes):
            weights = units[rows] @ units.T
            weights *= -2.0
            weights += squared[rows, None]
            weights += squared[None, :]
            # max(sqrt(max(d², 0)), 0.01)⁻³ == max(d², 0.01²)^(-3/2)
            np.maximum(weights, _MIN_DISTANCE**2, out=weights)
            np.power(weights, -1.5, out=weights)
            weights[np.arange(weights.shape[0]), np.arange(rows.start, rows.stop)] = 0.0
            force[rows] = units[rows] * weights.sum(axis=1, keepdims=True) - weights @ units
        tangential = force - np.einsum("ij,ij->i", force, units)[:, None] * units
        units = codes.normalise_rows(units + velocity)
        velocity += _VELOCITY_STEP * tangential
    return units


def pedcc_centroids(num_classes, dim, seed=0, iterations=None, init=None):
    """Pre-defined evenly-distributed class centroids (PEDCC): ``num_classes`` unit vectors in
    R^dim spread as far apart as possible.

    Zhu et al., *PEDCC-Loss* (§3.2) fix the classifier's class centres in
    advance, generated by "the physical model with the lowest isotropic charge energy on the
    sphere": charges repel until equilibrium. Two ways to get them:

    * ``iterations=<int>`` runs the authors' charge-repulsion algorithm exactly as their code
      does: start ``u_k ~ N(0, I_D)`` normalised (from ``np.random.default_rng(seed)``;
      the authors' script is unseeded), velocity 0; per iteration
      ``d_kj = max(|u_k - u_j|, 0.01)``, ``F_k = Σ_j (u_k - u_j)/d_kj³``,
      ``T_k = F_k - (F_k·u_k)u_k``, ``u_k <- normalise(u_k + v_k)`` (old velocity),
      ``v_k <- v_k + 0.01·T_k``. ``iterations=200`` is the authors' schedule. It does not
      converge for many classes (table below).
    * ``iterations=None`` (default): a converged result for the quality measure, the maximum
      pairwise cosine (``centroid_quality``):

      - ``C <= D + 1``: the regular simplex, exactly (every cosine ``-1/(C-1)``, the optimum; it
        is also the charge model's equilibrium), randomly rotated into R^D from ``seed``.
      - ``D + 1 < C <= 2D``: maximum cosine 0, the optimum (no D+2 vectors in R^D have all
        pairwise cosines negative). Built from ``C − D`` mutually orthogonal regular simplices
        of balanced sizes (at ``C = 2D``: ± an orthonormal basis; at ``C = D + 2``: two simplices
        of about C/2 points). Maximum cosine 0 has many solutions: vectors with pairwise
        cosines <= 0 fall into mutually orthogonal groups (the connected parts of the graph of
        negative pairs), a group of n vectors spans >= n − 1 dimensions, so there are at least
        C − D groups. Among such constructions we pick the one with the lowest charge-model
        (Coulomb, ``Σ 1/d``) energy in the cases we compared: balanced simplices beat ± an
        orthonormal basis with unpaired vectors (e.g. 1000×512: 4.4 lower) and one large simplex
        plus antipodal pairs (0.12 lower); for steeper energies (Riesz ``1/d⁴``) the latter would
        win. It is optimal for the maximum cosine, not the charge model's energy minimum, whose
        maximum cosine is > 0 here (+0.137 after 1000 charge iterations at 1000×512);
        use ``iterations=`` for that.
      - ``D == 2``: the regular polygon (optimal).
      - ``C > 2D`` (open problems; ``max_cosine_lower_bound`` gives Levenshtein's bound): the
        best of several candidates, measured, then its coordinates randomly permuted and
        sign-flipped from ``seed``:
        a structured code (Gold or small-Kasami binary sequences of length L = 2^m − 1 <= D
        and all their cyclic shifts as ±1/√L vectors, zero-padded: certified maximum cosine,
        e.g. 31/511 for up to 262,143 classes in R^512); for D >= 22 and up to 550 classes the
        McLaughlin code (275 vectors in R^22 with cosines 1/6 and −1/4, the rest as centroids of
        the orthogonal complement); a cyclic refinement (K = ⌈C/L⌉
        generators whose cyclic shifts are the centroids, annealed with all cosines computed
        by FFT, O(K²·L log L) per step, from the structured code when L >= D − 1, else from
        random generators of length D); where it fits its budget, the general optimiser
        (projected gradient descent on the sphere of a smooth maximum of all C²/2 cosines,
        annealed temperature) from the best of those and, for small C²·D, from a random start;
        and for small C²·D the best so far tightened (L-BFGS on the squared excess of the
        cosines over a falling target). Step counts follow from C, D and fixed work budgets,
        never from the clock, so a seed
        always gives the same result. With ``init`` (any C) only the general optimiser runs,
        from ``init``, for as many steps as its budget allows (3000 for small problems, 9 at
        10,000×512).

    Quality (max pairwise cosine, lower is better; seed 0; ``python -m benchmarks.pedcc_centroids``
    on 2 shared CPU cores, see ``benchmarks/results/pedcc_centroids.md``):

    | C × D | lower bound | random start | authors, 200 it. | default | default time |
    |---|---:|---:|---:|---:|---:|
    | 10 × 512 | −0.1111 (optimum) | +0.0812 | −0.1110 | −0.1111 | < 0.01 s |
    | 100 × 512 | −0.0101 (optimum) | +0.1487 | −0.0057 | −0.0101 | 0.01 s |
    | 1,000 × 512 | 0 (optimum) | +0.2144 | +0.1605 (5 s) | 0.0000 | 0.03 s |
    | 100 × 64 | 0 (optimum) | +0.4495 | +0.1675 | 0.0000 | < 0.01 s |
    | 300 × 32 | +0.1180 | +0.6206 | +0.4071 | +0.1639 | 7.4 s |
    | 2,000 × 128 | +0.0579 | +0.4207 | +0.3675 (10 s) | +0.1012 | 14 s |
    | 10,000 × 512 | +0.0238 | +0.2384 | not run (2.9 s/iteration) | +0.0531 | 13 s |
    | 100,000 × 512 | +0.0416 | +0.2820 | not run | +0.0607 | 6 s |

    In 3-D the default reaches the best-known Tammes codes (8, 12, 20 points) to within 0.001.

    Args:
        num_classes: C >= 2.
        dim: D >= 2.
        seed: non-negative int; the random start (charge model, optimisers) and the random
            rotation (signed permutation beyond 2D) of the default.
        iterations: None (default, converged) or an int >= 0 of charge-model iterations
            (0 returns the normalised start).
        init: optional ``(C, D)`` starting points, normalised to unit length first; replaces
            the random start (``seed`` is then unused), e.g. to replay a published
            initialisation through the charge model.

    Returns:
        float64 array ``(C, D)`` of unit rows; cast to float32 for use in a model.

    Raises:
        ValueError: naming the argument, for ``num_classes < 2``, ``dim < 2``, a negative or
            non-integer ``iterations`` or ``seed``, or an ``init`` of the wrong shape, not
            finite, or with a zero row.

    Example:
        >>> centroids = keras_losses.pedcc_centroids(10, 512)            # regular simplex, seed 0
        >>> round(keras_losses.centroid_quality(centroids), 4)
        -0.1111
        >>> authors = keras_losses.pedcc_centroids(10, 512, iterations=200)   # the authors' schedule
        >>> round(keras_losses.centroid_quality(authors), 3)
        -0.111
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    dim = check_int("dim", dim, low=2)
    seed = check_int("seed", seed, low=0)
    if iterations is not None:
        iterations = check_int("iterations", iterations, low=0)
    if init is not None:
        init = codes.normalise_rows(_check_matrix("init", init, shape=(num_classes, dim)))
    rng = np.random.default_rng(seed)

    if iterations is not None:
        start = init if init is not None else codes.normalise_rows(rng.standard_normal((num_classes, dim)))
        return _charge_model(start, iterations)

    if init is not None:
        return codes.minimise_max_cosine(init, _polish_steps(num_classes, dim))[0]
    if num_classes <= 2 * dim:
        return _orthogonal_simplices(num_classes, dim, rng)
    if dim == 2:
        return _regular_polygon(num_classes, rng)
    return _beyond_twice_the_dimension(num_classes, dim, rng)[0]


def _steps(work_per_step, budget, most):
    return int(min(most, budget // work_per_step))


def _polish_steps(num_classes, dim, starts=1):
    """General-optimiser steps per start: as many as fit ``_POLISH_WORK`` shared by ``starts``
    runs, a step costing C²·(D + 32) (the Gram products plus the exponentials, ~32 multiply-adds
    each), at most 3000; at least one."""
    work = float(num_classes) ** 2 * (dim + 32) * starts
    return max(1, _steps(work, _POLISH_WORK, _POLISH_MAX_STEPS))


def _beyond_twice_the_dimension(num_classes, dim, rng):
    """C > 2D, D >= 3: the best of a structured code, its cyclic refinement, the general
    optimiser and, for small problems, its tightening, under a random signed permutation of the
    coordinates. Returns ``(centroids, which candidate won)``.

    1. Structured code: the Gold or small-Kasami family of length L <= D with the smallest
       certified maximum cosine that has >= C cyclic shifts (zero-padded to D), if one fits.
    2. Cyclic refinement: K = ⌈C/L⌉ generators annealed through the cosines of all their
       cyclic shifts (by FFT, O(K²·L log L) per step): from the structured code when its
       length is D − 1 or D (skipped when fewer than 300 steps fit the budget: a short anneal
       only spreads the code out), else from K random generators of length D (left as they
       are when not one step fits, around a million classes).
    3. General optimiser (all C²/2 cosines per step, float32) where at least 100 steps per
       start fit its work budget: from the best so far (plus a 1e-3 perturbation, to leave its
       subspace) and, for small problems (C²·D <= 1e8), also from a random start.

    4. Tightening (small problems, C²·D <= 1e8 and C² within one block of pairwise terms: its
       C × C matrices are not tiled): the best so far, by L-BFGS on the squared excess of every
       cosine over a falling target (``codes.tighten``).

    With D >= 22, a second structured start joins 1: the McLaughlin code (275 vectors in R^22,
    cosines 1/6 and −1/4 only), its first C vectors, or all 275 and the other C − 275 <= 275 in
    the orthogonal complement (PEDCC centroids of R^(D−22)). Its maximum is 1/6 where the
    binary codes of length <= 63 give 7/31 or 15/63; the general optimiser then starts from it.

    Candidates are compared by their maximum cosine: certified for 1, by FFT over all K·L
    shifts for 2 (an upper bound for the first C), exact for the McLaughlin start, 3 and 4.
    """
    candidates = []  # (max cosine, float64 unit rows (C, D), description)
    mclaughlin = _mclaughlin_start(num_classes, dim)
    if mclaughlin is not None:
        candidates.append((codes.max_cosine(mclaughlin), mclaughlin, "McLaughlin code"))
    structured = codes.structured_generators(num_classes, dim)
    from_code = structured is not None and structured[0].shape[1] >= dim - 1
    if structured is not None:
        code_generators, certified, name = structured
        candidates.append((certified, _pad(codes.all_shifts(code_generators, num_classes), dim), f"{name} code"))
    generators = code_generators if from_code else rng.standard_normal((-(-num_classes // dim), dim))
    cyclic_steps = _steps(float(generators.shape[0]) ** 2 * generators.shape[1], _CYCLIC_WORK, _CYCLIC_MAX_STEPS)
    if cyclic_steps >= (_CYCLIC_MIN_STEPS_FROM_CODE if from_code else 1):
        refined, value = codes.refine_cyclic(generators, cyclic_steps)
        origin = f"the {name} code" if from_code else "random"
        candidates.append((value, _pad(codes.all_shifts(refined, num_classes), dim),
                           f"cyclic, {len(generators)} generators from {origin}, {cyclic_steps} steps"))
    elif not candidates:  # no code fits and not even one step does (~10⁶ classes): unmeasured
        candidates.append((np.inf, _pad(codes.all_shifts(generators, num_classes), dim),
                           f"cyclic, {len(generators)} random generators, no step fits"))

    from_random = float(num_classes) ** 2 * dim <= _RANDOM_START_UP_TO
    polish_steps = _polish_steps(num_classes, dim, starts=2 if from_random else 1)
    if polish_steps >= _POLISH_MIN_STEPS:
        _, best_units, best_name = min(candidates, key=lambda candidate: candidate[0])
        polish_starts = [(best_units + 1e-3 * rng.standard_normal(best_units.shape), best_name)]
        if from_random:
            polish_starts.append((rng.standard_normal((num_classes, dim)), "random"))
        for start, origin in polish_starts:
            polished = codes.minimise_max_cosine(codes.normalise_rows(start), polish_steps)[0]
            candidates.append((codes.max_cosine(polished), polished, f"general, {polish_steps} steps from {origin}"))
    evaluations = _tighten_evaluations(num_classes, dim)
    if evaluations:
        _, best_units, best_name = min(candidates, key=lambda candidate: candidate[0])
        tightened, value = codes.tighten(best_units, evaluations)
        candidates.append((value, tightened, f"{best_name}, tightened ({evaluations} evaluations)"))
    _, best_units, description = min(candidates, key=lambda candidate: candidate[0])
    return _random_signed_permutation(best_units, rng), description  # unit rows stay unit rows


def _tighten_evaluations(num_classes, dim):
    """Function evaluations of the tightening: as many as fit ``_TIGHTEN_WORK`` at C²·(D + 32)
    each; 0 (not run) for C²·D > 1e8 or where its C × C matrices
    would exceed one block."""
    if float(num_classes) ** 2 * dim > _RANDOM_START_UP_TO or num_classes ** 2 > codes._BLOCK_ENTRIES:
        return 0
    return int(_TIGHTEN_WORK // (float(num_classes) ** 2 * (dim + 32)))


def _mclaughlin_start(num_classes, dim):
    """The McLaughlin code in the first 22 coordinates (its first C vectors), and for C > 275 the
    other C − 275 <= 275 vectors as PEDCC centroids of the remaining D − 22 >= 2 coordinates
    (orthogonal to the code); None where that does not fit."""
    size, own_dim = codes.MCLAUGHLIN_SIZE, codes.MCLAUGHLIN_DIM
    rest = num_classes - size
    if dim < own_dim or (rest > 0 and (rest > size or dim - own_dim < 2)):
        return None
    units = np.zeros((num_classes, dim))
    units[:min(num_classes, size), :own_dim] = codes.mclaughlin_code()[:num_classes]
    if rest > 0:
        units[size:, own_dim:] = pedcc_centroids(max(rest, 2), dim - own_dim)[:rest]
    return units


def _random_signed_permutation(rows, rng):
    """The rows under a random signed permutation of the coordinates: an orthogonal map (every
    cosine kept) drawn from ``rng`` in O(C·D), where a Haar rotation would cost O(D³ + C·D²)."""
    dim = rows.shape[1]
    permuted = np.take(rows, rng.permutation(dim), axis=1)  # rows[:, perm] is 20x slower at 100,000×512
    permuted *= rng.choice([-1.0, 1.0], size=dim)
    return permuted


def _pad(rows, dim):
    """Unit rows of length L <= dim, zero-padded to dim."""
    padded = np.zeros((len(rows), dim))
    padded[:, :rows.shape[1]] = rows
    padded /= np.linalg.norm(rows, axis=1, keepdims=True)
    return padded
