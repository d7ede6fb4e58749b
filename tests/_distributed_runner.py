"""Subprocess side of ``harness.run_distributed``: python -m tests._distributed_runner EPOCHS CASE [CASE ...].

Configures two logical CPUs before TensorFlow initialises and creates one MirroredStrategy over them
(a second one in the same process dies, tensorflow/tensorflow#62790). Then, for each case, trains it
once on the default device and once under the strategy from the same initial weights, and prints
one JSON line ``{case: {"single": ..., "mirrored": ...} or {"error": traceback}}``.
"""

import importlib
import json
import sys
import traceback

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras  # noqa: E402

from tests.harness import _compile, train_case  # noqa: E402


def run_case(case_path, epochs, strategy):
    module_name, function_name = case_path.split(":")
    case = getattr(importlib.import_module(module_name), function_name)()
    keras.utils.set_random_seed(0)
    initial = _compile(case).get_weights()
    _, single_logs, single_weights = train_case(case, epochs, initial_weights=initial)
    with strategy.scope():
        _, mirrored_logs, mirrored_weights = train_case(case, epochs, initial_weights=initial)

    def run(logs, weights, replicas):
        return {"logs": logs, "weights": [w.tolist() for w in weights], "replicas": replicas}

    return {
        "single": run(single_logs, single_weights, 1),
        "mirrored": run(mirrored_logs, mirrored_weights, strategy.num_replicas_in_sync),
    }


def main(epochs, case_paths):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for case_path in case_paths:
        try:
            results[case_path] = run_case(case_path, epochs, strategy)
        except Exception:  # reported for this case; the others still run
            results[case_path] = {"error": traceback.format_exc()}
    print(json.dumps(results))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
