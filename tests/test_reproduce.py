"""models.reproduce: the paired statistics against hand computations, the verdict rule, the run plan
(shared runs, names, CIFAR counterparts), the command line, and the quick mode end to end."""

import math

import numpy as np
import pytest

from models import reproduce


def test_paired_difference_is_the_paired_t_interval():
    """Five seeds: mean of the differences ± t_{0.975, 4}·s/√5 with t = 2.776445 (t table); the
    baseline's own spread does not matter, only the paired differences'."""
    arm = [0.91, 0.93, 0.90, 0.95, 0.92]
    baseline = [0.90, 0.90, 0.91, 0.92, 0.90]
    differences = np.subtract(arm, baseline)
    half = 2.776445 * differences.std(ddof=1) / math.sqrt(5)
    mean, (low, high) = reproduce.paired_difference(arm, baseline)
    assert mean == pytest.approx(differences.mean(), abs=1e-12)
    assert (low, high) == pytest.approx((differences.mean() - half, differences.mean() + half), abs=1e-6)
    shifted = np.add(baseline, 10.0), np.add(arm, 10.0)
    assert reproduce.paired_difference(shifted[1], shifted[0])[1] == pytest.approx((low, high), abs=1e-9)


def test_paired_difference_edge_cases():
    """One seed: no interval (NaN); two seeds: t_{0.975, 1} = 12.706 makes it wide; mismatched
    lengths: ValueError."""
    mean, interval = reproduce.paired_difference([0.5], [0.4])
    assert mean == pytest.approx(0.1) and all(math.isnan(v) for v in interval)
    _, (low, high) = reproduce.paired_difference([0.5, 0.7], [0.4, 0.4])
    assert (low, high) == pytest.approx((0.2 - 12.7062 * 0.1, 0.2 + 12.7062 * 0.1), abs=1e-3)
    with pytest.raises(ValueError, match="one value per seed"):
        reproduce.paired_difference([0.5, 0.6], [0.4])


@pytest.mark.parametrize(
    "interval,higher_is_better,expected",
    [((0.01, 0.03), True, "reproduced"), ((-0.03, -0.01), True, "contradicted"),
     ((-0.01, 0.02), True, "not distinguishable at this scale"),
     ((-0.03, -0.01), False, "reproduced"), ((0.01, 0.03), False, "contradicted"),
     ((float("nan"), float("nan")), True, "not distinguishable at this scale")],
)
def test_verdict_follows_the_claimed_direction(interval, higher_is_better, expected):
    """The interval of arm − baseline on the claimed side of 0 reproduces, on the other side
    contradicts, across 0 (or undefined) is not distinguishable."""
    assert reproduce.verdict(interval, higher_is_better) == expected


@pytest.mark.parametrize(
    "interval,expected",
    [((-0.004, 0.01), "reproduced"), ((-0.02, -0.008), "contradicted"), ((-0.01, 0.01), "not distinguishable at this scale")],
)
def test_non_inferiority_verdict_uses_the_margin(interval, expected):
    """'At least as accurate' with margin 0.005: reproduced when the whole interval is above −0.005,
    contradicted when it is below."""
    assert reproduce.verdict(interval, True, margin=0.005) == expected
    flipped = (-interval[1], -interval[0])  # the same for a lower-is-better metric
    assert reproduce.verdict(flipped, False, margin=0.005) == expected


def test_plan_shares_runs_and_names_them_by_their_settings(tmp_path):
    """The softmax baseline on digits (8 epochs) is one run per seed for every claim that needs it;
    names carry data-set options and hyper-parameters; --dataset cifar100 swaps in the CIFAR sets
    but keeps noisy digits."""
    claims = [c for c in reproduce.CLAIMS if c.key in ("gsc-ece", "gsc-sensitivity", "gsc-noise", "icu-longtail")]
    runs, configs = reproduce.plan(claims, [0, 1], 8, str(tmp_path))
    softmax = [f for f in configs if f.endswith("digits-softmax-e8-seed0") and "noisy" not in f]
    assert len(softmax) == 1
    assert runs["gsc-ece"][("default", "softmax (CE)")][0] == runs["gsc-sensitivity"][("default", "softmax (CE)")][0]
    names = {f.rsplit("/", 1)[-1] for f in configs}
    assert "noisy-digits-noise_rate0.4-gsc-e8-seed1" in names
    assert "digits-gsc-gsc_gamma0.5-e8-seed0" in names
    assert "longtail-imbalance_ratio100-icu-e8-seed0" in names
    config = configs[next(f for f in configs if f.endswith("noisy-digits-noise_rate0.6-softmax-e8-seed0"))]
    assert config.dataset_options == {"noise_rate": 0.6} and config.seed == 0 and config.epochs == 8
    _, cifar = reproduce.plan(claims, [0], 8, str(tmp_path), dataset="cifar100")
    assert {c.dataset for c in cifar.values()} == {"cifar100", "noisy-digits", "cifar100-lt"}


def test_every_claim_is_well_formed():
    """Unique keys, a baseline and at least one compared arm, metrics the training tool reports,
    and every arm's hyper-parameters accepted by its method."""
    from models import methods

    assert len(set(reproduce.claim_names())) == len(reproduce.CLAIMS)
    for claim in reproduce.CLAIMS:
        assert len(claim.arms) >= (1 if claim.reference is not None else 2) and claim.conditions
        assert claim.metric in ("accuracy", "ece", "tar@far=0.01", "tar@far=0.001", *reproduce.FEATURE_METRICS)
        for arm in claim.arms:
            methods.get(arm.method).resolve(arm.settings())


def test_embedding_statistics_by_hand():
    """Two classes along orthogonal axes, each spread ±0.1 sideways: intra-class cosine
    1/√1.01 (every sample at angle atan 0.1 from its class direction), inter-class cosine 0; the
    variance correlation is Pearson's over classes × dimensions of log σ² and log variance."""
    embeddings = np.array([[1, 0.1, 0], [1, -0.1, 0], [0.1, 1, 0], [-0.1, 1, 0]], np.float64)
    labels = np.array([0, 0, 1, 1])
    stats = reproduce.embedding_statistics(embeddings, labels, log_variances=np.log(
        [[1e-3, 1e-2, 1e-6], [1e-2, 1e-3, 1e-6]]))
    assert stats["intra_class_cosine"] == pytest.approx(1 / math.sqrt(1.01))
    assert stats["max_inter_class_cosine"] == pytest.approx(0.0, abs=1e-12)
    # class variances per dimension: [0, 0.01, 0] and [0.01, 0, 0] (+1e-12 before the log)
    expected = np.corrcoef(np.log([1e-3, 1e-2, 1e-6, 1e-2, 1e-3, 1e-6]),
                           np.log([1e-12, 0.01, 1e-12, 0.01, 1e-12, 1e-12]))[0, 1]
    assert stats["variance_correlation"] == pytest.approx(expected) and expected > 0.5


def test_command_line_rejects_unknown_claims_and_sets_quick_defaults():
    with pytest.raises(SystemExit) as info:
        reproduce.parse_args(["--claims", "gsc-ece,bogus"])
    assert info.value.code == 2
    args = reproduce.parse_args(["--quick"])
    assert args.seeds == [0, 1] and args.epochs == 1 and args.report.endswith("reproduce-quick/reproduction.md")
    args = reproduce.parse_args([])
    assert args.seeds == [0, 1, 2, 3, 4] and args.epochs == 8 and args.report == "docs/reproduction.md"


def test_quick_mode_end_to_end_and_resume(tmp_path):
    """--quick on three claims (4 settings × 2 seeds, 1 epoch; the ICU runs serve two claims): the
    report has a table row with a verdict per comparison and a figure per claim, the ICU runs'
    feature metrics are cached; a second call reuses every run (same rows)."""
    argv = ["--quick", "--claims", "gsc-noise,icu-longtail,icu-variances", "--output", str(tmp_path / "runs")]
    rows = reproduce.main(argv)
    text = (tmp_path / "runs" / "reproduction.md").read_text()
    assert "| noise 0.2 | GSC |" in text and "| imbalance 10 | ICU |" in text
    assert "noise 0.4" not in text  # quick: the first condition only
    assert "difference to 0.0" in text and "## Not tested here" in text
    icu_runs = list((tmp_path / "runs" / "runs").glob("longtail-imbalance_ratio10-icu-e1-seed*"))
    assert len(icu_runs) == 2 and all((folder / "features.json").exists() for folder in icu_runs)
    for key in ("gsc-noise", "icu-longtail", "icu-variances"):
        assert (tmp_path / "runs" / "reproduction" / f"{key}.png").stat().st_size > 10_000
        compared = [r for r in rows[key] if not r["baseline"]]
        assert len(compared) == 1 and compared[0]["verdict"] in (
            "reproduced", "contradicted", "not distinguishable at this scale")
    again = reproduce.main(argv)
    assert again == rows
