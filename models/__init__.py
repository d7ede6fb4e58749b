"""Reference models, data and tools built on ``keras_losses``; run them from the repository root.

    python -m models.compare       # main job: every method × 2 seeds on digits, results table
    python -m models.train         # one method, any data set / backbone / strategy
    python -m models.quickstart    # every method on one small MLP, without the training tool, ~45 s
    python -m models.icu_demo      # ICU's learned variances vs known class spreads
    python -m models.pedcc_sphere  # PEDCC centroids on the sphere (paper Fig. 3)
    python -m models.pedcc_features  # 2-D/3-D features, softmax vs PEDCC (paper Fig. 2)

Modules: ``methods`` (the method registry: head, loss, logits and hyper-parameters of each method,
read by every tool), ``training`` (the training tool: config, command line, building, fitting and
resume, evaluation, plots; ``train(TrainConfig(...))``), ``data`` (data sets), ``backbones`` (networks), ``multiworker`` (training across machines),
``evaluation`` (accuracy, ECE, NLL, reliability bins), ``plots`` (shared figures), ``notebook`` (the
runtime and data choices of the Colab notebooks in ``colab/``).
"""

import os

# TensorFlow's C++ info and warning lines (e.g. XLA's "Ignoring Assert operator" for every compiled
# loss) are not for the user of these tools; errors still show. Set before TensorFlow loads: every
# tool runs as ``python -m models.<tool>``, which imports this package first. (The oneDNN notice at
# import is printed before TensorFlow reads this setting, tensorflow/tensorflow#100442, and stays.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
