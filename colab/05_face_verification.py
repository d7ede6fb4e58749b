# %% [markdown]
# # Verification with NPCFace, ArcFace and CosFace
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-losses/keras_losses/blob/main/colab/05_face_verification.ipynb)
#
# Face recognition trains an embedding with a classification head over the training identities,
# then throws the head away and verifies pairs of *new* identities by the cosine of their embeddings.
# The cosine-margin losses make the training classes more separable on the sphere: CosFace
# (Wang et al., CVPR 2018) subtracts a margin from the target cosine, ArcFace (Deng et al., CVPR
# 2019) adds an angular margin, and NPCFace (Zeng, Shi, Du, Wang, Lei and Mei, *NPCFace: A Negative-Positive
# Cooperation Supervision for Training Large-scale Face Recognition*, 2020) also enlarges the logits of hard negatives and
# couples the two margins. The papers report TAR at low FAR (true accept rate at a fixed false
# accept rate).
#
# This notebook trains an embedding model + `keras_losses.CosineDense` with each loss, drops the
# head, and measures TAR@FAR and the ROC curve on pairs of held-out identities, against the same
# network untrained.
#
# `DATA_SOURCE = "auto"`: in Colab, CIFAR-100 as an open-set task (train on 80 classes, verify pairs
# of the 20 unseen ones; the face data in tensorflow-datasets is too small to train a face embedding); elsewhere a
# generated identity set (250 identities, disjoint train and test identities, no download).

# %% tags=["parameters"]
DATA_SOURCE = "auto"  # "tfds": CIFAR-100 open set (download); "embedded": generated identities; "auto": tfds in Colab
BACKBONE = "auto"  # "auto": embedding-net for the generated set, resnet18 for CIFAR; or a models.backbones name
EPOCHS = 20
BATCH_SIZE = 128  # global batch, split across replicas
LEARNING_RATE = 1e-3
EMBEDDING_DIM = 128
SEEDS = [0, 1]
SCALE = 32.0  # the cosine scale s of every loss (the papers use 64 with ~10^5 identities)
FARS = [1e-1, 1e-2]  # false accept rates to report the TAR at
MIXED_PRECISION = True  # mixed_float16 on a GPU; ignored on a CPU
VERBOSE = 2  # model.fit: 1 progress bar, 2 one line per epoch
OUTPUT_DIR = "runs/colab/verification"

# %% [markdown]
# ## Runtime and data
# The training pipeline yields `(input, identity)` batches of the training identities; `bundle.pairs`
# holds `(x_a, x_b, same)` pairs of test identities that training never sees, half of them same.

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import keras_losses
from models import backbones, notebook

runtime = notebook.setup(mixed_precision=MIXED_PRECISION, seed=SEEDS[0])
DATASETS = {"tfds": "cifar100-verification", "embedded": "verification"}
bundle, BACKBONE_NAME = notebook.load_data(DATA_SOURCE, DATASETS, BATCH_SIZE, seed=SEEDS[0], backbone=BACKBONE)
x_a, x_b, same = bundle.pairs
print(f"{len(same)} test pairs ({int(same.sum())} same, {int((1 - same).sum())} different) of identities "
      "never seen in training")
print(f"With {int((1 - same).sum())} different pairs, the smallest FAR that can be told from 0 is "
      f"{1 / max(1, (1 - same).sum()):.0e}.")

# %% [markdown]
# ## Model: embedding + `CosineDense`
# `CosineDense` owns the class vectors and outputs margin-free cosines in float32; the loss applies
# the margin from the labels. After training, the embedding model alone is kept.

# %%
LOSSES = {
    "CosFace": lambda: keras_losses.CosFaceLoss(scale=SCALE),
    "ArcFace": lambda: keras_losses.ArcFaceLoss(scale=SCALE),
    "NPCFace": lambda: keras_losses.NPCFaceLoss(scale=SCALE),
}


def build(loss):
    """Returns (compiled training model, embedding model)."""
    with runtime.strategy.scope():
        embedder = backbones.build_backbone(BACKBONE_NAME, bundle.input_shape, EMBEDDING_DIM)
        images = keras.Input(bundle.input_shape, name="image")
        cosines = keras_losses.CosineDense(bundle.num_classes, name="head")(embedder(images))
        model = keras.Model(images, cosines)
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    return model, embedder


def pair_scores(embedder):
    """Cosine similarity of each test pair's embeddings."""
    a = embedder.predict(x_a, batch_size=256, verbose=0).astype(np.float64)
    b = embedder.predict(x_b, batch_size=256, verbose=0).astype(np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def tars(scores):
    return {f"TAR@FAR={far:g}": keras_losses.tar_at_far(scores, same, far)[0] for far in FARS}

# %% [markdown]
# ## Baselines: the untrained network and the raw inputs

# %%
results, scores_of = {}, {}
for seed in SEEDS:
    keras.utils.set_random_seed(seed)
    scores = pair_scores(build(LOSSES["CosFace"]())[1])
    results.setdefault("untrained network", []).append(tars(scores))
    scores_of.setdefault("untrained network", scores)
flat_a, flat_b = x_a.reshape(len(x_a), -1), x_b.reshape(len(x_b), -1)
raw = np.sum(flat_a * flat_b, axis=1) / np.maximum(np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1), 1e-12)
results["raw inputs (cosine)"], scores_of["raw inputs (cosine)"] = [tars(raw)], raw

# %% [markdown]
# ## Training

# %%
embedders = {}
for name, make_loss in LOSSES.items():
    for seed in SEEDS:
        print(f"--- {name}, seed {seed}")
        keras.utils.set_random_seed(seed)
        model, embedder = build(make_loss())
        model.fit(bundle.train, epochs=EPOCHS, verbose=VERBOSE, shuffle=False)
        scores = pair_scores(embedder)  # the head is dropped: only the embedding is used
        results.setdefault(name, []).append(tars(scores))
        if seed == SEEDS[0]:
            scores_of[name], embedders[name] = scores, (model, embedder)

# %% [markdown]
# ## Results
# TAR at each FAR on the unseen identities (the raw-input baseline does not depend on a seed).

# %%
keys = [f"TAR@FAR={far:g}" for far in FARS]
display(Markdown(notebook.results_table(results, keys=keys, labels={k: k + " ↑" for k in keys})))
for sentence in notebook.compare_to_baseline({m: [r[keys[-1]] for r in runs] for m, runs in results.items()
                                              if m != "raw inputs (cosine)"},
                                             "untrained network", keys[-1], lower_is_better=False):
    print(sentence)
for sentence in notebook.compare_to_baseline({m: [r[keys[-1]] for r in results[m]] for m in LOSSES},
                                             "ArcFace", keys[-1], lower_is_better=False):
    print(sentence)

fig, axis = plt.subplots(figsize=(6, 4.5))
for name, scores in scores_of.items():
    far, tar, _ = keras_losses.roc_curve(scores, same)
    axis.plot(np.maximum(far, 1 / max(1, (1 - same).sum())), tar, label=name, linestyle="-" if name in LOSSES else "--")
for far in FARS:
    axis.axvline(far, color="gray", linewidth=0.5)
axis.set(xscale="log", xlim=(1 / max(1, (1 - same).sum()), 1), ylim=(0, 1.01),
         xlabel="false accept rate (different pairs accepted)", ylabel="true accept rate (same pairs accepted)")
axis.legend(fontsize=8, loc="lower right")
axis.set_title(f"ROC on {len(same)} pairs of unseen identities ({bundle.name}, seed {SEEDS[0]})", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Save and reload
# Save the whole training model (head and loss included) and the embedding model alone; the reloaded
# embedding gives the same pair scores.

# %%
model, embedder = embedders["NPCFace"]
os.makedirs(OUTPUT_DIR, exist_ok=True)
model.save(os.path.join(OUTPUT_DIR, "npcface_training_model.keras"))
path = os.path.join(OUTPUT_DIR, "npcface_embedder.keras")
embedder.save(path)
reloaded = keras.saving.load_model(os.path.join(OUTPUT_DIR, "npcface_training_model.keras"))
difference = float(np.max(np.abs(pair_scores(keras.saving.load_model(path)) - scores_of["NPCFace"])))
print(f"reloaded {path}: max |pair score difference| = {difference:.2e}; training model loss "
      f"{type(reloaded.loss).__name__}")
assert difference < 1e-5, "the reloaded embedding differs"
