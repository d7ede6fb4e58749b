"""Subprocess side of ``harness.run_distributed``: python -m tests._distributed_runner CASE EPOCHS.

Configures two logical CPUs before TensorFlow initialises, then trains the
case once on the default device and once under MirroredStrategy over both
CPUs from the same initial weights, and prints one JSON line with the
per-batch logs and final weights of both runs.
"""

import importlib
import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras  # noqa: E402

from tests.harness import _compile, train_case  # noqa: E402


def main(case_path, epochs):
    module_name, function_name = case_path.split(":")
    case = getattr(importlib.import_module(module_name), function_name)()
    keras.utils.set_random_seed(0)
    initial = _compile(case).get_weights()
    _, single_logs, single_weights = train_case(case, epochs, initial_weights=initial)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        _, mirrored_logs, mirrored_weights = train_case(case, epochs, initial_weights=initial)

    def run(logs, weights, replicas):
        return {"logs": logs, "weights": [w.tolist() for w in weights], "replicas": replicas}

    print(
        json.dumps(
            {
                "single": run(single_logs, single_weights, 1),
                "mirrored": run(mirrored_logs, mirrored_weights, strategy.num_replicas_in_sync),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
