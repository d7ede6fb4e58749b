"""Independent float64 NumPy references, written from the papers' formulas.

Nothing here imports keras_losses: these are the yardsticks the
implementation is measured against.
"""

import numpy as np


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def gsc_density(probs, top_k, normalize_entropy=True, log_probs=None):
    """GSC paper eq. 5-9: f = Π_{i≤k} N(K_i; 0, σ²), σ = E/ln C (or E)."""
    probs = np.asarray(probs, np.float64)
    if log_probs is None:
        log_probs = np.log(np.clip(probs, 1e-300, None))
    entropy = -(probs * log_probs).sum(axis=-1)
    sigma = entropy / np.log(probs.shape[-1]) if normalize_entropy else entropy
    top = -np.sort(-probs, axis=-1)[:, :top_k]
    # Direct product of univariate densities (eq. 4-5), not the log form.
    densities = np.exp(-(top**2) / (2 * sigma[:, None] ** 2)) / (np.sqrt(2 * np.pi) * sigma[:, None])
    return densities.prod(axis=-1)


def gsc_loss(labels, logits, gamma, top_k, normalize_entropy=True, label_smoothing=0.0, focal_gamma=None):
    """Per-sample CE (optionally smoothed / focal, eq. 18) + γ·f.

    ``labels``: class indices (B,) or target probability rows (B, C). The focal base is
    ``Σ_j t_j (1 − p_j)^η (−ln p_j)``, i.e. ``(1 − p_y)^η · CE`` for a one-hot target.
    """
    logp = log_softmax(logits)
    probs = np.exp(logp)
    num_classes = logp.shape[-1]
    labels = np.asarray(labels)
    target = labels.astype(np.float64) if labels.ndim == 2 else np.eye(num_classes)[labels]
    target = target * (1 - label_smoothing) + label_smoothing / num_classes
    if focal_gamma is not None:
        target = target * (1 - probs) ** focal_gamma
    base = -(target * logp).sum(axis=-1)
    return base + gamma * gsc_density(probs, top_k, normalize_entropy, logp)


def expected_calibration_error(labels, probs, num_bins=15, weights=None):
    """Guo et al. 2017: Σ_b (n_b/n)|acc_b − conf_b| over equal-width bins (b/M, (b+1)/M]."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, np.float64)
    confidence = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if low == 0.0:
            in_bin |= confidence == 0.0
        weight = weights[in_bin].sum()
        if weight > 0:
            accuracy = (weights[in_bin] * correct[in_bin]).sum() / weight
            mean_confidence = (weights[in_bin] * confidence[in_bin]).sum() / weight
            total += weight * abs(accuracy - mean_confidence)
    return total / weights.sum()


def scaled_batch_norm(z, scale, epsilon, mean=None, variance=None):
    """Scaled-BN paper eq. 9: m·(z − E[z]) / sqrt(Var[z] + ε), biased batch variance."""
    z = np.asarray(z, np.float64)
    mean = z.mean(axis=0) if mean is None else mean
    variance = z.var(axis=0) if variance is None else variance
    return scale * (z - mean) / np.sqrt(variance + epsilon)


def cosines(features, kernel):
    """cos between rows of ``features`` (B, D) and columns of ``kernel`` (D, C); zero rows → 0."""
    features = np.asarray(features, np.float64)
    kernel = np.asarray(kernel, np.float64)
    feature_norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.divide(features, feature_norms, out=np.zeros_like(features), where=feature_norms > 0)
    return unit @ (kernel / np.linalg.norm(kernel, axis=0, keepdims=True))


def _scaled_ce_with_target(cos, labels, target, negatives, scale):
    logits = negatives.copy()
    rows = np.arange(len(labels))
    logits[rows, labels] = target
    z = scale * logits
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - scale * target


def cosface(labels, cos, scale, margin):
    """CosFace / AM-softmax: target cos θ − m."""
    cos = np.asarray(cos, np.float64)
    target = cos[np.arange(len(labels)), labels] - margin
    return _scaled_ce_with_target(cos, labels, target, cos, scale)


def arcface(labels, cos, scale, margin):
    """ArcFace with the standard fallback: cos(θ+m) while θ+m ≤ π, else cos θ − m·sin m."""
    cos = np.asarray(cos, np.float64)
    c = np.clip(cos[np.arange(len(labels)), labels], -1, 1)
    theta = np.arccos(c)
    target = np.where(theta + margin <= np.pi, np.cos(theta + margin), c - margin * np.sin(margin))
    return _scaled_ce_with_target(cos, labels, target, cos, scale)


def npcface_mask_and_margin(labels, cos, m0, m1, mask_margin=None):
    """NPCFace eq. 11 and the MV-softmax hard-negative rule: (mask M, cooperative margin m̃)."""
    cos = np.asarray(cos, np.float64)
    rows = np.arange(len(labels))
    c = np.clip(cos[rows, labels], -1, 1)
    theta = np.arccos(c)
    mask = cos > np.cos(theta + (m0 if mask_margin is None else mask_margin))[:, None]
    mask[rows, labels] = False
    count = mask.sum(axis=1)
    mean_hard = np.where(count > 0, (mask * cos).sum(axis=1) / np.maximum(count, 1), 0.0)
    return mask, np.where(count > 0, m0 + m1 * mean_hard, m0)


def npcface(labels, cos, scale, m0, m1, t, alpha, mask_margin=None, frozen=None):
    """NPCFace per-sample loss (eq. 10-12). ``frozen=(mask, margin)`` holds them constant,
    as the method prescribes for gradients (no gradient through the mask or m̃)."""
    cos = np.asarray(cos, np.float64)
    mask, margin = frozen if frozen is not None else npcface_mask_and_margin(labels, cos, m0, m1, mask_margin)
    c = np.clip(cos[np.arange(len(labels)), labels], -1, 1)
    target = np.where(c > 0, np.cos(np.arccos(c) + margin), c)
    negatives = np.where(mask, t * cos + alpha, cos)
    return _scaled_ce_with_target(cos, labels, target, negatives, scale)


def tar_at_far_brute_force(scores, same, far):
    """Best TAR over every threshold (accept score > threshold) whose FAR ≤ far."""
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    best = 0.0
    for threshold in np.r_[np.inf, scores, -np.inf]:
        accepted = scores > threshold
        if accepted[~same].mean() <= far:
            best = max(best, accepted[same].mean())
    return best


def pedcc_loss_from_features(labels, features, centroids, scale, margin, n, mse_reduction):
    """PEDCC-Loss from the vectors themselves: x̂ = x/‖x‖, unit centroids (C, D), eq. 7-9 literally."""
    unit = np.asarray(features, np.float64)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    centroids = np.asarray(centroids, np.float64)
    centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    cos = unit @ centroids.T
    squared = ((unit - centroids[labels]) ** 2).sum(axis=1)
    mse = {"half_sum": 0.5 * squared.sum(), "sum": squared.sum(), "batch_mean": squared.mean()}[mse_reduction]
    return cosface(labels, cos, scale, margin) + max(mse, 1e-12) ** (1.0 / n)


# --- ICU ---------------------------------------------------


def icu_distances(features, means, log_variances):
    """Eq. 9: d_ik = ½[(x_i − μ_k)ᵀ Σ_k⁻¹ (x_i − μ_k) + ln|Σ_k|], Σ_k = diag(exp(log σ²_k))."""
    features = np.asarray(features, np.float64)
    means = np.asarray(means, np.float64)
    log_variances = np.asarray(log_variances, np.float64)
    distances = np.zeros((len(features), len(means)))
    for k in range(len(means)):
        covariance = np.diag(np.exp(log_variances[k]))
        precision = np.linalg.inv(covariance)
        _, log_determinant = np.linalg.slogdet(covariance)
        for i, x in enumerate(features):
            difference = x - means[k]
            distances[i, k] = 0.5 * (difference @ precision @ difference + log_determinant)
    return distances


def icu_loss(labels, distances, alpha, gamma):
    """Eq. 17-18 per sample, with eq. 18's ln(1+γ)|Σ| read as ln((1+γ)|Σ|) = ln|Σ| + ln(1+γ):
    target exponent −(1+α)(d_y + ½ ln(1+γ)), the others −d_k; −log of the target's share."""
    distances = np.asarray(distances, np.float64)
    losses = np.zeros(len(distances))
    for i, label in enumerate(labels):
        target = -(1 + alpha) * (distances[i, label] + 0.5 * np.log(1 + gamma))
        others = -np.delete(distances[i], label)
        top = max(target, others.max())
        denominator = np.exp(others - top).sum() + np.exp(target - top)
        losses[i] = -(target - top - np.log(denominator))
    return losses


def icu_regularizer(features, labels, means, log_variances, lambda_mu, lambda_sigma):
    """Eq. 14 over the classes present in the batch, with the eq. 12-13 per-class moments
    μ̄_k = mean{x_i : y_i=k} and σ̄²_k = mean{(x_i − μ_k)² : y_i=k} (around the parameter μ_k)."""
    features = np.asarray(features, np.float64)
    means = np.asarray(means, np.float64)
    variances = np.exp(np.asarray(log_variances, np.float64))
    labels = np.asarray(labels)
    total = 0.0
    for k in np.unique(labels):
        members = features[labels == k]
        batch_mean = members.mean(axis=0)
        batch_variance = ((members - means[k]) ** 2).mean(axis=0)
        total += lambda_mu * np.sum((means[k] - batch_mean) ** 2)
        total += lambda_sigma * np.sum((variances[k] - batch_variance) ** 2)
    return total


def icu_objective(labels, features, means, log_variances, alpha, gamma, lambda_mu, lambda_sigma):
    """What model.fit minimises for one batch: mean ICU loss + the eq. 14 regulariser."""
    distances = icu_distances(features, means, log_variances)
    return icu_loss(labels, distances, alpha, gamma).mean() + icu_regularizer(
        features, labels, means, log_variances, lambda_mu, lambda_sigma
    )


def pedcc_charge_reference(init, iterations):
    """PEDCC authors' charge-repulsion model, the straightforward C×C×D way.

    Per iteration: d_kj = max(‖u_k − u_j‖, 0.01); F_k = Σ_j (u_k − u_j)/d_kj³; T_k = F_k − (F_k·u_k)u_k;
    u_k ← normalise(u_k + v_k) with the old velocity; v_k ← v_k + 0.01·T_k.
    """
    u = np.asarray(init, np.float64)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    v = np.zeros_like(u)
    for _ in range(iterations):
        diff = u[:, None, :] - u[None, :, :]  # (C, C, D): u_k − u_j; zero on the diagonal
        dist = np.maximum(np.sqrt((diff**2).sum(axis=-1)), 0.01)
        force = (diff / dist[:, :, None] ** 3).sum(axis=1)
        tangential = force - (force * u).sum(axis=1, keepdims=True) * u
        u = u + v
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        v = v + 0.01 * tangential
    return u
