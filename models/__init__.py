"""Runnable example jobs built on ``keras_losses``.

Run them from the repository root as modules, e.g. ``python -m models.quickstart``
(trains softmax, label smoothing, GSC and scaled-BN heads on scikit-learn's
digits and writes a results table and reliability diagram under ``runs/``).
"""
