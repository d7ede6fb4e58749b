"""The training tool behind ``python -m models.train``, split by job.

    from models.training import TrainConfig, train
    metrics = train(TrainConfig(method="arcface", dataset="verification", hyperparameters={"scale": 30.0}))

Modules: ``config`` (what a run is: :class:`TrainConfig`), ``cli`` (the command line), ``build``
(strategy and model), ``fit`` (run folder, resume, :func:`train`), ``evaluate`` (test metrics),
``plots`` (the run's figures). What each method builds and trains with: :mod:`models.methods`.
"""

from models.training.config import PRECISIONS, STRATEGIES, TrainConfig, UsageError
from models.training.fit import load_run, train

__all__ = ["PRECISIONS", "STRATEGIES", "TrainConfig", "UsageError", "load_run", "train"]
