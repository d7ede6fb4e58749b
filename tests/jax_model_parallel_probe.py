"""Class-sharded heads with keras.distribution.ModelParallel on 2 virtual JAX devices (used by
tests/test_backends.py in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=2).

1. CosineDense (ArcFace, NPCFace) and PEDCCDense with their class axis sharded by a LayoutMap: each
   device holds C/2 class vectors, and two epochs of fit give the single-device losses and weights.
2. The compiled loss + gradient of every margin loss on (B, C) cosines sharded over classes holds no
   all-gather and no collective over a full class axis: the margin core never brings the whole
   (B, C) logits to one device (only per-sample values are all-reduced).
3. The training tool's class-sharded layout (batch and classes split over one device axis): a whole
   train step gathers the (B, D) features and never a full class axis.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.environ["REPO_ROOT"])
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import keras_losses  # noqa: E402

assert len(jax.devices()) == 2, jax.devices()
rng = np.random.default_rng(0)
x = rng.normal(size=(32, 8)).astype("float32")
y = rng.integers(0, 16, size=32).astype("int32")
LOSSES = {"arcface": lambda: keras_losses.ArcFaceLoss(scale=16.0), "npcface": lambda: keras_losses.NPCFaceLoss(scale=16.0),
          "cosface": lambda: keras_losses.CosFaceLoss(scale=16.0), "pedcc": lambda: keras_losses.PEDCCLoss()}


def build(kind):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    features = keras.layers.Dense(6, name="embed")(inputs)
    head = keras_losses.PEDCCDense(16, name="head") if kind == "pedcc" else keras_losses.CosineDense(16, name="head")
    model = keras.Model(inputs, head(features))
    model.compile(keras.optimizers.SGD(0.1), loss=LOSSES[kind]())
    return model


results = {"training": {}, "collectives": {}}
for kind in ("arcface", "npcface", "pedcc"):
    keras.distribution.set_distribution(None)
    single = build(kind)
    single_losses = single.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    mesh = keras.distribution.DeviceMesh((1, 2), ("batch", "model"), devices=jax.devices())
    layout = keras.distribution.LayoutMap(mesh)
    layout["head/kernel"] = layout["head/centroids"] = (None, "model")  # (D, C): the class axis sharded
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
    sharded = build(kind)
    head_weight = next(v for v in sharded.weights if v.path.startswith("head/"))
    shards = [list(s.data.shape) for s in head_weight.value.addressable_shards]
    sharded_losses = sharded.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    keras.distribution.set_distribution(None)
    results["training"][kind] = {
        "shards": shards,
        "loss_gap": max(abs(a - b) for a, b in zip(single_losses, sharded_losses)),
        "weight_gap": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                          for a, b in zip(single.weights, sharded.weights)),
    }

B, C = 64, 4096
mesh = Mesh(np.array(jax.devices()).reshape(1, 2), ("batch", "model"))
cosines = jax.device_put(rng.uniform(-0.9, 0.9, (B, C)).astype("float32"), NamedSharding(mesh, PartitionSpec(None, "model")))
labels = jax.device_put(np.arange(B, dtype=np.float32) % C, NamedSharding(mesh, PartitionSpec()))
for kind, make in LOSSES.items():
    loss = make()
    text = jax.jit(jax.value_and_grad(lambda c, t: loss(t, c))).lower(cosines, labels).compile().as_text()
    collective_shapes = re.findall(
        r"= \w+\[([0-9,]*)\][^\n]*(?:all-gather|all-reduce|all-to-all|collective-permute)(?:-start)?\(", text)
    results["collectives"][kind] = {
        "all_gathers": len(re.findall(r"all-gather(?:-start)?\(", text)),
        "all_reduces": len(re.findall(r"all-reduce(?:-start)?\(", text)),
        "shapes": sorted(set(collective_shapes)),
        "full_class_axis": [s for s in collective_shapes if str(C) in s.split(",")],
    }

# 3. The training tool's class-sharded layout (models.train --strategy class-sharded): one mesh axis
# that splits both the batch and the class axis. A whole train step (backbone + CosineDense +
# ArcFace, value and gradient) moves the (B, D) features between devices, never the class matrix.
D = 64
tool_mesh = keras.distribution.DeviceMesh((2,), ("devices",), devices=keras.distribution.list_devices())
tool_layout = keras.distribution.LayoutMap(tool_mesh)
tool_layout["head/kernel"] = (None, "devices")
with keras.distribution.ModelParallel(layout_map=tool_layout, batch_dim_name="devices").scope():
    inputs = keras.Input((32,))
    model = keras.Model(inputs, keras_losses.CosineDense(C, name="head")(keras.layers.Dense(D, name="embed")(inputs)))
    by_batch = NamedSharding(tool_mesh.backend_mesh, PartitionSpec("devices"))
    images = jax.device_put(rng.normal(size=(B, 32)).astype("float32"), by_batch)
    targets = jax.device_put((np.arange(B) % C).astype("int32"), by_batch)
    non_trainable = [v.value for v in model.non_trainable_variables]

    def step_loss(trainable, x_batch, y_batch):
        outputs, _ = model.stateless_call(trainable, non_trainable, x_batch, training=True)
        return keras_losses.ArcFaceLoss()(y_batch, outputs)

    text = jax.jit(jax.value_and_grad(step_loss)).lower(
        [v.value for v in model.trainable_variables], images, targets).compile().as_text()
    shapes = re.findall(
        r"= \w+\[([0-9,]*)\][^\n]*(?:all-gather|all-reduce|all-to-all|collective-permute)(?:-start)?\(", text)
    results["tool_layout"] = {
        "kernel_shards": [list(piece.data.shape) for piece in model.get_layer("head").kernel.value.addressable_shards],
        "shapes": sorted(set(shapes)),
        "full_class_axis": [s for s in shapes if str(C) in s.split(",")],
        "features_gathered": f"{B},{D}" in shapes,
    }
print("RESULTS " + json.dumps(results))
