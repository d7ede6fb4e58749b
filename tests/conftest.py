"""Which tests run on which Keras backend.

The suite runs on TensorFlow. The modules in ``ALL_BACKEND_MODULES`` test the library itself with
``keras.ops``-level code and also run under ``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch``
(``tests/test_backends.py`` does that in subprocesses); there, tests marked ``tensorflow_only``
(MirroredStrategy, ``tf.function`` graph assertions, ``tf.Variable`` inputs, the training tool) are skipped, and every other
module (the training tools, notebooks, packaging: TensorFlow only; PEDCC's centroid generator:
NumPy, the same on every backend) is skipped as a whole.
"""

import os

import keras
import pytest

# `pytest -n 2` runs two test processes on the 2 CI cores: each gets its share of the cores for
# NumPy's BLAS and TensorFlow's thread pools (and so do the subprocesses the tests start), instead
# of both oversubscribing them (measured: 128 s -> 106 s on the centroid, training-tool and GSC tests).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                  "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_name, _THREADS)
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(_THREADS))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(_THREADS))
        tf.config.threading.set_inter_op_parallelism_threads(int(_THREADS))

# In three groups of similar run time on JAX, so that tests/test_backends.py can run them in parallel.
BACKEND_MODULE_GROUPS = (
    ("test_icu.py", "test_cosine_dense.py", "test_bad_inputs.py"),
    ("test_metrics.py", "test_scaled_bn.py"),
    ("test_gsc.py", "test_margin_losses.py", "test_pedcc.py"),
)
ALL_BACKEND_MODULES = tuple(sorted(name for group in BACKEND_MODULE_GROUPS for name in group))


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    for item in items:
        if item.path.name not in ALL_BACKEND_MODULES:
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow-only module (backend: {backend})"))
        elif item.get_closest_marker("tensorflow_only"):
            item.add_marker(pytest.mark.skip(reason=f"needs TensorFlow (backend: {backend})"))
