"""The runtime and data choices of the Colab notebooks in ``colab/``, in one place.

    runtime = notebook.setup(mixed_precision=True, seed=0)   # prints what it chose
    with runtime.strategy.scope():
        model = ...; model.compile(...)
    source = notebook.data_source("auto")                    # "tfds" in Colab, "embedded" elsewhere

One code path for every runtime:

- several GPUs: ``tf.distribute.MirroredStrategy`` over all of them; one GPU or only a CPU: the
  default strategy (``strategy.scope()`` is then a no-op). ``batch_size`` is the global batch.
- ``mixed_precision=True`` sets Keras' ``"mixed_float16"`` policy on a GPU; on a CPU it is left
  off (float16 there is emulated, slower and no more memory-friendly) and a line says so. The
  library's heads and losses compute in float32 under either policy.
- TPU runtime: not supported. Colab's TPU runtime is a TPU VM, where TensorFlow needs a special
  TPU build to reach the chips (the PyPI ``tensorflow`` wheel these notebooks install sees none),
  and Keras 3 ``model.fit`` under ``TPUStrategy`` on a TPU VM is not tested by this project. On a
  TPU runtime :func:`setup` warns and the notebook runs on the TPU host's CPU.
"""

import dataclasses
import os
import sys

DATA_SOURCES = ("auto", "tfds", "embedded")


@dataclasses.dataclass
class Runtime:
    """What :func:`setup` chose.

    Attributes:
        strategy: the ``tf.distribute`` strategy to build and compile models under.
        replicas: number of replicas the strategy trains on.
        device: ``"GPU"`` or ``"CPU"``.
        policy: the global Keras dtype policy, ``"mixed_float16"`` or ``"float32"``.
        in_colab: whether the notebook runs in Google Colab.
    """

    strategy: object
    replicas: int
    device: str
    policy: str
    in_colab: bool


def in_colab():
    """Whether this Python runs inside Google Colab."""
    return "google.colab" in sys.modules


def on_tpu_runtime():
    """Whether the machine has TPU chips (a Colab TPU runtime or a Cloud TPU VM)."""
    return any(name in os.environ for name in ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE")) or (
        os.path.exists("/dev/accel0")
    )


def setup(mixed_precision=False, seed=0):
    """Chooses the strategy and precision for this runtime, seeds Keras, prints the choice.

    Args:
        mixed_precision: use ``"mixed_float16"`` when a GPU is present (ignored on a CPU).
        seed: passed to ``keras.utils.set_random_seed`` (Python, NumPy and TensorFlow).

    Returns:
        A :class:`Runtime`.
    """
    if not isinstance(mixed_precision, bool):
        raise ValueError(f"`mixed_precision` must be True or False, got {mixed_precision!r}")
    import keras
    import tensorflow as tf

    if on_tpu_runtime():
        print("warning: TPU runtimes are not supported by these notebooks (TensorFlow on a TPU VM needs a "
              "TPU build of TensorFlow, and Keras 3 fit under TPUStrategy is untested here); running on the "
              "TPU host's CPU. Choose a GPU runtime: Runtime -> Change runtime type -> T4 GPU.")
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    policy = "mixed_float16" if mixed_precision and gpus else "float32"
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(seed)
    # A notebook builds many models in one process: TF's retracing warnings are expected there.
    tf.get_logger().setLevel("ERROR")
    device = "GPU" if gpus else "CPU"
    runtime = Runtime(strategy, strategy.num_replicas_in_sync, device, policy, in_colab())
    where = f"{len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}" if gpus else "CPU only"
    print(f"{where}; strategy {type(strategy).__name__} with {runtime.replicas} replica(s); "
          f"dtype policy {policy}; TensorFlow {tf.__version__}, Keras {keras.__version__}")
    if mixed_precision and not gpus:
        print("mixed precision requested but no GPU found: training in float32")
    return runtime


def data_source(source="auto"):
    """``"tfds"`` (the papers' data sets, downloaded by tensorflow-datasets) or ``"embedded"``
    (data shipped with scikit-learn or generated, no download); ``"auto"`` picks ``"tfds"`` in
    Colab and ``"embedded"`` elsewhere."""
    if source not in DATA_SOURCES:
        raise ValueError(f"`DATA_SOURCE` must be one of {', '.join(map(repr, DATA_SOURCES))}, got {source!r}")
    if source == "auto":
        return "tfds" if in_colab() else "embedded"
    return source


def compare_to_baseline(values, baseline, metric, lower_is_better):
    """Sentences comparing each method's ``metric`` with the baseline's, mean over seeds.

    A difference counts only when it exceeds twice the larger of the two seed standard deviations
    (sample std); with a single seed no such judgement is possible and the sentence says so.

    Args:
        values: ``{method: [value per seed]}``, including ``baseline``.
        baseline: the baseline method's name.
        metric: the metric's name, for the sentences.
        lower_is_better: whether smaller values of the metric are better.

    Returns:
        A list of sentences, one per method other than the baseline.
    """
    import numpy as np

    base = np.asarray(values[baseline], np.float64)
    sentences = []
    for method, runs in values.items():
        if method == baseline:
            continue
        runs = np.asarray(runs, np.float64)
        diff = runs.mean() - base.mean()
        better = diff < 0 if lower_is_better else diff > 0
        head = f"{method}: {metric} {runs.mean():.4f} vs {baseline} {base.mean():.4f} (difference {diff:+.4f})"
        if min(len(runs), len(base)) < 2:
            sentences.append(f"{head}; one seed only, so this cannot be told apart from seed-to-seed noise.")
            continue
        noise = 2 * max(runs.std(ddof=1), base.std(ddof=1))
        if abs(diff) <= noise:
            verdict = f"not distinguishable at this size (within 2 seed std = {noise:.4f})"
        else:
            verdict = f"{'better' if better else 'worse'} than {baseline} beyond 2 seed std ({noise:.4f})"
        sentences.append(f"{head}: {verdict}, {len(runs)} seeds.")
    return sentences


def results_table(results, keys=("accuracy", "ece", "nll"), labels=None):
    """A markdown table of ``{method: [{metric: value} per seed]}``: mean ± sample std over seeds
    (the mean alone for one seed), one row per method."""
    import numpy as np

    labels = labels or {"accuracy": "accuracy ↑", "ece": "ECE ↓", "nll": "NLL ↓"}
    seeds = max(len(runs) for runs in results.values())
    lines = ["| method | " + " | ".join(labels.get(k, k) for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for method, runs in results.items():
        cells = []
        for key in keys:
            values = np.array([run[key] for run in runs], np.float64)
            cells.append(f"{values.mean():.4f}" + (f" ± {values.std(ddof=1):.4f}" if len(values) > 1 else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    spread = "mean ± sample std over" if seeds > 1 else "one run,"
    return "\n".join(lines) + f"\n\n{spread} {seeds} seed(s); ↑ higher is better, ↓ lower is better."


def load_data(source, datasets, batch_size, seed=0, backbone="auto"):
    """Loads the data set that ``source`` picks and names the backbone for it; prints a summary.

    Args:
        source: ``DATA_SOURCE``, as for :func:`data_source`.
        datasets: ``{"tfds": name, "embedded": name}``, names of ``models.data.DATASETS``.
        batch_size: global training batch size.
        seed: shuffling and augmentation seed of the training pipeline.
        backbone: ``"auto"`` (the one that suits the data set) or a name of ``models.backbones.BACKBONES``.

    Returns:
        ``(bundle, backbone_name)``: the :class:`models.data.DatasetBundle` and the backbone's name.
    """
    from models import backbones, data

    if backbone != "auto" and backbone not in backbones.BACKBONES:
        raise ValueError(f"`BACKBONE` must be 'auto' or one of {', '.join(backbones.BACKBONES)}, got {backbone!r}")
    name = datasets[data_source(source)]
    backbone_name = backbones.default_backbone(name) if backbone == "auto" else backbone
    bundle = data.load_dataset(name, batch_size=batch_size, seed=seed)
    counts = bundle.info["train_class_counts"]
    what = "identities" if bundle.kind == "verification" else "classes"
    print(f"{name}: {bundle.train_size} training / {bundle.test_size} test examples of shape {bundle.input_shape}, "
          f"{bundle.num_classes} training {what} ({counts.min()} to {counts.max()} examples each); "
          f"backbone {backbone_name}")
    return bundle, backbone_name
