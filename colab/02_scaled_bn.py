# %% [markdown]
# # Scaled batch-normalisation before softmax
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-losses/keras_losses/blob/main/colab/02_scaled_bn.ipynb)
#
# Zhu, He, Zhang and Cui, *Improving Classification Performance of Softmax Loss Function Based on
# Scalable Batch-Normalization* (Applied Sciences, 2020), normalise every logit channel over the batch
# and multiply it by a fixed scale `m` (eq. 9): `z' = m·(z − E z)/sqrt(Var z + ε)`, with no learnable
# shift or gain, batch statistics in training and moving statistics at inference. The paper reports
# better accuracy than a plain softmax, with `m` around 0.8–1.0.
#
# This notebook trains the same network with a plain softmax head and with
# `keras_losses.ScaledBatchNormalization` for several scales `m`, and compares convergence, test
# accuracy and calibration. A small `m` keeps the logits' spread near `m`, so it also tends to limit how
# confident the softmax can be — visible in the ECE and the reliability diagrams.
#
# `DATA_SOURCE = "auto"`: CIFAR-100 from tensorflow-datasets in Colab (the paper targets many
# classes), scikit-learn's digits (no download) elsewhere.

# %% tags=["parameters"]
DATA_SOURCE = "auto"  # "tfds": CIFAR-100 (download); "embedded": scikit-learn digits, offline; "auto": tfds in Colab
BACKBONE = "auto"  # "auto": small-cnn for digits, resnet18 for CIFAR; or any name of models.backbones.BACKBONES
EPOCHS = 15
BATCH_SIZE = 128  # global batch, split across replicas
LEARNING_RATE = 1e-3
SEEDS = [0, 1]
SCALES = [0.8, 1.0, 2.0, 5.0]  # the scales m to compare with the plain softmax
MIXED_PRECISION = True  # mixed_float16 on a GPU; ignored on a CPU
VERBOSE = 2  # model.fit: 1 progress bar, 2 one line per epoch
OUTPUT_DIR = "runs/colab/scaled_bn"

# %% [markdown]
# ## Runtime and data

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import keras_losses
from models import backbones, notebook
from models.evaluation import classification_metrics
from models.plots import history_figure, reliability_figure

runtime = notebook.setup(mixed_precision=MIXED_PRECISION, seed=SEEDS[0])
bundle, BACKBONE_NAME = notebook.load_data(DATA_SOURCE, {"tfds": "cifar100", "embedded": "digits"}, BATCH_SIZE,
                                           seed=SEEDS[0], backbone=BACKBONE)
x_test, y_test = bundle.test_arrays()

# %% [markdown]
# ## Models
# `scale=None` builds the plain softmax baseline; otherwise the logits pass through
# `ScaledBatchNormalization(scale=m)`. `synchronized=True` takes the batch statistics over the
# global batch when `MirroredStrategy` splits it across GPUs (a no-op on one device).

# %%
def build(scale):
    with runtime.strategy.scope():
        backbone = backbones.build_backbone(BACKBONE_NAME, bundle.input_shape, embedding_dim=128)
        images = keras.Input(bundle.input_shape, name="image")
        logits = keras.layers.Dense(bundle.num_classes, dtype="float32", name="logits")(backbone(images))
        if scale is not None:
            logits = keras_losses.ScaledBatchNormalization(scale=scale, synchronized=True, name="scaled_bn")(logits)
        model = keras.Model(images, logits)
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


METHODS = {"softmax": None, **{f"scaled BN, m={m:g}": m for m in SCALES}}

# %% [markdown]
# ## Training

# %%
results, histories, test_logits, first_models = {}, {}, {}, {}
for name, scale in METHODS.items():
    for seed in SEEDS:
        print(f"--- {name}, seed {seed}")
        keras.utils.set_random_seed(seed)
        model = build(scale)
        fitted = model.fit(bundle.train, validation_data=bundle.test, epochs=EPOCHS, verbose=VERBOSE, shuffle=False)
        logits = model.predict(x_test, batch_size=256, verbose=0)  # inference: moving statistics
        results.setdefault(name, []).append(classification_metrics(logits, y_test))
        if seed == SEEDS[0]:
            histories[name], test_logits[name], first_models[name] = fitted.history, logits, model

# %% [markdown]
# ## Results

# %%
display(Markdown(notebook.results_table(results)))
for metric, key, lower in (("accuracy", "accuracy", False), ("ECE", "ece", True)):
    for sentence in notebook.compare_to_baseline({m: [r[key] for r in runs] for m, runs in results.items()},
                                                 "softmax", metric, lower_is_better=lower):
        print(sentence)

# %% [markdown]
# Convergence: training loss and test accuracy per epoch (seed shown in the title).

# %%
history_figure(histories, ("loss", "val_accuracy"), f"Convergence on {bundle.name}, seed {SEEDS[0]}",
               {"loss": "training loss (cross-entropy)", "val_accuracy": "test accuracy"})
plt.show()

# %% [markdown]
# The effect of `m`: mean over seeds, error bars ± one sample standard deviation over seeds (none
# with a single seed); the dashed line and band are the softmax baseline's mean ± std.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for axis, key, label in zip(axes, ("accuracy", "ece"), ("test accuracy (higher is better)", "test ECE (lower is better)")):
    values = {name: np.array([r[key] for r in runs]) for name, runs in results.items()}
    spread = lambda v: v.std(ddof=1) if len(v) > 1 else 0.0  # noqa: E731
    scaled = [values[f"scaled BN, m={m:g}"] for m in SCALES]
    axis.errorbar(SCALES, [v.mean() for v in scaled], yerr=[spread(v) for v in scaled], marker="o", capsize=3,
                  label="scaled BN")
    base = values["softmax"]
    axis.axhline(base.mean(), color="gray", linestyle="--", label="softmax")
    axis.axhspan(base.mean() - spread(base), base.mean() + spread(base), color="gray", alpha=0.15)
    axis.set_xscale("log")
    axis.set_xticks(SCALES, [f"{m:g}" for m in SCALES])
    axis.set_xticks([], minor=True)
    axis.set_xlabel("scale m")
    axis.set_ylabel(label)
    axis.legend(fontsize=8)
fig.suptitle(f"Scaled BN before softmax on {bundle.name}: the scale m ({len(SEEDS)} seed(s))")
fig.tight_layout()
plt.show()

reliability_figure({name: (test_logits[name], y_test) for name in METHODS},
                   f"Reliability on the {bundle.name} test split, seed {SEEDS[0]}")
plt.show()

# %% [markdown]
# ## Save and reload
# The scaled-BN layer (with its moving statistics) is saved with the model and reloads with no
# `custom_objects`.

# %%
name = f"scaled BN, m={SCALES[0]:g}"
os.makedirs(OUTPUT_DIR, exist_ok=True)
path = os.path.join(OUTPUT_DIR, "scaled_bn.keras")
first_models[name].save(path)
reloaded = keras.saving.load_model(path)
difference = float(np.max(np.abs(reloaded.predict(x_test, batch_size=256, verbose=0) - test_logits[name])))
print(f"reloaded {path}: scale m = {reloaded.get_layer('scaled_bn').get_config()['scale']}, "
      f"max |logit difference| = {difference:.2e}")
assert difference < 1e-4, "the reloaded model predicts differently"
