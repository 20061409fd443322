"""Pools that are not float arrays in memory: uint8, memmaps, Datasets, h5py, zarr.

Check that every way of holding the same pool trains the same model bit for
bit, that lazy pools are read a meta-batch at a time and never whole, that
their bad values and items are refused naming the row, and that prefetching
and augmentation keep fits repeatable.
"""

import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset, IterableDataset, Subset

from sklearn_meta import (
    FineTuneClassifier,
    MAMLClassifier,
    MAMLRegressor,
    MANNClassifier,
    PrototypicalClassifier,
)
from sklearn_meta._data import _samples
from sklearn_meta.augment import (
    ColorJitter,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
)

from ._settings import fast

#: One learner of each family that trains on images: metric, gradient, memory.
FAMILIES = [PrototypicalClassifier, MAMLClassifier, MANNClassifier]


@pytest.fixture(scope="module")
def images():
    """300 digit images of 6 classes as uint8 ``(n, 1, 8, 8)``, and their labels."""
    digits = load_digits()
    keep = digits.target < 6
    u8 = np.round(digits.images[keep][:300] * 255 / 16).astype(np.uint8)[:, None]
    return u8, digits.target[keep][:300]


class PairDataset(Dataset):
    """A map-style Dataset of ``(x, label)`` pairs with torchvision's ``targets``."""

    def __init__(self, X, y, as_tensor=True):
        self.X, self.targets, self.as_tensor = X, y, as_tensor
        self.read = []

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.read.append(i)
        x = torch.from_numpy(self.X[i]) if self.as_tensor else self.X[i]
        return x, int(self.targets[i])


class CountingArray:
    """An array-like that records the rows each read asks for."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.reads = []

    def __len__(self):
        return len(self.array)

    def __getitem__(self, rows):
        rows = np.asarray(rows)
        self.reads.append(rows)
        return self.array[rows]


def _memmap(tmp_path, array):
    path = tmp_path / f"pool-{array.dtype}.dat"
    out = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
    out[:] = array
    out.flush()
    return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)


def _learner(cls, **overrides):
    params = {"device": "cpu", **overrides}
    if cls is MANNClassifier:
        params["max_classes"] = 6
    return fast(cls, **params)


def _state(learner):
    return {k: v.clone() for k, v in learner.module_.state_dict().items()}


def _assert_same_weights(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_uint8_samples_are_read_as_the_float32_division_by_255():
    """Check that uint8 intensities become exactly ``X.astype(np.float32) / 255``."""
    u8 = np.arange(256, dtype=np.uint8).reshape(256, 1, 1, 1)
    got = _samples(u8).tensor("cpu").numpy()
    assert np.array_equal(got, u8.astype(np.float32) / 255)
    assert got.tobytes() == (u8.astype(np.float32) / 255).tobytes()


# Scoring the training classes is what this test compares across sources.
@pytest.mark.filterwarnings("ignore::sklearn_meta.model_selection.SeenClassesWarning")
@pytest.mark.parametrize("cls", FAMILIES)
def test_every_way_of_holding_a_pool_trains_the_same_model(cls, images, tmp_path):
    """Check float32 and uint8 arrays, memmaps and a Dataset give identical fits."""
    u8, y = images
    if cls is MANNClassifier:  # its fast settings are those of a tabular learner
        u8 = u8.reshape(len(u8), -1)
    f32 = u8.astype(np.float32) / 255
    sources = {
        "uint8": u8,
        "uint8 memmap": _memmap(tmp_path, u8),
        "float32 memmap": _memmap(tmp_path, f32),
        "Dataset": PairDataset(u8, y),
    }
    reference = _learner(cls).fit(f32, y)
    expected = reference.predict_proba(f32[:40])
    score = reference.score(f32, y)
    adapted = reference.adapt(f32[:12], y[:12]).predict_proba(f32[12:30])
    for name, X in sources.items():
        fitted = _learner(cls).fit(X, None if name == "Dataset" else y)
        _assert_same_weights(reference, fitted)
        # Prediction over the pool adapts to the same samples, read in chunks.
        assert np.array_equal(fitted.predict_proba(f32[:40]), expected), name
        part = Subset(X, range(40)) if name == "Dataset" else X[:40]
        assert np.array_equal(fitted.predict_proba(part), expected), name
        # Episodic scoring and adaptation read the lazy pool as the array.
        assert fitted.score(X, y) == score, name
        support = Subset(X, range(12)) if name == "Dataset" else X[:12]
        query = Subset(X, range(12, 30)) if name == "Dataset" else X[12:30]
        assert np.array_equal(
            fitted.adapt(support, y[:12]).predict_proba(query), adapted
        ), name


def test_the_meta_validation_split_of_a_lazy_pool_is_the_same(images, tmp_path):
    """Check a memmap pool with ``train_split`` fits as its float32 copy does."""
    u8, y = images
    reference = _learner(PrototypicalClassifier, train_split=0.5).fit(
        u8.astype(np.float32) / 255, y
    )
    fitted = _learner(PrototypicalClassifier, train_split=0.5).fit(
        _memmap(tmp_path, u8), y
    )
    _assert_same_weights(reference, fitted)
    assert reference.history_[:, "valid_loss"] == fitted.history_[:, "valid_loss"]


def test_pretraining_on_a_lazy_pool_is_the_same(images, tmp_path):
    """Check FineTune's minibatch pre-training reads a memmap as the array."""
    u8, y = images
    reference = _learner(FineTuneClassifier).fit(u8.astype(np.float32) / 255, y)
    fitted = _learner(FineTuneClassifier).fit(_memmap(tmp_path, u8), y)
    _assert_same_weights(reference, fitted)


def test_a_regressor_reads_a_lazy_pool_as_the_array(tmp_path):
    """Check a float32 memmap regression pool fits as the array in memory."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5], np.float32)
    groups = np.repeat(np.arange(10), 20)
    reference = _learner(MAMLRegressor).fit(X, y, groups=groups)
    fitted = _learner(MAMLRegressor).fit(_memmap(tmp_path, X), y, groups=groups)
    _assert_same_weights(reference, fitted)
    assert np.array_equal(reference.predict(X[:5]), fitted.predict(X[:5]))


def test_each_training_step_reads_only_its_meta_batch(images):
    """Check fit reads each meta-batch's rows once per step, and never the pool."""
    u8, y = images
    pool = CountingArray(u8)
    learner = _learner(PrototypicalClassifier, meta_batch_size=2)
    learner.fit(pool, y)
    n_way, k_shot, n_query = learner.n_way, learner.k_shot, learner.n_query
    steps = learner.max_epochs * learner.episodes_per_epoch // 2
    # Support and query of each meta-batch: two reads per step, nothing else.
    assert len(pool.reads) == 2 * steps
    for support, query in zip(pool.reads[::2], pool.reads[1::2]):
        assert len(support) <= 2 * n_way * k_shot
        assert len(query) <= 2 * n_way * n_query
    read = np.unique(np.concatenate(pool.reads))
    assert len(read) < len(u8)
    # Predicting over the pool reads it in chunks, after fit.
    pool.reads.clear()
    learner.predict(u8[:3])
    assert len(pool.reads) >= 2 and max(len(r) for r in pool.reads) <= 256


def test_a_gradient_learner_adapts_to_a_sample_of_a_large_lazy_pool():
    """Check predict over a lazy pool reads the adaptation sample, not the pool."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    y = np.repeat(np.arange(5), 1000)
    pool = CountingArray(X)
    learner = _learner(MAMLClassifier).fit(pool, y)
    pool.reads.clear()
    learner.predict(X[:3])
    assert sum(len(np.unique(r)) for r in pool.reads) <= 2048


def test_prefetching_threads_do_not_change_the_fit(images, tmp_path):
    """Check num_workers reads ahead without changing a single weight."""
    u8, y = images
    X = _memmap(tmp_path, u8)
    serial = _learner(MAMLClassifier, meta_batch_size=2).fit(X, y)
    for workers in (1, 3):
        threaded = _learner(MAMLClassifier, meta_batch_size=2, num_workers=workers)
        _assert_same_weights(serial, threaded.fit(X, y))


def test_an_identity_augmentation_equals_none(images):
    """Check ``augment`` that returns its input leaves the fit unchanged."""
    u8, y = images
    plain = _learner(PrototypicalClassifier).fit(u8, y)
    same = _learner(PrototypicalClassifier, augment=lambda X: X).fit(u8, y)
    _assert_same_weights(plain, same)


def test_augmentation_is_drawn_from_random_state(images):
    """Check augmented fits repeat with a seed and differ from unaugmented ones."""
    u8, y = images
    augment = [RandomCrop(padding=2), RandomHorizontalFlip(), ColorJitter()]

    def fit(seed, augment):
        return _learner(PrototypicalClassifier, augment=augment, random_state=seed).fit(
            u8, y
        )

    first, again = fit(0, augment), fit(0, augment)
    _assert_same_weights(first, again)
    plain = fit(0, None)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(_state(first).values(), _state(plain).values())
    )


def test_augmentation_sees_only_training_episodes(images):
    """Check augment runs on training batches of images, never on predictions."""
    u8, y = images
    seen = []

    def record(X):
        seen.append(tuple(X.shape))
        return X

    learner = _learner(PrototypicalClassifier, augment=record).fit(u8, y)
    n_steps = learner.max_epochs * learner.episodes_per_epoch
    assert len(seen) == 2 * n_steps  # support and query of each meta-batch
    assert all(shape[1:] == (1, 8, 8) for shape in seen)
    seen.clear()
    learner.predict(u8[:5])
    learner.adapt(u8[:6], y[:6]).predict(u8[6:9])
    assert seen == []


@pytest.mark.parametrize(
    "transform",
    [
        RandomCrop(padding=3),
        RandomCrop(padding=2, padding_mode="reflect"),
        RandomResizedCrop(),
        RandomHorizontalFlip(),
        ColorJitter(0.5, 0.5, 0.5),
        Compose([RandomCrop(), RandomHorizontalFlip()]),
    ],
    ids=repr,
)
def test_an_augmentation_is_seeded_and_keeps_the_shape(transform):
    """Check the same generator seed gives the same batch, another seed another."""
    X = torch.rand(16, 3, 12, 12)

    def run(seed):
        return transform(X, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert a.shape == X.shape and a.dtype == X.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, X)


def test_the_augmentations_do_what_they_say():
    """Check flips mirror, crops shift, jitter stays in [0, 1], and no-ops are exact."""
    X = torch.rand(6, 3, 10, 10)
    assert torch.equal(RandomHorizontalFlip(p=1.0)(X), X.flip(-1))
    assert torch.equal(RandomHorizontalFlip(p=0.0)(X), X)
    assert torch.equal(RandomCrop(padding=0)(X), X)
    assert torch.equal(ColorJitter(0, 0, 0)(X), X)
    jittered = ColorJitter(2.0, 2.0, 2.0)(X)
    assert jittered.min() >= 0 and jittered.max() <= 1
    # A crop of a padded image is the image shifted: each output is a window
    # of the zero-padded input.
    out = RandomCrop(padding=2)(X, generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(X, (2, 2, 2, 2))
    windows = padded.unfold(2, 10, 1).unfold(3, 10, 1)  # (n, C, 5, 5, 10, 10)
    for i in range(len(X)):
        assert any(
            torch.equal(out[i], windows[i, :, dy, dx])
            for dy in range(5)
            for dx in range(5)
        )
    # The whole image as the box resamples to the image itself.
    full = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(X)
    assert torch.allclose(full, X, atol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RandomCrop(padding=-1), "padding must be an int >= 0"),
        (lambda: RandomCrop(padding_mode="wrap"), "padding_mode must be"),
        (lambda: RandomResizedCrop(scale=(0.9, 0.1)), "scale must be a pair"),
        (lambda: RandomHorizontalFlip(p=2), r"p must be a number in \[0.0, 1.0\]"),
        (lambda: ColorJitter(brightness=-1), "brightness must be a number"),
        (lambda: Compose([1]), r"augment\[0\] is a int"),
        (lambda: RandomCrop()(torch.zeros(2, 8)), "float tensor of images"),
    ],
)
def test_bad_augmentation_settings_are_refused(make, message):
    """Check every augmentation setting is validated with a useful message."""
    with pytest.raises(ValueError, match=message):
        make()


def test_augment_is_refused_for_tabular_samples():
    """Check augment on samples that are not images stops fit at once."""
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    with pytest.raises(ValueError, match="augment transforms images"):
        _learner(PrototypicalClassifier, augment=[RandomHorizontalFlip()]).fit(X, y)


def test_an_augmentation_that_changes_the_shape_is_refused(images):
    """Check a callable returning another shape stops training, naming both."""
    u8, y = images
    with pytest.raises(ValueError, match=r"augment must return a tensor of the shape"):
        _learner(PrototypicalClassifier, augment=lambda X: X[:, :, :4]).fit(u8, y)


# -- bad input -------------------------------------------------------------------


def test_dataset_items_must_be_pairs(images):
    """Check a Dataset whose items are not (x, label) is refused naming the item."""
    u8, y = images

    class Bare(PairDataset):
        def __getitem__(self, i):
            return self.X[i]

    with pytest.raises(
        ValueError, match=r"X\[0\] is a ndarray, but items of a Dataset"
    ):
        _learner(PrototypicalClassifier).fit(Bare(u8, y), y)


def test_dataset_items_of_another_shape_are_named(images):
    """Check an item whose sample differs from the first names its index."""
    u8, y = images

    class Ragged(PairDataset):
        def __getitem__(self, i):
            x, label = super().__getitem__(i)
            return (x[:, :4] if i >= 100 else x), label

    with pytest.raises(
        ValueError, match=r"X\[1\d\d\] holds a sample of shape \(1, 4, 8\)"
    ):
        _learner(PrototypicalClassifier).fit(Ragged(u8, y), y)


def test_a_dataset_without_labels_needs_y(images):
    """Check y=None with a Dataset that has no targets asks for y."""
    u8, y = images

    class Unlabelled(PairDataset):
        def __init__(self, X, y):
            super().__init__(X, y)
            del self.targets
            self.labels = y

        def __getitem__(self, i):
            return torch.from_numpy(self.X[i]), int(self.labels[i])

    with pytest.raises(ValueError, match="requires y to be passed"):
        _learner(PrototypicalClassifier).fit(Unlabelled(u8, y))


def test_an_iterable_dataset_is_refused():
    """Check a pool must be map-style: episodes read samples by index."""

    class Stream(IterableDataset):
        def __iter__(self):
            yield from ()

    with pytest.raises(TypeError, match="IterableDataset; a pool must be a map-style"):
        _learner(PrototypicalClassifier).fit(Stream(), np.arange(4))


def test_a_memmap_of_the_wrong_dtype_is_refused(images, tmp_path):
    """Check an integer memmap (not uint8) is refused with the dtypes expected."""
    u8, y = images
    X = _memmap(tmp_path, u8.astype(np.int64))
    with pytest.raises(ValueError, match=re.escape("has dtype int64; samples read")):
        _learner(PrototypicalClassifier).fit(X, y)


def test_non_finite_values_in_a_lazy_pool_name_the_row(images, tmp_path):
    """Check NaN in a memmap stops fit when read, naming the row."""
    u8, y = images
    f32 = u8.astype(np.float32) / 255
    f32[::2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[\d*[02468]\] contains NaN or infinity"):
        _learner(PrototypicalClassifier).fit(_memmap(tmp_path, f32), y)


def test_a_lazy_pool_of_the_wrong_sample_shape_is_refused(images, tmp_path):
    """Check predict on a memmap of other samples names both shapes."""
    u8, y = images
    learner = _learner(PrototypicalClassifier).fit(u8, y)
    other = _memmap(tmp_path, np.zeros((5, 1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"samples of shape \(1, 4, 4\), but"):
        learner.predict(other)


# -- h5py and zarr -----------------------------------------------------------------


def test_an_h5py_dataset_is_a_pool(images, tmp_path):
    """Check an HDF5 dataset trains as the array in memory."""
    h5py = pytest.importorskip("h5py")
    u8, y = images
    with h5py.File(tmp_path / "pool.h5", "w") as f:
        f["X"] = u8
    with h5py.File(tmp_path / "pool.h5", "r") as f:
        fitted = _learner(PrototypicalClassifier).fit(f["X"], y)
        proba = fitted.predict_proba(f["X"])
    reference = _learner(PrototypicalClassifier).fit(u8, y)
    _assert_same_weights(reference, fitted)
    assert np.array_equal(proba, reference.predict_proba(u8))


def test_a_zarr_array_is_a_pool(images, tmp_path):
    """Check a zarr array trains as the array in memory."""
    zarr = pytest.importorskip("zarr")
    u8, y = images
    z = zarr.open_array(
        str(tmp_path / "pool.zarr"), mode="w", shape=u8.shape, dtype=u8.dtype
    )
    z[:] = u8
    fitted = _learner(PrototypicalClassifier).fit(z, y)
    reference = _learner(PrototypicalClassifier).fit(u8, y)
    _assert_same_weights(reference, fitted)


def test_uint8_tasks_are_read_as_uint8_pools_are(images):
    """Check fit(tasks) and scoring tasks divide uint8 samples by 255 too."""
    from sklearn_meta.tasks import sample_tasks

    u8, y = images
    tasks = sample_tasks(u8, y, n_tasks=6, n_way=3, k_shot=1, n_query=3, random_state=0)
    as_float = [
        t.__class__(
            t.X_support.astype(np.float32) / 255,
            t.y_support,
            t.X_query.astype(np.float32) / 255,
            t.y_query,
        )
        for t in tasks
    ]
    a = _learner(PrototypicalClassifier).fit(tasks)
    b = _learner(PrototypicalClassifier).fit(as_float)
    _assert_same_weights(a, b)
    assert np.array_equal(a.score(tasks), b.score(as_float))


def test_memmaps_are_read_from_their_files_row_for_row(images, tmp_path):
    """Check memmaps (raw, .npy, views of them) read the rows indexing gives."""
    from sklearn_meta._data import _FileRows, _lazy_samples

    u8, _ = images
    np.save(tmp_path / "pool.npy", u8)
    npy = np.load(tmp_path / "pool.npy", mmap_mode="r")  # data after a header
    raw = _memmap(tmp_path, u8)
    rows = np.array([[5, 6, 7, 89], [0, 0, 50, 6]])
    for X in (npy, raw, npy[10:], raw[::3], npy[:, :, 2:6]):
        samples = _lazy_samples(X)
        direct = _FileRows.of(X) is not None
        assert direct == (X is npy or X is raw)  # views are indexed instead
        expected = torch.from_numpy(np.asarray(X)[rows].astype(np.float32) / 255)
        assert torch.equal(samples.gather(rows, "cpu"), expected)
    # A file cut short after the memmap was opened is named, not misread.
    reader = _FileRows.of(raw)
    with open(raw.filename, "r+b") as f:
        f.truncate(100 * 64)
    with pytest.raises(ValueError, match="ends before row 200"):
        reader[np.array([1, 200])]
