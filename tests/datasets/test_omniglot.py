"""Tests of load_omniglot: the official zips, the Vinyals split, download and cache."""

import hashlib
import io
import os
import re
import urllib.error
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageOps

from sklearn_meta.datasets import (
    _omniglot,
    load_omniglot,
)

# --------------------------------------------------------------------------- #
# Omniglot fixtures: every full zip is decoded once per session, into a cache
# in a temporary folder (the shared data folder is read-only, so the loader
# falls back to sklearn's data home, which is pointed at that folder here).
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module", autouse=True)
def sklearn_home(tmp_path_factory):
    """Point sklearn's data home (the cache fallback) at a temporary folder."""
    home = tmp_path_factory.mktemp("scikit_learn_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCIKIT_LEARN_DATA", str(home))
        mp.delenv("SKLEARN_META_DATA", raising=False)
        yield home


@pytest.fixture(scope="module")
def background(data_home):
    return load_omniglot("background", data_home=data_home, download=False)


@pytest.fixture(scope="module")
def evaluation(data_home):
    return load_omniglot("evaluation", data_home=data_home, download=False)


@pytest.fixture(scope="module")
def vinyals_train(data_home, background, evaluation):
    return load_omniglot("vinyals-train", data_home=data_home, download=False)


@pytest.fixture(scope="module")
def vinyals_test(data_home, background, evaluation):
    return load_omniglot("vinyals-test", data_home=data_home, download=False)


def _write_fake_zip(path, top, alphabets=None, n_drawers=3, seed=0):
    """Write a small zip laid out like an Omniglot release; return its ink masks."""
    alphabets = {"Alpha": 2, "Beta": 1} if alphabets is None else alphabets
    rng = np.random.default_rng(seed)
    ink = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        image_id = 1
        for alphabet, n_characters in alphabets.items():
            for character in range(1, n_characters + 1):
                for drawer in range(1, n_drawers + 1):
                    mask = rng.random((105, 105)) < 0.1
                    buffer = io.BytesIO()
                    Image.fromarray(~mask).save(buffer, format="PNG")  # mode "1"
                    name = (
                        f"{top}/{alphabet}/character{character:02d}/"
                        f"{image_id:04d}_{drawer:02d}.png"
                    )
                    archive.writestr(name, buffer.getvalue())
                    ink[name] = mask
                image_id += 1
    return ink


def _serve(payload, calls=None):
    """Return a stand-in for ``urlopen`` that serves ``payload`` for any URL."""

    def fake_urlopen(url, timeout=None):
        if calls is not None:
            calls.append(url)
        return io.BytesIO(payload)

    return fake_urlopen


# --------------------------------------------------------------------------- #
# Omniglot on the real data
# --------------------------------------------------------------------------- #


def test_load_omniglot_background_has_964_characters_of_20_drawings(background):
    """Check that the background set has 19,280 images of 964 classes, 20 each."""
    classes, counts = np.unique(background.target, return_counts=True)
    assert background.data.shape == (19280, 1, 28, 28)
    assert len(classes) == 964
    assert (counts == 20).all()
    assert len(np.unique(background.alphabets)) == 30
    assert background.target[0] == "Alphabet_of_the_Magi/character01"


def test_load_omniglot_evaluation_has_659_characters(evaluation):
    """Check that the evaluation set has 13,180 images of 659 classes, 20 each."""
    classes, counts = np.unique(evaluation.target, return_counts=True)
    assert evaluation.data.shape == (13180, 1, 28, 28)
    assert len(classes) == 659
    assert (counts == 20).all()
    assert len(np.unique(evaluation.alphabets)) == 20


def test_load_omniglot_images_are_float32_strokes_on_zero(background):
    """Check that images are float32 strokes of 1.0 on a 0.0 background."""
    X = background.data
    assert X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert X.mean() < 0.2  # ink covers a small part of each image
    corners = X[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.mean() < 0.01


def test_load_omniglot_is_sorted_and_returns_a_bunch(background):
    """Check that the Bunch is sorted by character and names each alphabet."""
    assert set(background) == {"data", "target", "alphabets", "DESCR"}
    target = background.target
    assert (target[:-1] <= target[1:]).all()
    assert (background.alphabets == [t.split("/")[0] for t in target]).all()
    assert "MIT" in background.DESCR


def test_load_omniglot_matches_pngs_pixel_for_pixel(data_home, evaluation):
    """Check that images equal their PNGs, and 28x28 ones PIL's Lanczos resize."""
    zip_path = data_home / "omniglot" / "images_evaluation.zip"
    name = "images_evaluation/Tibetan/character14/1569_07.png"
    with zipfile.ZipFile(zip_path) as archive:
        png = Image.open(io.BytesIO(archive.read(name)))
        png.load()
    index = np.flatnonzero(evaluation.target == "Tibetan/character14")[6]

    expected_small = ImageOps.invert(png.convert("L")).resize(
        (28, 28), Image.Resampling.LANCZOS
    )
    np.testing.assert_array_equal(
        evaluation.data[index, 0], np.asarray(expected_small) / np.float32(255)
    )

    X, y = load_omniglot(
        "evaluation",
        data_home=data_home,
        download=False,
        image_size=None,
        return_X_y=True,
    )
    assert X.shape == (13180, 1, 105, 105)
    assert y[index] == "Tibetan/character14"
    expected = 1.0 - np.asarray(png, dtype=np.float32)  # PNG: True = white
    np.testing.assert_array_equal(X[index, 0], expected)
    assert set(np.unique(X[:100])) == {0.0, 1.0}


def test_load_omniglot_uint8_divided_by_255_is_float32_bit_for_bit(
    data_home, background
):
    """Check that uint8 images / 255 are the float32 images, bit for bit."""
    X, y = load_omniglot(
        "background",
        data_home=data_home,
        download=False,
        dtype=np.uint8,
        return_X_y=True,
    )
    assert X.dtype == np.uint8 and X.shape == (19280, 1, 28, 28)
    np.testing.assert_array_equal(y, background.target)
    assert len(np.unique(X[:20])) > 100  # the resized strokes have grey levels
    scaled = X.astype(np.float32) / 255
    np.testing.assert_array_equal(
        scaled.view(np.uint32), background.data.view(np.uint32)
    )


def test_load_omniglot_uint8_keeps_rotations_and_original_binary_images(
    data_home, vinyals_test
):
    """Check uint8 with rotations, and 105x105 uint8 images of only 0 and 255."""
    X = load_omniglot(
        "vinyals-test",
        data_home=data_home,
        download=False,
        dtype="uint8",
        return_X_y=True,
    )[0]
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(
        (X.astype(np.float32) / 255).view(np.uint32),
        vinyals_test.data.view(np.uint32),
    )

    zip_path = data_home / "omniglot" / "images_evaluation.zip"
    name = "images_evaluation/Tibetan/character14/1569_07.png"
    with zipfile.ZipFile(zip_path) as archive:
        png = np.asarray(Image.open(io.BytesIO(archive.read(name))))
    X, y = load_omniglot(
        "evaluation",
        data_home=data_home,
        download=False,
        image_size=None,
        dtype=np.uint8,
        return_X_y=True,
    )
    assert X.shape == (13180, 1, 105, 105)
    assert set(np.unique(X[:200])) == {0, 255}
    index = np.flatnonzero(y == "Tibetan/character14")[6]
    np.testing.assert_array_equal(X[index, 0], np.where(png, 0, 255))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, "float16", float, None, "x"])
def test_load_omniglot_raises_for_other_dtypes(dtype, tmp_path):
    """Check that dtype must be float32 or uint8."""
    with pytest.raises(
        ValueError, match=r"dtype must be np\.float32 or np\.uint8; got"
    ):
        load_omniglot(dtype=dtype, data_home=tmp_path, download=False)


def test_load_omniglot_vinyals_split_sizes_and_disjointness(
    vinyals_train, vinyals_test, background, evaluation
):
    """Check that the Vinyals split covers all characters, 1,200 / 423 x 4, disjoint."""
    train_classes = np.unique(vinyals_train.target)
    test_classes = np.unique(vinyals_test.target)
    assert vinyals_train.data.shape == (96000, 1, 28, 28)
    assert len(train_classes) == 1200 * 4
    assert vinyals_test.data.shape == (423 * 4 * 20, 1, 28, 28)
    assert len(test_classes) == 423 * 4

    def base(labels):
        return {re.sub(r"/rot\d{3}$", "", label) for label in labels}

    assert len(base(train_classes)) == 1200
    assert len(base(test_classes)) == 423
    assert not base(train_classes) & base(test_classes)
    everything = set(background.target) | set(evaluation.target)
    assert base(train_classes) | base(test_classes) == everything
    # Both background and evaluation characters end up in each part.
    assert base(train_classes) & set(evaluation.target)
    assert base(test_classes) & set(background.target)


def test_load_omniglot_rotated_classes_are_rot90_of_their_base(
    vinyals_train, background
):
    """Check that "/rot090" etc. hold np.rot90 of the unrotated images."""
    X, y = vinyals_train.data, vinyals_train.target
    for label in (y[0], re.sub(r"/rot\d{3}$", "", y[-1])):
        base = X[y == label]
        assert len(base) == 20
        assert not label.endswith(("/rot090", "/rot180", "/rot270"))
        for k, suffix in enumerate(["/rot090", "/rot180", "/rot270"], start=1):
            np.testing.assert_array_equal(
                X[y == label + suffix], np.rot90(base, k, axes=(2, 3))
            )
    # The unrotated images are those of the plain split.
    np.testing.assert_array_equal(
        X[y == y[0]], background.data[background.target == y[0]]
    )


def test_load_omniglot_rotations_flag_overrides_the_split_default(
    data_home, vinyals_test
):
    """Check that the rotations flag overrides the split's default both ways."""
    X, y = load_omniglot(
        "vinyals-test",
        data_home=data_home,
        download=False,
        rotations=False,
        return_X_y=True,
    )
    plain = np.char.find(vinyals_test.target.astype(str), "/rot") < 0
    assert len(np.unique(y)) == 423
    np.testing.assert_array_equal(X, vinyals_test.data[plain])
    np.testing.assert_array_equal(y, vinyals_test.target[plain])

    everything = load_omniglot("all", data_home=data_home, download=False)
    assert everything.data.shape == (32460, 1, 28, 28)
    assert len(np.unique(everything.target)) == 1623
    assert (everything.target[:-1] <= everything.target[1:]).all()


def test_load_omniglot_second_load_is_identical_and_cached(
    data_home, background, monkeypatch
):
    """Check that loading a split again is served from the cache, unchanged."""

    def no_decoding(*args, **kwargs):
        raise AssertionError("The cache was not used.")

    monkeypatch.setattr(_omniglot, "_decode_zip", no_decoding)
    again = load_omniglot("background", data_home=data_home, download=False)
    np.testing.assert_array_equal(again.data, background.data)
    np.testing.assert_array_equal(again.target, background.target)


# --------------------------------------------------------------------------- #
# Omniglot arguments and errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("split", ["train", "Background", None])
def test_load_omniglot_raises_for_unknown_split(split, tmp_path):
    """Check that an unknown split is rejected with the valid choices."""
    with pytest.raises(ValueError, match="split must be one of 'all', 'background'"):
        load_omniglot(split, data_home=tmp_path, download=False)


@pytest.mark.parametrize("image_size", [0, -28, 2.5, True, "28"])
def test_load_omniglot_raises_for_bad_image_size(image_size, tmp_path):
    """Check that image_size must be a positive int or None."""
    with pytest.raises(
        ValueError, match=r"image_size must be a positive int .* or None"
    ):
        load_omniglot(image_size=image_size, data_home=tmp_path, download=False)


def test_load_omniglot_raises_for_bad_rotations(tmp_path):
    """Check that rotations must be a bool or None."""
    with pytest.raises(ValueError, match="rotations must be True, False or None"):
        load_omniglot(rotations="yes", data_home=tmp_path, download=False)


def test_load_omniglot_raises_when_file_missing_and_download_false(tmp_path):
    """Check that a missing zip's message says where it looked and how to fix it."""
    expected = re.escape(str(tmp_path / "omniglot" / "images_background.zip"))
    with pytest.raises(
        FileNotFoundError, match=f"not found at {expected}.*download=True"
    ):
        load_omniglot(data_home=tmp_path, download=False)


def test_load_omniglot_reads_data_home_from_environment(tmp_path, monkeypatch):
    """Check that data_home=None uses the SKLEARN_META_DATA environment variable."""
    _write_fake_zip(
        tmp_path / "omniglot" / "images_evaluation.zip", "images_evaluation"
    )
    monkeypatch.setenv("SKLEARN_META_DATA", str(tmp_path))
    X, y = load_omniglot("evaluation", download=False, return_X_y=True)
    assert X.shape == (9, 1, 28, 28)
    assert list(np.unique(y)) == [
        "Alpha/character01",
        "Alpha/character02",
        "Beta/character01",
    ]


def test_load_omniglot_raises_for_zip_that_is_not_omniglot(tmp_path):
    """Check that a corrupt zip and a zip of something else are clear errors."""
    path = tmp_path / "omniglot" / "images_background.zip"
    path.parent.mkdir()
    path.write_bytes(b"not a zip")
    with pytest.raises(OSError, match="is not a valid zip file"):
        load_omniglot(data_home=tmp_path, download=False)
    _write_fake_zip(path, "something_else")
    with pytest.raises(OSError, match="not an Omniglot release zip"):
        load_omniglot(data_home=tmp_path, download=False)


def test_load_omniglot_raises_for_damaged_png(tmp_path):
    """Check that a PNG that does not decode is reported with its name."""
    path = tmp_path / "omniglot" / "images_background.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images_background/A/character01/0001_01.png", b"garbage")
    with pytest.raises(OSError, match="Could not decode images_background/A/"):
        load_omniglot(data_home=tmp_path, download=False)


# --------------------------------------------------------------------------- #
# Download (offline: urlopen serves local bytes)
# --------------------------------------------------------------------------- #


def test_load_omniglot_downloads_file_with_the_right_md5(tmp_path, monkeypatch):
    """Check that a download with the expected md5 lands in place and loads."""
    source = tmp_path / "source" / "images_evaluation.zip"
    ink = _write_fake_zip(source, "images_evaluation")
    payload = source.read_bytes()
    archive = _omniglot._ARCHIVES["evaluation"]
    monkeypatch.setitem(
        _omniglot._ARCHIVES,
        "evaluation",
        archive._replace(md5=hashlib.md5(payload).hexdigest()),
    )
    calls = []
    monkeypatch.setattr(_omniglot, "urlopen", _serve(payload, calls))

    home = tmp_path / "home"
    bunch = load_omniglot("evaluation", data_home=home, image_size=None)
    assert calls == [archive.url]
    folder = home / "omniglot"
    assert (folder / "images_evaluation.zip").read_bytes() == payload
    assert sorted(p.name for p in folder.iterdir()) == [
        "cache",
        "images_evaluation.zip",
    ]
    first = sorted(ink)[0]
    np.testing.assert_array_equal(bunch.data[0, 0], ink[first].astype(np.float32))

    load_omniglot("evaluation", data_home=home)  # present: no second download
    assert calls == [archive.url]


def test_load_omniglot_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    """Check that a checksum mismatch raises and deletes the downloaded file."""
    source = tmp_path / "source" / "images_background.zip"
    _write_fake_zip(source, "images_background")
    monkeypatch.setattr(_omniglot, "urlopen", _serve(source.read_bytes()))
    home = tmp_path / "home"
    with pytest.raises(
        OSError, match=r"has md5 .*, expected 68d2efa1b9178cc56df9314c21c6e718"
    ):
        load_omniglot("background", data_home=home)
    assert list((home / "omniglot").iterdir()) == []


def test_load_omniglot_download_failure_explains_how_to_fix(tmp_path, monkeypatch):
    """Check that an offline machine gets an OSError saying where to put the file."""

    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_omniglot, "urlopen", offline)
    with pytest.raises(OSError, match=r"Could not download .* copy it to"):
        load_omniglot("background", data_home=tmp_path)
    assert list((tmp_path / "omniglot").iterdir()) == []


def test_load_omniglot_does_not_download_into_read_only_folder(tmp_path, monkeypatch):
    """Check that a missing zip in a read-only folder is not downloaded there."""
    monkeypatch.setattr(_omniglot, "urlopen", _serve(b""))
    folder = tmp_path / "omniglot"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"is read-only\. Pass a writable"):
            load_omniglot(data_home=tmp_path)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #


def test_load_omniglot_cache_falls_back_for_read_only_data_home(tmp_path, sklearn_home):
    """Check that a read-only data folder is left alone; sklearn's home is used."""
    folder = tmp_path / "omniglot"
    _write_fake_zip(folder / "images_evaluation.zip", "images_evaluation", seed=1)
    size = (folder / "images_evaluation.zip").stat().st_size
    folder.chmod(0o555)
    try:
        first = load_omniglot("evaluation", data_home=tmp_path, download=False)
        assert sorted(p.name for p in folder.iterdir()) == ["images_evaluation.zip"]
    finally:
        folder.chmod(0o755)
    cached = list((sklearn_home / "omniglot" / "cache").glob(f"*-{size}-*.npz"))
    assert len(cached) == 1
    second = load_omniglot("evaluation", data_home=tmp_path, download=False)
    np.testing.assert_array_equal(first.data, second.data)


def test_load_omniglot_cache_is_rebuilt_when_zip_changes(tmp_path):
    """Check that a replaced zip (new size or mtime) invalidates its cache."""
    path = tmp_path / "omniglot" / "images_evaluation.zip"
    _write_fake_zip(path, "images_evaluation", seed=2)
    before = load_omniglot("evaluation", data_home=tmp_path, download=False)
    ink = _write_fake_zip(path, "images_evaluation", alphabets={"Gamma": 1}, seed=3)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = load_omniglot(
        "evaluation", data_home=tmp_path, download=False, image_size=None
    )
    assert list(before.target[:1]) == ["Alpha/character01"]
    assert list(np.unique(after.target)) == ["Gamma/character01"]
    np.testing.assert_array_equal(
        after.data[:, 0], np.stack([ink[n] for n in sorted(ink)])
    )
    again = load_omniglot("evaluation", data_home=tmp_path, download=False)
    assert list(np.unique(again.target)) == ["Gamma/character01"]
    # Only the current 28px and 105px caches remain next to the zip.
    cache = sorted(p.name for p in (tmp_path / "omniglot" / "cache").iterdir())
    assert len(cache) == 2 and all(str(stat.st_mtime_ns + 10**9) in n for n in cache)


def test_load_omniglot_rebuilds_a_damaged_cache(tmp_path):
    """Check that an unreadable cache file is decoded again and replaced."""
    _write_fake_zip(
        tmp_path / "omniglot" / "images_background.zip", "images_background"
    )
    first = load_omniglot(data_home=tmp_path, download=False)
    (cache,) = (tmp_path / "omniglot" / "cache").iterdir()
    cache.write_bytes(cache.read_bytes()[:100])
    second = load_omniglot(data_home=tmp_path, download=False)
    np.testing.assert_array_equal(first.data, second.data)
    assert cache.stat().st_size > 100


def test_load_omniglot_warns_when_no_cache_folder_is_writable(tmp_path, monkeypatch):
    """Check that loading still works, with a warning, when nothing is writable."""
    _write_fake_zip(
        tmp_path / "omniglot" / "images_background.zip", "images_background"
    )
    monkeypatch.setattr(_omniglot, "_is_writable_dir", lambda folder: False)
    with pytest.warns(UserWarning, match="Could not write the Omniglot cache"):
        X, _ = load_omniglot(data_home=tmp_path, download=False, return_X_y=True)
    assert X.shape == (9, 1, 28, 28)
