"""models.reproduce: the paired statistics against hand computations, the verdict rule, the run plan
(shared runs, names, CIFAR counterparts), the command line, and the quick mode end to end."""

import json
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
    and every arm's hyper-parameters and training settings accepted by the training tool."""
    from models.training import TrainConfig

    assert len(set(reproduce.claim_names())) == len(reproduce.CLAIMS)
    for claim in reproduce.CLAIMS:
        assert len(claim.arms) >= (1 if claim.reference is not None else 2) and claim.conditions
        assert claim.metric in ("accuracy", "ece", "tar@far=0.01", "tar@far=0.001", *reproduce.FEATURE_METRICS)
        for arm in claim.arms:
            for budget in {claim.epochs or 8, reproduce.quick_version(claim).epochs or 1}:
                TrainConfig(method=arm.method, epochs=budget, output="x", hyperparameters=arm.settings(),
                            **arm.training(budget)).resolved()


def test_fine_tuning_claim_differs_from_its_control_only_in_the_centroids(tmp_path):
    """pedcc-fine-tuning: both arms train PEDCC with the same last-stage schedule; only the baseline
    keeps the centroids frozen, so the difference measures the centroids' fine-tuning alone. Their
    runs have their own folders (not the one-stage PEDCC runs of the other claims)."""
    claim = next(c for c in reproduce.CLAIMS if c.key == "pedcc-fine-tuning")
    runs, configs = reproduce.plan([claim], [0], 8, str(tmp_path))
    (control,), (tuned,) = (runs[claim.key][("default", arm.label)] for arm in claim.arms)
    a, b = configs[control].resolved(), configs[tuned].resolved()
    assert (a.fine_tune_head, b.fine_tune_head) == (False, True)
    assert a.fine_tune_epochs == b.fine_tune_epochs > 0 and a.fine_tune_learning_rate == b.fine_tune_learning_rate
    differing = {k for k in {*a.run_settings(), *b.run_settings()} if a.run_settings().get(k) != b.run_settings().get(k)}
    assert differing == {"fine_tune_head"}
    one_stage = reproduce.plan([next(c for c in reproduce.CLAIMS if c.key == "pedcc-accuracy")], [0], 8, str(tmp_path))[1]
    assert not {control, tuned} & set(one_stage)
    assert [reproduce.fine_tune_epochs(b) for b in (2, 3, 8, 120)] == [1, 1, 3, 45]
    with pytest.raises(reproduce.UsageError, match="at least 2 epochs"):
        reproduce.plan([claim], [0], 1, str(tmp_path))


@pytest.mark.parametrize("method", ["softmax", "pedcc", "icu", "arcface"])
def test_feature_metrics_read_the_features_the_head_acts_on(method):
    """head_input_model gives the features that the head layer turns into the model's output (for
    PEDCC after its batch normalisation, not the backbone's output): applying the head to them
    reproduces the model's predictions."""
    import keras

    from models import methods
    from models.training import TrainConfig
    from models.training.build import build_model, feature_model, head_input_model

    config = TrainConfig(method=method, embedding_dim=8, output="x").resolved()
    model = build_model(config, (8, 8, 1), 10)
    entry = methods.get(method)
    if method == "pedcc":  # statistics far from the initial (0, 1), as after training
        normalisation = model.get_layer("feature_bn")
        normalisation.moving_mean.assign(np.full(8, 0.5, "float32"))
        normalisation.moving_variance.assign(np.full(8, 4.0, "float32"))
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    features = head_input_model(model, entry).predict(images, verbose=0)
    head = model.get_layer(next(iter(entry.class_weights)).split("/")[0])
    outputs = keras.ops.convert_to_numpy(head(features))
    expected = model.predict(entry.predict_inputs(images), verbose=0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    if method == "pedcc":  # the batch-normalised features, not the backbone's
        assert not np.allclose(features, feature_model(model).predict(images, verbose=0), atol=1e-3)


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


def test_arms_drop_default_hyperparameters_so_runs_are_shared():
    """scaled BN with m = 1 and PEDCC with n = 1 are the methods' defaults: their arms train the
    same runs as plain scaled BN and PEDCC."""
    claims = [c for c in reproduce.CLAIMS if c.key in ("scaled-bn-m", "scaled-bn-accuracy", "pedcc-n", "pedcc-accuracy")]
    runs, _ = reproduce.plan(claims, [0], 8, "out")
    assert runs["scaled-bn-m"][("default", "m=1")] == runs["scaled-bn-accuracy"][("default", "scaled BN")]
    assert runs["pedcc-n"][("default", "n=1")] == runs["pedcc-accuracy"][("default", "PEDCC")]
    assert runs["scaled-bn-m"][("default", "m=2")] != runs["scaled-bn-accuracy"][("default", "scaled BN")]


def test_command_line_rejects_unknown_claims_and_sets_quick_defaults():
    with pytest.raises(SystemExit) as info:
        reproduce.parse_args(["--claims", "gsc-ece,bogus"])
    assert info.value.code == 2
    args = reproduce.parse_args(["--quick"])
    assert args.seeds == [0, 1] and args.epochs == 1 and args.report.endswith("reproduce-quick/reproduction.md")
    args = reproduce.parse_args([])
    assert args.seeds == [0, 1, 2, 3, 4] and args.epochs == 8 and args.report == "docs/reproduction.md"


def test_quick_mode_end_to_end_and_resume(tmp_path):
    """--quick on every claim (first condition and compared arm, 2 seeds, 1 epoch; 2 for the
    fine-tuning claim; 32 runs in 2 processes): the report has a verdict per comparison and a
    figure per claim, feature metrics are cached with the features they measured; a second call,
    in one process, trains nothing (every metrics.json untouched) and gives the same rows; an
    outdated feature cache is measured again."""
    argv = ["--quick", "--output", str(tmp_path / "runs")]
    rows = reproduce.main(argv)
    text = (tmp_path / "runs" / "reproduction.md").read_text()
    assert "| noise 0.2 | GSC |" in text and "| imbalance 10 | ICU |" in text
    assert "noise 0.4" not in text  # quick: the first condition only
    assert "difference to 0.0" in text and "## Not tested here" in text
    assert "| default | PEDCC, centroids fine-tuned |" in text
    runs = tmp_path / "runs" / "runs"
    for pattern in ("longtail-imbalance_ratio10-icu-e1-seed*", "digits-pedcc-e1-seed*"):
        cached = [json.loads((folder / "features.json").read_text()) for folder in runs.glob(pattern)]
        assert len(cached) == 2 and all(c["features_of"] == reproduce.FEATURES_OF for c in cached)
    assert len(list(runs.glob("digits-pedcc-finetune1trained-e2-seed*"))) == 2
    for claim in reproduce.CLAIMS:
        assert (tmp_path / "runs" / "reproduction" / f"{claim.key}.png").stat().st_size > 10_000
        assert f'<a id="{claim.key}"></a>' in text
        compared = [r for r in rows[claim.key] if not r["baseline"]]
        assert len(compared) == 1 and compared[0]["verdict"] in (
            "reproduced", "contradicted", "not distinguishable at this scale")
    stamps = {path: path.stat().st_mtime_ns for path in runs.glob("*/metrics.json")}
    again = reproduce.main([*argv, "--jobs", "1"])  # the first call used 2 processes (default_jobs)
    assert again == rows
    assert {path: path.stat().st_mtime_ns for path in runs.glob("*/metrics.json")} == stamps
    # A cache of an earlier version (backbone outputs, no "features_of") is measured again.
    pedcc = next(runs.glob("digits-pedcc-e1-seed0"))
    fresh = json.loads((pedcc / "features.json").read_text())
    (pedcc / "features.json").write_text(json.dumps({"intra_class_cosine": 0.5, "max_inter_class_cosine": 0.5}))
    assert reproduce.feature_metrics(str(pedcc)) == fresh
