"""Evaluating a trained run: accuracy and ECE on classification data, TAR@FAR on verification pairs."""

import os

import numpy as np

import keras_losses
from models import methods
from models.evaluation import classification_metrics
from models.training import plots
from models.training.build import feature_model

EVAL_BATCH_SIZE = 256
VERIFICATION_FARS = (1e-2, 1e-3)


def predict_logits(model, config, images):
    """The model's test logits (float64): the method's outputs made logits, without any margin."""
    method = methods.get(config.method)
    outputs = model.predict(method.predict_inputs(images), verbose=0, batch_size=EVAL_BATCH_SIZE)
    return method.to_logits(outputs, config.hyperparameters)


def embedding_scores(model, x_a, x_b):
    """Cosine similarity of the backbone's embeddings of each pair."""
    embed = feature_model(model)
    a, b = (embed.predict(x, verbose=0, batch_size=EVAL_BATCH_SIZE) for x in (x_a, x_b))
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def evaluate(model, config, bundle, x_test, y_test):
    """Returns ``(metrics, test logits or None)``.

    Classification: ``accuracy`` and ``ece`` of the test split. Verification: the test identities
    are not classes of the head, so the embeddings are judged on pairs: ``tar@far=…``; the ROC of
    those pairs (the same scores) is drawn to ``<config.output>/roc.png``.
    """
    if bundle.kind == "classification":
        logits = predict_logits(model, config, x_test)
        metrics = classification_metrics(logits, y_test)
        return {"accuracy": metrics["accuracy"], "ece": metrics["ece"]}, logits
    x_a, x_b, same = bundle.pairs
    scores = embedding_scores(model, x_a, x_b)
    plots.roc(config, scores, same, os.path.join(config.output, "roc.png"), VERIFICATION_FARS)
    return {f"tar@far={far:g}": keras_losses.tar_at_far(scores, same, far)[0] for far in VERIFICATION_FARS}, None
