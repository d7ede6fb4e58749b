"""The training tool on JAX over 2 virtual CPU devices, or on PyTorch (used by
tests/test_backends.py in a subprocess with KERAS_BACKEND set, and for JAX
XLA_FLAGS=--xla_force_host_platform_device_count=2).

JAX: for each method, one epoch on digits with ``--strategy default`` (one device), ``auto`` (data
parallel over both devices) and ``class-sharded`` (data parallel, the head's class axis split): the
per-epoch losses and test metrics of every strategy, and, for class-sharded, the shape of each
device's piece of every class-axis weight. PyTorch: two epochs of ArcFace on one device. Then
the messages that refuse the strategies the backend does not have.
"""
import json
import os
import sys

sys.path.insert(0, os.environ["REPO_ROOT"])
import keras  # noqa: E402

from models import methods  # noqa: E402
from models.data import load_dataset  # noqa: E402
from models.training import TrainConfig, UsageError, train  # noqa: E402
from models.training import build  # noqa: E402

BACKEND = keras.backend.backend()
if BACKEND == "jax":
    assert len(keras.distribution.list_devices()) == 2
    # ArcFace and PEDCC train class-sharded only: their equality with one device is checked at the
    # library level by jax_model_parallel_probe.py; here, that the tool shards and trains them.
    RUNS = {"softmax": ("default", "auto", "class-sharded"), "icu": ("default", "class-sharded"),
            "arcface": ("class-sharded",), "pedcc": ("class-sharded",)}
    REFUSED = ("mirrored", "multiworker")
    EPOCHS = 1
else:
    RUNS = {"arcface": ("default",)}
    REFUSED = ("mirrored", "multiworker", "class-sharded")
    EPOCHS = 2
results = {}
for method, strategies in RUNS.items():
    results[method] = {}
    for strategy in strategies:
        output = os.path.join(os.environ["PROBE_OUTPUT"], f"{method}-{strategy}")
        metrics = train(TrainConfig(method=method, strategy=strategy, epochs=EPOCHS, verbose=0, output=output))
        with open(os.path.join(output, "history.csv")) as f:
            losses = [float(line.split(",")[-1]) for line in f.read().splitlines()[1:]]
        results[method][strategy] = {"metrics": metrics, "losses": losses}
    if "class-sharded" not in strategies:
        continue
    # each device's piece of the class-axis weights under class-sharded
    config = TrainConfig(method=method, strategy="class-sharded").resolved()
    bundle = load_dataset(config.dataset, config.batch_size)
    distribution, _ = build.make_strategy("class-sharded", methods.get(method))
    with distribution.scope():
        model = build.compile_model(config, bundle.input_shape, bundle.num_classes, replicas=2)
    results[method]["shards"] = {
        v.path: [list(s.data.shape) for s in v.value.addressable_shards]
        for v in model.weights if v.path in methods.get(method).class_weights}
refusals = {}
for strategy in REFUSED:  # a UsageError naming the flag
    try:
        build.make_strategy(strategy, methods.get("softmax"))
    except UsageError as error:
        refusals[strategy] = str(error)
print("RESULTS " + json.dumps({"runs": results, "refusals": refusals}))
