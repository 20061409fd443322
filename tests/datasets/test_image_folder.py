"""Tests of load_image_folder: layout, lazy reads, the on-disk cache and errors."""

import functools
import multiprocessing
import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing

from sklearn_meta.datasets import (
    ImageFolderArray,
    _image_cache,
    _image_folder,
    load_image_folder,
)

# --------------------------------------------------------------------------- #
# Folders of PNG files, written from sklearn's 8x8 digits
# --------------------------------------------------------------------------- #

# Class folder of each digit, nested one level: sorted, the classes are
# high/digit2, high/digit3, low/digit0, low/digit1.
_CLASSES = {0: "low/digit0", 1: "low/digit1", 2: "high/digit2", 3: "high/digit3"}
_PER_CLASS = 3


@functools.cache
def _digit_images(n_per_class=_PER_CLASS):
    """Digits 0 to 3 as uint8 images ``(8, 8)`` in 0..255, by digit."""
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    return {d: images[digits.target == d][:n_per_class] for d in _CLASSES}


def _write(path, image):
    """Save a PIL image or a uint8 array (greyscale) as ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path)


@pytest.fixture
def folder(tmp_path):
    """A folder of 12 digit PNGs in 4 nested classes, with files to ignore.

    Returns the folder, the images in sorted order ``(12, 1, 8, 8)`` and their
    classes.
    """
    root = tmp_path / "digits"
    expected, target = [], []
    for digit, images in _digit_images().items():
        for i, image in enumerate(images):
            _write(root / _CLASSES[digit] / f"{i:03d}.png", image)
    for name in sorted(_CLASSES.values()):
        digit = next(d for d, n in _CLASSES.items() if n == name)
        expected.extend(_digit_images()[digit])
        target.extend([name] * _PER_CLASS)
    # Hidden files and folders, and other extensions, are not images.
    (root / "low" / "digit1" / "notes.txt").write_text("not an image")
    (root / "low" / "digit1" / ".hidden.png").write_bytes(b"not an image")
    _write(root / ".thumbnails" / "x" / "0.png", np.zeros((8, 8), np.uint8))
    return root, np.stack(expected)[:, None], np.asarray(target)


@pytest.fixture
def decodes(monkeypatch):
    """The file names ``_decode_image`` is called with, in order."""
    calls = []
    decode = _image_folder._decode_image

    def counting(filename, mode, image_size):
        calls.append(filename)
        return decode(filename, mode, image_size)

    monkeypatch.setattr(_image_folder, "_decode_image", counting)
    return calls


@pytest.fixture
def headers(monkeypatch):
    """The file names ``_read_header`` is called with, in order."""
    calls = []
    read_header = _image_folder._read_header

    def counting(filename):
        calls.append(filename)
        return read_header(filename)

    monkeypatch.setattr(_image_folder, "_read_header", counting)
    return calls


def _pillow(path, mode, size):
    """What Pillow gives for ``path`` converted to ``mode``, resized to (h, w)."""
    with Image.open(path) as image:
        image = image.convert(mode)
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _cache_files(cache):
    return sorted(p.name for p in cache.iterdir())


# --------------------------------------------------------------------------- #
# Layout, order and values
# --------------------------------------------------------------------------- #


def test_load_image_folder_lists_nested_classes_in_sorted_order(folder, tmp_path):
    """Check that classes are relative leaf paths, sorted, and files sorted in each."""
    root, _, target = folder
    bunch = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert set(bunch) == {"data", "target", "target_names", "filenames", "DESCR"}
    assert list(bunch.target_names) == [
        "high/digit2",
        "high/digit3",
        "low/digit0",
        "low/digit1",
    ]
    np.testing.assert_array_equal(bunch.target, target)
    expected = [
        str(root.resolve() / name / f"{i:03d}.png")
        for name in bunch.target_names
        for i in range(_PER_CLASS)
    ]
    assert list(bunch.filenames) == expected
    np.testing.assert_array_equal(bunch.data.filenames, bunch.filenames)
    np.testing.assert_array_equal(bunch.data.targets, target)  # torchvision's name
    assert "12 images of 4 classes" in bunch.DESCR


def test_load_image_folder_sorts_classes_by_name_not_by_walk(tmp_path):
    """Check that class "a-c" comes before "a/b", as sorted names do ("-" < "/")."""
    for name in ["a/b", "a-c", "B"]:
        _write(tmp_path / "root" / name / "0.png", np.zeros((4, 4), np.uint8))
    # Extensions are compared without regard to case.
    _write(tmp_path / "root" / "B" / "1.PNG", np.zeros((4, 4), np.uint8))
    X, y = load_image_folder(
        tmp_path / "root", cache_dir=tmp_path / "cache", return_X_y=True
    )
    assert isinstance(X, ImageFolderArray)
    assert list(y) == ["B", "B", "a-c", "a/b"]


def test_load_image_folder_returns_uint8_channels_first_images(folder, tmp_path):
    """Check the array's shape, dtype and pixels: those of the PNGs, in order."""
    root, expected, _ = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    assert data.shape == (12, 1, 8, 8)
    assert data.dtype == np.uint8 and data.ndim == 4 and len(data) == 12
    assert data.image_size == (8, 8) and data.mode == "L"
    assert repr(data) == "ImageFolderArray(n_samples=12, image_size=(8, 8), mode='L')"
    first = data[0]
    assert first.shape == (1, 8, 8) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, expected[0])
    np.testing.assert_array_equal(data[:], expected)


def test_load_image_folder_converts_and_resizes_as_pillow(tmp_path):
    """Check mixed sizes and modes against Pillow's convert then bilinear resize."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mixed"
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    colour = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    _write(root / "a" / "0.png", grey)  # first image: "L", 8x8
    _write(root / "a" / "1.png", Image.fromarray(colour))  # RGB, 10x12
    _write(root / "a" / "2.jpg", Image.fromarray(colour))  # JPEG
    _write(root / "b" / "0.png", Image.fromarray(colour).convert("RGBA"))
    _write(root / "b" / "1.gif", Image.fromarray(colour).convert("P"))  # palette
    _write(root / "b" / "2.bmp", Image.fromarray(grey > 128))  # mode "1"
    files = sorted(root.glob("*/*"))

    # None: the first image's size, and "L" because it is greyscale.
    bunch = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert bunch.data.shape == (6, 1, 8, 8)
    for i, path in enumerate(files):
        np.testing.assert_array_equal(bunch.data[i], _pillow(path, "L", (8, 8)))
    np.testing.assert_array_equal(bunch.data[0], grey[None])

    # Explicit non-square size (height 5, width 9) and colour.
    data = load_image_folder(
        root, size=(5, 9), mode="RGB", cache_dir=tmp_path / "cache"
    ).data
    assert data.shape == (6, 3, 5, 9)
    for i, path in enumerate(files):
        np.testing.assert_array_equal(data[i], _pillow(path, "RGB", (5, 9)))
    rgba = load_image_folder(root, size=4, mode="RGBA", cache_dir=tmp_path / "cache")
    assert rgba.data.shape == (6, 4, 4, 4)
    np.testing.assert_array_equal(rgba.data[3], _pillow(files[3], "RGBA", (4, 4)))


@pytest.mark.parametrize(
    "first_mode, expected_mode",
    [("RGB", "RGB"), ("P", "RGB"), ("LA", "L"), ("I;16", "L"), ("1", "L")],
)
def test_load_image_folder_default_mode_follows_the_first_image(
    tmp_path, first_mode, expected_mode
):
    """Check that mode=None is "L" for a greyscale first image, else "RGB"."""
    first = Image.new("L", (6, 4), 100).convert(first_mode)
    _write(tmp_path / "root" / "a" / "0.png", first)
    _write(tmp_path / "root" / "b" / "0.png", Image.new("RGB", (3, 3), (1, 2, 3)))
    data = load_image_folder(tmp_path / "root", cache_dir=tmp_path / "cache").data
    assert data.mode == expected_mode
    assert data.shape == (2, 1 if expected_mode == "L" else 3, 4, 6)


# --------------------------------------------------------------------------- #
# Indexing reads only the requested images
# --------------------------------------------------------------------------- #


def test_image_folder_array_indexing_reads_only_requested_images(
    folder, tmp_path, decodes
):
    """Check every kind of key against NumPy's, decoding each new image once."""
    root, expected, _ = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    assert decodes == []  # loading reads headers, not pixels

    np.testing.assert_array_equal(data[5], expected[5])
    np.testing.assert_array_equal(data[np.int64(-1)], expected[-1])
    assert len(decodes) == 2
    np.testing.assert_array_equal(data[2:5], expected[2:5])
    assert len(decodes) == 5  # 5 (read before) is not decoded again
    np.testing.assert_array_equal(data[[7, 7, -12, 5]], expected[[7, 7, 0, 5]])
    assert len(decodes) == 7  # 7 and 0, once each
    order = np.array([9, 8, 9, 1])
    np.testing.assert_array_equal(data[order], expected[order])
    assert len(decodes) == 10
    np.testing.assert_array_equal(data[np.uint8(8)], expected[8])
    mask = np.zeros(12, dtype=bool)
    mask[[3, 10]] = True
    np.testing.assert_array_equal(data[mask], expected[mask])
    assert len(decodes) == 11
    assert data[[]].shape == (0, 1, 8, 8)
    assert data[10:10].shape == (0, 1, 8, 8)
    np.testing.assert_array_equal(data[6, 0, 2], expected[6, 0, 2])
    assert len(decodes) == 12
    np.testing.assert_array_equal(data[[6, 2], ..., 1], expected[[6, 2], ..., 1])
    np.testing.assert_array_equal(data[(6, 2), 0], expected[(6, 2), 0])
    assert len(decodes) == 12
    np.testing.assert_array_equal(np.stack(list(data)), expected)  # iteration
    assert len(set(decodes)) == 12  # every image decoded exactly once


def test_image_folder_array_works_with_train_test_split(folder, tmp_path, decodes):
    """Check that sklearn's indexing (data[indices, ...]) reads the right images."""
    root, expected, target = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    X_train, _, y_train, _ = train_test_split(
        data, target, train_size=4, random_state=0
    )
    train, _ = train_test_split(np.arange(12), train_size=4, random_state=0)
    np.testing.assert_array_equal(X_train, expected[train])
    np.testing.assert_array_equal(y_train, target[train])
    assert len(decodes) == len(set(decodes)) == 12  # train, then test, once each
    decodes.clear()
    part = _safe_indexing(data, [11, 2])
    np.testing.assert_array_equal(part, expected[[11, 2]])
    assert decodes == []


@pytest.mark.parametrize(
    "key, error, message",
    [
        (12, IndexError, "Index 12 is out of bounds for ImageFolderArray with 12"),
        (-13, IndexError, "Index -13 is out of bounds"),
        ([0, 12], IndexError, "Index 12 is out of bounds"),
        (np.zeros(11, bool), IndexError, "boolean index has length 11, but .* 12"),
        (np.zeros((2, 2), int), IndexError, r"1-D array of indices; .* \(2, 2\)"),
        ([0.5], IndexError, "must be integers or booleans; got .* float64"),
        ((), IndexError, "needs an index for the samples"),
        (1.0, TypeError, "indices must be an int, a slice, .* got float 1.0"),
        ("0", TypeError, "got str '0'"),
        (None, TypeError, "got NoneType None"),
        (Ellipsis, TypeError, "got ellipsis Ellipsis"),
        (True, TypeError, "got bool True"),
    ],
)
def test_image_folder_array_raises_for_bad_keys(folder, tmp_path, key, error, message):
    """Check that keys other than ints, slices and 1-D int arrays are refused."""
    data = load_image_folder(folder[0], cache_dir=tmp_path / "cache").data
    with pytest.raises(error, match=message):
        data[key]


def test_np_asarray_reads_every_image(folder, tmp_path, decodes):
    """Check that np.asarray materialises the images, in any requested dtype."""
    root, expected, _ = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    array = np.asarray(data)
    assert type(array) is np.ndarray and array.flags.writeable
    np.testing.assert_array_equal(array, expected)
    assert len(decodes) == 12
    floats = np.asarray(data, dtype=np.float32)
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats, expected)
    assert len(decodes) == 12
    with pytest.raises(ValueError, match="cannot be converted to an array without"):
        np.asarray(data, copy=False)


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #


def test_load_image_folder_second_load_reads_neither_headers_nor_pixels(
    folder, tmp_path, decodes, headers
):
    """Check that a fresh cache is reused: no header pass, nothing decoded."""
    root, expected, _ = folder
    cache = tmp_path / "cache"
    first = load_image_folder(root, cache_dir=cache)
    assert len(headers) == 12
    np.asarray(first.data)
    assert len(decodes) == 12
    files = _cache_files(cache)
    assert len(files) == 3  # manifest, pixels, flags

    second = load_image_folder(root, cache_dir=cache)
    np.testing.assert_array_equal(np.asarray(second.data), expected)
    assert len(headers) == 12 and len(decodes) == 12
    assert _cache_files(cache) == files
    # An int size names the same cache as the (height, width) pair.
    load_image_folder(root, size=8, cache_dir=cache)
    load_image_folder(root, size=(8, 8), cache_dir=cache)
    assert len(_cache_files(cache)) == 6


def _change_mtime(root):
    path = root / "low" / "digit0" / "001.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _replace_image(root):
    path = root / "low" / "digit0" / "001.png"
    stat = path.stat()
    _write(path, np.full((8, 8), 7, np.uint8))
    # Same modification time: the byte size tells.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _add_image(root):
    _write(root / "low" / "digit0" / "003.png", np.full((8, 8), 9, np.uint8))


def _remove_image(root):
    (root / "high" / "digit2" / "000.png").unlink()


@pytest.mark.parametrize(
    "change, n_samples",
    [(_change_mtime, 12), (_replace_image, 12), (_add_image, 13), (_remove_image, 11)],
)
def test_load_image_folder_rebuilds_the_cache_when_files_change(
    folder, tmp_path, decodes, headers, change, n_samples
):
    """Check that a touched, replaced, added or removed file gives a new cache."""
    root, _, _ = folder
    cache = tmp_path / "cache"
    before = load_image_folder(root, cache_dir=cache)
    np.asarray(before.data)
    old = _cache_files(cache)

    change(root)
    after = load_image_folder(root, cache_dir=cache)
    assert len(headers) == 12 + n_samples  # the header pass ran again
    pixels = np.asarray(after.data)
    assert len(decodes) == 12 + n_samples  # nothing came from the old cache
    assert len(after.data) == n_samples
    for i, path in enumerate(after.filenames):
        np.testing.assert_array_equal(pixels[i], _pillow(path, "L", (8, 8)))
    # The stale cache is gone; the new one has the same three files.
    new = _cache_files(cache)
    assert len(new) == 3 and not set(new) & set(old)
    prefix = old[0].split("-")[0]
    assert all(name.startswith(prefix) for name in new)


def test_load_image_folder_keeps_caches_of_other_sizes_and_folders(folder, tmp_path):
    """Check that only the changed folder's cache at that size is replaced."""
    root, _, _ = folder
    cache = tmp_path / "cache"
    other = tmp_path / "other"
    _write(other / "a" / "0.png", np.zeros((4, 4), np.uint8))
    _write(other / "b" / "0.png", np.zeros((4, 4), np.uint8))
    load_image_folder(root, cache_dir=cache)
    load_image_folder(root, size=4, cache_dir=cache)
    load_image_folder(other, cache_dir=cache)
    kept = set(_cache_files(cache))
    _add_image(root)
    load_image_folder(root, cache_dir=cache)
    now = set(_cache_files(cache))
    assert len(now) == 9 and len(kept - now) == 3


def test_load_image_folder_resumes_an_interrupted_fill(folder, tmp_path, monkeypatch):
    """Check that images written before an interruption are not decoded again."""
    root, expected, _ = folder
    cache = tmp_path / "cache"
    data = load_image_folder(root, cache_dir=cache).data
    data[[0, 2, 5]]
    decode = _image_folder._decode_image
    calls = []

    def interrupted(filename, mode, image_size):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(filename)
        return decode(filename, mode, image_size)

    monkeypatch.setattr(_image_folder, "_decode_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data[:]
    assert calls == list(data.filenames[[1, 3]])

    calls.clear()
    monkeypatch.setattr(
        _image_folder,
        "_decode_image",
        lambda *args: calls.append(args[0]) or decode(*args),
    )
    again = load_image_folder(root, cache_dir=cache).data  # a later run
    np.testing.assert_array_equal(np.asarray(again), expected)
    assert calls == list(data.filenames[[4, 6, 7, 8, 9, 10, 11]])


def test_load_image_folder_rebuilds_a_damaged_cache(folder, tmp_path, headers):
    """Check that a damaged manifest or pixel file is not trusted but rebuilt."""
    root, expected, _ = folder
    cache = tmp_path / "cache"
    np.asarray(load_image_folder(root, cache_dir=cache).data)
    (manifest,) = cache.glob("*.json")
    manifest.write_text("{")
    data = load_image_folder(root, cache_dir=cache).data
    assert len(headers) == 24
    np.testing.assert_array_equal(np.asarray(data), expected)

    assert len(_cache_files(cache)) == 3  # the damaged cache's files are gone

    (pixels,) = (p for p in cache.glob("*.npy") if not p.name.endswith("filled.npy"))
    pixels.write_bytes(pixels.read_bytes()[:200])
    data = load_image_folder(root, cache_dir=cache).data
    assert len(headers) == 36
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert len(_cache_files(cache)) == 3


def test_load_image_folder_interrupted_cache_creation_is_not_trusted(
    folder, tmp_path, monkeypatch, headers
):
    """Check that a load interrupted while creating the cache leaves no manifest."""
    root, expected, _ = folder
    cache = tmp_path / "cache"
    create = _image_cache._create_npy
    calls = []

    def interrupted(path, shape):
        calls.append(path)
        if len(calls) == 2:  # the flags, after the pixels
            raise KeyboardInterrupt
        create(path, shape)

    monkeypatch.setattr(_image_cache, "_create_npy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root, cache_dir=cache)
    assert _cache_files(cache) == []  # the pixels made before are deleted too

    monkeypatch.setattr(_image_cache, "_create_npy", create)
    data = load_image_folder(root, cache_dir=cache).data
    assert len(headers) == 24
    np.testing.assert_array_equal(np.asarray(data), expected)


def test_load_image_folder_default_cache_dir(folder, tmp_path, monkeypatch):
    """Check the default cache_dir: $SKLEARN_META_DATA, else sklearn's data home."""
    root, _, _ = folder
    monkeypatch.setenv("SKLEARN_META_DATA", str(tmp_path / "meta"))
    load_image_folder(root)
    assert len(list((tmp_path / "meta" / "sklearn_meta_image_folders").iterdir())) == 3
    monkeypatch.delenv("SKLEARN_META_DATA")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn"))
    load_image_folder(root)
    folder = tmp_path / "sklearn" / "sklearn_meta_image_folders"
    assert len(list(folder.iterdir())) == 3


# --------------------------------------------------------------------------- #
# Pickles, processes and threads share the cache
# --------------------------------------------------------------------------- #


def test_image_folder_array_pickles_without_pixels(folder, tmp_path, decodes):
    """Check that a pickle holds no pixels and its copy fills the same cache."""
    root, expected, _ = folder
    small = load_image_folder(root, size=8, cache_dir=tmp_path / "cache").data
    large = load_image_folder(root, size=256, cache_dir=tmp_path / "cache").data
    np.asarray(large)
    decodes.clear()
    pickled = pickle.dumps(large)
    # The size of the images does not change the size of the pickle.
    assert abs(len(pickled) - len(pickle.dumps(small))) < 10
    assert len(pickled) < 4000

    copy = pickle.loads(pickled)
    assert copy.shape == (12, 1, 256, 256)
    np.testing.assert_array_equal(copy.targets, large.targets)
    np.testing.assert_array_equal(copy.filenames, large.filenames)
    np.testing.assert_array_equal(copy[[0, 11]], large[[0, 11]])
    assert decodes == []  # read from the cache the original filled

    copy_small = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(copy_small[4], expected[4])
    assert len(decodes) == 1
    np.testing.assert_array_equal(small[4], expected[4])
    assert len(decodes) == 1  # the copy's write is the original's cache


def _read_in_child(pickled, indices):
    data = pickle.loads(pickled)
    data[indices]


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)
def test_image_folder_array_is_filled_by_another_process(folder, tmp_path, decodes):
    """Check that images a child process decodes are read from the cache here."""
    root, expected, _ = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    child = multiprocessing.get_context("fork").Process(
        target=_read_in_child, args=(pickle.dumps(data), [1, 4, 9])
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(data[[9, 4, 1]], expected[[9, 4, 1]])
    assert decodes == []
    np.testing.assert_array_equal(data[:], expected)
    assert len(decodes) == 9


def test_image_folder_array_is_read_by_threads_at_once(folder, tmp_path):
    """Check that threads reading overlapping images at once all get them right."""
    root, expected, _ = folder
    data = load_image_folder(root, cache_dir=tmp_path / "cache").data
    orders = [np.random.default_rng(seed).permutation(12) for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(data.__getitem__, orders))
    for order, result in zip(orders, results):
        np.testing.assert_array_equal(result, expected[order])


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #


def test_load_image_folder_raises_for_an_unreadable_image(folder, tmp_path):
    """Check that a file that is not an image is named at load; no cache is made."""
    root, _, _ = folder
    bad = root / "high" / "digit3" / "001.png"
    bad.write_bytes(b"garbage")
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match=f"Could not read {re.escape(str(bad))} as an"):
        load_image_folder(root, cache_dir=cache)
    assert not cache.exists()


def test_load_image_folder_raises_for_truncated_pixels_when_read(folder, tmp_path):
    """Check that truncated pixel data is named at read time; its flag stays unset."""
    root, expected, _ = folder
    bad = root / "high" / "digit3" / "001.png"  # index 4
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    _write(bad, noise)
    bad.write_bytes(bad.read_bytes()[:-200])
    data = load_image_folder(root, size=8, cache_dir=tmp_path / "cache").data
    message = f"Could not decode image 4 \\({re.escape(str(bad.resolve()))}\\)"
    with pytest.raises(OSError, match=message):
        data[3:6]
    np.testing.assert_array_equal(data[3], expected[3])
    with pytest.raises(OSError, match=message):  # not cached as zeros
        data[4]


def test_load_image_folder_raises_for_folder_with_images_and_subfolders(
    folder, tmp_path
):
    """Check that a folder holding both images and sub-folders is named."""
    root, _, _ = folder
    _write(root / "low" / "stray.png", np.zeros((8, 8), np.uint8))
    cache = tmp_path / "cache"
    expected = re.escape(str(root.resolve() / "low"))
    with pytest.raises(
        ValueError, match=f"The folder {expected} holds both images \\(stray.png"
    ):
        load_image_folder(root, cache_dir=cache)
    assert not cache.exists()


def test_load_image_folder_raises_for_an_empty_class_folder(folder, tmp_path):
    """Check that a leaf folder without images is named, with the extensions."""
    root, _, _ = folder
    (root / "high" / "digit4").mkdir()
    (root / "high" / "digit4" / "labels.csv").write_text("x")
    expected = re.escape(str(root.resolve() / "high" / "digit4"))
    with pytest.raises(
        ValueError, match=f"The class folder {expected} holds no image .*.png, .jpg"
    ):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_load_image_folder_raises_without_classes(tmp_path):
    """Check that an empty folder, or images without class folders, are refused."""
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValueError, match="holds no class folder with images"):
        load_image_folder(root, cache_dir=tmp_path / "cache")
    _write(root / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="holds no class folder with images"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_load_image_folder_raises_for_a_single_class(tmp_path):
    """Check that one class is refused: meta-learning needs at least two."""
    _write(tmp_path / "root" / "only" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"holds a single class \(only\), but"):
        load_image_folder(tmp_path / "root", cache_dir=tmp_path / "cache")


def test_load_image_folder_raises_for_a_folder_that_links_to_itself(folder, tmp_path):
    """Check that a symbolic link back to a parent folder is refused, not followed."""
    root, _, _ = folder
    (root / "low" / "loop").symlink_to(root, target_is_directory=True)
    with pytest.raises(ValueError, match="loop links back to"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_load_image_folder_raises_for_a_missing_path_or_a_file(tmp_path):
    """Check that the path must be an existing folder."""
    missing = tmp_path / "missing"
    with pytest.raises(
        FileNotFoundError, match=f"The image folder {re.escape(str(missing))} does"
    ):
        load_image_folder(missing)
    file = tmp_path / "0.png"
    _write(file, np.zeros((4, 4), np.uint8))
    with pytest.raises(NotADirectoryError, match=r"0\.png is not a folder"):
        load_image_folder(file)


@pytest.mark.parametrize(
    "size", [0, -1, 2.5, True, "8", (8,), (8, 0), (8, 8.0), [8, 8, 8], (True, 8)]
)
def test_load_image_folder_raises_for_bad_size(folder, size):
    """Check that size must be a positive int, a (height, width) pair or None."""
    with pytest.raises(
        ValueError, match=r"size must be a positive int, a \(height, width\) pair"
    ):
        load_image_folder(folder[0], size=size)


@pytest.mark.parametrize("mode", ["CMYK", "rgb", "P", 1, ["L"]])
def test_load_image_folder_raises_for_bad_mode(folder, mode):
    """Check that mode must be "L", "RGB", "RGBA" or None."""
    with pytest.raises(
        ValueError, match=r"mode must be 'L', 'RGB', 'RGBA' or None; got"
    ):
        load_image_folder(folder[0], mode=mode)


@pytest.mark.parametrize("extensions", [(), "png", [".png", 1], None])
def test_load_image_folder_raises_for_bad_extensions(folder, extensions):
    """Check that extensions must be endings that start with a dot."""
    with pytest.raises(ValueError, match="extensions must be a non-empty tuple"):
        load_image_folder(folder[0], extensions=extensions)


def test_load_image_folder_extensions_select_the_files(folder, tmp_path):
    """Check that only files with the given endings are images."""
    root, _, _ = folder
    for name in ["low/digit0", "low/digit1", "high/digit2", "high/digit3"]:
        _write(root / name / "extra.bmp", np.zeros((8, 8), np.uint8))
    bunch = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert len(bunch.target) == 16
    bunch = load_image_folder(root, extensions=".BMP", cache_dir=tmp_path / "cache")
    assert len(bunch.target) == 4
    assert all(name.endswith("extra.bmp") for name in bunch.filenames)


def test_load_image_folder_raises_when_the_cache_cannot_be_written(
    folder, tmp_path, monkeypatch
):
    """Check that an unwritable cache folder is named, with the fix."""

    def read_only(path, shape):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_image_cache, "_create_npy", read_only)
    with pytest.raises(PermissionError, match="Could not write the image cache to"):
        load_image_folder(folder[0], cache_dir=tmp_path / "cache")


def test_image_folder_array_raises_when_its_cache_is_deleted(folder, tmp_path):
    """Check that reading after the cache files were deleted says what to do."""
    root, expected, _ = folder
    cache = tmp_path / "cache"
    data = load_image_folder(root, cache_dir=cache).data
    copy = pickle.loads(pickle.dumps(data))
    for path in cache.iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"The image cache .* is gone"):
        copy[0]
    fresh = load_image_folder(root, cache_dir=cache).data
    np.testing.assert_array_equal(fresh[0], expected[0])


def test_image_folder_array_raises_for_targets_of_another_length(folder, tmp_path):
    """Check that targets must give one class per image."""
    data = load_image_folder(folder[0], cache_dir=tmp_path / "cache").data
    with pytest.raises(ValueError, match=r"targets has shape \(3,\); expected one"):
        ImageFolderArray(
            data.filenames,
            image_size=data.image_size,
            mode=data.mode,
            pixels_path=data._pixels_path,
            filled_path=data._filled_path,
            targets=["a", "b", "c"],
        )
    unlabelled = ImageFolderArray(
        data.filenames,
        image_size=data.image_size,
        mode=data.mode,
        pixels_path=data._pixels_path,
        filled_path=data._filled_path,
    )
    assert pickle.loads(pickle.dumps(unlabelled)).targets is None
    np.testing.assert_array_equal(unlabelled[3], folder[1][3])
