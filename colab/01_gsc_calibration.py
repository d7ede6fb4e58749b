# %% [markdown]
# # GSC loss: cross-entropy with Gaussian score calibration
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-losses/keras_losses/blob/main/colab/01_gsc_calibration.ipynb)
#
# The GSC loss (Zhao, Jiang, Dou, Zhao, Ji and Wang, *GSC Loss: A Gaussian Score Calibrating
# Loss for Deep Learning*, preprint, 2022) adds to the cross-entropy a term `γ·f` that depends only on the
# predicted scores: `f` is the product of Gaussian densities of the `top_k` largest softmax scores,
# with the prediction's normalised entropy as the standard deviation. The paper reports better
# accuracy and calibration than cross-entropy alone.
#
# This notebook trains the same network twice — with cross-entropy and with
# `keras_losses.GSCLoss` — and compares test accuracy, expected calibration error (ECE), negative
# log-likelihood (NLL) and reliability diagrams. Then it uses the label-free form,
# `keras_losses.GSCRegularizer`, on images without labels.
#
# Everything is sized by the parameters cell. `DATA_SOURCE = "auto"` trains on CIFAR-10 from
# tensorflow-datasets in Colab and on scikit-learn's bundled 8×8 digits (no download) elsewhere.

# %% tags=["parameters"]
DATA_SOURCE = "auto"  # "tfds": CIFAR-10 (download); "embedded": scikit-learn digits, offline; "auto": tfds in Colab
BACKBONE = "auto"  # "auto": small-cnn for digits, resnet18 for CIFAR; or any name of models.backbones.BACKBONES
EPOCHS = 15
BATCH_SIZE = 128  # global batch, split across replicas
LEARNING_RATE = 1e-3
SEEDS = [0, 1]  # one model per loss and seed; the table reports mean ± std over seeds
GSC_GAMMA = 1.0  # γ of the calibration term (the paper reports 0.005 to 2)
GSC_TOP_K = 2  # number of top scores in f (the paper: 2 or 3 for classification)
UNLABELED_EPOCHS = 3  # label-free fine-tuning with GSCRegularizer
MIXED_PRECISION = True  # mixed_float16 on a GPU; ignored on a CPU
VERBOSE = 2  # model.fit: 1 progress bar, 2 one line per epoch
OUTPUT_DIR = "runs/colab/gsc"

# %% [markdown]
# ## Runtime and data
# `notebook.setup` picks `MirroredStrategy` over all GPUs when there are several and the default
# strategy otherwise, and switches mixed precision on where a GPU is present. `notebook.load_data` returns
# a shuffled, batched, prefetched `tf.data` pipeline of `(image, label)` batches and a test pipeline.

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
bundle, BACKBONE_NAME = notebook.load_data(DATA_SOURCE, {"tfds": "cifar10", "embedded": "digits"}, BATCH_SIZE,
                                           seed=SEEDS[0], backbone=BACKBONE)
x_test, y_test = bundle.test_arrays()

# %% [markdown]
# ## The model
# A backbone from `models.backbones` and a `Dense` layer that outputs logits in float32 (also under
# mixed precision). Only the loss differs between the two runs; the ECE metric reads logits.

# %%
def build_classifier(loss):
    with runtime.strategy.scope():
        backbone = backbones.build_backbone(BACKBONE_NAME, bundle.input_shape, embedding_dim=128)
        images = keras.Input(bundle.input_shape, name="image")
        logits = keras.layers.Dense(bundle.num_classes, dtype="float32", name="logits")(backbone(images))
        model = keras.Model(images, logits)
        model.compile(
            optimizer=keras.optimizers.Adam(LEARNING_RATE),
            loss=loss,
            metrics=["accuracy", keras_losses.ExpectedCalibrationError(from_logits=True)],
        )
    return model


LOSSES = {
    "cross-entropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "GSC": lambda: keras_losses.GSCLoss(gamma=GSC_GAMMA, top_k=GSC_TOP_K),
}

# %% [markdown]
# ## Training
# Each loss is trained once per seed (the seed sets the initial weights). The models of the first
# seed are kept for the plots and the save/reload check.

# %%
results, histories, test_logits, trained = {}, {}, {}, {}
for name, make_loss in LOSSES.items():
    for seed in SEEDS:
        print(f"--- {name}, seed {seed}")
        keras.utils.set_random_seed(seed)
        model = build_classifier(make_loss())
        history = model.fit(bundle.train, validation_data=bundle.test, epochs=EPOCHS, verbose=VERBOSE,
                            shuffle=False)  # the tf.data pipeline shuffles
        logits = model.predict(x_test, batch_size=256, verbose=0)
        results.setdefault(name, []).append(classification_metrics(logits, y_test))
        if seed == SEEDS[0]:
            histories[name], test_logits[name], trained[name] = history.history, logits, model

# %% [markdown]
# ## Results

# %%
display(Markdown(notebook.results_table(results)))
for metric, key, lower in (("accuracy", "accuracy", False), ("ECE", "ece", True), ("NLL", "nll", True)):
    for sentence in notebook.compare_to_baseline({m: [r[key] for r in runs] for m, runs in results.items()},
                                                 "cross-entropy", metric, lower_is_better=lower):
        print(sentence)

# %%
history_figure(histories, ("loss", "val_accuracy", "val_ece"),
               f"Training on {bundle.name}, seed {SEEDS[0]} (the GSC loss includes its γ·f term)",
               {"loss": "training loss", "val_accuracy": "test accuracy", "val_ece": "test ECE (lower is better)"})
plt.show()
reliability_figure({name: (test_logits[name], y_test) for name in LOSSES},
                   f"Reliability on the {bundle.name} test split, seed {SEEDS[0]}")
plt.show()

# %% [markdown]
# Bars below the diagonal are over-confident bins (confidence above accuracy), bars above it
# under-confident ones. ECE is the sample-weighted mean gap.
#
# ## Save and reload
# The loss and metric are registered serializable classes: the `.keras` file reloads with no
# `custom_objects` once `keras_losses` is imported, and gives the same predictions.

# %%
os.makedirs(OUTPUT_DIR, exist_ok=True)
path = os.path.join(OUTPUT_DIR, "gsc.keras")
trained["GSC"].save(path)
reloaded = keras.saving.load_model(path)
difference = float(np.max(np.abs(reloaded.predict(x_test, batch_size=256, verbose=0) - test_logits["GSC"])))
print(f"reloaded {path}: loss {type(reloaded.loss).__name__}, max |logit difference| = {difference:.2e}")
assert difference < 1e-4, "the reloaded model predicts differently"

# %% [markdown]
# ## Label-free: `GSCRegularizer` on unlabeled images
# The GSC term needs no labels, so it can train on unlabeled data (the paper uses it for
# unsupervised segmentation with γ ∈ [0.1, 0.5] and top_k ∈ {7, 9}). Here copies of the
# cross-entropy model are fine-tuned on the training images *without their labels*: the regularizer
# on the logits is the only loss (`compile` gets no loss, `fit` gets images only).
#
# Fine-tuning in training mode also refreshes the batch-normalisation statistics, which changes the
# predictions by itself. So a control copy is fine-tuned the same way with γ = 0 (no gradient, only
# the statistics move), and the effect of the GSC term is the difference between the two.

# %%
def fine_tune_without_labels(gamma):
    """A copy of the cross-entropy model, fine-tuned on unlabeled images with GSCRegularizer(gamma)."""
    with runtime.strategy.scope():
        copy = keras.models.clone_model(trained["cross-entropy"])
        copy.set_weights(trained["cross-entropy"].get_weights())
        images = keras.Input(bundle.input_shape, name="image")
        regularized = keras.layers.Activation(
            "linear", dtype="float32", activity_regularizer=keras_losses.GSCRegularizer(gamma=gamma, top_k=7)
        )(copy(images))
        label_free = keras.Model(images, regularized)  # shares its weights with `copy`
        label_free.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE / 10))
    unlabeled = bundle.train.map(lambda image, label: image)  # the labels are dropped
    label_free.fit(unlabeled, epochs=UNLABELED_EPOCHS, verbose=VERBOSE, shuffle=False)
    return classification_metrics(copy.predict(x_test, batch_size=256, verbose=0), y_test)


keras.utils.set_random_seed(SEEDS[0])
control = fine_tune_without_labels(gamma=0.0)
keras.utils.set_random_seed(SEEDS[0])
regularized = fine_tune_without_labels(gamma=0.5)
before = results["cross-entropy"][0]
for key in ("accuracy", "ece", "nll"):
    print(f"{key:>8}: {before[key]:.4f} before; {control[key]:.4f} after fine-tuning with γ = 0 (control); "
          f"{regularized[key]:.4f} with γ = 0.5 — effect of the GSC term {regularized[key] - control[key]:+.4f}")
print("One model, one seed: effects of the size of the seed spread in the table above are noise.")
