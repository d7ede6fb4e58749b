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
METHODS = "all"  # every method of models.methods; or a list, e.g. ["softmax", "gsc", "arcface"]
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
import os

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import keras_losses  # noqa: F401  (registers the library's classes for loading the saved models)
from models import compare, data, methods, notebook
from models.evaluation import classification_metrics
from models.plots import reliability_figure
from models.training import TrainConfig, load_run
from models.training.evaluate import predict_logits

runtime = notebook.setup(mixed_precision=MIXED_PRECISION, seed=SEEDS[0])
METHODS = list(methods.names()) if METHODS == "all" else METHODS
DATASET = {"tfds": "cifar10", "embedded": "digits"}[notebook.data_source(DATA_SOURCE)]

# %% [markdown]
# ## Train every method × seed
# One line per finished run (the training tool's own per-epoch output is switched off here; run
# `python -m models.train --method ...` to see it).

# %%
settings = TrainConfig(
    dataset=DATASET, epochs=EPOCHS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
    backbone=None if BACKBONE == "auto" else BACKBONE,
    mixed_precision="float16" if runtime.policy == "mixed_float16" else "off",
)
summary = compare.compare(METHODS, SEEDS, settings, OUTPUT_DIR)

# %% [markdown]
# ## Table and chart
# Mean ± sample standard deviation over seeds; the error bars in the chart are the same standard
# deviation. Differences smaller than the spread between seeds are noise.

# %%
with open(os.path.join(OUTPUT_DIR, "results.md"), encoding="utf-8") as f:
    display(Markdown(f.read()))
compare.figure(summary, ["accuracy", "ece"], f"{DATASET}: {len(SEEDS)} seed(s), {EPOCHS} epochs")
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
    run_config, model = load_run(compare.run_folder(OUTPUT_DIR, method, SEEDS[0]))  # reads model.keras
    logits = predict_logits(model, run_config, x_test)  # the method's outputs as logits (cosines × s for cosine heads)
    reloaded_accuracy = classification_metrics(logits, y_test)["accuracy"]
    assert abs(reloaded_accuracy - summary[method]["accuracy"][0]) < 1e-6, f"{method}: reloaded model differs"
    items[method] = (logits, y_test)
print(f"reloaded {len(items)} models; each gives the test accuracy its run reported")
reliability_figure(items, f"Reliability on the {DATASET} test split, seed {SEEDS[0]}")
plt.show()
