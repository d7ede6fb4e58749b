"""Train one model with one method: ``python -m models.train``.

    python -m models.train --method gsc --dataset digits --epochs 20 --output runs/gsc
    python -m models.train --method npcface --dataset verification --backbone embedding-net
    python -m models.train --method pedcc --strategy mirrored --batch-size 128
    python -m models.train --help        # every flag, each method's hyper-parameters and defaults

Builds ``backbone → head`` with the head and loss each method needs (:mod:`models.methods`),
compiles under the chosen ``tf.distribute`` strategy, trains with ``model.fit`` on the ``tf.data``
pipeline of :mod:`models.data`, and evaluates accuracy, ECE and, on verification data, TAR@FAR on
held-out identities. Writes to ``--output``: ``model.keras``, ``metrics.json``, ``history.csv``,
TensorBoard logs under ``tensorboard/``, ``curves.png``, ``reliability.png`` and, for 2-/3-D
embeddings (``--embedding-dim 2`` or ``3``), ``features.png``.

Interrupted runs resume: the same command started again continues after the last completed epoch;
a finished run is not retrained; a different command on the same folder is refused (exit code 2)
and nothing of the earlier run is touched.

``--strategy multiworker`` trains across processes or machines described by ``TF_CONFIG`` with a
custom loop that does what ``model.fit`` does (Keras 3.15's ``model.fit`` is broken under
``MultiWorkerMirroredStrategy``); see :mod:`models.multiworker`. Only the chief writes to ``--output``.

From Python: ``models.training.train(models.training.TrainConfig(...))`` (see :mod:`models.training`).
"""

from models.training import TrainConfig, UsageError, train
from models.training.cli import main, parse_config

__all__ = ["TrainConfig", "UsageError", "main", "parse_config", "train"]

if __name__ == "__main__":
    main()
