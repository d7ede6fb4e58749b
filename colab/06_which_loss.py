# %% [markdown]
# # Which loss? Every method side by side
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-losses/keras_losses/blob/main/colab/06_which_loss.ipynb)
#
# The same backbone, data, optimizer and budget for every method of the library and the usual
# baselines: softmax cross-entropy, label smoothing, focal loss, GSC, scaled batch-normalisation
# before softmax, PEDCC, ICU, and the cosine-margin heads NPCFace, ArcFace and CosFace. Each
# (method, seed) is one run of the project's training tool (`models.train`: `tf.data` pipeline,
# `model.fit`, evaluation, `.keras` save), driven by `models.compare`, which also writes the table and
# the chart. Finished runs are reused, so an interrupted comparison continues where it stopped; after
# changing EPOCHS, BATCH_SIZE or LEARNING_RATE choose a new `OUTPUT_DIR` (the tool refuses to mix
# runs of different settings in one folder). The verdicts compare with `"softmax"` when it is in
# `METHODS`.
#
# `DATA_SOURCE = "auto"`: CIFAR-10 from tensorflow-datasets in Colab, scikit-learn's digits (no
# download) elsewhere.

# %% tags=["parameters"]
DATA_SOURCE = "auto"  # "tfds": CIFAR-10 (download); "embedded": scikit-learn digits, offline; "auto": tfds in Colab
BACKBONE = "auto"  # "auto": small-cnn for digits, resnet18 for CIFAR; or any name of models.backbones.BACKBONES
METHODS = ["softmax", "label-smoothing", "focal", "gsc", "scaled-bn", "pedcc", "icu", "npcface", "arcface", "cosface"]
EPOCHS = 8
BATCH_SIZE = 64  # global batch, split across replicas
LEARNING_RATE = 3e-3
SEEDS = [0, 1]
MIXED_PRECISION = True  # mixed_float16 on a GPU; ignored on a CPU
OUTPUT_DIR = "runs/colab/which_loss"

# %% [markdown]
# ## Runtime
# The training tool picks its strategy by the same rule as the other notebooks (`MirroredStrategy`
# over several GPUs, the default strategy otherwise) and gets the precision from here.

# %%
import argparse
import json
import os

import keras
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import keras_losses  # noqa: F401  (registers the library's classes for loading the saved models)
from models import compare, data, notebook, train
from models.evaluation import classification_metrics
from models.plots import reliability_figure

runtime = notebook.setup(mixed_precision=MIXED_PRECISION, seed=SEEDS[0])
DATASET = {"tfds": "cifar10", "embedded": "digits"}[notebook.data_source(DATA_SOURCE)]

# %% [markdown]
# ## Train every method × seed
# One line per finished run (the training tool's own per-epoch output is switched off here; run
# `python -m models.train --method ...` to see it).

# %%
arguments = [
    "--methods", ",".join(METHODS), "--dataset", DATASET, "--seeds", ",".join(map(str, SEEDS)),
    "--epochs", str(EPOCHS), "--batch-size", str(BATCH_SIZE), "--learning-rate", str(LEARNING_RATE),
    "--output", OUTPUT_DIR, "--mixed-precision", "float16" if runtime.policy == "mixed_float16" else "off",
    *([] if BACKBONE == "auto" else ["--backbone", BACKBONE]),
]  # fmt: skip
summary = compare.main(arguments)

# %% [markdown]
# ## Table and chart
# Mean ± sample standard deviation over seeds; the error bars in the chart are the same standard
# deviation. Differences smaller than the spread between seeds are noise.

# %%
with open(os.path.join(OUTPUT_DIR, "results.md"), encoding="utf-8") as f:
    display(Markdown(f.read()))
compare.figure(compare.parse_args(arguments), summary, ["accuracy", "ece"])
plt.show()
for metric, key, lower in (("accuracy", "accuracy", False), ("ECE", "ece", True)) if "softmax" in METHODS else ():
    for sentence in notebook.compare_to_baseline({m: summary[m][key] for m in METHODS}, "softmax", metric, lower):
        print(sentence)

# %% [markdown]
# ## Reload the saved models: reliability of each method
# Every run saved its trained model as `model.keras`. Reloading the first seed's models (no
# `custom_objects`: importing `keras_losses` registers its classes) and predicting the test split
# must give the accuracy the run reported.

# %%
bundle = data.load_dataset(DATASET, batch_size=BATCH_SIZE)
x_test, y_test = bundle.test_arrays()
items = {}
for method in METHODS:
    folder = os.path.join(OUTPUT_DIR, "runs", f"{method}-seed{SEEDS[0]}")
    with open(os.path.join(folder, "run.json"), encoding="utf-8") as f:
        settings = argparse.Namespace(**json.load(f))
    model = keras.saving.load_model(os.path.join(folder, "model.keras"))
    inputs = {"image": x_test, "label": None} if method == "icu" else x_test
    logits = train.to_logits(settings, model.predict(inputs, batch_size=256, verbose=0))  # cosines × s for cosine heads
    reloaded_accuracy = classification_metrics(logits, y_test)["accuracy"]
    assert abs(reloaded_accuracy - summary[method]["accuracy"][0]) < 1e-6, f"{method}: reloaded model differs"
    items[method] = (logits, y_test)
print(f"reloaded {len(items)} models; each gives the test accuracy its run reported")
reliability_figure(items, f"Reliability on the {DATASET} test split, seed {SEEDS[0]}")
plt.show()
