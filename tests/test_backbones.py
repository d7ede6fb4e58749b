"""models/backbones.py: every backbone maps inputs to (B, embedding_dim) features and trains."""

import keras
import numpy as np
import pytest

from models.backbones import BACKBONES, build_backbone
from tests.harness import assert_value_error

SHAPES = {"small-cnn": (8, 8, 1), "resnet18": (32, 32, 3), "vgg": (32, 32, 3), "mlp": (32,), "embedding-net": (64,)}


def _inputs(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, *shape)).astype("float32")


def test_names_and_bad_arguments():
    assert BACKBONES == ("small-cnn", "resnet18", "vgg", "mlp", "embedding-net")
    error = assert_value_error("name", build_backbone, "resnet50", (32, 32, 3))
    assert all(name in str(error) for name in BACKBONES)
    for bad in (0, -3, 2.5):
        assert_value_error("embedding_dim", build_backbone, "mlp", (4,), bad)
    assert_value_error("input_shape", build_backbone, "resnet18", (64,))
    assert_value_error("input_shape", build_backbone, "small-cnn", (2, 2, 1))


@pytest.mark.parametrize(
    "name, shape",
    [("small-cnn", (8, 8, 1)), ("small-cnn", (28, 28, 1)), ("resnet18", (32, 32, 3)), ("vgg", (32, 32, 3)),
     ("vgg", (28, 28, 1)), ("mlp", (32,)), ("mlp", (8, 8, 1)), ("embedding-net", (64,))],
)
def test_backbone_outputs_features(name, shape):
    model = build_backbone(name, shape, embedding_dim=24)
    features = keras.ops.convert_to_numpy(model(_inputs(shape, batch=3), training=False))
    assert features.shape == (3, 24) and features.dtype == np.float32 and np.all(np.isfinite(features))
    assert model.output_shape == (None, 24) and model.layers[-1].name == "embedding"
    assert model.name == name.replace("-", "_") + "_backbone"


def test_resnet18_parameter_count():
    """CIFAR ResNet-18: 11,168,832 trainable weights up to the pooling (the PyTorch CIFAR ResNet-18's
    11,173,962 less its 10-class fc), plus Dense(512) = 11.43 M trainable, 11.44 M with BN statistics."""
    model = build_backbone("resnet18", (32, 32, 3), embedding_dim=512)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable - model.get_layer("embedding").count_params() == 11_168_832
    assert 11.3e6 <= model.count_params() <= 11.5e6
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]) == 1 + 16 + 3
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert model.get_layer("stage4_block2_out").output.shape[1:] == (4, 4, 512)


def test_vgg_is_vgg11_with_batch_norm():
    model = build_backbone("vgg", (32, 32, 3), embedding_dim=64)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 8
    assert 9.0e6 <= model.count_params() <= 9.5e6


@pytest.mark.parametrize("name", ["small-cnn", "mlp", "embedding-net", "resnet18"])
def test_backbone_with_head_trains_one_step(name):
    shape = SHAPES[name]
    keras.utils.set_random_seed(0)
    backbone = build_backbone(name, shape, embedding_dim=16)
    model = keras.Sequential([backbone, keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = _inputs(shape, batch=8)
    y = np.arange(8) % 4
    before = [np.array(w) for w in backbone.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = backbone.trainable_weights
    assert any(not np.allclose(a, np.array(b)) for a, b in zip(before, after))  # the features learn


@pytest.mark.parametrize("name", ["small-cnn", "mlp", "embedding-net", "vgg", "resnet18"])
def test_mixed_float16_features(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        shape = SHAPES[name]
        backbone = build_backbone(name, shape, embedding_dim=8)
        features = backbone(_inputs(shape, batch=2), training=False)
        assert features.dtype == "float16" and backbone.output.dtype == "float16"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(features)))
        # A float32 head on top (as a loss wants) trains one step.
        outputs = keras.layers.Dense(3, dtype="float32")(backbone.output)
        model = keras.Model(backbone.input, outputs)
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        assert np.isfinite(model.train_on_batch(_inputs(shape, batch=4), np.array([0, 1, 2, 0])))
    finally:
        keras.config.set_dtype_policy(previous)
