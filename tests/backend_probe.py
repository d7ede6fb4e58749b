"""Every head trains, saves and reloads on the Keras backend of KERAS_BACKEND, and the ``.keras``
files another backend saved (PROBE_LOAD_FROM) load here and predict what they predicted there.

Run as a script by tests/test_backends.py in a subprocess (the backend is fixed when Keras is
imported), which prints one ``RESULTS {json}`` line: check name → "ok" or the failure; the test's
own TensorFlow process imports :func:`save_heads` and :func:`load_heads`. The values and gradients
of every component on each backend are checked by the backend matrix there.
"""
import json
import os
import sys
import traceback

if __name__ == "__main__":
    sys.path.insert(0, os.environ["REPO_ROOT"])
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_losses  # noqa: E402

B, C, D = 32, 5, 4
HEADS = {  # name → (head, loss, metrics)
    "arcface": (lambda: keras_losses.CosineDense(C), lambda: keras_losses.ArcFaceLoss(scale="auto"), list),
    "pedcc": (lambda: keras_losses.PEDCCDense(C), keras_losses.PEDCCLoss, list),
    "gsc": (lambda: keras.layers.Dense(C), keras_losses.GSCLoss, lambda: [keras_losses.ExpectedCalibrationError()]),
    "scaled_bn": (lambda: keras_losses.ScaledBatchNormalization(synchronized=True),
                  lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True), list),
}
rng = np.random.default_rng(0)
x = rng.normal(size=(B, D)).astype("float32")
y = rng.integers(0, C, B)


def save_heads(folder):
    """Each head trains an epoch, saves to ``folder``, reloads with the same predictions."""
    for name, (make_head, make_loss, make_metrics) in HEADS.items():
        inputs = keras.Input((D,))
        features = keras.layers.Dense(C if name == "scaled_bn" else 8)(inputs)
        model = keras.Model(inputs, make_head()(features))
        model.compile("adam", make_loss(), metrics=make_metrics())
        model.fit(x, y, epochs=1, verbose=0)
        path = os.path.join(folder, f"{name}.keras")
        model.save(path)
        predictions = model.predict(x, verbose=0)
        np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), predictions, atol=1e-6)
        np.save(os.path.join(folder, f"{name}-pred.npy"), predictions)
    model = keras_losses.build_icu_model(keras.Sequential([keras.Input((D,)), keras.layers.Dense(8)]), C,
                                         input_shape=(D,))
    model.compile("adam", keras_losses.ICULoss())
    model.fit({"image": x, "label": y}, y, epochs=1, verbose=0)
    assert model.predict({"image": x, "label": None}, verbose=0).shape == (B, C)


def load_heads(folder):
    """The files :func:`save_heads` wrote to ``folder`` (on any backend) load here and predict the same."""
    for name in HEADS:
        model = keras.saving.load_model(os.path.join(folder, f"{name}.keras"))
        np.testing.assert_allclose(model.predict(x, verbose=0), np.load(os.path.join(folder, f"{name}-pred.npy")),
                                   atol=1e-5, err_msg=name)


def main():
    results = {}
    steps = {"load_from_other_backend": lambda: load_heads(os.environ["PROBE_LOAD_FROM"]),
             "fit_save_load": lambda: save_heads(os.environ["PROBE_OUTPUT"])}
    for name, step in steps.items():
        try:
            step()
            results[name] = "ok"
        except Exception:  # noqa: BLE001 - every failure is reported, not raised
            results[name] = "FAIL " + traceback.format_exc()[-1500:]
    print("backend", keras.backend.backend())
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
