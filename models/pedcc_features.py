"""Learned 2-D and 3-D features with PEDCC-Loss vs softmax (the PEDCC paper's Fig. 2).

    python -m models.pedcc_features                 # writes runs/pedcc/pedcc_features.png
    python -m models.pedcc_features --epochs 40 --output runs/pedcc

A small MLP on scikit-learn's digits maps each image to a 2-D or 3-D feature
vector. The softmax model puts ``Dense(10)`` on top; the PEDCC model puts
``BatchNormalization(center=False, scale=False)`` then :class:`PEDCCDense`
(frozen evenly-distributed centroids, which normalises its input) and trains
with :class:`PEDCCLoss`, as in the paper's reference network. The figure
shows the test features of each (unit-normalised for PEDCC, with its
centroids as black stars), coloured by class, with test accuracy.
"""

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

import keras_losses
from models._common import pyplot
from models.data import digits_split


def build(method, feature_dim, num_classes=10):
    """Returns (training model, feature model)."""
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(128, activation="relu")(inputs)
    hidden = keras.layers.Dense(64, activation="relu")(hidden)
    features = keras.layers.Dense(feature_dim, name="features")(hidden)
    if method == "pedcc":
        normalised = keras.layers.BatchNormalization(center=False, scale=False)(features)
        outputs = keras_losses.PEDCCDense(num_classes, name="pedcc")(normalised)
        shown = normalised
    else:
        outputs = keras.layers.Dense(num_classes, name="logits")(features)
        shown = features
    return keras.Model(inputs, outputs), keras.Model(inputs, shown)


def train(method, feature_dim, data, epochs, seed):
    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(seed)
    model, feature_model = build(method, feature_dim)
    loss = (
        keras_losses.PEDCCLoss()
        if method == "pedcc"
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=seed)
    model.fit(dataset.batch(64).prefetch(tf.data.AUTOTUNE), epochs=epochs, shuffle=False, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    features = feature_model.predict(x_test, verbose=0)
    centroids = model.get_layer("pedcc").centroids.numpy().T if method == "pedcc" else None
    return features, accuracy, centroids


def plot(results, y_test, path):
    plt = pyplot()

    fig = plt.figure(figsize=(12, 11))
    colours = plt.get_cmap("tab10")(y_test % 10)
    for index, ((method, dim), (features, accuracy, centroids)) in enumerate(results.items()):
        axis = fig.add_subplot(2, 2, index + 1, projection="3d" if dim == 3 else None)
        if method == "pedcc":
            features = features / np.linalg.norm(features, axis=1, keepdims=True)
        points = features.T
        axis.scatter(*points, c=colours, s=6, alpha=0.7)
        if centroids is not None:
            axis.scatter(*centroids.T, c="black", marker="*", s=160)
        if dim == 2:
            axis.set_aspect("equal", adjustable="datalim")
        title = "PEDCC-Loss (unit features, ★ centroids)" if method == "pedcc" else "softmax (raw features)"
        axis.set_title(f"{title}, {dim}-D\ntest accuracy {accuracy:.3f}", fontsize=10)
    handles = [plt.Line2D([], [], marker="o", ls="", color=plt.get_cmap("tab10")(k), label=str(k)) for k in range(10)]
    fig.legend(handles=handles, loc="lower center", ncol=10, frameon=False, title="digit")
    fig.suptitle("Learned features on the digits test split (PEDCC paper, Fig. 2)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.pedcc_features", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("runs", "pedcc"))
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    x_train, y_train, x_test, y_test = digits_split(flatten=True)
    data = x_train, x_test, y_train, y_test
    results = {}
    for method in ("softmax", "pedcc"):
        for dim in (2, 3):
            start = time.perf_counter()
            results[(method, dim)] = train(method, dim, data, args.epochs, args.seed)
            print(f"{method:<8} {dim}-D: test accuracy {results[(method, dim)][1]:.3f} ({time.perf_counter() - start:.1f} s)", flush=True)
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "pedcc_features.png")
    plot(results, data[3], path)
    print(f"wrote {path}")
    return {f"{m}-{d}d": r[1] for (m, d), r in results.items()}


if __name__ == "__main__":
    main()
