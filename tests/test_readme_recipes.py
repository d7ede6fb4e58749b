"""Every training recipe of the README's Usage section reaches >= 0.95 test accuracy on digits.

Each recipe keeps the README's head, loss and optimizer; the backbone the README leaves to the user
is the same small MLP for all (64 standardised pixels → 64 → 64 → 32, ReLU), 15 epochs, batch 32
(ICU: 16, as its recipe), seed 0.
"""

import keras
import numpy as np
import pytest

import keras_losses
from models.data import digits_split

EPOCHS, BATCH = 15, 32


def _backbone(inputs):
    h = keras.layers.Dense(64, activation="relu")(inputs)
    h = keras.layers.Dense(64, activation="relu")(h)
    return keras.layers.Dense(32)(h)


def gsc(inputs, labels):  # README "GSC loss"
    logits = keras.layers.Dense(10)(keras.layers.Dense(64, activation="relu")(inputs))
    return keras.Model(inputs, logits), "adam", keras_losses.GSCLoss(gamma=0.01, top_k=2)


def scaled_bn(inputs, labels):  # README "Scaled batch-normalisation before softmax"
    logits = keras_losses.ScaledBatchNormalization(scale=1.0)(keras.layers.Dense(10)(_backbone(inputs)))
    return keras.Model(inputs, logits), "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def cosine_head(loss):  # README "Cosine-margin heads": SGD(0.1, momentum 0.9), scale="auto"
    def recipe(inputs, labels):
        cosines = keras_losses.CosineDense(10)(_backbone(inputs))
        return keras.Model(inputs, cosines), keras.optimizers.SGD(0.1, momentum=0.9), loss
    return recipe


def pedcc(inputs, labels):  # README "PEDCC"
    features = keras.layers.BatchNormalization(center=False, scale=False)(_backbone(inputs))
    cosines = keras_losses.PEDCCDense(10, seed=0, name="pedcc")(features)
    return (keras.Model(inputs, cosines), keras.optimizers.SGD(0.1, momentum=0.9),
            keras_losses.PEDCCLoss(scale=10.0, margin=0.5, n=1.0))


def icu(inputs, labels):  # README "ICU": Adam 3e-3, batches of 16
    backbone = keras.Model(inputs, _backbone(inputs))
    return keras_losses.build_icu_model(backbone, 10), keras.optimizers.Adam(3e-3), keras_losses.ICULoss()


RECIPES = {
    "gsc": gsc,
    "scaled-bn": scaled_bn,
    "npcface": cosine_head(keras_losses.NPCFaceLoss(scale="auto")),
    "arcface": cosine_head(keras_losses.ArcFaceLoss(scale="auto")),
    "cosface": cosine_head(keras_losses.CosFaceLoss(scale="auto")),
    "pedcc": pedcc,
    "icu": icu,
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_reaches_95_percent_on_digits(name):
    x_train, y_train, x_test, y_test = digits_split(flatten=True)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-3  # constant border pixels have std 0
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,), name="image")
    model, optimizer, loss = RECIPES[name](inputs, None)
    model.compile(optimizer=optimizer, loss=loss)
    x_fit = {"image": x_train, "label": y_train} if name == "icu" else x_train
    batch = 16 if name == "icu" else BATCH
    model.fit(x_fit, y_train, batch_size=batch, epochs=EPOCHS, verbose=0, shuffle=True)
    x_eval = {"image": x_test, "label": None} if name == "icu" else x_test
    accuracy = np.mean(np.argmax(model.predict(x_eval, verbose=0), axis=-1) == y_test)
    assert accuracy >= 0.95, (name, accuracy)
    if name == "pedcc":  # the fine-tuning stage of the recipe keeps it there
        model.get_layer("pedcc").start_fine_tuning()
        model.compile(keras.optimizers.SGD(1e-3, momentum=0.9), loss=keras_losses.PEDCCLoss())
        model.fit(x_train, y_train, batch_size=BATCH, initial_epoch=EPOCHS, epochs=EPOCHS + 3, verbose=0)
        assert np.mean(np.argmax(model.predict(x_test, verbose=0), axis=-1) == y_test) >= 0.95
