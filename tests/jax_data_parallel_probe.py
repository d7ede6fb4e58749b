"""On JAX, keras.distribution.DataParallel over 2 virtual CPU devices trains like one device: PEDCC's
batch MSE, ICU's regulariser and the ECE metric see the global batch (used by tests/test_backends.py
in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=2)."""
import json
import os
import sys

sys.path.insert(0, os.environ["REPO_ROOT"])
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_losses  # noqa: E402

assert len(jax.devices()) == 2, jax.devices()
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 6)).astype("float32")
y = rng.integers(0, 4, size=64).astype("int32")


def build(method):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="image")
    features = keras.layers.Dense(8, activation="tanh")(inputs)
    if method == "pedcc":
        model = keras.Model(inputs, keras_losses.PEDCCDense(4)(features))
        loss, metrics = keras_losses.PEDCCLoss(n=2.0), []
    elif method == "icu":
        model = keras_losses.build_icu_model(keras.Model(inputs, features), 4)
        loss, metrics = keras_losses.ICULoss(), []
    else:
        model = keras.Model(inputs, keras.layers.Dense(4)(features))
        loss, metrics = keras_losses.GSCLoss(gamma=0.5), [keras_losses.ExpectedCalibrationError()]
    model.compile(keras.optimizers.SGD(0.1), loss=loss, metrics=metrics)
    return model


def run(method):
    model = build(method)
    if keras.distribution.distribution() is not None:  # the variables really live on both devices
        assert len(model.weights[0].value.sharding.device_set) == 2, model.weights[0].value.sharding
    inputs = {"image": x, "label": y} if method == "icu" else x
    history = model.fit(inputs, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
    return history, [np.asarray(w) for w in model.weights]


results = {}
for method in ("pedcc", "icu", "gsc"):
    keras.distribution.set_distribution(None)
    single_history, single_weights = run(method)
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    parallel_history, parallel_weights = run(method)
    keras.distribution.set_distribution(None)
    weight_gap = max(float(np.abs(a - b).max()) for a, b in zip(single_weights, parallel_weights))
    log_gap = max(abs(a - b) for key in single_history for a, b in zip(single_history[key], parallel_history[key]))
    results[method] = {"weight_gap": weight_gap, "log_gap": log_gap, "logs": sorted(single_history)}
print("RESULTS " + json.dumps(results))
