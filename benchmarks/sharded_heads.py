"""Per-device memory and step time of a cosine-margin head: replicated (DataParallel) vs class-sharded
(ModelParallel), on JAX.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \\
        python -m benchmarks.sharded_heads --classes 10000,100000 --devices 2

One ``CosineDense(C) + ArcFaceLoss`` head over random 512-d features, SGD with momentum, batch 256.
*replicated*: every device holds the whole (D, C) kernel and its momentum and all-reduces a C·D
gradient each step. *sharded*: a ``LayoutMap`` shards the class axis, each device holds C/N class
vectors and the margin core exchanges only per-sample values. Reported per device: the bytes of the
head's kernel + momentum that live on it (from the arrays' shards), and the median step time over
``--steps`` steps after a compile step. Virtual CPU devices share one machine's cores, so the step
times show the bookkeeping, not a speed-up; the memory column is what carries over to N GPUs.
Writes ``<output>/sharded_heads.md`` and ``.json``.
"""

import argparse
import json
import os
import platform
import time

import jax
import keras
import numpy as np

import keras_losses
from models._common import int_list

DIM, BATCH = 512, 256


def build(num_classes, sharded):
    mesh = keras.distribution.DeviceMesh((1, len(jax.devices())), ("batch", "model"), devices=jax.devices())
    if sharded:
        layout = keras.distribution.LayoutMap(mesh)
        layout["head/kernel"] = (None, "model")
        distribution = keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch")
    else:
        distribution = keras.distribution.DataParallel(devices=jax.devices())
    keras.distribution.set_distribution(distribution)
    inputs = keras.Input((DIM,))
    model = keras.Model(inputs, keras_losses.CosineDense(num_classes, name="head")(inputs))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=keras_losses.ArcFaceLoss(), jit_compile=True)
    return model


def head_bytes_per_device(model):
    """Bytes of the head kernel and its optimizer slots held by each device (max over devices)."""
    per_device = {}
    arrays = [v.value for v in model.weights if v.path.startswith("head/")]
    arrays += [v.value for v in model.optimizer.variables if "head" in v.path and v.value.ndim == 2]
    for array in arrays:
        for shard in array.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values())


def measure(num_classes, sharded, steps):
    model = build(num_classes, sharded)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, DIM)).astype("float32")
    y = rng.integers(0, num_classes, size=BATCH).astype("int32")
    model.train_on_batch(x, y)  # compiles and builds the optimizer
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    memory = head_bytes_per_device(model)
    keras.distribution.set_distribution(None)
    return {"classes": num_classes, "head": "sharded" if sharded else "replicated",
            "bytes_per_device": memory, "ms_per_step": 1e3 * float(np.median(times))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sharded_heads", description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int_list(2, "classes"), default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--output", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        raise SystemExit("error: run with KERAS_BACKEND=jax (and XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    rows = []
    for num_classes in args.classes:
        for sharded in (False, True):
            row = measure(num_classes, sharded, args.steps)
            rows.append(row)
            print(f"C={num_classes:>9,} {row['head']:>10}: {row['bytes_per_device'] / 2**20:9.1f} MiB/device, "
                  f"{row['ms_per_step']:8.1f} ms/step", flush=True)
    devices = len(jax.devices())
    lines = [f"D = {DIM}, batch {BATCH}, {devices} {jax.devices()[0].platform.upper()} devices "
             f"({platform.machine()}, {os.cpu_count()} cores), jax {jax.__version__}, Keras {keras.__version__}; "
             f"head = kernel + SGD momentum; median of {args.steps} steps after compiling.", "",
             "| C | head | MiB per device | ms/step |", "|---:|---|---:|---:|"]
    lines += [f"| {r['classes']:,} | {r['head']} | {r['bytes_per_device'] / 2**20:.1f} | {r['ms_per_step']:.1f} |"
              for r in rows]
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "sharded_heads.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.output, "sharded_heads.json"), "w") as f:
        json.dump({"devices": devices, "rows": rows}, f, indent=2)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
