"""Do the papers' claims hold at small scale? ``python -m models.reproduce``.

    python -m models.reproduce                        # every claim, 5 seeds → docs/reproduction.md
    python -m models.reproduce --quick                # pipeline check (32 runs, ~90 s) → runs/reproduce-quick/
    python -m models.reproduce --claims gsc-noise,npcface-tar --seeds 0,1,2
    python -m models.reproduce --dataset cifar100     # with a GPU and the TFDS data (see below)

Each claim of a paper is tested as the paper states it: a data set (with options, e.g. a noise
rate), one or more *conditions* (e.g. three noise rates), *arms* (a method of the training tool
with hyper-parameters) compared with a *baseline* arm trained with the same backbone, budget and
seeds, and a metric with the direction the paper claims. Every (condition, arm, seed) is one run
of the training tool (:func:`models.training.train`) in ``<output>/runs/<settings>-seed<k>``, named
by its settings: an interrupted report resumes, and a run shared by several claims (the softmax
baseline on digits) trains once.

For each comparison the report gives the arm's and the baseline's mean ± std over seeds, the mean
paired difference (same seed: same data order and initial backbone) with its 95 % Student-t
confidence interval (the paired t-test's), and a verdict: *reproduced* (the interval
excludes 0 on the claimed side), *contradicted* (it excludes 0 on the other side) or *not
distinguishable at this scale*; for "at least as good" claims the line is −margin instead of 0
(non-inferiority). Where the baseline is already above 0.985, the row says so: such data leave
little room for a gain. With few seeds the interval is wide; the verdicts say what these
runs show, not whether the paper is right at its own scale.

``--dataset cifar100`` (or ``cifar10``) replaces digits in the claims that use it, ``cifar*-lt``
the long-tailed sets and ``cifar100-verification`` the verification set (TFDS downloads; hours on
a CPU, minutes per run on a GPU). The noisy-label claim has no CIFAR counterpart here and keeps
noisy digits.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from models import methods
from models._common import name_list, positive_int, pyplot, seed_list, write_atomically
from models.training import TrainConfig, UsageError, train

CONFIDENCE = 0.95


FINE_TUNE_SHARE = 3 / 8  # the fine-tuning stage: the last 3 of 8 epochs (the paper: the last 50 of 120)


def fine_tune_epochs(budget):
    """Length of the fine-tuning stage for a budget of ``budget`` ≥ 2 epochs: ``FINE_TUNE_SHARE`` of
    it, rounded, at least 1 and leaving at least one ordinary epoch."""
    return min(budget - 1, max(1, round(budget * FINE_TUNE_SHARE)))


@dataclasses.dataclass(frozen=True)
class Arm:
    """One model of a comparison: a training-tool method with hyper-parameters.

    ``fine_tuning``: None (one stage), or a last-stage (:func:`fine_tune_epochs` of the budget, at
    the training tool's fine-tuning learning rate) in which the head's frozen weights are
    ``"trained"`` or stay ``"frozen"`` (the control).
    """

    label: str
    method: str
    hyperparameters: tuple = ()  # ((name, value), ...): hashable
    fine_tuning: str = None

    def settings(self):
        return dict(self.hyperparameters)

    def training(self, budget):
        """The ``TrainConfig`` fields of this arm's stages for a budget of ``budget`` epochs."""
        if self.fine_tuning is None:
            return {}
        return {"fine_tune_epochs": fine_tune_epochs(budget), "fine_tune_head": self.fine_tuning == "trained"}

    def slug(self, budget):
        stage = "" if self.fine_tuning is None else f"-finetune{fine_tune_epochs(budget)}{self.fine_tuning}"
        return _slug(self.hyperparameters) + stage


@dataclasses.dataclass(frozen=True)
class Claim:
    """A paper's claim as a set of paired comparisons.

    Attributes:
        key: short name (``--claims``).
        paper: which paper.
        statement: the claim, in the paper's terms.
        dataset: a name in ``models.data.DATASETS``.
        conditions: ``((label, dataset_options), ...)``; every arm runs under every condition.
        arms: the baseline first, then the arms compared with it.
        metric: a key of the training tool's metrics (``accuracy``, ``ece``, ``tar@far=0.001``).
        higher_is_better: the direction the paper claims for ``metric``.
        epochs: the training budget (None: the report's ``--epochs``).
        margin: None for "better than the baseline"; a number for "no worse than the baseline by
            more than ``margin``" (non-inferiority, e.g. PEDCC's "at least as accurate").
        reference: compare every arm with this constant instead of a baseline arm (e.g. a
            correlation against 0); then ``arms`` has no baseline.
        note: what a reader needs to weigh the result (printed below the claim's table).
    """

    key: str
    paper: str
    statement: str
    dataset: str
    conditions: tuple
    arms: tuple
    metric: str
    higher_is_better: bool
    epochs: int = None
    margin: float = None
    reference: float = None
    note: str = None


def _arms(*entries):
    """Arms from ``(label, method, hyper-parameters[, fine_tuning])`` entries. Hyper-parameters
    equal to the method's defaults are dropped, so that e.g. scaled BN with m = 1 (its default)
    shares the runs of plain scaled BN."""
    arms = []
    for label, method, hps, *rest in entries:
        defaults = methods.get(method).defaults()
        own = {name: value for name, value in hps.items() if defaults.get(name) != value}
        arms.append(Arm(label, method, tuple(sorted(own.items())), *rest))
    return tuple(arms)


SOFTMAX = ("softmax (CE)", "softmax", {})
DEFAULT_CONDITION = (("default", ()),)

CLAIMS = (
    Claim("gsc-ece", "GSC", "GSC lowers the expected calibration error of cross-entropy",
          "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("GSC", "gsc", {})), "ece", higher_is_better=False),
    Claim("gsc-ece-accuracy", "GSC", "… at equal accuracy (no more than 0.5 points below cross-entropy)",
          "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("GSC", "gsc", {})), "accuracy", higher_is_better=True,
          margin=0.005),
    Claim("gsc-noise", "GSC", "GSC is more accurate than cross-entropy under symmetric label noise",
          "noisy-digits", tuple((f"noise {rate:g}", (("noise_rate", rate),)) for rate in (0.2, 0.4, 0.6)),
          _arms(SOFTMAX, ("GSC", "gsc", {})), "accuracy", higher_is_better=True),
    Claim("gsc-sensitivity", "GSC", "the calibration gain holds across γ and top-k (sensitivity study)",
          "digits", DEFAULT_CONDITION,
          _arms(SOFTMAX, ("GSC γ=0.5", "gsc", {"gsc_gamma": 0.5}), ("GSC γ=2", "gsc", {"gsc_gamma": 2.0}),
                ("GSC k=1", "gsc", {"gsc_top_k": 1}), ("GSC k=5", "gsc", {"gsc_top_k": 5})),
          "ece", higher_is_better=False),
    Claim("scaled-bn-accuracy", "Scaled BN", "scaled BN before softmax is more accurate than softmax",
          "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("scaled BN", "scaled-bn", {})), "accuracy",
          higher_is_better=True),
    Claim("scaled-bn-convergence", "Scaled BN", "… and converges faster (accuracy after 2 epochs)",
          "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("scaled BN", "scaled-bn", {})), "accuracy",
          higher_is_better=True, epochs=2),
    Claim("scaled-bn-m", "Scaled BN", "the scale m matters: m in the paper's range beats softmax",
          "digits", DEFAULT_CONDITION,
          _arms(SOFTMAX, *((f"m={m:g}", "scaled-bn", {"bn_scale": float(m)}) for m in (1, 2, 4, 8, 16))),
          "accuracy", higher_is_better=True),
    Claim("pedcc-accuracy", "PEDCC", "PEDCC is at least as accurate as softmax (no more than 0.5 points below)",
          "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("PEDCC", "pedcc", {})), "accuracy", higher_is_better=True,
          margin=0.005),
    Claim("pedcc-compact", "PEDCC", "PEDCC's features are more compact than softmax's (mean cosine of a test "
          "feature to its class's mean direction; features where each head compares them with its class vectors: "
          "after PEDCC's batch normalisation, the backbone's output for softmax)", "digits", DEFAULT_CONDITION,
          _arms(SOFTMAX, ("PEDCC", "pedcc", {})), "intra_class_cosine", higher_is_better=True,
          note="PEDCC's features are centred by its batch normalisation, softmax's are not (the backbone ends with a "
               "linear layer): centring alone lowers the cosines to a class's mean direction, so a small difference "
               "either way says little about compactness; the separation below is measured in the same spaces."),
    Claim("pedcc-separated", "PEDCC", "… and better separated (largest cosine between two classes' mean directions, "
          "same features)", "digits", DEFAULT_CONDITION, _arms(SOFTMAX, ("PEDCC", "pedcc", {})),
          "max_inter_class_cosine", higher_is_better=False),
    Claim("pedcc-n", "PEDCC", "the root n of the MSE term (n = 1, 2, 3) against softmax",
          "digits", DEFAULT_CONDITION,
          _arms(SOFTMAX, *((f"n={n}", "pedcc", {"pedcc_n": float(n)}) for n in (1, 2, 3))),
          "accuracy", higher_is_better=True),
    Claim("pedcc-fine-tuning", "PEDCC", "fine-tuning the centroids in a last stage raises the accuracy (paper §4.1: "
          "the last 50 of 120 epochs; here the last 3/8 of the epochs, both arms with that stage at a tenth of the learning "
          "rate, the centroids frozen in the baseline)", "digits", DEFAULT_CONDITION,
          _arms(("PEDCC, centroids frozen", "pedcc", {}, "frozen"), ("PEDCC, centroids fine-tuned", "pedcc", {}, "trained")),
          "accuracy", higher_is_better=True,
          note="Keras has one learning rate per optimiser, so in the stage the backbone also trains at the lower rate, "
               "where the paper lowers it for the centroids only; both arms have the same stage, so the difference is "
               "the centroids' training alone."),
    Claim("icu-longtail", "ICU", "ICU is more accurate than softmax on long-tailed training data",
          "longtail", tuple((f"imbalance {ratio:g}", (("imbalance_ratio", float(ratio)),)) for ratio in (10, 50, 100)),
          _arms(SOFTMAX, ("ICU", "icu", {})), "accuracy", higher_is_better=True),
    Claim("icu-variances", "ICU", "the learned variances follow the classes' spread (correlation over classes × "
          "dimensions of log σ² with the log variance of the test embeddings; claimed > 0)",
          "longtail", (("imbalance 10", (("imbalance_ratio", 10.0),)),), _arms(("ICU", "icu", {})),
          "variance_correlation", higher_is_better=True, reference=0.0),
    Claim("npcface-tar", "NPCFace", "NPCFace verifies held-out identities better than ArcFace and CosFace "
          "(TAR at FAR = 1e-3)", "verification", DEFAULT_CONDITION,
          _arms(("ArcFace", "arcface", {}), ("CosFace", "cosface", {}), ("NPCFace", "npcface", {})),
          "tar@far=0.001", higher_is_better=True),
    Claim("npcface-scale", "NPCFace", "the scale s: NPCFace at s = 16, 32, 64 against ArcFace",
          "verification", DEFAULT_CONDITION,
          _arms(("ArcFace", "arcface", {}), *((f"NPCFace s={s}", "npcface", {"scale": float(s)}) for s in (16, 32, 64))),
          "tar@far=0.001", higher_is_better=True),
)

# Claims of the papers this report does not test yet, and why (printed in the report).
NOT_TESTED = (
    ("NPCFace", "gains at the paper's scale (hundreds of thousands of identities)",
     "far beyond the embedded verification set; `--dataset cifar100` is the largest set here"),
    ("PEDCC", "the face-recognition results (LFW after FaceScrub)",
     "no face data set is available offline; the verification set stands in for NPCFace's claims only"),
)

# --dataset: the GPU-scale counterparts of the embedded sets.
GPU_DATASETS = {
    "cifar10": {"digits": "cifar10", "longtail": "cifar10-lt", "verification": "cifar100-verification"},
    "cifar100": {"digits": "cifar100", "longtail": "cifar100-lt", "verification": "cifar100-verification"},
}


def claim_names():
    return [claim.key for claim in CLAIMS]


def _slug(items):
    return "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{k}{v}" for k, v in items)


def run_folder(output, dataset, options, arm, epochs, seed):
    """Where the run of (data set and options, arm, budget, seed) lives: named by its settings, so
    claims that need the same run share it."""
    name = f"{dataset.replace('/', '_')}{_slug(options)}-{arm.method}{arm.slug(epochs)}-e{epochs}-seed{seed}"
    return os.path.join(output, "runs", name)


def paired_difference(arm_values, baseline_values):
    """Mean of ``arm − baseline`` over paired seeds and its 95 % Student-t interval (the paired
    t-test's: ``mean ± t_{0.975, n−1}·s/√n``; a bootstrap over 5 seeds would be too narrow).

    Args:
        arm_values, baseline_values: one value per seed, same order.

    Returns:
        ``(mean difference, (low, high))``; with one seed the interval is ``(nan, nan)``.
    """
    from scipy import stats

    differences = np.asarray(arm_values, np.float64) - np.asarray(baseline_values, np.float64)
    if differences.ndim != 1 or len(differences) == 0 or np.shape(arm_values) != np.shape(baseline_values):
        raise ValueError(f"need one value per seed for both, got shapes {np.shape(arm_values)} and "
                         f"{np.shape(baseline_values)}")
    mean = float(differences.mean())
    if len(differences) < 2:
        return mean, (float("nan"), float("nan"))
    half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, len(differences) - 1) * differences.std(ddof=1) / np.sqrt(
        len(differences))
    return mean, (mean - float(half_width), mean + float(half_width))


def verdict(interval, higher_is_better, margin=None):
    """reproduced / contradicted / not distinguishable at this scale, from the interval of
    ``arm − baseline`` and the claimed direction: better than the baseline (``margin`` None: the
    interval must exclude 0 on the claimed side), or no worse by more than ``margin``
    (non-inferiority: the whole interval above ``−margin``; contradicted when it lies below)."""
    low, high = interval
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not distinguishable at this scale"
    if not higher_is_better:
        low, high = -high, -low
    threshold = 0.0 if margin is None else -margin
    if low > threshold:
        return "reproduced"
    if high < threshold:
        return "contradicted"
    return "not distinguishable at this scale"


CEILING = 0.985  # accuracy or TAR of a baseline above which a gain has little room to show


def quick_version(claim):
    """The claim with its first condition and first compared arm only (``--quick``); a claim with a
    fine-tuning stage gets 2 epochs (one per stage)."""
    staged = any(arm.fine_tuning for arm in claim.arms)
    return dataclasses.replace(claim, conditions=claim.conditions[:1], arms=claim.arms[:2],
                               epochs=2 if staged else claim.epochs)


def plan(claims, seeds, epochs, output, dataset=None):
    """``{claim key: {(condition, arm label): [(config, seed), ...]}}`` and the distinct configs."""
    runs, configs = {}, {}
    for claim in claims:
        name = GPU_DATASETS[dataset].get(claim.dataset, claim.dataset) if dataset else claim.dataset
        budget = claim.epochs or epochs
        runs[claim.key] = {}
        for condition, options in claim.conditions:
            for arm in claim.arms:
                if arm.fine_tuning and budget < 2:
                    raise UsageError(f"--epochs {budget}: claim {claim.key} needs at least 2 epochs (its arms have a "
                                     "fine-tuning stage after at least one ordinary epoch)")
                entries = []
                for seed in seeds:
                    folder = run_folder(output, name, options, arm, budget, seed)
                    configs.setdefault(folder, TrainConfig(
                        method=arm.method, dataset=name, epochs=budget, seed=seed, output=folder, verbose=0,
                        hyperparameters=arm.settings(), dataset_options=dict(options), **arm.training(budget)))
                    entries.append(folder)
                runs[claim.key][(condition, arm.label)] = entries
    return runs, configs


FEATURE_METRICS = ("intra_class_cosine", "max_inter_class_cosine", "variance_correlation")
FEATURES_OF = "head input"  # which features features.json measured (older caches measured the backbone's output)


def feature_metrics(folder):
    """Metrics of a finished run's test features (cached in ``<folder>/features.json``).

    The features are those the head compares with its class vectors
    (:func:`models.training.build.head_input_model`: after PEDCC's batch normalisation, the
    backbone's output for the other heads). ``intra_class_cosine``: mean cosine of a test feature
    to its class's mean direction; ``max_inter_class_cosine``: largest cosine between two classes'
    mean directions; for an ICU head, ``variance_correlation``: Pearson correlation, over classes ×
    dimensions, of the learned ``log σ²`` with the log variance of the class's test features.
    """
    path = os.path.join(folder, "features.json")
    if os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("features_of") == FEATURES_OF:
            return cached
    from models.data import load_dataset
    from models.training.build import head_input_model
    from models.training.fit import load_run

    config, model = load_run(folder)
    bundle = load_dataset(config.dataset, config.batch_size, seed=config.seed, **config.dataset_options)
    x_test, y_test = bundle.test_arrays()
    features = head_input_model(model, methods.get(config.method)).predict(x_test, verbose=0, batch_size=256)
    log_variances = np.asarray(model.get_layer("icu_head").log_variances) if config.method == "icu" else None
    result = {**embedding_statistics(features, y_test, log_variances), "features_of": FEATURES_OF}
    write_atomically(path, json.dumps(result, indent=2))
    return result


def embedding_statistics(embeddings, labels, log_variances=None):
    """The feature metrics of :func:`feature_metrics` from ``(N, D)`` embeddings and labels, and
    an ICU head's ``(C, D)`` ``log σ²`` if given."""
    embeddings, labels = np.asarray(embeddings, np.float64), np.asarray(labels).reshape(-1)
    units = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    classes = np.unique(labels)
    directions = np.stack([units[labels == k].mean(axis=0) for k in classes])
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    gram = directions @ directions.T
    np.fill_diagonal(gram, -np.inf)
    own = directions[np.searchsorted(classes, labels)]
    result = {"intra_class_cosine": float(np.mean(np.sum(units * own, axis=1))),
              "max_inter_class_cosine": float(gram.max())}
    if log_variances is not None:
        spread = np.log(np.stack([embeddings[labels == k].var(axis=0) for k in classes]) + 1e-12)
        learned = np.asarray(log_variances, np.float64)[classes]
        result["variance_correlation"] = float(np.corrcoef(learned.ravel(), spread.ravel())[0, 1])
    return result


def _metric(metrics_of, folder, name):
    if name in FEATURE_METRICS:
        return feature_metrics(folder)[name]
    return metrics_of[folder][name]


def analyse(claim, folders_of, metrics_of):
    """Rows ``{condition, arm, values, baseline, difference, interval, verdict, ceiling}`` of a
    claim (the baseline row first, or none when the claim compares with a constant)."""
    rows = []
    for condition, _ in claim.conditions:
        if claim.reference is None:
            baseline, arms = claim.arms[0], claim.arms[1:]
            base = [_metric(metrics_of, f, claim.metric) for f in folders_of[(condition, baseline.label)]]
            rows.append(dict(condition=condition, arm=baseline.label, values=base, baseline=True))
        else:
            arms = claim.arms
        for arm in arms:
            values = [_metric(metrics_of, f, claim.metric) for f in folders_of[(condition, arm.label)]]
            if claim.reference is not None:
                base = [claim.reference] * len(values)
            difference, interval = paired_difference(values, base)
            rows.append(dict(condition=condition, arm=arm.label, values=values, baseline=False,
                             difference=difference, interval=interval,
                             verdict=verdict(interval, claim.higher_is_better, claim.margin),
                             ceiling=bool(claim.higher_is_better and claim.margin is None and np.mean(base) > CEILING)))
    return rows


def _mean_std(values):
    values = np.asarray(values, np.float64)
    spread = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.4f} ± {spread:.4f}"


def claim_figure(claim, rows, path):
    """Each arm's value per seed (dots) and mean with its 95 % t interval (bar), per
    condition."""
    plt = pyplot()
    conditions = [c for c, _ in claim.conditions]
    labels = [a.label for a in claim.arms]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(labels) * len(conditions), 3.6))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        xs, means, lows, highs = [], [], [], []
        for i, condition in enumerate(conditions):
            values = np.asarray(next(r["values"] for r in rows if r["condition"] == condition and r["arm"] == label))
            x = i + (j - (len(labels) - 1) / 2) * width
            ax.scatter(np.full(len(values), x), values, s=12, alpha=0.5, color=f"C{j}")
            _, (low, high) = paired_difference(values, np.zeros_like(values))  # interval of the mean
            xs.append(x), means.append(values.mean()), lows.append(low), highs.append(high)
        means, lows, highs = map(np.asarray, (means, lows, highs))
        errors = np.nan_to_num(np.stack([means - lows, highs - means]))
        ax.errorbar(xs, means, yerr=errors, fmt="o", color=f"C{j}", capsize=3, label=label)
    if claim.reference is not None:
        ax.axhline(claim.reference, color="grey", linestyle="--", linewidth=1, label=f"reference {claim.reference:g}")
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_ylabel(f"{claim.metric} ({'higher' if claim.higher_is_better else 'lower'} is better)")
    ax.set_title(f"{claim.paper}: {claim.key}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.text(0.0, -0.22, "dots: seeds; markers: mean; bars: 95 % t interval of the mean",
            transform=ax.transAxes, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(claims, rows_of, seeds, epochs, figure_folder, figure_link):
    """The markdown report (and one figure per claim in ``figure_folder``)."""
    lines = [
        "# Do the papers' claims hold? A small-scale reproduction",
        "",
        f"Generated by `python -m models.reproduce`: seeds {', '.join(map(str, seeds))}, {epochs} epochs unless a "
        "claim says otherwise, the training tool's default backbone and settings for every method. Differences are "
        "arm − baseline over paired seeds with a 95 % Student-t interval (paired t-test); verdicts: *reproduced* (interval on the "
        "claimed side of 0), *contradicted* (on the other side), *not distinguishable at this scale*.",
    ]
    lines += ["", "The data are small and easy (digits: 1,797 8×8 images, baselines near 0.995; generated long-tailed "
              "and verification sets): a claim that is not distinguishable here may still hold at the papers' scale, "
              "and where a baseline is near perfect the row says so.", "",
              "| paper | claim | verdicts (one per comparison) |", "|---|---|---|"]
    for claim in claims:
        verdicts = [row["verdict"] for row in rows_of[claim.key] if not row["baseline"]]
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
        lines.append(f"| {claim.paper} | [{claim.key}](#{claim.key}) | {counts} |")
    for paper in dict.fromkeys(claim.paper for claim in claims):
        lines += ["", f"## {paper}"]
        for claim in (c for c in claims if c.paper == paper):
            rows = rows_of[claim.key]
            figure = f"{claim.key}.png"
            claim_figure(claim, rows, os.path.join(figure_folder, figure))
            budget = claim.epochs or epochs
            if claim.reference is not None:
                kind = f"{'above' if claim.higher_is_better else 'below'} {claim.reference:g}"
            elif claim.margin is None:
                kind = "better than the baseline"
            else:
                kind = f"no worse than the baseline by more than {claim.margin:g}"
            lines += ["", f'<a id="{claim.key}"></a>', "", f"### {claim.statement}", "",
                      f"`{claim.key}`: {claim.dataset}, {budget} epoch{'s' if budget != 1 else ''}, metric `{claim.metric}` "
                      f"({'higher' if claim.higher_is_better else 'lower'} is better); claimed: {kind}.", "",
                      f"| condition | arm | {claim.metric} (mean ± std) | difference to "
                      f"{claim.arms[0].label if claim.reference is None else claim.reference} "
                      "[95 % interval] | verdict |", "|---|---|---:|---:|---|"]
            for row in rows:
                if row["baseline"]:
                    lines.append(f"| {row['condition']} | {row['arm']} (baseline) | {_mean_std(row['values'])} | — | — |")
                else:
                    low, high = row["interval"]
                    ceiling = row["ceiling"] and row["verdict"] != "contradicted"
                    note = f" (baseline above {CEILING}: little room for a gain)" if ceiling else ""
                    lines.append(f"| {row['condition']} | {row['arm']} | {_mean_std(row['values'])} | "
                                 f"{row['difference']:+.4f} [{low:+.4f}, {high:+.4f}] | {row['verdict']}{note} |")
            if claim.note:
                lines += ["", f"*Note.* {claim.note}"]
            lines += ["", f"![{claim.key}]({figure_link}/{figure})"]
    lines += ["", "## Not tested here", ""]
    lines += [f"- {paper}: {claim} — {why}." for paper, claim, why in NOT_TESTED]
    return "\n".join(lines) + "\n"


def _quiet_tensorflow():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def train_all(configs, jobs=1, verbose=True):
    """``{folder: metrics}`` of every run (:func:`models.training.train`: finished runs are read
    back), trained one after the other or in ``jobs`` processes. Runs are independent (each its
    own folder, seeds and data order), so their results do not depend on ``jobs``; with several
    processes the TensorFlow tracing of one run overlaps another's, most of a short CPU run."""
    metrics_of, start = {}, time.perf_counter()

    def done(index, folder):
        if verbose:
            print(f"[{index}/{len(configs)}] {os.path.basename(folder)} "
                  f"({(time.perf_counter() - start) / 60:.1f} min)", flush=True)

    if jobs == 1:
        for index, (folder, config) in enumerate(configs.items(), 1):
            metrics_of[folder] = train(config)
            done(index, folder)
        return metrics_of
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_tensorflow) as pool:
        futures = {pool.submit(train, config): folder for folder, config in configs.items()}
        try:
            for index, future in enumerate(as_completed(futures), 1):
                metrics_of[futures[future]] = future.result()
                done(index, futures[future])
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return metrics_of


def default_jobs():
    """Two processes on a CPU-only machine with at least 2 cores, else one (processes would share
    a GPU's memory)."""
    import tensorflow as tf

    return 1 if tf.config.list_physical_devices("GPU") or (os.cpu_count() or 1) < 2 else 2


def reproduce(claims, seeds, epochs, output, report_path, dataset=None, verbose=True, jobs=1):
    """Trains every run the claims need (reusing finished ones; in ``jobs`` processes) and writes
    the report.

    Returns:
        ``{claim key: rows}`` (see :func:`analyse`).
    """
    runs, configs = plan(claims, seeds, epochs, output, dataset)
    for config in configs.values():  # every setting checked before anything trains
        config.resolved()
    metrics_of = train_all(configs, jobs, verbose)
    rows_of = {claim.key: analyse(claim, runs[claim.key], metrics_of) for claim in claims}
    figure_folder = os.path.splitext(report_path)[0]
    os.makedirs(figure_folder, exist_ok=True)
    text = report(claims, rows_of, seeds, epochs, figure_folder, os.path.basename(figure_folder))
    write_atomically(report_path, text)
    write_atomically(os.path.join(output, "reproduction.json"), json.dumps(rows_of, indent=1, default=float))
    if verbose:
        print(f"wrote {report_path}", flush=True)
    return rows_of


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=name_list(claim_names(), "claim"), default=None,
                        help=f"comma-separated (default: all: {','.join(claim_names())})")
    parser.add_argument("--seeds", type=seed_list, default=None, help="comma-separated (default: 0,1,2,3,4)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: 8 (1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, seeds 0,1, the first condition and compared arm "
                        "of each claim, runs/reproduce-quick: checks the pipeline, not the claims")
    parser.add_argument("--dataset", choices=sorted(GPU_DATASETS), default=None,
                        help="CIFAR counterparts of the embedded sets (TFDS, a GPU)")
    parser.add_argument("--output", default=None, help="run folder (default: runs/reproduce or runs/reproduce-quick)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="runs trained at once, in separate processes (default: 2 on a CPU-only machine with "
                             "2 or more cores, else 1)")
    parser.add_argument("--report", default=None,
                        help="markdown report (default: docs/reproduction.md; with --quick or --dataset: in --output)")
    args = parser.parse_args(argv)
    args.claims = args.claims or claim_names()
    args.seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    args.epochs = args.epochs or (1 if args.quick else 8)
    args.output = args.output or os.path.join("runs", "reproduce-quick" if args.quick else "reproduce")
    if args.report is None:
        default_report = args.quick or args.dataset
        args.report = os.path.join(args.output, "reproduction.md") if default_report else os.path.join(
            "docs", "reproduction.md")
    return args


def main(argv=None):
    args = parse_args(argv)
    _quiet_tensorflow()
    claims = [claim for claim in CLAIMS if claim.key in args.claims]
    if args.quick:
        claims = [quick_version(claim) for claim in claims]
    try:
        return reproduce(claims, args.seeds, args.epochs, args.output, args.report, args.dataset,
                         jobs=args.jobs or default_jobs())
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
