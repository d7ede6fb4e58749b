"""Which tests run on which Keras backend.

The suite runs on TensorFlow. The modules in ``ALL_BACKEND_MODULES`` test the library itself with
``keras.ops``-level code and also run under ``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch``
(``tests/test_backends.py`` does that in subprocesses); there, tests marked ``tensorflow_only``
(MirroredStrategy, ``tf.function`` graph assertions, ``tf.Variable`` inputs, the training tool) are skipped, and every other
module (the training tools, notebooks, packaging: TensorFlow only; PEDCC's centroid generator:
NumPy, the same on every backend) is skipped as a whole.
"""

import keras
import pytest

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
