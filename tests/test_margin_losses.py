"""NPCFaceLoss, ArcFaceLoss, CosFaceLoss against float64 NumPy references."""

import math

import keras
import numpy as np
import pytest

import keras_losses
from tests import harness, reference

RNG = np.random.default_rng(3)
NUM_CLASSES = 6


def _crafted_cosines():
    """Rows covering the regimes the margin rules distinguish (label = column 0)."""
    rows = [
        [0.9, -0.2, -0.5, 0.0, -0.1, -0.7],  # confident: no hard negative
        [0.1, 0.5, 0.7, 0.9, 0.6, 0.55],  # every negative is hard
        [-0.3, 0.2, -0.8, 0.1, -0.35, 0.4],  # cos_y <= 0: NPCFace guard keeps c
        [-0.95, -0.9, 0.3, -0.99, 0.2, 0.1],  # θ + m > π: ArcFace fallback
        [0.0, 0.3, -0.2, 0.0, 0.1, -0.1],  # cos_y exactly 0
        [0.6, 0.58, 0.1, 0.3, -0.4, 0.2],  # some hard, some not
    ]
    return np.array(rows), np.zeros(len(rows), dtype=np.int64)


def _random_cosines(batch=8):
    return np.tanh(RNG.normal(0, 0.8, size=(batch, NUM_CLASSES))), RNG.integers(0, NUM_CLASSES, batch)


LOSSES = {
    "cosface": (
        lambda: keras_losses.CosFaceLoss(scale=30.0, margin=0.35, reduction=None),
        lambda y, c: reference.cosface(y, c, 30.0, 0.35),
    ),
    "arcface": (
        lambda: keras_losses.ArcFaceLoss(scale=64.0, margin=0.5, reduction=None),
        lambda y, c: reference.arcface(y, c, 64.0, 0.5),
    ),
    "npcface": (
        lambda: keras_losses.NPCFaceLoss(reduction=None),
        lambda y, c: reference.npcface(y, c, 64.0, 0.4, 0.2, 1.1, 0.25),
    ),
    "npcface-mask0.5": (
        lambda: keras_losses.NPCFaceLoss(scale=32.0, m0=0.3, m1=0.3, t=1.2, alpha=0.2, mask_margin=0.5, reduction=None),
        lambda y, c: reference.npcface(y, c, 32.0, 0.3, 0.3, 1.2, 0.2, mask_margin=0.5),
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("batch", ["crafted", "random"])
def test_values_and_gradients_match_reference(name, batch):
    """Per-sample values and d(sum)/d(cosines) match the float64 reference within 1e-5 (relative)."""
    make_loss, ref = LOSSES[name]
    cos, labels = _crafted_cosines() if batch == "crafted" else _random_cosines()
    loss = make_loss()
    values, (gradient,) = harness.value_and_gradients(lambda z: loss(labels, z), [cos.astype(np.float32)])
    cos32 = cos.astype(np.float32).astype(np.float64)  # compare on the float32-rounded inputs
    np.testing.assert_allclose(values, ref(labels, cos32), rtol=1e-5, atol=1e-5)

    if name.startswith("npcface"):  # mask and m̃ carry no gradient: hold them at the base point
        options = {"mask_margin": 0.5} if "mask" in name else {}
        m0, m1 = (0.3, 0.3) if "mask" in name else (0.4, 0.2)
        frozen = reference.npcface_mask_and_margin(labels, cos32, m0, m1, **options)
        scalar = {"npcface": (64.0, 0.4, 0.2, 1.1, 0.25), "npcface-mask0.5": (32.0, 0.3, 0.3, 1.2, 0.2)}[name]
        fn = lambda c: reference.npcface(labels, c, *scalar, frozen=frozen).sum()  # noqa: E731
    else:
        fn = lambda c: ref(labels, c).sum()  # noqa: E731
    expected = harness.numeric_gradient(fn, cos32)
    # NPCFace's target logit jumps at cos_y = 0 (the c > 0 guard): no derivative there to compare.
    smooth = cos32[np.arange(len(labels)), labels] != 0.0
    np.testing.assert_allclose(gradient[smooth], expected[smooth], rtol=1e-4, atol=1e-4)


def test_npcface_regimes_are_distinguished():
    """The crafted rows exercise what they claim: hard-negative counts and the guards."""
    cos, labels = _crafted_cosines()
    mask, margin = reference.npcface_mask_and_margin(labels, cos, 0.4, 0.2)
    assert mask[0].sum() == 0 and margin[0] == 0.4  # no hard negative → m0
    assert mask[1].sum() == NUM_CLASSES - 1  # all hard
    assert margin[1] > 0.4
    assert np.arccos(cos[3, 0]) + 0.5 > math.pi  # ArcFace fallback row


def test_npcface_reduces_to_guarded_arcface():
    """m1=0, t=1, α=0: NPCFace equals ArcFace wherever cos_y > 0 (and plain CE elsewhere)."""
    cos, labels = _random_cosines(16)
    npc = np.asarray(keras_losses.NPCFaceLoss(scale=20.0, m0=0.5, m1=0.0, t=1.0, alpha=0.0, reduction=None)(labels, cos))
    arc = reference.arcface(labels, cos, 20.0, 0.5)
    positive = cos[np.arange(16), labels] > 0
    np.testing.assert_allclose(npc[positive], arc[positive], rtol=1e-5)
    plain = reference.cosface(labels, cos, 20.0, 0.0)
    np.testing.assert_allclose(npc[~positive], plain[~positive], rtol=1e-5)


def test_label_forms_agree():
    """(B,), (B, 1) and one-hot labels give the same per-sample loss."""
    cos, labels = _random_cosines()
    loss = keras_losses.NPCFaceLoss(reduction=None)
    expected = np.asarray(loss(labels, cos))
    for form in (labels[:, None], np.eye(NUM_CLASSES)[labels]):
        np.testing.assert_allclose(loss(form, cos), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["cosface", "arcface", "npcface"])
def test_finite_at_unit_cosines(name):
    """|cos| = 1 exactly (target and negatives): finite loss and gradients."""
    cos = np.array([[1.0, -1.0, 1.0, 0.0], [-1.0, 1.0, -1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    labels = np.array([0, 0, 2])
    value, (gradient,) = harness.value_and_gradients(lambda z: LOSSES[name][0]()(labels, z), [cos.astype(np.float32)])
    assert np.all(np.isfinite(value))
    assert np.all(np.isfinite(gradient))


def test_float64_gradient_matches_finite_differences():
    """Autodiff of the float64 ArcFace/CosFace losses equals central differences."""
    cos, labels = _random_cosines(4)
    for loss in (keras_losses.ArcFaceLoss(scale=8.0, dtype="float64"), keras_losses.CosFaceLoss(scale=8.0, dtype="float64")):
        harness.assert_gradients_match_finite_differences(lambda c: loss(labels, c), cos, rtol=1e-5, atol=1e-8)


# --- models: CosineDense + each loss ---------------------------------------------------


def _case(make_loss):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 8)).astype(np.float32)
    y = np.argmax(x[:, :NUM_CLASSES], axis=1).astype(np.int32)

    def build():
        inputs = keras.Input((8,))
        embedding = keras.layers.Dense(6)(inputs)
        return keras.Model(inputs, keras_losses.CosineDense(NUM_CLASSES)(embedding))

    return harness.TrainingCase(build_model=build, make_loss=make_loss, x=x, y=y, batch_size=16, learning_rate=0.05)


@harness.distribution_case
def npcface_case():
    return _case(lambda: keras_losses.NPCFaceLoss(scale=16.0))


@harness.distribution_case
def arcface_case():
    return _case(lambda: keras_losses.ArcFaceLoss(scale=16.0))


@harness.distribution_case
def cosface_case():
    return _case(lambda: keras_losses.CosFaceLoss(scale=16.0))


CASES = {"npcface": npcface_case, "arcface": arcface_case, "cosface": cosface_case}


REFERENCES = {  # the cases' losses (scale 16, default margins), float64
    "npcface": lambda y, c: reference.npcface(y, c, 16.0, 0.4, 0.2, 1.1, 0.25),
    "arcface": lambda y, c: reference.arcface(y, c, 16.0, 0.5),
    "cosface": lambda y, c: reference.cosface(y, c, 16.0, 0.35),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_standard_checks(name, tmp_path):
    """CosineDense + the loss: config, .keras round trip, mixed precision, XLA, 2 replicas = 1 device,
    every reduction with and without sample weights against the float64 reference."""
    harness.assert_standard_checks(f"tests.test_margin_losses:{name}_case", tmp_path, reference=REFERENCES[name])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_head_outputs_float32_under_mixed_precision(policy):
    """CosineDense computes and outputs float32 under a mixed policy."""
    model = harness.assert_mixed_precision_trains(CASES["arcface"](), policy)
    assert model.layers[-1].compute_dtype == "float32"
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32"


def test_config_complete():
    """Every constructor argument is in get_config; classes are registered."""
    harness.assert_config_complete(keras_losses.NPCFaceLoss(scale=30.0, m0=0.3, m1=0.1, t=1.2, alpha=0.1, mask_margin=0.5))
    harness.assert_config_complete(keras_losses.ArcFaceLoss(scale=30.0, margin=0.4))
    harness.assert_config_complete(keras_losses.CosFaceLoss(scale=30.0, margin=0.2))


@pytest.mark.slow
def test_hundred_thousand_classes_train_a_step():
    """C = 100,000, D = 512: a CosineDense + NPCFace model trains a step on CPU, finite loss."""
    inputs = keras.Input((512,))
    model = keras.Model(inputs, keras_losses.CosineDense(100_000)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras_losses.NPCFaceLoss())
    x = RNG.normal(size=(16, 512)).astype(np.float32)
    y = RNG.integers(0, 100_000, size=16)
    before = model.layers[-1].kernel.numpy()[:, y].copy()
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert not np.allclose(model.layers[-1].kernel.numpy()[:, y], before)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, argument, kwargs",
    [
        (keras_losses.NPCFaceLoss, "scale", {"scale": 0.0}),
        (keras_losses.NPCFaceLoss, "m0", {"m0": -0.1}),
        (keras_losses.NPCFaceLoss, "m0", {"m0": math.pi / 2}),
        (keras_losses.NPCFaceLoss, "m1", {"m1": 2.0}),
        (keras_losses.NPCFaceLoss, "m1", {"m0": 1.0, "m1": 0.6}),
        (keras_losses.NPCFaceLoss, "t", {"t": 0.9}),
        (keras_losses.NPCFaceLoss, "alpha", {"alpha": -0.1}),
        (keras_losses.NPCFaceLoss, "mask_margin", {"mask_margin": 1.6}),
        (keras_losses.ArcFaceLoss, "scale", {"scale": -1.0}),
        (keras_losses.ArcFaceLoss, "margin", {"margin": 1.6}),
        (keras_losses.ArcFaceLoss, "margin", {"margin": -0.01}),
        (keras_losses.CosFaceLoss, "margin", {"margin": 2.0}),
        (keras_losses.CosFaceLoss, "scale", {"scale": 0}),
    ],
)
def test_bad_constructor_arguments(cls, argument, kwargs):
    """Out-of-range hyper-parameters raise ValueError naming the argument."""
    harness.assert_value_error(argument, cls, **kwargs)


@pytest.mark.parametrize("cls", [keras_losses.NPCFaceLoss, keras_losses.ArcFaceLoss, keras_losses.CosFaceLoss])
def test_bad_labels(cls):
    """Labels out of range, of the wrong rank or batch size raise ValueError naming y_true."""
    cos = np.zeros((3, 4), np.float32)
    harness.assert_value_error("y_true", cls(), [0, 1, 4], cos)
    harness.assert_value_error("y_true", cls(), np.zeros((3, 2, 2)), cos)
    harness.assert_value_error("y_true", cls(), [0, 1], cos)
    harness.assert_value_error("y_pred", cls(), [0, 1, 2], np.zeros((3, 4, 1)))
