"""Evaluating a trained run: accuracy and ECE on classification data, TAR@FAR on verification pairs."""

import numpy as np

import keras_losses
from models import methods
from models.evaluation import VERIFICATION_FARS, classification_metrics
from models.training.build import feature_model

EVAL_BATCH_SIZE = 256


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
    """Returns ``(metrics, test predictions)``.

    Classification: ``accuracy`` and ``ece`` of the test split, and the test logits. Verification:
    the test identities are not classes of the head, so the embeddings are judged on pairs:
    ``tar@far=…``, and the pairs' cosine scores.
    """
    if bundle.kind == "classification":
        logits = predict_logits(model, config, x_test)
        metrics = classification_metrics(logits, y_test)
        return {"accuracy": metrics["accuracy"], "ece": metrics["ece"]}, logits
    x_a, x_b, same = bundle.pairs
    scores = embedding_scores(model, x_a, x_b)
    return {f"tar@far={far:g}": keras_losses.tar_at_far(scores, same, far)[0] for far in VERIFICATION_FARS}, scores
