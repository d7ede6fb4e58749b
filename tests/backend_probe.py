"""Runs every component on the Keras backend of KERAS_BACKEND against the float64 references (used by
tests/test_backends.py in a subprocess: the backend is fixed when Keras is imported)."""
import os, sys, traceback
sys.path.insert(0, os.environ["REPO_ROOT"])
import numpy as np, keras
from keras import ops
import keras_losses
from tests import reference as R
print("backend", keras.backend.backend())
keras.config.set_floatx("float64")
rng = np.random.default_rng(0)
B, C, D = 6, 5, 4
logits = rng.normal(size=(B, C)) * 2
cos = rng.uniform(-0.9, 0.9, size=(B, C))
labels = np.array([0, 1, 2, 3, 4, 0])
results = {}
def check(name, fn):
    try:
        fn(); results[name] = "ok"
    except Exception as e:
        results[name] = f"FAIL {type(e).__name__}: {str(e)[:160]}"
TOLERANCE = float(os.environ.get("PROBE_TOLERANCE", "1e-10"))


def close(a, b, tol=None):
    tol = max(tol or 0.0, TOLERANCE)
    a = np.asarray(ops.convert_to_numpy(a), np.float64); np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
check("gsc", lambda: close(keras_losses.GSCLoss(gamma=0.3, dtype="float64")(labels, logits), R.gsc_loss(labels, logits, 0.3, 2).mean()))
check("cosface", lambda: close(keras_losses.CosFaceLoss(scale=16.0, dtype="float64")(labels, cos), R.cosface(labels, cos, 16.0, 0.35).mean()))
check("arcface", lambda: close(keras_losses.ArcFaceLoss(scale=16.0, dtype="float64")(labels, cos), R.arcface(labels, cos, 16.0, 0.5).mean()))
check("npcface", lambda: close(keras_losses.NPCFaceLoss(scale=16.0, dtype="float64")(labels, cos), R.npcface(labels, cos, 16.0, 0.4, 0.2, 1.1, 0.25).mean()))
check("icu_loss", lambda: close(keras_losses.ICULoss(dtype="float64")(labels, -np.abs(logits)), R.icu_loss(labels, np.abs(logits), 1e-4, 1e-3).mean()))
def ece():
    m = keras_losses.ExpectedCalibrationError(dtype="float64"); m.update_state(labels, logits)
    close(m.result(), R.expected_calibration_error(labels, R.softmax(logits), 15), 1e-7); m.reset_state(); close(m.result(), 0.0)
check("ece", ece)
def sbn():
    layer = keras_losses.ScaledBatchNormalization(scale=0.9, dtype="float64")
    close(layer(logits, training=True), R.scaled_batch_norm(logits, 0.9, 1e-5), 1e-8)
check("scaled_bn", sbn)
def cosd():
    layer = keras_losses.CosineDense(C, dtype="float64"); x = rng.normal(size=(B, D)); out = layer(x)
    close(out, R.cosines(x, np.asarray(ops.convert_to_numpy(layer.kernel))), 1e-10)
check("cosine_dense", cosd)
def pedcc():
    layer = keras_losses.PEDCCDense(C, dtype="float64"); x = rng.normal(size=(B, D)); out = layer(x)
    loss = keras_losses.PEDCCLoss(dtype="float64")(labels, out)
    cent = np.asarray(ops.convert_to_numpy(layer.centroids)).T
    close(loss, R.pedcc_loss_from_features(labels, x, cent, 10.0, 0.5, 1.0, "half_sum").mean(), 1e-8)
check("pedcc", pedcc)
def icu_head():
    x = rng.normal(size=(B, D)); head = keras_losses.GaussianClassHead(C, dtype="float64"); out = head(x)
    close(-out, R.icu_distances(x, *(np.asarray(ops.convert_to_numpy(v)) for v in (head.means, head.log_variances))), 1e-10)
check("icu_head", icu_head)
def bad_label_eager():
    try:
        keras_losses.ArcFaceLoss()(np.array([0, 9]), cos[:2]); raise AssertionError("no error")
    except ValueError: pass
check("bad_label_eager", bad_label_eager)
def fit_save_load():
    keras.config.set_floatx("float32")
    x = rng.normal(size=(32, D)).astype("float32"); y = rng.integers(0, C, 32)
    for name, head, loss in [("arcface", keras_losses.CosineDense(C), keras_losses.ArcFaceLoss(scale="auto")),
                             ("pedcc", keras_losses.PEDCCDense(C), keras_losses.PEDCCLoss()),
                             ("gsc", keras.layers.Dense(C), keras_losses.GSCLoss())]:
        i = keras.Input((D,)); m = keras.Model(i, head(keras.layers.Dense(8)(i)))
        m.compile("adam", loss, metrics=[keras_losses.ExpectedCalibrationError()] if name == "gsc" else [])
        m.fit(x, y, epochs=1, verbose=0); p = os.path.join(os.environ["PROBE_OUTPUT"], f"{name}.keras"); m.save(p)
        r = keras.saving.load_model(p); np.testing.assert_allclose(r.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-6)
        np.save(os.path.join(os.environ["PROBE_OUTPUT"], f"{name}-x.npy"), x)
        np.save(os.path.join(os.environ["PROBE_OUTPUT"], f"{name}-pred.npy"), m.predict(x, verbose=0))
    model = keras_losses.build_icu_model(keras.Sequential([keras.Input((D,)), keras.layers.Dense(8)]), C, input_shape=(D,))
    model.compile("adam", keras_losses.ICULoss()); model.fit({"image": x, "label": y}, y, epochs=1, verbose=0)
    model.predict({"image": x, "label": None}, verbose=0)
    keras.config.set_floatx("float64")
check("fit_save_load", fit_save_load)


def load_other_backend():
    """.keras files saved on another backend (PROBE_LOAD_FROM) load here and predict the same."""
    folder = os.environ.get("PROBE_LOAD_FROM")
    if not folder:
        return
    for name in ("arcface", "pedcc", "gsc"):
        model = keras.saving.load_model(os.path.join(folder, f"{name}.keras"))
        x = np.load(os.path.join(folder, f"{name}-x.npy"))
        np.testing.assert_allclose(model.predict(x, verbose=0), np.load(os.path.join(folder, f"{name}-pred.npy")),
                                   atol=1e-5)


check("load_from_other_backend", load_other_backend)
def xla_nan():
    if keras.backend.backend() != "jax": return
    import jax
    f = jax.jit(lambda yt, yp: keras_losses.ArcFaceLoss()(yt, yp))
    v = f(np.array([0., 9.]), cos[:2]); assert np.isnan(float(v)), v
check("jit_bad_label_nan", xla_nan)
def grads():
    if keras.backend.backend() != "jax": return
    import jax
    g = jax.grad(lambda z: keras_losses.ArcFaceLoss(scale=16.0, dtype="float64")(labels, z))(cos)
    num = np.zeros_like(cos)
    for idx in np.ndindex(*cos.shape):
        p, m = cos.copy(), cos.copy(); p[idx] += 1e-6; m[idx] -= 1e-6
        num[idx] = (R.arcface(labels, p, 16.0, 0.5).mean() - R.arcface(labels, m, 16.0, 0.5).mean()) / 2e-6
    np.testing.assert_allclose(np.asarray(g), num, rtol=1e-5, atol=1e-7)
check("grad_arcface", grads)
import json
print("RESULTS " + json.dumps(results))
