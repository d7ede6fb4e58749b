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
