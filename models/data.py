"""Data sets for the training tools: one entry point, :func:`load_dataset`.

    bundle = load_dataset("digits", batch_size=32, seed=0)
    model.fit(bundle.train, validation_data=bundle.test, epochs=...)

Every data set comes back as a :class:`DatasetBundle`: a shuffled, (augmented,) batched and
prefetched ``tf.data`` training set of ``(x, y)`` batches, a batched test set in a fixed order,
the number of classes, the input shape, the kind (``"classification"`` or ``"verification"``),
the split sizes and, for verification sets, held-out pairs ``(x_a, x_b, same)``.

Data sets (``DATASETS``):

    embedded, no download (scikit-learn's bundled digits or generated data):
      digits          8×8×1 digits scaled to [0, 1], stratified 70/30 split with a fixed
                      split seed (1257 train / 540 test; the same split as models.quickstart)
      longtail        generated Gaussian classes, long-tailed training frequencies
                      n_k = n_max·r^(−k/(C−1)) (option ``imbalance_ratio`` r, default 10 as in
                      the ICU paper); balanced test set
      noisy-digits    digits with symmetric label noise on the training labels (option
                      ``noise_rate``, default 0.2, the GSC paper's noisy-label setting); test
                      labels are clean
      verification    generated open-set identities: each identity a random unit prototype on a
                      16-d latent sphere; samples scatter around it (option ``spread``) and a fixed
                      random tanh network maps them to 64-d inputs, plus identity-independent
                      nuisance variation in an 8-d subspace (``nuisance_scale``) that makes raw
                      input distance a poor verifier. 200 train identities × 20 samples and 50
                      test identities × 20 samples; train and test identities are *disjoint*
                      (test labels are numbered 200..249). ``pairs``: 500 same + 500 different
                      pairs of test samples (``num_pairs``)
    tensorflow-datasets (``tfds.load``; downloaded into ``data_dir`` on first use):
      mnist, emnist/balanced     28×28×1, no augmentation
      cifar10, cifar100          32×32×3, pad 4 + random 32×32 crop + horizontal flip
      cifar10-lt, cifar100-lt    CIFAR with a long-tailed training split (LDAM/ICU protocol:
                      n_k = ⌊n_max·r^(−k/(C−1))⌋, n_max = train size / C, option
                      ``imbalance_ratio`` r, default 100), subsampled deterministically; the
                      test split is the full balanced one
      cifar100-verification      open-set verification on CIFAR-100 (kind "verification"): train
                      on the training images of the first 100 − ``held_out_classes`` classes
                      (default 80), judge pairs of test images of the other 20, never seen in
                      training (``num_pairs``, half same-class); CIFAR augmentation

Pixels are scaled to [0, 1] float32 in the input pipeline (images are kept as uint8 in memory).
``seed`` sets the shuffling order and the augmentation draws, so a pipeline is reproducible given
its seed; the data themselves (splits, generated sets, label noise, long-tail subsample) are fixed
by separate data seeds (options ``data_seed``/``split_seed``, default 0) and do not change with
``seed``.

``validation=True`` holds out a stratified 10 % of the training split (fixed split seed) and returns
it as ``test``, so that hyper-parameters are never picked on the test split; ``train`` is then the
remaining 90 %. For verification sets it splits by *identity* (10 % of the train identities) and
builds ``pairs`` from the held-out train identities. For noisy-digits the noise is applied after the
hold-out, so validation labels are clean (like the test labels).
"""

import dataclasses

import numpy as np
import tensorflow as tf

EMBEDDED = ("digits", "longtail", "noisy-digits", "verification")
TFDS = ("mnist", "emnist/balanced", "cifar10", "cifar100", "cifar10-lt", "cifar100-lt", "cifar100-verification")
DATASETS = EMBEDDED + TFDS
DEFAULT_DATASET = "digits"

TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0
DEFAULT_EVAL_BATCH_SIZE = 256

# Options each data set accepts, with their defaults (``load_dataset(..., **options)``).
OPTIONS = {
    "digits": {"split_seed": SPLIT_SEED},
    "longtail": {
        "imbalance_ratio": 10.0,
        "num_classes": 10,
        "head_count": 500,
        "test_per_class": 100,
        "dim": 32,
        "separation": 0.5,
        "data_seed": 0,
    },
    "noisy-digits": {"noise_rate": 0.2, "split_seed": SPLIT_SEED, "data_seed": 0},
    "verification": {
        "train_identities": 200,
        "test_identities": 50,
        "samples_per_identity": 20,
        "num_pairs": 1000,
        "latent_dim": 16,
        "dim": 64,
        "spread": 0.8,
        "nuisance_dim": 8,
        "nuisance_scale": 3.0,
        "data_seed": 0,
    },
    **{name: {"data_dir": None, "download": True} for name in ("mnist", "emnist/balanced", "cifar10", "cifar100")},
    **{
        name: {"data_dir": None, "download": True, "imbalance_ratio": 100.0, "data_seed": 0}
        for name in ("cifar10-lt", "cifar100-lt")
    },
    "cifar100-verification": {"data_dir": None, "download": True, "held_out_classes": 20, "num_pairs": 1000,
                              "data_seed": 0},
}


@dataclasses.dataclass
class DatasetBundle:
    """What :func:`load_dataset` returns.

    Attributes:
        name: the data set's name.
        train: ``tf.data.Dataset`` of ``(x, y)`` batches, shuffled with the seed (reshuffled every
            epoch), augmented where the data set wants it, batched, prefetched.
        test: ``tf.data.Dataset`` of ``(x, y)`` batches in a fixed order (the validation split
            when ``validation=True``). For verification sets its labels are the held-out
            identities, numbered after the training identities (``y >= num_classes``).
        num_classes: number of training classes (identities for verification sets).
        input_shape: shape of one input, e.g. ``(8, 8, 1)``.
        kind: ``"classification"`` or ``"verification"``.
        train_size, test_size: number of examples in each split.
        pairs: verification sets only: ``(x_a, x_b, same)`` NumPy arrays of pairs of held-out
            identities, half same (``same == 1``) and half different; ``None`` otherwise.
        info: extra facts: ``train_class_counts`` always; ``clean_train_labels`` and
            ``noisy_mask`` for noisy-digits; the options used under ``options``.
    """

    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    num_classes: int
    input_shape: tuple
    kind: str
    train_size: int
    test_size: int
    pairs: tuple = None
    info: dict = dataclasses.field(default_factory=dict)

    def test_arrays(self):
        """The test split as NumPy ``(x, y)``, inputs scaled as in the pipeline, in the fixed order."""
        xs, ys = [], []
        for x, y in self.test:
            xs.append(x.numpy())
            ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys).reshape(-1)


# ----------------------------------------------------------------------------- helpers


def long_tail_counts(head_count, num_classes, imbalance_ratio):
    """``⌊head_count · r^(−k/(C−1))⌋`` for k = 0..C−1 (LDAM's CIFAR-LT profile), as int64."""
    if num_classes == 1:
        return np.array([int(head_count)], np.int64)
    exponents = np.arange(num_classes) / (num_classes - 1)
    # The epsilon keeps exact products (500·10^−1 = 50) from flooring to one less.
    return np.floor(head_count * float(imbalance_ratio) ** (-exponents) + 1e-6).astype(np.int64)


def long_tail_subsample(labels, num_classes, imbalance_ratio, seed=0, head_count=None):
    """Indices of a long-tailed subsample of ``labels``, sorted.

    Class k keeps ``min(target_k, available_k)`` examples, ``target_k`` from
    :func:`long_tail_counts` with ``head_count`` (default ``len(labels) // num_classes``, 5000 on
    CIFAR, as in LDAM) — a class with too few examples keeps all it has. Which examples are kept
    is fixed by ``seed`` (a per-class permutation), independent of any training seed.

    Returns ``(indices, counts)``.
    """
    labels = np.asarray(labels).reshape(-1)
    if head_count is None:
        head_count = max(1, len(labels) // num_classes)
    targets = long_tail_counts(head_count, num_classes, imbalance_ratio)
    rng = np.random.default_rng(seed)
    kept, counts = [], []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))][: targets[k]]
        kept.append(members)
        counts.append(len(members))
    return np.sort(np.concatenate(kept)).astype(np.int64), np.array(counts, np.int64)


def symmetric_label_noise(labels, num_classes, noise_rate, seed=0):
    """Flips exactly ``round(noise_rate · N)`` labels, each to a uniformly drawn *other* class.

    Returns ``(noisy_labels, flipped_mask)``; which labels flip and to what is fixed by ``seed``.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    num_flips = int(round(noise_rate * len(labels)))
    flipped = np.zeros(len(labels), bool)
    flipped[rng.choice(len(labels), size=num_flips, replace=False)] = True
    offsets = rng.integers(1, num_classes, size=len(labels))  # 1..C−1: never the true class
    noisy = np.where(flipped, (labels + offsets) % num_classes, labels).astype(labels.dtype)
    return noisy, flipped


def _stratified_split(x, y, fraction, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)


def check_options(name, options):
    """``OPTIONS[name]`` updated with ``options``; ValueError for an unknown option or a bad value."""
    valid = OPTIONS[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(f'`{o}`' for o in unknown)} for dataset `name`={name!r}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )
    merged = {**valid, **options}
    if "imbalance_ratio" in merged and not (np.isfinite(merged["imbalance_ratio"]) and merged["imbalance_ratio"] >= 1):
        raise ValueError(f"`imbalance_ratio` must be a finite number >= 1, got {merged['imbalance_ratio']!r}")
    if "noise_rate" in merged and not 0.0 <= merged["noise_rate"] < 1.0:
        raise ValueError(f"`noise_rate` must be in [0, 1), got {merged['noise_rate']!r}")
    return merged


# ----------------------------------------------------------------------------- embedded sets


def digits_split(split_seed=SPLIT_SEED, flatten=False):
    """scikit-learn's digits as ``(x_train, y_train, x_test, y_test)``: 8×8×1 float32 images in [0, 1]
    (64-pixel vectors with ``flatten``), int32 labels, a stratified 70/30 split fixed by ``split_seed``
    (1257 / 540 images)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)  # pixels are 0..16
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = _stratified_split(x, y, TEST_FRACTION, split_seed)
    if flatten:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    return x_train, y_train, x_test, y_test


def _digits(split_seed):
    return (*digits_split(split_seed), 10)


def _longtail(imbalance_ratio, num_classes, head_count, test_per_class, dim, separation, data_seed):
    """Isotropic unit-variance Gaussian classes with means ``separation · N(0, I)`` (data_seed)."""
    rng = np.random.default_rng(data_seed)
    means = separation * rng.normal(size=(num_classes, dim))
    counts = long_tail_counts(head_count, num_classes, imbalance_ratio)

    def draw(per_class):
        y = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
        x = means[y] + rng.normal(size=(len(y), dim))
        return x.astype(np.float32), y

    x_train, y_train = draw(counts)
    x_test, y_test = draw(np.full(num_classes, test_per_class))
    return x_train, y_train, x_test, y_test, num_classes


def _verification_samples(prototypes, samples, spread, mixing, nuisance, rng):
    """Samples around unit prototypes on the latent sphere, mapped to inputs by a fixed network,
    plus identity-independent nuisance variation (think pose and lighting) in a fixed subspace."""
    latent_dim = prototypes.shape[1]
    ids = np.repeat(np.arange(len(prototypes)), samples)
    z = prototypes[ids] + spread * rng.normal(size=(len(ids), latent_dim)) / np.sqrt(latent_dim)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    w1, w2 = mixing
    x = np.tanh(z @ w1) @ w2  # a fixed nonlinear map from the latent sphere to the inputs
    x += rng.normal(size=(len(ids), nuisance.shape[0])) @ nuisance
    return x.astype(np.float32), ids.astype(np.int32)


def _verification(train_identities, test_identities, samples_per_identity, num_pairs, latent_dim, dim, spread,
                  nuisance_dim, nuisance_scale, data_seed, validation):
    rng = np.random.default_rng(data_seed)
    total = train_identities + test_identities
    prototypes = rng.normal(size=(total, latent_dim))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)  # random unit prototypes
    hidden = 4 * latent_dim
    mixing = (rng.normal(size=(latent_dim, hidden)) * 2.0, rng.normal(size=(hidden, dim)) / np.sqrt(hidden))
    nuisance = nuisance_scale * rng.normal(size=(nuisance_dim, dim)) / np.sqrt(dim)
    x, y = _verification_samples(prototypes, samples_per_identity, spread, mixing, nuisance, rng)
    if validation:  # hold out 10 % of the *train* identities; the test identities are never seen
        held = max(2, int(round(VALIDATION_FRACTION * train_identities)))
        train_identities -= held
        keep = y < train_identities + held
        x, y = x[keep], y[keep]
    train = y < train_identities
    x_train, y_train, x_test, y_test = x[train], y[train], x[~train], y[~train]
    pairs = _balanced_pairs(x_test, y_test, num_pairs, np.random.default_rng(data_seed + 1))
    return x_train, y_train, x_test, y_test, train_identities, pairs


def _balanced_pairs(x, y, num_pairs, rng):
    """``num_pairs // 2`` same-identity and as many different-identity pairs, in shuffled order
    (same-identity pairs come from identities with at least two samples)."""
    half = num_pairs // 2
    ids = np.unique(y)
    by_id = {i: np.flatnonzero(y == i) for i in ids}
    repeated = np.array([i for i in ids if len(by_id[i]) >= 2])
    if len(repeated) == 0 or len(ids) < 2:
        raise ValueError("verification pairs need two identities and one identity with two samples")
    a_same, b_same = [], []
    for i in rng.choice(repeated, size=half):
        first, second = rng.choice(by_id[i], size=2, replace=False)
        a_same.append(first)
        b_same.append(second)
    a_diff, b_diff = [], []
    for _ in range(half):
        i, j = rng.choice(ids, size=2, replace=False)
        a_diff.append(rng.choice(by_id[i]))
        b_diff.append(rng.choice(by_id[j]))
    a = np.array(a_same + a_diff)
    b = np.array(b_same + b_diff)
    same = np.concatenate([np.ones(half, np.int32), np.zeros(half, np.int32)])
    order = rng.permutation(len(same))
    return x[a[order]], x[b[order]], same[order]


# ----------------------------------------------------------------------------- tfds sets


def _tfds_arrays(tfds_name, data_dir, download):
    """Both splits of a tfds image data set as uint8 NumPy arrays, plus the class count."""
    import tensorflow_datasets as tfds  # lazily: optional dependency, slow to import

    (train, test), info = tfds.load(
        tfds_name, split=["train", "test"], as_supervised=True, with_info=True, data_dir=data_dir, download=download
    )
    # Batched reads rather than batch_size=-1 (which aborts under tfds.testing.mock_data).
    x_train, y_train = _to_numpy(tfds, train)
    x_test, y_test = _to_numpy(tfds, test)
    num_classes = int(info.features["label"].num_classes)
    arrays = [np.asarray(x_train, np.uint8), np.asarray(y_train, np.int32).reshape(-1),
              np.asarray(x_test, np.uint8), np.asarray(y_test, np.int32).reshape(-1)]
    if tfds_name.startswith("emnist"):
        # tfds stores EMNIST transposed; put the characters upright like MNIST.
        arrays[0] = np.ascontiguousarray(arrays[0].transpose(0, 2, 1, 3))
        arrays[2] = np.ascontiguousarray(arrays[2].transpose(0, 2, 1, 3))
    return (*arrays, num_classes)


def _open_set(opts, validation):
    """CIFAR-100 as an open-set verification set: train classes, and pairs of held-out classes."""
    x_train, y_train, x_test, y_test, total = _tfds_arrays("cifar100", opts["data_dir"], opts["download"])
    num_classes = total - int(opts["held_out_classes"])
    if not 2 <= num_classes < total:
        raise ValueError(f"`held_out_classes` must be in [1, {total - 2}], got {opts['held_out_classes']!r}")
    if validation:  # held-out *training* classes take the place of the test classes
        held = max(2, int(round(VALIDATION_FRACTION * num_classes)))
        num_classes -= held
        keep = y_train < num_classes + held
        x_test, y_test = x_train[keep], y_train[keep]
    train, test = y_train < num_classes, y_test >= num_classes
    x_train, y_train, x_test, y_test = x_train[train], y_train[train], x_test[test], y_test[test]
    pairs = _balanced_pairs(x_test.astype(np.float32) / 255.0, y_test, opts["num_pairs"],
                            np.random.default_rng(opts["data_seed"] + 1))
    return x_train, y_train, x_test, y_test, num_classes, pairs


def _to_numpy(tfds, dataset, chunk=10_000):
    xs, ys = [], []
    for x, y in tfds.as_numpy(dataset.batch(chunk)):
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _augment_cifar(image, seeds):
    """Pad 4 (zeros) + random 32×32 crop + random horizontal flip, stateless from ``seeds``."""
    shape = tf.shape(image)
    padded = tf.image.pad_to_bounding_box(image, 4, 4, shape[0] + 8, shape[1] + 8)
    cropped = tf.image.stateless_random_crop(padded, size=shape, seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(cropped, seed=seeds[1])


# ----------------------------------------------------------------------------- pipelines


def _scale(x):
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def _one_pass(x, y, batch_size, seed, augment, reshuffle, drop_remainder=False):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(max(1, len(x)), seed=seed, reshuffle_each_iteration=reshuffle)
    if augment is None:
        dataset = dataset.map(lambda a, b: (_scale(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        # One (2, 2) block of stateless seeds per example, a new stream every epoch, fixed by `seed`.
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=reshuffle).batch(4)
        dataset = tf.data.Dataset.zip((dataset, draws)).map(
            lambda pair, r: (augment(_scale(pair[0]), tf.reshape(tf.cast(r, tf.int32) % (2**31 - 1), (2, 2))),
                             pair[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def _train_pipeline(x, y, batch_size, seed, augment, epochs=None, first_epoch=0):
    """Reshuffled every iteration; or, with ``epochs``, epochs ``first_epoch … epochs-1`` in a row,
    each shuffled (and augmented) from its own seed, so a resumed run repeats the same batches."""
    if epochs is None:
        return _one_pass(x, y, batch_size, seed, augment, reshuffle=True).prefetch(tf.data.AUTOTUNE)
    dataset = None
    for epoch in range(first_epoch, epochs):
        # Whole batches only: a short last batch would be split unevenly across replicas, and
        # Keras' per-replica mean then no longer equals the global-batch mean.
        one = _one_pass(x, y, batch_size, seed * 1_000_003 + epoch, augment, reshuffle=False, drop_remainder=True)
        dataset = one if dataset is None else dataset.concatenate(one)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _test_pipeline(x, y, batch_size):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.map(lambda a, b: (_scale(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- entry point


def load_dataset(name=DEFAULT_DATASET, batch_size=32, seed=0, validation=False, eval_batch_size=None,
                 epochs=None, first_epoch=0, **options):
    """Loads data set ``name`` as a :class:`DatasetBundle` (see the module docstring).

    Args:
        name: one of ``DATASETS`` (default ``"digits"``).
        batch_size: training batch size.
        seed: shuffling and augmentation seed (the data themselves do not depend on it).
        validation: return a held-out part of the training split as ``test`` instead of the test
            split (10 %, stratified; by identity for verification sets).
        eval_batch_size: batch size of ``test`` (default ``max(batch_size, 256)``).
        epochs: if given, ``train`` holds epochs ``first_epoch … epochs-1`` back to back (use
            ``steps_per_epoch``), each shuffled and augmented from ``(seed, epoch)``: a run resumed
            at ``first_epoch`` sees exactly the batches the uninterrupted run saw. Default None:
            one epoch, reshuffled on every iteration.
        first_epoch: the first epoch in ``train`` when ``epochs`` is given.
        **options: per-data-set options, listed with their defaults in ``OPTIONS[name]``, e.g.
            ``imbalance_ratio`` (longtail, cifar*-lt), ``noise_rate`` (noisy-digits),
            ``data_dir`` (tfds sets).

    Raises:
        ValueError: unknown ``name`` (the message lists ``DATASETS``), unknown option, or a
            non-positive ``batch_size``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset `name`={name!r}; valid names are: {', '.join(DATASETS)}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    opts = check_options(name, options)
    eval_batch_size = eval_batch_size or max(int(batch_size), DEFAULT_EVAL_BATCH_SIZE)
    kind, pairs, augment, info = "classification", None, None, {}

    if name == "digits":
        x_train, y_train, x_test, y_test, num_classes = _digits(opts["split_seed"])
    elif name == "noisy-digits":
        x_train, y_train, x_test, y_test, num_classes = _digits(opts["split_seed"])
    elif name == "longtail":
        x_train, y_train, x_test, y_test, num_classes = _longtail(**opts)
    elif name == "verification":
        kind = "verification"
        x_train, y_train, x_test, y_test, num_classes, pairs = _verification(**opts, validation=validation)
    elif name == "cifar100-verification":
        kind, augment = "verification", _augment_cifar
        x_train, y_train, x_test, y_test, num_classes, pairs = _open_set(opts, validation)
    else:
        base = name[: -len("-lt")] if name.endswith("-lt") else name
        x_train, y_train, x_test, y_test, num_classes = _tfds_arrays(base, opts["data_dir"], opts["download"])
        if name.endswith("-lt"):
            head_count = max(1, len(y_train) // num_classes)  # 5000 on CIFAR-10, 500 on CIFAR-100
            keep, _ = long_tail_subsample(y_train, num_classes, opts["imbalance_ratio"], seed=opts["data_seed"],
                                          head_count=head_count)
            x_train, y_train = x_train[keep], y_train[keep]
            # What the profile asks for; a class with fewer examples (mock data) keeps all it has.
            info["long_tail_targets"] = long_tail_counts(head_count, num_classes, opts["imbalance_ratio"])
        if base.startswith("cifar"):
            augment = _augment_cifar

    if validation and kind == "classification":
        # Hold out part of the (possibly subsampled) training split; a class with a single
        # example cannot be stratified, so fall back to a plain split then.
        counts = np.bincount(y_train, minlength=num_classes)
        stratify = y_train if counts[counts > 0].min() >= 2 else None
        from sklearn.model_selection import train_test_split

        x_train, x_test, y_train, y_test = train_test_split(
            x_train, y_train, test_size=VALIDATION_FRACTION, stratify=stratify, random_state=SPLIT_SEED
        )

    if name == "noisy-digits":  # noise on the (remaining) training labels only; test labels clean
        info["clean_train_labels"] = y_train
        y_train, info["noisy_mask"] = symmetric_label_noise(y_train, num_classes, opts["noise_rate"],
                                                            seed=opts["data_seed"])

    info["train_class_counts"] = np.bincount(y_train, minlength=num_classes)[:num_classes]
    info["options"] = opts
    return DatasetBundle(
        name=name,
        train=_train_pipeline(x_train, y_train, int(batch_size), seed, augment, epochs, first_epoch),
        test=_test_pipeline(x_test, y_test, int(eval_batch_size)),
        num_classes=int(num_classes),
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        kind=kind,
        train_size=int(len(x_train)),
        test_size=int(len(x_test)),
        pairs=pairs,
        info=info,
    )
