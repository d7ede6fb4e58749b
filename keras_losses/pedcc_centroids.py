"""PEDCC: pre-defined evenly-distributed class centroids on the unit hypersphere.

Pure NumPy, float64 results. Three functions:

    pedcc_centroids(num_classes, dim, seed=0, iterations=None, init=None)   (C, D) unit rows
    centroid_quality(centroids)                                              max pairwise cosine
    known_optimum(num_classes, dim)                                          its optimum, or None

Every pairwise computation goes through Gram-matrix row blocks (``U[rows] @ U.T``), so memory
is O(block · C), never a C×C×D tensor; time is O(C²·D) per pass.
"""

import math

import numpy as np

from keras_losses._checks import check_int

# Authors' charge model.
_MIN_DISTANCE = 0.01
_VELOCITY_STEP = 0.01
AUTHORS_ITERATIONS = 200

# Row blocks of the Gram matrix hold at most this many entries (32 MiB in float64).
_BLOCK_ENTRIES = 1 << 22

# Surrogate optimiser (C > 2D): temperature and step schedules, geometric from start to end.
_BETA_START, _BETA_END = 10.0, 1000.0
_STEP_START, _STEP_END = 0.1, 1e-3
_EXPONENT_CLIP = 40.0
# Iterations: as many as fit a fixed amount of work (C²·D multiply-adds per Gram pass), between
# these bounds. Deterministic (never time-based), so a seed always gives the same centroids.
_WORK_BUDGET = 5e11
_MIN_ITERATIONS, _MAX_ITERATIONS = 40, 1000
# Above this C²·D the surrogate runs in float32 (about 2x faster); the result is float64.
_FLOAT32_ABOVE = 1 << 28


def _row_blocks(num_rows, num_columns):
    """Yields ``slice`` objects covering ``range(num_rows)`` with ≤ _BLOCK_ENTRIES per block."""
    step = max(1, _BLOCK_ENTRIES // max(num_columns, 1))
    for start in range(0, num_rows, step):
        yield slice(start, min(num_rows, start + step))


def _normalise_rows(array):
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def _check_matrix(name, value, shape=None):
    """Returns ``value`` as a finite float64 rank-2 array with non-zero rows."""
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
    norms = np.linalg.norm(array, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"`{name}` must not contain zero rows (row {int(np.argmin(norms))} is zero).")
    return array


def centroid_quality(centroids):
    """Maximum pairwise cosine between the rows of ``centroids`` (lower is better).

    The quality measure of a PEDCC: the cosine of the smallest angle between two class
    centroids. Rows are normalised first, so any non-zero rows are accepted. Computed in float64
    over Gram-matrix row blocks: O(block · C) memory.

    Args:
        centroids: array of shape ``(C, D)``, C >= 2, finite, no zero row.

    Returns:
        Python float in [-1, 1].

    Example:
        >>> keras_losses.centroid_quality([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
        0.0
    """
    units = _normalise_rows(_check_matrix("centroids", centroids))
    return _max_cosine(units)


def _max_cosine(units):
    num_classes = len(units)
    best = -np.inf
    for rows in _row_blocks(num_classes, num_classes):
        gram = units[rows] @ units.T
        gram[np.arange(gram.shape[0]), np.arange(rows.start, rows.stop)] = -np.inf
        best = max(best, float(gram.max()))
    return float(min(1.0, max(-1.0, best)))


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
    return _normalise_rows(coords)


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
    return _normalise_rows(coords @ basis.T)


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
        for rows in _row_blocks(num_classes, num_classes):
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
        units = _normalise_rows(units + velocity)
        velocity += _VELOCITY_STEP * tangential
    return units


def _default_iterations(num_classes, dim):
    work = float(num_classes) ** 2 * dim
    return int(min(_MAX_ITERATIONS, max(_MIN_ITERATIONS, _WORK_BUDGET // work)))


def _minimax_optimise(units, iterations):
    """Minimises the maximum pairwise cosine by projected gradient steps on the sphere.

    Surrogate: the exponential energy ``Σ_{k≠j} exp(β·(u_k·u_j − m))`` (a smooth maximum of the
    cosines; ``m`` is the previous iteration's maximum, which only prevents overflow), with β
    annealed geometrically from 10 to 1000: at first every pair repels (global spreading), at the
    end only the pairs near the maximum do. Each step moves ``u_k`` against the tangential part
    of its gradient ``Σ_j w_kj u_j``, scaled so that the largest move is η (annealed 0.1 → 0.001),
    then renormalises. Returns the iterate with the smallest maximum cosine seen.
    """
    num_classes, dim = units.shape
    dtype = np.float32 if float(num_classes) ** 2 * dim > _FLOAT32_ABOVE else np.float64
    units = units.astype(dtype)
    best_units, best_value = units, np.inf
    reference = 1.0
    gradient = np.empty_like(units)
    for step in range(iterations + 1):
        fraction = step / max(iterations - 1, 1)
        beta = _BETA_START * (_BETA_END / _BETA_START) ** fraction
        eta = _STEP_START * (_STEP_END / _STEP_START) ** fraction
        maximum = -np.inf
        for rows in _row_blocks(num_classes, num_classes):
            gram = units[rows] @ units.T
            gram[np.arange(gram.shape[0]), np.arange(rows.start, rows.stop)] = -np.inf
            maximum = max(maximum, float(gram.max()))
            if step == iterations:
                continue  # last pass only measures the final iterate
            gram -= reference
            gram *= beta
            np.clip(gram, -_EXPONENT_CLIP, _EXPONENT_CLIP, out=gram)
            np.exp(gram, out=gram)
            gradient[rows] = gram @ units
        if maximum < best_value:
            best_value, best_units = maximum, units
        if step == iterations:
            break
        reference = maximum
        tangential = gradient - np.einsum("ij,ij->i", gradient, units)[:, None] * units
        largest = float(np.sqrt(np.einsum("ij,ij->i", tangential, tangential).max()))
        if largest == 0.0:
            break
        units = units - (eta / largest) * tangential  # a new array: best_units is never mutated
        units /= np.linalg.norm(units, axis=1, keepdims=True)
    return _normalise_rows(best_units.astype(np.float64))


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
      - ``C > 2D``: random start, then projected gradient descent on the sphere of a smooth
        maximum of the pairwise cosines (exponential energy with an annealed temperature),
        keeping the iterate with the smallest maximum cosine. The number of steps follows
        from C²·D (1000 for small problems, down to 40 at 10,000×512; see
        ``_default_iterations``), never from the clock, so a seed always gives the same result.
        With ``init`` it starts from ``init`` instead (for any C).

    Quality (max pairwise cosine, lower is better; seed 0; ``python -m benchmarks.pedcc_centroids``
    on 2 shared CPU cores, see ``benchmarks/results/pedcc_centroids.md``):

    | C × D | optimum | random start | authors, 200 it. | default | default time |
    |---|---:|---:|---:|---:|---:|
    | 10 × 512 | −0.1111 | +0.0812 | −0.1110 | −0.1111 | < 0.01 s |
    | 100 × 512 | −0.0101 | +0.1487 | −0.0057 | −0.0101 | 0.01 s |
    | 1,000 × 512 | 0 | +0.2144 | +0.1605 (11 s) | 0.0000 | 0.08 s |
    | 100 × 64 | 0 | +0.4495 | +0.1675 | 0.0000 | < 0.01 s |
    | 300 × 32 | unknown | +0.6206 | +0.4071 | +0.1754 | 0.9 s |
    | 2,000 × 128 | unknown | +0.4207 | +0.3675 (17 s) | +0.1027 | 34 s |
    | 10,000 × 512 | unknown | +0.2384 | not run (3.6–7 s/iteration) | +0.0768 | 124 s |

    In 3-D the default reaches the best-known Tammes codes (8, 12, 20 points) to within 0.001.

    Args:
        num_classes: C >= 2.
        dim: D >= 2.
        seed: non-negative int; the random start (charge model, surrogate) and the random
            rotation (closed forms).
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
        init = _normalise_rows(_check_matrix("init", init, shape=(num_classes, dim)))
    rng = np.random.default_rng(seed)

    if iterations is not None:
        start = init if init is not None else _normalise_rows(rng.standard_normal((num_classes, dim)))
        return _charge_model(start, iterations)

    if init is None:
        if num_classes <= 2 * dim:
            return _orthogonal_simplices(num_classes, dim, rng)
        if dim == 2:
            return _regular_polygon(num_classes, rng)
        init = _normalise_rows(rng.standard_normal((num_classes, dim)))
    return _minimax_optimise(init, _default_iterations(num_classes, dim))
