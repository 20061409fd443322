"""Omniglot, read from the official release zips (Lake et al., 2015)."""

from __future__ import annotations

import hashlib
import io
import numbers
import os
import uuid
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple
from urllib.request import urlopen

import numpy as np
from PIL import Image, ImageOps
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

__all__ = ["load_omniglot"]

ORIGINAL_SIZE = 105
SPLITS = ("all", "background", "evaluation", "vinyals-test", "vinyals-train")
_ROTATION_SUFFIXES = ("", "/rot090", "/rot180", "/rot270")
# Seed of the permutation that picks the 1,200 meta-training characters of the
# Vinyals split. Changing it changes the benchmark: keep it constant.
_VINYALS_SEED = 0
_VINYALS_N_TRAIN = 1200
_CACHE_VERSION = 1
_ENV_DATA_HOME = "SKLEARN_META_DATA"
# What reading a missing, truncated or otherwise damaged cache file can raise.
_CACHE_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    zipfile.BadZipFile,
    zlib.error,
)


class _Archive(NamedTuple):
    """One official Omniglot zip: file name, download URL, md5 and size in bytes."""

    filename: str
    url: str
    md5: str
    size: int


_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
_ARCHIVES = {
    "background": _Archive(
        "images_background.zip",
        _BASE_URL + "images_background.zip",
        "68d2efa1b9178cc56df9314c21c6e718",
        9_464_212,
    ),
    "evaluation": _Archive(
        "images_evaluation.zip",
        _BASE_URL + "images_evaluation.zip",
        "6b91aef0f799c5bb55b94e3f2daec811",
        6_462_886,
    ),
}

DESCR = """\
.. _omniglot_dataset:

Omniglot handwritten characters
-------------------------------

**Data Set Characteristics:**

:Number of Instances: 32,460 (20 drawings of each of 1,623 characters)
:Number of Classes: 1,623 characters from 50 alphabets; 964 characters of 30
    alphabets in the "background" set and 659 characters of 20 alphabets in
    the "evaluation" set
:Image size: 105x105 binary images, returned with strokes = 1.0 and
    background = 0.0, optionally resized with PIL's Lanczos filter
:License: MIT License, Copyright (c) 2015 Brenden Lake
    (https://github.com/brendenlake/omniglot, file LICENSE)

Omniglot was collected by Lake, Salakhutdinov and Tenenbaum through Amazon
Mechanical Turk: 20 different people drew each character once. It is the
"transpose" of MNIST -- many classes with few examples each -- and the standard
benchmark for few-shot classification.

Labels are "Alphabet/characterNN", the folder names of the official zips. The
"vinyals-train" / "vinyals-test" splits follow the protocol of Vinyals et al.
(2016): 1,200 characters for meta-training and the other 423 for testing,
drawn here by a fixed seeded permutation (seed 0) of the 1,623 sorted names,
each augmented with rotations by 90, 180 and 270 degrees as new classes
(suffixes "/rot090", "/rot180", "/rot270").

**References**

- B. M. Lake, R. Salakhutdinov and J. B. Tenenbaum, "Human-level concept
  learning through probabilistic program induction", Science 350(6266),
  1332-1338, 2015.
- O. Vinyals, C. Blundell, T. Lillicrap, K. Kavukcuoglu and D. Wierstra,
  "Matching Networks for One Shot Learning", NeurIPS 2016.
- J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for Few-shot
  Learning", NeurIPS 2017.
"""


def load_omniglot(
    split: str = "background",
    *,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
    image_size: int | None = 28,
    rotations: bool | None = None,
    dtype: type | str | np.dtype = np.float32,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the Omniglot handwritten characters as an image pool.

    The images are read straight from the official release zips
    (``images_background.zip`` and ``images_evaluation.zip``, no extraction),
    inverted so that strokes are 1.0 and the background is 0.0, and resized
    from 105x105 with PIL's Lanczos filter (``Image.Resampling.LANCZOS``,
    applied to the 8-bit image, so values stay in [0, 1]). Decoded arrays are
    cached as ``.npz`` files, so only the first load of a zip at a given
    ``image_size`` decodes its PNGs (several seconds); later loads take a
    fraction of a second.

    Samples are ordered by alphabet, character and drawer, that is by label;
    rotated copies of a character follow its unrotated images.

    Parameters
    ----------
    split : {"background", "evaluation", "all", "vinyals-train", \
"vinyals-test"}, default="background"
        Which characters to load:

        - "background": the 30 alphabets / 964 characters of
          ``images_background.zip`` (19,280 images).
        - "evaluation": the 20 alphabets / 659 characters of
          ``images_evaluation.zip`` (13,180 images).
        - "all": both, 1,623 characters (32,460 images).
        - "vinyals-train" / "vinyals-test": the few-shot protocol of
          Vinyals et al. (2016) and Snell et al. (2017): of all 1,623
          characters, 1,200 for meta-training and the remaining 423 for
          testing, with rotations as extra classes by default. The official
          split files are not part of the release, so the 1,200 training
          characters are the first 1,200 of
          ``np.random.default_rng(0).permutation(1623)`` applied to the
          sorted character names. The split is fixed; the two parts share
          no character (rotated or not).

    data_home : str or path-like, default=None
        Folder that holds (or will hold) ``omniglot/images_background.zip``
        and ``omniglot/images_evaluation.zip``. By default the environment
        variable ``SKLEARN_META_DATA`` if set, else
        :func:`sklearn.datasets.get_data_home`.

    download : bool, default=True
        If a zip is missing, download it from the official repository
        (github.com/brendenlake/omniglot), check its md5 and move it into
        place. If False, a missing zip raises :class:`FileNotFoundError`.
        Zips already present are used as they are, without a checksum.

    image_size : int or None, default=28
        Side in pixels of the square images returned. None keeps the
        original 105x105 binary images (values exactly 0.0 and 1.0).

    rotations : bool, default=None
        If True, add copies of every character rotated by 90, 180 and 270
        degrees counter-clockwise (``np.rot90`` with ``k=1, 2, 3``) as new
        classes, multiplying the number of classes by 4. Their labels end in
        "/rot090", "/rot180" and "/rot270"; the unrotated images keep the plain
        "Alphabet/characterNN" label. None means True for the ``"vinyals-*"``
        splits and False otherwise.

    dtype : {np.float32, np.uint8}, default=np.float32
        Type of the images returned: float32 in [0, 1], or the same images
        as 8-bit intensities in 0..255 (strokes = 255), in a quarter of the
        memory. The float32 images are exactly the uint8 ones divided by
        255: ``X_float == X_uint8.astype(np.float32) / 255``, bit for bit.
        The learners scale uint8 images to [0, 1] the same way, dividing by
        255 on the device, so a pool given as uint8 trains exactly as the
        float32 one.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 1, image_size, image_size)
            The images, strokes = 1.0 on 0.0 as float32 (the default), or
            255 on 0 as uint8.
        target : ndarray of shape (n_samples,)
            Labels "Alphabet/characterNN", with a "/rot090", "/rot180" or
            "/rot270" suffix for rotated copies.
        alphabets : ndarray of shape (n_samples,)
            The alphabet of each image, for instance to draw every episode
            from a single alphabet (``groups``).
        DESCR : str
            Description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    FileNotFoundError
        If a zip is missing and ``download=False``.
    PermissionError
        If a zip is missing and its folder is read-only, so it cannot be
        downloaded there.
    OSError
        If the download fails or the downloaded file has the wrong md5 (no
        file is left behind then), or a zip is not an Omniglot release zip.

    Notes
    -----
    The decoded, resized and unrotated images of each zip are cached as
    ``omniglot/cache/images_<set>-<size>px-<bytes>-<mtime_ns>-v1.npz`` under
    ``data_home`` when that folder is writable, else under
    :func:`sklearn.datasets.get_data_home`. The cache is keyed by the zip's
    size and modification time, so replacing a zip rebuilds it. Folders whose
    permission bits forbid writing count as read-only even for root.
    Rotations are computed from the cache on each call.

    At 28x28, "vinyals-train" holds 96,000 images (300 MB as float32); at
    105x105 (``image_size=None``) with rotations "all" needs about 5.7 GB.

    References
    ----------
    .. [1] B. M. Lake, R. Salakhutdinov and J. B. Tenenbaum, "Human-level
       concept learning through probabilistic program induction", Science,
       2015.
    .. [2] O. Vinyals et al., "Matching Networks for One Shot Learning",
       NeurIPS 2016.
    .. [3] J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for
       Few-shot Learning", NeurIPS 2017.

    Examples
    --------
    >>> from sklearn_meta.datasets import load_omniglot
    >>> omniglot = load_omniglot("background")  # doctest: +SKIP
    >>> omniglot.data.shape  # doctest: +SKIP
    (19280, 1, 28, 28)
    >>> omniglot.target[0]  # doctest: +SKIP
    'Alphabet_of_the_Magi/character01'
    """
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(
            f"split must be one of {', '.join(repr(s) for s in SPLITS)}; got "
            f"{split!r}. Use 'background' or 'evaluation' for the official sets, "
            "'all' for both, or 'vinyals-train' / 'vinyals-test' for the "
            "few-shot benchmark split."
        )
    _check_image_size(image_size)
    dtype = _check_dtype(dtype)
    if rotations is not None and not isinstance(rotations, (bool, np.bool_)):
        raise ValueError(
            f"rotations must be True, False or None; got {rotations!r}. Pass "
            "rotations=True to add the rotated copies as new classes."
        )
    vinyals = split.startswith("vinyals")
    rotations = vinyals if rotations is None else bool(rotations)
    size = ORIGINAL_SIZE if image_size is None else int(image_size)
    home = _resolve_data_home(data_home)

    parts = [split] if split in _ARCHIVES else list(_ARCHIVES)
    images, labels = [], []
    for part in parts:
        zip_path = _fetch_archive(_ARCHIVES[part], home, download)
        part_images, part_labels = _load_cached(zip_path, size)
        images.append(part_images)
        labels.append(part_labels)
    images = np.concatenate(images) if len(images) > 1 else images[0]
    labels = np.concatenate(labels) if len(labels) > 1 else labels[0]
    order = np.argsort(labels, kind="stable")  # keeps drawers in order
    if vinyals:
        characters = np.unique(labels)
        perm = np.random.default_rng(_VINYALS_SEED).permutation(len(characters))
        train, test = perm[:_VINYALS_N_TRAIN], perm[_VINYALS_N_TRAIN:]
        keep = train if split == "vinyals-train" else test
        order = order[np.isin(labels[order], characters[keep])]
    if not np.array_equal(order, np.arange(len(labels))):
        images, labels = images[order], labels[order]
    if rotations:
        images, labels = _add_rotations(images, labels)

    data = images[:, None]
    if dtype == np.float32:
        # Correctly rounded float32 division, the same as
        # uint8.astype(np.float32) / 255; exact for 0 and 255, so 105x105
        # images stay binary.
        data = data.astype(np.float32)
        data /= np.float32(255)
    if return_X_y:
        return data, labels
    alphabets = np.asarray([label.split("/", 1)[0] for label in labels])
    return Bunch(data=data, target=labels, alphabets=alphabets, DESCR=DESCR)


def _check_image_size(image_size) -> None:
    """Refuse an ``image_size`` that is not a positive int or None."""
    if image_size is not None and (
        not isinstance(image_size, numbers.Integral)
        or isinstance(image_size, bool)
        or image_size < 1
    ):
        raise ValueError(
            "image_size must be a positive int (the side of the square images "
            f"in pixels) or None; got {image_size!r}. Pass for example "
            f"image_size=28, or None to keep the original {ORIGINAL_SIZE}x"
            f"{ORIGINAL_SIZE} images."
        )


def _check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as float32 or uint8, refusing any other."""
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if dtype is None or checked not in (np.float32, np.uint8):
        raise ValueError(
            f"dtype must be np.float32 or np.uint8; got {dtype!r}. Pass "
            "np.float32 for images in [0, 1], or np.uint8 for 0..255 in a "
            "quarter of the memory."
        )
    return checked


def _resolve_data_home(data_home) -> Path:
    """Return the folder that holds ``omniglot/``: argument, env or sklearn's."""
    if data_home is None:
        data_home = os.environ.get(_ENV_DATA_HOME) or get_data_home()
    return Path(data_home).expanduser()


def _fetch_archive(archive: _Archive, home: Path, download: bool) -> Path:
    """Path of ``archive`` under ``home/omniglot``, downloading it if allowed."""
    path = home / "omniglot" / archive.filename
    if path.is_file():
        return path
    if not download:
        raise FileNotFoundError(
            f"The Omniglot file {archive.filename} was not found at {path}. "
            f"Pass download=True to fetch it from {archive.url} "
            f"({archive.size / 1e6:.1f} MB), or copy the official "
            f"{archive.filename} there, or point data_home (or the "
            f"{_ENV_DATA_HOME} environment variable) at the folder that contains "
            f"omniglot/{archive.filename}."
        )
    _download(archive, path)
    return path


def _download(archive: _Archive, path: Path) -> None:
    """Download ``archive`` to a temporary file, check its md5, move it to ``path``."""
    if not _is_writable_dir(path.parent):
        raise PermissionError(
            f"{archive.filename} is missing and cannot be downloaded because "
            f"{path.parent} is read-only. Pass a writable data_home, or copy the "
            f"official {archive.filename} from {archive.url} to {path}."
        )
    tmp = _temporary_sibling(path)
    try:
        md5 = hashlib.md5(usedforsecurity=False)
        with open(tmp, "xb") as out:
            try:
                with urlopen(archive.url, timeout=60) as response:
                    while chunk := response.read(1 << 20):
                        md5.update(chunk)
                        out.write(chunk)
            except OSError as exc:
                raise OSError(
                    f"Could not download {archive.url} to {path} ({exc}). If this "
                    f"machine is offline, download {archive.filename} elsewhere and "
                    f"copy it to {path}, or pass data_home pointing at a folder "
                    f"that contains omniglot/{archive.filename}."
                ) from exc
        if md5.hexdigest() != archive.md5:
            raise OSError(
                f"The file downloaded from {archive.url} has md5 {md5.hexdigest()}, "
                f"expected {archive.md5}; it may be corrupted or truncated and was "
                "deleted. Try again, or download it by hand and copy it to "
                f"{path}."
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_cached(zip_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return one zip's ``(images, labels)`` at ``size``, from the cache if fresh.

    ``images`` is uint8 of shape ``(n, size, size)`` with ink = 255, ``labels``
    the "Alphabet/characterNN" string of each image, sorted.
    """
    stat = zip_path.stat()
    prefix = f"{zip_path.stem}-{size}px-"
    name = f"{prefix}{stat.st_size}-{stat.st_mtime_ns}-v{_CACHE_VERSION}.npz"
    # Next to the zip when possible; sklearn's data home is only touched (and
    # created) for read-only data folders.
    folders = [zip_path.parent / "cache"]
    if not _is_writable_dir(folders[0]):
        folders.append(Path(get_data_home()) / "omniglot" / "cache")
    for folder in folders:
        try:
            with np.load(folder / name, allow_pickle=False) as cached:
                images = cached["images"]
                labels = cached["classes"][cached["labels"]]
        except _CACHE_READ_ERRORS:
            continue  # absent or damaged: try the next place, then rebuild
        if images.shape[1:] == (size, size) and len(images) == len(labels):
            return images, labels

    images, labels = _decode_zip(zip_path, size)
    classes, codes = np.unique(labels, return_inverse=True)
    folder = folders[-1]
    try:
        if not _is_writable_dir(folder):
            raise PermissionError(f"{folder} is read-only.")
        _save_atomic(folder / name, images=images, labels=codes, classes=classes)
    except OSError as exc:
        warnings.warn(
            f"Could not write the Omniglot cache to {folder} ({exc}); every call "
            f"will decode {zip_path.name} again. Make that folder writable, or "
            "pass a writable data_home, to speed up loading.",
            UserWarning,
            stacklevel=3,
        )
        return images, labels
    if len(folders) == 1:
        # The cache sits next to its zip, so other sizes/mtimes of this name
        # are stale copies of an older version of the same file.
        for stale in folder.glob(f"{prefix}*.npz"):
            if stale.name != name:
                stale.unlink(missing_ok=True)
    return images, labels


def _decode_zip(zip_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode, invert and resize every PNG of an Omniglot release zip."""
    top = zip_path.stem  # "images_background" or "images_evaluation"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = []
            for name in archive.namelist():
                parts = name.split("/")
                if len(parts) == 4 and parts[0] == top and parts[3].endswith(".png"):
                    entries.append((f"{parts[1]}/{parts[2]}", parts[3], name))
            if not entries:
                raise OSError(
                    f"{zip_path} contains no '{top}/<Alphabet>/characterNN/*.png' "
                    "entries, so it is not an Omniglot release zip. Delete it and "
                    "load again with download=True, or replace it with the official "
                    "file."
                )
            entries.sort()
            images = np.empty((len(entries), size, size), dtype=np.uint8)
            for i, (_, _, name) in enumerate(entries):
                try:
                    images[i] = _decode_png(archive.read(name), size)
                except (OSError, ValueError, zlib.error) as exc:
                    raise OSError(
                        f"Could not decode {name} in {zip_path} ({exc}). The file "
                        "is damaged: delete it and load again with download=True, "
                        "or replace it with the official file."
                    ) from exc
    except zipfile.BadZipFile as exc:
        raise OSError(
            f"{zip_path} is not a valid zip file ({exc}). Delete it and load again "
            "with download=True, or replace it with the official file."
        ) from exc
    labels = np.asarray([label for label, _, _ in entries])
    return images, labels


def _decode_png(png: bytes, size: int) -> np.ndarray:
    """One PNG as uint8 ``(size, size)``, ink = 255, background = 0."""
    image = ImageOps.invert(Image.open(io.BytesIO(png)).convert("L"))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _is_writable_dir(folder: Path) -> bool:
    """Whether ``folder`` exists or can be created, and may be written to.

    Permission bits are honoured even for root, so a data folder marked
    read-only (a shared copy) is never written to.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and _may_write(existing)):
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return _may_write(folder)


def _may_write(folder: Path) -> bool:
    return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)


def _save_atomic(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to a temporary file, then rename it into place."""
    tmp = _temporary_sibling(path)
    try:
        with open(tmp, "xb") as out:
            np.savez_compressed(out, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _temporary_sibling(path: Path) -> Path:
    """Return an unused hidden file name next to ``path``.

    Same folder, so ``os.replace`` is atomic; opened with "xb", the file gets
    the usual umask-based mode (``tempfile.mkstemp`` would make it 0600).
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def _add_rotations(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Add copies rotated by 90, 180, 270 degrees as classes, each after its base.

    ``images`` is ``(n, size, size)`` sorted by ``labels``; the result is
    ``(4 * n, size, size)``, still sorted by label.
    """
    n = len(labels)
    _, start, inverse, counts = np.unique(
        labels, return_index=True, return_inverse=True, return_counts=True
    )
    # Image i of a class starting at s with c images goes to 4*s + k*c + (i - s).
    base = 3 * start[inverse] + np.arange(n)
    out = np.empty((4 * n, *images.shape[1:]), dtype=images.dtype)
    out_labels = np.empty(4 * n, dtype=f"<U{labels.dtype.itemsize // 4 + 7}")
    for k, suffix in enumerate(_ROTATION_SUFFIXES):
        pos = base + k * counts[inverse]
        out[pos] = np.rot90(images, k, axes=(1, 2))
        out_labels[pos] = np.char.add(labels, suffix) if k else labels
    return out, out_labels
