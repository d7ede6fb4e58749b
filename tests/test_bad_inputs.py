"""Probe of bad and edge inputs over every public class, function and training-tool flag.

The rule each case proves: a ``ValueError`` (or ``TypeError``) naming the argument and what was
expected, or a correct result — NaN in → NaN out is fine, a finite wrong number never is. Inside
compiled functions, where an assertion cannot run under XLA, a bad label or input makes the loss
NaN. ``test_probe_size`` counts the cases (the issue asked for at least 100).
"""

import math
import os

import keras
import numpy as np
import pytest

import keras_losses
from models import train
from tests import harness, reference
from tests.test_train import FAST

B, C = 4, 5
RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(B, C)).astype(np.float32) * 2.0
COSINES = RNG.uniform(-0.9, 0.9, size=(B, C)).astype(np.float32)
NEG_DISTANCES = -RNG.uniform(0.5, 5.0, size=(B, C)).astype(np.float32)
LABELS = np.array([0, 1, 2, 4], np.int32)

# loss name → (factory, a valid y_pred for it, whether it needs one class per sample)
LOSSES = {
    "gsc": (lambda: keras_losses.GSCLoss(gamma=0.3), LOGITS, False),
    "arcface": (lambda: keras_losses.ArcFaceLoss(scale=16.0), COSINES, True),
    "cosface": (lambda: keras_losses.CosFaceLoss(scale=16.0), COSINES, True),
    "npcface": (lambda: keras_losses.NPCFaceLoss(scale=16.0), COSINES, True),
    "pedcc": (lambda: keras_losses.PEDCCLoss(), COSINES, True),
    "icu": (lambda: keras_losses.ICULoss(), NEG_DISTANCES, True),
}
MARGIN_LOSSES = ("arcface", "cosface", "npcface", "pedcc")


def _soft_rows():
    one_hot = np.eye(C, dtype=np.float32)[LABELS]
    return 0.7 * one_hot + 0.3 * np.eye(C, dtype=np.float32)[(LABELS + 1) % C]  # mixup of two one-hot rows


# name → labels that are wrong for (B, C) scores
BAD_LABELS = {
    "index C": np.array([0, 1, 2, C], np.int32),
    "index -1": np.array([0, -1, 2, 3], np.int32),
    "non-integer index": np.array([0, 1, 2.5, 3], np.float32),
    "NaN index": np.array([0, 1, np.nan, 3], np.float32),
    "rank 3": np.zeros((B, 2, 2), np.int32),
    "batch size differs": np.array([0, 1, 2], np.int32),
    "row sums to 2": np.eye(C, dtype=np.float32)[LABELS] * 2.0,
}


# --- 1. every loss, eager: a bad label raises ValueError naming y_true (7 × 6 = 42 cases) -------------


@pytest.mark.parametrize("labels", list(BAD_LABELS), ids=list(BAD_LABELS))
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_bad_labels_raise_eagerly(loss_name, labels):
    make, y_pred, _ = LOSSES[loss_name]
    harness.assert_value_error("y_true", make(), BAD_LABELS[labels], y_pred)


# --- 2. soft targets: used by the cross-entropy, refused where one class is needed (6 cases) --------


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_soft_targets(loss_name):
    make, y_pred, one_class = LOSSES[loss_name]
    if one_class:
        error = harness.assert_value_error("y_true", make(), _soft_rows(), y_pred)
        assert "one-hot" in str(error)
    else:  # GSC: the exact soft-target loss, not the argmax's
        expected = reference.gsc_loss(_soft_rows().astype(np.float64), LOGITS.astype(np.float64), 0.3, 2).mean()
        hard = reference.gsc_loss(LABELS, LOGITS.astype(np.float64), 0.3, 2).mean()
        value = float(make()(_soft_rows(), y_pred))
        assert value == pytest.approx(expected, rel=1e-5) and abs(value - hard) > 1e-2


# --- 3. compiled code: bad labels make the loss NaN under XLA (3 × 6 + 5 = 23 cases) --------------

COMPILED_BAD = {
    "index C": np.array([0, 1, 2, C], np.float32),
    "index -1": np.array([0, -1, 2, 3], np.float32),
    "non-integer index": np.array([0, 1, 2.5, 3], np.float32),
}


def _compiled(loss):
    """The loss under XLA (tf.function(jit_compile=True) / jax.jit; skipped on PyTorch)."""
    return harness.compiled(lambda y_true, y_pred: loss(y_true, y_pred))


@pytest.mark.parametrize("labels", list(COMPILED_BAD), ids=list(COMPILED_BAD))
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_bad_labels_give_nan_under_xla(loss_name, labels):
    make, y_pred, _ = LOSSES[loss_name]
    value = _compiled(make())(COMPILED_BAD[labels], y_pred)
    assert np.isnan(float(value))


@pytest.mark.parametrize("loss_name", [name for name, (_, _, one) in LOSSES.items() if one])
def test_soft_rows_give_nan_under_xla(loss_name):
    make, y_pred, _ = LOSSES[loss_name]
    assert np.isnan(float(_compiled(make())(_soft_rows(), y_pred)))


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_valid_labels_under_xla_equal_eager(loss_name):
    """The checks change nothing for valid labels (6 cases)."""
    make, y_pred, _ = LOSSES[loss_name]
    loss = make()
    compiled = _compiled(loss)(LABELS.astype(np.float32), y_pred)
    assert float(compiled) == pytest.approx(float(loss(LABELS, y_pred)), rel=1e-5)


@pytest.mark.tensorflow_only  # a graph without XLA exists on TensorFlow only
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_bad_label_in_graph_without_xla_raises_with_message(loss_name):
    """A tf.function without XLA runs the assertion: an error that says what was expected (6 cases)."""
    import tensorflow as tf

    make, y_pred, _ = LOSSES[loss_name]
    graph = tf.function(lambda y_true, scores: make()(y_true, scores), jit_compile=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class indices"):
        graph(tf.constant(COMPILED_BAD["index C"]), tf.constant(y_pred))


def test_fit_with_xla_and_a_bad_label_stops_on_nan():
    """model.fit(jit_compile=True) with label 4 of 4 classes: NaN loss, TerminateOnNaN stops it
    (PyTorch runs eagerly: the check raises instead)."""
    x, y = harness.toy_classification(num_samples=32)
    y = y.copy()
    y[5] = 4  # the model has 4 classes
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(4)])
    model.compile("sgd", loss=keras_losses.GSCLoss(), jit_compile=harness.BACKEND != "torch")
    if harness.BACKEND == "torch":
        harness.assert_value_error("y_true", model.fit, x, y, batch_size=32, epochs=1, verbose=0)
        return
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])


# --- 4. margin losses fed logits instead of cosines (4 eager + 4 XLA = 8 cases) ---------------------


@pytest.mark.parametrize("loss_name", MARGIN_LOSSES)
def test_logits_instead_of_cosines_raise_eagerly(loss_name):
    make, _, _ = LOSSES[loss_name]
    error = harness.assert_value_error("y_pred", make(), LABELS, LOGITS * 5.0)
    assert "cosines" in str(error)


@pytest.mark.parametrize("loss_name", MARGIN_LOSSES)
def test_logits_instead_of_cosines_give_nan_under_xla(loss_name):
    make, _, _ = LOSSES[loss_name]
    value = _compiled(make())(LABELS.astype(np.float32), LOGITS * 5.0)
    assert np.isnan(float(value))


# --- 5. tf.Variable inputs equal tensors (6 losses + ECE + gsc_penalty = 8 cases) -------------------


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_variable_y_pred(loss_name):
    import tensorflow as tf

    make, y_pred, _ = LOSSES[loss_name]
    loss = make()
    assert float(loss(LABELS, tf.Variable(y_pred))) == pytest.approx(float(loss(LABELS, y_pred)), rel=1e-6)


@pytest.mark.tensorflow_only
def test_variable_inputs_to_metric_and_penalty():
    import tensorflow as tf

    metric = keras_losses.ExpectedCalibrationError()
    metric.update_state(tf.Variable(LABELS), tf.Variable(LOGITS))
    expected = reference.expected_calibration_error(LABELS, reference.softmax(LOGITS.astype(np.float64)), 15)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(keras_losses.gsc_penalty(tf.Variable(LOGITS)), keras_losses.gsc_penalty(LOGITS))


# --- 6. NaN in → NaN out, never an error or a number (6 cases) -------------------------------------


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_nan_scores_give_nan(loss_name):
    make, y_pred, _ = LOSSES[loss_name]
    poisoned = y_pred.copy()
    poisoned[1, 2] = np.nan
    assert np.isnan(float(make()(LABELS, poisoned)))


# --- 7. GSC edge values (4 cases) -------------------------------------------------------------------


@pytest.mark.parametrize("focal_gamma", [0.25, 0.5, 0.9])
def test_focal_below_one_has_finite_gradients_when_confident(focal_gamma):
    """0 < η < 1 and p_y rounding to 1: gradients finite (were NaN) and the loss is the reference."""
    logits = np.array([[40.0, 0.0, -3.0], [0.5, 0.2, 0.1]], np.float32)
    loss = keras_losses.GSCLoss(gamma=0.1, focal_gamma=focal_gamma)
    value, (gradient,) = harness.value_and_gradients(lambda z: loss([0, 1], z), [logits])
    assert np.all(np.isfinite(gradient))
    expected = reference.gsc_loss(np.array([0, 1]), logits.astype(np.float64), 0.1, 2,
                                  focal_gamma=focal_gamma).mean()
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_probabilities_with_from_logits_false_must_be_probabilities():
    harness.assert_value_error("y_pred", keras_losses.GSCLoss(from_logits=False), LABELS, LOGITS)


# --- 8. constructor and function arguments (46 cases) ---------------------------------------------

ARGUMENT_CASES = [
    ("units", lambda: keras_losses.CosineDense(0)),
    ("units", lambda: keras_losses.CosineDense("3")),
    ("epsilon", lambda: keras_losses.CosineDense(3, epsilon=0.0)),
    ("num_classes", lambda: keras_losses.PEDCCDense(1)),
    ("seed", lambda: keras_losses.PEDCCDense(3, seed=-1)),
    ("fine_tuning", lambda: keras_losses.PEDCCDense(3, fine_tuning=1)),
    ("num_classes", lambda: keras_losses.GaussianClassHead(1)),
    ("lambda_mu", lambda: keras_losses.GaussianClassHead(3, lambda_mu=-1.0)),
    ("lambda_sigma", lambda: keras_losses.GaussianClassHead(3, lambda_sigma=float("nan"))),
    ("features", lambda: keras_losses.GaussianClassHead(3)(np.zeros((2, 3, 4), np.float32))),
    ("scale", lambda: keras_losses.ScaledBatchNormalization(scale=0.0)),
    ("epsilon", lambda: keras_losses.ScaledBatchNormalization(epsilon=-1.0)),
    ("momentum", lambda: keras_losses.ScaledBatchNormalization(momentum=1.5)),
    ("axis", lambda: keras_losses.ScaledBatchNormalization(axis=1.5)),
    ("axis", lambda: keras_losses.ScaledBatchNormalization(axis=5)(np.zeros((2, 3), np.float32))),
    ("gamma", lambda: keras_losses.GSCLoss(gamma=-1.0)),
    ("gamma", lambda: keras_losses.GSCLoss(gamma=float("inf"))),
    ("top_k", lambda: keras_losses.GSCLoss(top_k=0)),
    ("top_k", lambda: keras_losses.GSCLoss(top_k=9)(LABELS, LOGITS)),
    ("label_smoothing", lambda: keras_losses.GSCLoss(label_smoothing=2.0)),
    ("focal_gamma", lambda: keras_losses.GSCLoss(focal_gamma=-1.0)),
    ("gamma", lambda: keras_losses.gsc_loss(LABELS, LOGITS, gamma=-1.0)),
    ("top_k", lambda: keras_losses.gsc_penalty(LOGITS, top_k=9)),
    ("y_pred", lambda: keras_losses.gsc_penalty(LOGITS[0])),
    ("top_k", lambda: keras_losses.GSCRegularizer(top_k=0)),
    ("scale", lambda: keras_losses.ArcFaceLoss(scale=0.0)),
    ("margin", lambda: keras_losses.ArcFaceLoss(margin=-0.1)),
    ("margin", lambda: keras_losses.ArcFaceLoss(margin=2.0)),
    ("margin", lambda: keras_losses.CosFaceLoss(margin=float("nan"))),
    ("t", lambda: keras_losses.NPCFaceLoss(t=0.5)),
    ("alpha", lambda: keras_losses.NPCFaceLoss(alpha=-1.0)),
    ("m1", lambda: keras_losses.NPCFaceLoss(m0=1.0, m1=0.6)),
    ("mask_margin", lambda: keras_losses.NPCFaceLoss(mask_margin=-1.0)),
    ("n", lambda: keras_losses.PEDCCLoss(n=0.5)),
    ("mse_reduction", lambda: keras_losses.PEDCCLoss(mse_reduction="mean")),
    ("reduction", lambda: keras_losses.PEDCCLoss(reduction=None)),
    ("sample_weight", lambda: keras_losses.PEDCCLoss()(LABELS, COSINES, sample_weight=np.ones(B))),
    ("alpha", lambda: keras_losses.ICULoss(alpha=-1.0)),
    ("gamma", lambda: keras_losses.ICULoss(gamma=-1.0)),
    ("num_bins", lambda: keras_losses.ExpectedCalibrationError(num_bins=0)),
    ("far", lambda: keras_losses.tar_at_far(np.array([0.1, 0.9]), np.array([0, 1]), far="0.01")),
    ("far", lambda: keras_losses.tar_at_far(np.array([0.1, 0.9]), np.array([0, 1]), far=2.0)),
    ("same", lambda: keras_losses.roc_curve(np.array([0.1, 0.9]), np.array([0, 1, 1]))),
    ("scores", lambda: keras_losses.roc_curve(np.array([0.1, np.nan]), np.array([0, 1]))),
    ("dim", lambda: keras_losses.pedcc_centroids(10, 1)),
    ("num_classes", lambda: keras_losses.build_icu_model(keras.layers.Dense(4), 1, input_shape=(3,))),
]


@pytest.mark.parametrize("argument, call", ARGUMENT_CASES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ARGUMENT_CASES)])
def test_bad_argument_names_itself(argument, call):
    harness.assert_value_error(argument, call)


# --- 9. the training tool: exit 2, one line naming the flag, nothing written (13 cases) -------------

CLI_CASES = [
    ("--gsc-top-k", ["--method", "gsc", "--gsc-top-k", "20"]),
    ("--embedding-dim", ["--method", "pedcc", "--embedding-dim", "1"]),
    ("--batch-size", ["--batch-size", "5000"]),
    ("--margin", ["--method", "arcface", "--margin", "2.0"]),
    ("--pedcc-n", ["--method", "pedcc", "--pedcc-n", "0.5"]),
    ("--npcface-m1", ["--method", "npcface", "--npcface-m0", "1.0", "--npcface-m1", "0.6"]),
    ("--scale", ["--method", "cosface", "--scale", "-3"]),
    ("--strategy", ["--strategy", "mirrored"]),
    ("--strategy", ["--strategy", "class-sharded"]),  # JAX only
    ("--epochs", ["--epochs", "0"]),
    ("--learning-rate", ["--learning-rate", "nan"]),
    ("--method", ["--method", "bogus"]),
    ("--gsc-gamma", ["--method", "softmax", "--gsc-gamma", "0.1"]),
]


@pytest.mark.tensorflow_only  # the training tool
@pytest.mark.parametrize("flag, argv", CLI_CASES, ids=[flag for flag, _ in CLI_CASES])
def test_bad_flag_exits_2_naming_it_and_writes_nothing(flag, argv, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        train.main([*FAST, *argv, "--output", str(out)])
    assert info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert flag in error[-1] and "Traceback" not in "\n".join(error), error
    assert not out.exists()


@pytest.mark.tensorflow_only  # the training tool
@pytest.mark.parametrize("where", ["file", "below a file"])
def test_output_that_cannot_be_a_folder(where, tmp_path, capsys):
    """--output naming a file, or a folder under a file: exit 2, one line, the file untouched (2 cases)."""
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    output = blocker if where == "file" else blocker / "run"
    with pytest.raises(SystemExit) as info:
        train.main([*FAST, "--output", str(output)])
    assert info.value.code == 2 and "--output" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder" and sorted(os.listdir(tmp_path)) == ["taken"]


@pytest.mark.tensorflow_only  # the training tool
def test_corrected_command_runs_after_a_refused_one(tmp_path):
    """A refused command leaves nothing, so the corrected one is not "a different run"."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        train.main([*FAST, "--method", "gsc", "--gsc-top-k", "20", "--output", str(out)])
    metrics = train.main([*FAST, "--epochs", "1", "--method", "gsc", "--gsc-top-k", "3", "--output", str(out)])
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_probe_size():
    """The probe above holds at least 100 cases (each parametrised case counts once)."""
    counts = {
        "bad labels, eager": len(LOSSES) * len(BAD_LABELS),
        "soft targets": len(LOSSES),
        "bad labels, XLA": len(LOSSES) * len(COMPILED_BAD) + sum(one for _, _, one in LOSSES.values()),
        "valid labels, XLA": len(LOSSES),
        "graph assertion": len(LOSSES),
        "fit + TerminateOnNaN": 1,
        "logits as cosines": 2 * len(MARGIN_LOSSES),
        "tf.Variable": len(LOSSES) + 1,
        "NaN in": len(LOSSES),
        "GSC edges": 4,
        "arguments": len(ARGUMENT_CASES),
        "CLI": len(CLI_CASES) + 3,
    }
    assert sum(counts.values()) >= 100, counts
