"""Train-step time of the cosine-margin heads against two baselines, in one process.

    python -m benchmarks.margin_heads                      # B=256, D=512, C ∈ {1k, 10k, 100k}
    python -m benchmarks.margin_heads --classes 1000 --rounds 5   # quick look

Heads (each a one-layer model over random 512-d features, SGD, forward + backward + update):
    plain    Dense(C, use_bias=False) + SparseCategoricalCrossentropy(from_logits=True)
    cosine   CosineDense(C) → ×64 + SparseCategoricalCrossentropy (a cosine head, no margin)
    cosface / arcface / npcface   head and loss of the method registry (``models.methods``), s = 64:
             every registered method with a CosineDense head

Each configuration is timed without and with XLA (``jit_compile=True``). Rounds are
interleaved (every head once per round, in a rotating order) so that drifts of the machine
hit all heads alike; the table reports the median step time and the median over rounds of
the per-round ratio. Writes ``<output>/margin_heads.md`` and ``.json``.
"""

import argparse
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

import keras_losses
from models import methods
from models._common import int_list

SCALE = 64.0
BASELINES = ("plain", "cosine")
# Every registered method whose head is CosineDense (cosface, arcface, npcface, and any added later).
MARGIN_METHODS = tuple(name for name in methods.names() if methods.get(name).build_head is methods.cosine_head)
HEADS = BASELINES + MARGIN_METHODS


def build_head(kind, num_classes, dim):
    inputs = keras.Input((dim,))
    if kind == "plain":
        outputs = keras.layers.Dense(num_classes, use_bias=False)(inputs)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif kind == "cosine":
        outputs = keras.layers.Rescaling(SCALE)(keras_losses.CosineDense(num_classes)(inputs))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        method = methods.get(kind)
        params = method.resolve({"scale": SCALE})
        outputs = method.build_head(inputs, num_classes, params, seed=0)
        loss = method.make_loss(params)
    return keras.Model(inputs, outputs), loss


class TimedHead:
    """A compiled head whose train function is called directly, one step per call."""

    def __init__(self, kind, num_classes, dim, batch, jit_compile, seed):
        keras.utils.set_random_seed(seed)
        self.model, loss = build_head(kind, num_classes, dim)
        self.model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=loss, jit_compile=jit_compile)
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(batch, dim)).astype(np.float32)
        y = rng.integers(0, num_classes, size=batch).astype(np.int32)
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
        self.iterator = iter(dataset)
        self.model.make_train_function()
        self.train = self.model.train_function
        self.step()  # trace / compile outside the timing

    def step(self):
        logs = self.train(self.iterator)
        return float(logs["loss"])  # forces completion of the step

    def time(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        elapsed = (time.perf_counter() - start) / steps
        if not np.isfinite(loss):
            raise FloatingPointError("non-finite loss during the benchmark")
        return elapsed


def run_configuration(num_classes, args):
    times = {}
    for jit in (False, True):
        heads = {kind: TimedHead(kind, num_classes, args.dim, args.batch, jit, args.seed) for kind in HEADS}
        samples = {kind: [] for kind in HEADS}
        for round_index in range(args.rounds):
            order = HEADS[round_index % len(HEADS):] + HEADS[: round_index % len(HEADS)]
            for kind in order:
                samples[kind].append(heads[kind].time(args.steps))
        times[jit] = {kind: np.array(v) for kind, v in samples.items()}
        print(
            f"C={num_classes:>6} xla={'on ' if jit else 'off'} "
            + "  ".join(f"{k} {np.median(v) * 1e3:8.1f} ms" for k, v in times[jit].items()),
            flush=True,
        )
        del heads
    return times


def summarise(num_classes, times):
    rows = []
    for kind in HEADS:
        off, on = times[False][kind], times[True][kind]
        rows.append(
            {
                "classes": num_classes,
                "head": kind,
                "ms_no_xla": float(np.median(off) * 1e3),
                "ms_xla": float(np.median(on) * 1e3),
                "xla_vs_no_xla": float(np.median(on / off)),
                "vs_cosine_xla": float(np.median(on / times[True]["cosine"])),
                "vs_plain_xla": float(np.median(on / times[True]["plain"])),
            }
        )
    return rows


def to_markdown(rows, args):
    lines = [
        f"B={args.batch}, D={args.dim}, {args.rounds} interleaved rounds × {args.steps} step(s); "
        f"median step time; ratios are medians of per-round ratios. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}.",
        "",
        "| C | head | ms/step no XLA | ms/step XLA | XLA / no XLA | XLA: ÷ cosine head | XLA: ÷ plain head |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['classes']:,} | {r['head']} | {r['ms_no_xla']:.1f} | {r['ms_xla']:.1f} | "
            f"{r['xla_vs_no_xla']:.2f} | {r['vs_cosine_xla']:.2f} | {r['vs_plain_xla']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int_list(2, "class counts"), default=[1000, 10000, 100000],
                        help="comma-separated C values (default 1000,10000,100000)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1, help="train steps per timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args(argv)
    classes = args.classes
    if args.rounds < 1 or args.steps < 1 or args.batch < 1:
        parser.error("--rounds, --steps, --batch must be >= 1")

    rows = []
    for num_classes in classes:
        rows += summarise(num_classes, run_configuration(num_classes, args))
    table = to_markdown(rows, args)
    print(table)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "margin_heads.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.output, "margin_heads.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
