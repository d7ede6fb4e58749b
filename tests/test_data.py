"""models/data.py: every data set's shapes, dtypes, class counts, determinism and special structure.

The tfds data sets run on ``tfds.testing.mock_data`` (random images and labels, no download).
"""

import inspect

import numpy as np
import pytest

from models import data
from models.data import DATASETS, load_dataset, long_tail_counts
from tests.harness import assert_value_error

tfds = pytest.importorskip("tensorflow_datasets")


def _arrays(dataset):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(xs), np.concatenate(ys)


def _check_batches(bundle, batch_size):
    x, y = next(iter(bundle.train))
    assert x.shape == (min(batch_size, bundle.train_size), *bundle.input_shape)
    assert x.dtype == "float32" and y.dtype == "int32" and y.shape == (x.shape[0],)
    x_test, y_test = _arrays(bundle.test)
    assert x_test.shape == (bundle.test_size, *bundle.input_shape) and y_test.dtype == np.int32
    return x_test, y_test


# ----------------------------------------------------------------------------- names and options


def test_names_and_unknown_name():
    assert DATASETS == ("digits", "longtail", "noisy-digits", "verification", "mnist", "emnist/balanced",
                        "cifar10", "cifar100", "cifar10-lt", "cifar100-lt", "cifar100-verification")
    assert inspect.signature(load_dataset).parameters["name"].default == "digits"
    error = assert_value_error("name", load_dataset, "imagenet", 32)
    assert "'imagenet'" in str(error) and all(name in str(error) for name in DATASETS)


def test_bad_options_raise():
    assert_value_error("noise", load_dataset, "digits", 32, noise=0.1)  # digits takes no noise option
    assert_value_error("imbalance_ratio", load_dataset, "longtail", 32, imbalance_ratio=0.5)
    assert_value_error("noise_rate", load_dataset, "noisy-digits", 32, noise_rate=1.0)
    assert_value_error("batch_size", load_dataset, "digits", 0)


def test_long_tail_counts_match_ldam_cifar_lt():
    """The exponential profile n_k = ⌊n_max·r^(−k/(C−1))⌋ gives LDAM's CIFAR-LT sizes."""
    np.testing.assert_array_equal(long_tail_counts(5000, 10, 100), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    assert long_tail_counts(5000, 10, 10).sum() == 20431
    assert long_tail_counts(500, 100, 100).sum() == 10847
    assert long_tail_counts(500, 100, 10).sum() == 19573
    np.testing.assert_array_equal(long_tail_counts(500, 10, 1), [500] * 10)


# ----------------------------------------------------------------------------- embedded


def test_digits_shapes_scaling_and_split():
    bundle = load_dataset("digits", batch_size=32, seed=0)
    assert (bundle.name, bundle.kind, bundle.num_classes, bundle.input_shape) == ("digits", "classification", 10, (8, 8, 1))
    assert (bundle.train_size, bundle.test_size) == (1257, 540) and bundle.pairs is None
    x_test, y_test = _check_batches(bundle, 32)
    x_train, y_train = _arrays(bundle.train)
    assert x_train.shape == (1257, 8, 8, 1) and x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train).min() >= 122 and np.bincount(y_test).min() >= 52  # stratified
    np.testing.assert_array_equal(np.bincount(y_train), bundle.info["train_class_counts"])
    # The training set covers each example once per epoch; the test set is in a fixed order.
    assert len({x.tobytes() for x in x_train} | {x.tobytes() for x in x_test}) >= 1790
    np.testing.assert_array_equal(_arrays(bundle.test)[1], y_test)


def test_shuffling_is_determined_by_seed():
    first = [y.numpy() for _, y in load_dataset("digits", 64, seed=3).train]
    again = load_dataset("digits", 64, seed=3)
    epoch1 = [y.numpy() for _, y in again.train]
    epoch2 = [y.numpy() for _, y in again.train]
    other = [y.numpy() for _, y in load_dataset("digits", 64, seed=4).train]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(epoch1))
    assert not np.array_equal(np.concatenate(epoch1), np.concatenate(epoch2))  # reshuffled each epoch
    assert not np.array_equal(np.concatenate(first), np.concatenate(other))
    # The data themselves do not depend on the seed.
    assert sorted(np.concatenate(first)) == sorted(np.concatenate(other))


def test_validation_holds_out_part_of_train():
    bundle = load_dataset("digits", 32, validation=True)
    assert bundle.train_size + bundle.test_size == 1257 and bundle.test_size == 126
    x_val, _ = _arrays(bundle.test)
    x_test, _ = _arrays(load_dataset("digits", 32).test)
    assert not {x.tobytes() for x in x_val} & {x.tobytes() for x in x_test}  # never the test split


@pytest.mark.parametrize("ratio", [10, 100])
def test_longtail_counts_follow_the_ratio(ratio):
    kwargs = {} if ratio == 10 else {"imbalance_ratio": ratio}
    bundle = load_dataset("longtail", 64, **kwargs)
    assert bundle.num_classes == 10 and bundle.input_shape == (32,)
    _, y_test = _check_batches(bundle, 64)
    _, y_train = _arrays(bundle.train)
    counts = np.bincount(y_train, minlength=10)
    np.testing.assert_array_equal(counts, long_tail_counts(500, 10, ratio))
    assert counts[0] / counts[-1] == pytest.approx(ratio) and np.all(np.diff(counts) < 0)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)  # balanced test set
    # Generated deterministically: same data for another seed.
    np.testing.assert_array_equal(_arrays(load_dataset("longtail", 64, seed=5, **kwargs).test)[0], _arrays(bundle.test)[0])


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_noisy_digits_flips_train_labels_only(rate):
    kwargs = {} if rate == 0.2 else {"noise_rate": rate}
    bundle = load_dataset("noisy-digits", 32, **kwargs)
    clean = bundle.info["clean_train_labels"]
    noisy = data.symmetric_label_noise(clean, 10, rate, seed=0)[0]
    np.testing.assert_array_equal(bundle.info["noisy_mask"], noisy != clean)
    assert np.mean(noisy != clean) == pytest.approx(rate, abs=1 / len(clean))
    # Flipped labels go to every other class (symmetric noise), roughly uniformly.
    for k in range(10):
        targets = noisy[(clean == k) & (noisy != clean)]
        assert k not in targets and len(np.unique(targets)) >= 5
    # The pipeline serves the noisy labels; the test labels are digits' clean ones.
    _, y_train = _arrays(bundle.train)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.bincount(noisy, minlength=10))
    clean_test = _arrays(load_dataset("digits", 32).test)
    noisy_test = _arrays(bundle.test)
    np.testing.assert_array_equal(noisy_test[1], clean_test[1])
    np.testing.assert_array_equal(noisy_test[0], clean_test[0])


def test_verification_identities_disjoint_and_pairs_balanced():
    bundle = load_dataset("verification", 64)
    assert bundle.kind == "verification" and "disjoint" in data.__doc__
    assert (bundle.num_classes, bundle.input_shape, bundle.train_size, bundle.test_size) == (200, (64,), 4000, 1000)
    x_test, y_test = _check_batches(bundle, 64)
    _, y_train = _arrays(bundle.train)
    np.testing.assert_array_equal(np.bincount(y_train), [20] * 200)
    assert set(y_test) == set(range(200, 250)) and not set(y_train) & set(y_test)
    x_a, x_b, same = bundle.pairs
    assert x_a.shape == x_b.shape == (1000, 64) and same.shape == (1000,) and same.sum() == 500
    rows = {x.tobytes(): y for x, y in zip(x_test, y_test)}
    ids_a = np.array([rows[x.tobytes()] for x in x_a])  # every pair is made of test identities
    ids_b = np.array([rows[x.tobytes()] for x in x_b])
    np.testing.assert_array_equal(ids_a == ids_b, same.astype(bool))
    assert not np.any(np.all(x_a == x_b, axis=1))  # a same pair is two different samples
    # Same pairs are closer than different ones in input space, but nuisance variation keeps raw
    # distances a poor verifier (pair AUC 0.67; a trained embedding-net's features reach 0.96).
    distance = np.linalg.norm(x_a - x_b, axis=1)
    assert 0.8 * distance[same == 0].mean() < distance[same == 1].mean() < 0.95 * distance[same == 0].mean()
    again = load_dataset("verification", 64, seed=7).pairs
    for a, b in zip(bundle.pairs, again):
        np.testing.assert_array_equal(a, b)


def test_verification_validation_splits_by_identity():
    bundle = load_dataset("verification", 64, validation=True)
    _, y_train = _arrays(bundle.train)
    _, y_val = _arrays(bundle.test)
    assert bundle.num_classes == 180 and set(y_train) == set(range(180)) and set(y_val) == set(range(180, 200))
    assert bundle.pairs[2].sum() == 500


# ----------------------------------------------------------------------------- tfds (mock data)


@pytest.mark.parametrize("validation", [False, True])
def test_cifar100_verification_is_open_set(validation):
    """Train on the first classes' training images; pairs and test come from classes never trained on."""
    with tfds.testing.mock_data(num_examples=400):
        bundle = load_dataset("cifar100-verification", batch_size=16, validation=validation)
        raw_train, raw_labels, raw_test, raw_test_labels, _ = data._tfds_arrays("cifar100", None, True)
    trained = 80 if not validation else 72
    assert (bundle.kind, bundle.num_classes, bundle.input_shape) == ("verification", trained, (32, 32, 3))
    x_test, y_test = _arrays(bundle.test)
    _, y_train = _arrays(bundle.train)
    assert y_train.max() < trained <= y_test.min()
    held = (raw_test_labels >= 80) if not validation else ((raw_labels >= 72) & (raw_labels < 80))
    assert bundle.test_size == held.sum() and bundle.train_size == (raw_labels < trained).sum()
    x_a, x_b, same = bundle.pairs
    assert x_a.shape == x_b.shape == (1000, 32, 32, 3) and x_a.dtype == np.float32 and same.sum() == 500
    rows = {x.tobytes(): y for x, y in zip(x_test, y_test)}  # pairs are scaled test images, labelled right
    np.testing.assert_array_equal([rows[a.tobytes()] == rows[b.tobytes()] for a, b in zip(x_a, x_b)], same == 1)
    with tfds.testing.mock_data(num_examples=8):
        assert_value_error("held_out_classes", load_dataset, "cifar100-verification", 16, held_out_classes=99)

TFDS_SHAPES = {"mnist": ((28, 28, 1), 10), "emnist/balanced": ((28, 28, 1), 47),
               "cifar10": ((32, 32, 3), 10), "cifar100": ((32, 32, 3), 100)}


@pytest.mark.parametrize("name", list(TFDS_SHAPES))
def test_tfds_datasets_on_mock_data(name):
    shape, classes = TFDS_SHAPES[name]
    with tfds.testing.mock_data(num_examples=48):
        bundle = load_dataset(name, batch_size=16, seed=0)
    assert (bundle.kind, bundle.num_classes, bundle.input_shape) == ("classification", classes, shape)
    assert bundle.train_size == bundle.test_size == 48
    x_test, y_test = _check_batches(bundle, 16)
    x_train, y_train = _arrays(bundle.train)
    for x in (x_train, x_test):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9  # scaled /255
    assert 0 <= y_train.min() and y_train.max() < classes


def test_cifar_augmentation_keeps_shapes_and_is_seeded():
    with tfds.testing.mock_data(num_examples=32):
        bundle = load_dataset("cifar10", batch_size=32, seed=1)
        again = load_dataset("cifar10", batch_size=32, seed=1)
        mnist = load_dataset("mnist", batch_size=32, seed=1)
    x_test, _ = _arrays(bundle.test)
    epoch1 = next(iter(bundle.train))[0].numpy()
    epoch2 = next(iter(bundle.train))[0].numpy()
    assert epoch1.shape == (32, 32, 32, 3) and epoch1.min() >= 0.0 and epoch1.max() <= 1.0
    np.testing.assert_array_equal(epoch1, next(iter(again.train))[0].numpy())  # same seed, same draws
    assert not np.array_equal(np.sort(epoch1.reshape(-1)), np.sort(epoch2.reshape(-1)))  # new draws per epoch
    # Augmented images are crops/flips of the originals: not all of them are untouched.
    originals = {x.tobytes() for x in x_test}
    assert sum(x.tobytes() in originals for x in epoch1) < 32
    # The zero padding shows up as black borders in shifted crops.
    assert np.any(epoch1[:, 0, :, :].max(axis=(1, 2)) == 0.0) or np.any(epoch1[:, :, 0, :].max(axis=(1, 2)) == 0.0)
    # MNIST is not augmented: every training image is an original mock image, scaled.
    with tfds.testing.mock_data(num_examples=32):
        raw, *_ = data._tfds_arrays("mnist", None, True)
    originals = {x.tobytes() for x in (raw.astype(np.float32) / 255.0)}
    assert all(x.tobytes() in originals for x in _arrays(mnist.train)[0])


def test_resumed_cifar_pipeline_repeats_the_augmented_batches():
    """With ``epochs``, a pipeline started at ``first_epoch`` yields exactly the shuffled and
    augmented batches of those epochs in an uninterrupted pipeline (what resuming relies on)."""
    with tfds.testing.mock_data(num_examples=32):
        whole = load_dataset("cifar10", batch_size=16, seed=5, epochs=3)
        resumed = load_dataset("cifar10", batch_size=16, seed=5, epochs=3, first_epoch=2)
    whole_batches = [(x.numpy(), y.numpy()) for x, y in whole.train]
    resumed_batches = [(x.numpy(), y.numpy()) for x, y in resumed.train]
    assert len(whole_batches) == 3 * 2 and len(resumed_batches) == 2
    for (x_a, y_a), (x_b, y_b) in zip(whole_batches[4:], resumed_batches, strict=True):
        np.testing.assert_array_equal(x_a, x_b)
        np.testing.assert_array_equal(y_a, y_b)
    assert not np.array_equal(whole_batches[0][0], whole_batches[2][0])  # each epoch draws anew


@pytest.mark.parametrize("name, classes, ratio", [("cifar10-lt", 10, 100), ("cifar100-lt", 100, 10)])
def test_cifar_lt_counts_on_mock_data(name, classes, ratio):
    """Class k keeps min(⌊n_max·r^(−k/(C−1))⌋, available_k), n_max = train size / C; mock labels are random."""
    kwargs = {} if ratio == 100 else {"imbalance_ratio": ratio}
    with tfds.testing.mock_data(num_examples=1000):
        _, y_full, *_ = data._tfds_arrays(name[:-3], None, True)
        bundle = load_dataset(name, batch_size=64, seed=0, **kwargs)
        again = load_dataset(name, batch_size=64, seed=1, **kwargs)
    assert bundle.num_classes == classes and bundle.input_shape == (32, 32, 3)
    targets = long_tail_counts(1000 // classes, classes, ratio)
    np.testing.assert_array_equal(bundle.info["long_tail_targets"], targets)
    expected = np.minimum(targets, np.bincount(y_full, minlength=classes))
    assert expected.sum() < targets.sum() or classes == 10  # mock CIFAR-100 has too few of some classes
    x_train, y_train = _arrays(bundle.train)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=classes), expected)
    assert bundle.train_size == expected.sum() and bundle.test_size == 1000  # test split untouched
    assert x_train.shape == (expected.sum(), 32, 32, 3) and x_train.max() <= 1.0
    # The subsample is fixed (data_seed), not drawn with the training seed.
    np.testing.assert_array_equal(np.sort(y_train), np.sort(_arrays(again.train)[1]))

