"""models/methods.py: the registry drives the training tool, its command line, compare and quickstart;
a new method is one registry entry."""

import inspect
import json

import keras
import numpy as np
import pytest

import keras_losses
from models import compare, methods, train
from models.training import TrainConfig, UsageError
from models.training.cli import build_parser

FAST = dict(epochs=1, batch_size=64, embedding_dim=8, learning_rate=0.01, verbose=0)


def test_defaults_are_the_library_signatures_unless_the_method_states_its_own():
    """Each hyper-parameter's default is its library class's signature default, except the few a
    method states itself (label smoothing ε, focal η), which must differ from the library's."""
    own = {("label-smoothing", "label_smoothing"), ("focal", "focal_gamma")}
    for method in map(methods.get, methods.names()):
        for hp in method.hyperparameters:
            library = inspect.signature(hp.owner.__init__).parameters[hp.argument].default
            if (method.name, hp.name) in own:
                assert hp.default_value != library, (method.name, hp.name)
            else:
                assert hp.default_value == library, (method.name, hp.name, hp.default_value, library)


@pytest.mark.parametrize("method, overrides, named", [
    ("npcface", {"npcface_t": 0.5}, "npcface_t"),          # NPCFaceLoss: t >= 1
    ("arcface", {"scale": 0.0}, "scale"),                  # scale > 0
    ("gsc", {"gsc_top_k": 0}, "gsc_top_k"),                # top_k >= 1
    ("icu", {"icu_lambda_mu": -1.0}, "icu_lambda_mu"),     # a layer's argument (GaussianClassHead)
    ("npcface", {"npcface_m0": 1.0, "npcface_m1": 0.6}, "npcface_m1"),  # m0 + m1 < π/2: the loss names m1
    ("softmax", {"scale": 30.0}, "hyperparameters"),       # not a hyper-parameter of softmax
])
def test_resolve_checks_values_with_the_library(method, overrides, named):
    """A value the library class rejects, a combination it rejects, or a name the method lacks: ValueError."""
    with pytest.raises(ValueError, match=f"`{named}`"):
        methods.get(method).resolve(overrides)


def test_command_line_is_derived_from_the_registry(tmp_path, capsys):
    """Every hyper-parameter is a flag whose help shows each method's default; old flag names still work;
    library-rejected values and flags of another method exit 2 before any file is written."""
    help_text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    for method in map(methods.get, methods.names()):
        assert method.name in help_text
        for hp in method.hyperparameters:
            assert hp.flag in help_text and f"{method.name} {hp.default_value}" in help_text, hp.name
    config = train.parse_config(["--method", "gsc", "--gamma", "0.3", "--top-k", "3"])  # old names
    assert config.resolved().hyperparameters == {"gsc_gamma": 0.3, "gsc_top_k": 3}
    for argv, message in ((["--method", "npcface", "--t", "0.5"], "--npcface-t: `t` must be >= 1.0"),
                          (["--method", "arcface", "--scale", "0"], "--scale: `scale` must be > 0.0"),
                          (["--method", "softmax", "--margin", "0.3"], "--margin does not apply to --method softmax")):
        with pytest.raises(SystemExit) as info:
            train.main([*argv, "--output", str(tmp_path / "run")])
        assert info.value.code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


@pytest.fixture
def toy_method():
    """A method that is not in the library's list: CosineDense + CosFaceLoss with its own margin flag."""
    entry = methods.register(methods.Method(
        "toy-cosface", "CosineDense + CosFaceLoss (a test's toy entry)", methods.cosine_head,
        lambda p: keras_losses.CosFaceLoss(scale=p["scale"], margin=p["toy_margin"]),
        (methods.HyperParameter("scale", keras_losses.CosFaceLoss, "scale", "cosine scale s"),
         methods.HyperParameter("toy_margin", keras_losses.CosFaceLoss, "margin", "the toy's margin", default=0.2)),
        to_logits=methods.scaled_cosines,
    ))
    yield entry
    methods.unregister(entry.name)


@pytest.mark.slow
def test_a_registered_method_trains_through_the_tools_and_runs_do_not_leak_state(toy_method, tmp_path):
    """One registry entry is all a method needs: the command line takes its flags, compare trains it
    (two seeds: its table, JSON and chart; finished runs reused), and the command line names the very
    same run. A run gives the same metrics before and after another
    run (mixed float16, another seed) in the same process, and leaves the caller's dtype policy and NumPy
    random state as they were."""
    help_text = " ".join(build_parser().format_help().split())
    assert "--toy-margin" in help_text and "toy-cosface 0.2" in help_text
    config = train.parse_config(["--method", "toy-cosface", "--toy-margin", "0.1"]).resolved()
    assert config.hyperparameters == {"scale": 64.0, "toy_margin": 0.1}

    policy = keras.config.dtype_policy().name
    np.random.seed(123)
    numpy_state = np.random.get_state()[1][:5].copy()
    argv = ["--methods", "toy-cosface,gsc", "--seeds", "0,1", "--epochs", "2", "--output", str(tmp_path / "c")]
    summary = compare.main(argv)
    assert list(summary) == ["toy-cosface", "gsc"] and all(len(summary[m]["accuracy"]) == 2 for m in summary)
    assert summary["toy-cosface"]["accuracy"][0] > 0.2  # 10 classes: chance is 0.1
    # compare's outputs: mean ± std rows, the JSON summary, the chart; a second call reuses the runs.
    table = (tmp_path / "c" / "results.md").read_text()
    assert "| toy-cosface | " in table and "| gsc | " in table and " ± " in table
    saved = json.loads((tmp_path / "c" / "results.json").read_text())
    assert saved["summary"]["gsc"]["accuracy"] == summary["gsc"]["accuracy"]
    assert (tmp_path / "c" / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert compare.main(argv) == summary
    folder = compare.run_folder(str(tmp_path / "c"), "toy-cosface", 0)
    settings = json.loads(open(f"{folder}/run.json").read())
    assert settings["method"] == "toy-cosface" and settings["toy_margin"] == 0.2 and settings["scale"] == 64.0
    # The same settings on the command line are the same run: it is found finished, not retrained.
    again = train.main(["--method", "toy-cosface", "--epochs", "2", "--learning-rate", "0.003", "--verbose", "0",
                        "--output", folder])
    assert again["accuracy"] == summary["toy-cosface"]["accuracy"][0]
    reloaded = keras.saving.load_model(f"{folder}/model.keras")
    assert isinstance(reloaded.get_layer("head"), keras_losses.CosineDense)

    base = dict(epochs=2, learning_rate=3e-3, verbose=0)
    other = train.train(TrainConfig(method="pedcc", seed=5, mixed_precision="float16", output=str(tmp_path / "b"),
                                    **base))
    assert 0.0 <= other["accuracy"] <= 1.0
    gsc_again = train.train(TrainConfig(method="gsc", output=str(tmp_path / "gsc"), **base))
    assert gsc_again["accuracy"] == summary["gsc"]["accuracy"][0]
    assert gsc_again["ece"] == summary["gsc"]["ece"][0]
    assert keras.config.dtype_policy().name == policy
    np.testing.assert_array_equal(np.random.get_state()[1][:5], numpy_state)


def test_python_api_rejects_bad_settings_before_writing(tmp_path):
    """train(TrainConfig(...)) raises UsageError (a ValueError) naming the setting; nothing is written."""
    for bad, named in ((dict(epochs=0), "epochs"), (dict(dataset="imagenet"), "dataset"),
                       (dict(method="bogus"), "method"), (dict(learning_rate=-1.0), "learning_rate"),
                       (dict(hyperparameters={"margin": 2.0}, method="arcface"), "margin")):
        with pytest.raises(UsageError, match=f"`{named}`"):
            train.train(TrainConfig(output=str(tmp_path / "x"), **{**FAST, **bad}))
    assert not (tmp_path / "x").exists()
