"""Image data sets laid out as one sub-folder per class, read lazily."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._image_cache import (
    _CACHE_VERSION,
    _CHANNELS,
    _cache_paths,
    _create_cache,
    _hash,
    _read_manifest,
    _remove_stale,
)
from ._omniglot import _resolve_data_home

__all__ = ["ImageFolderArray", "load_image_folder"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_CACHE_FOLDER = "sklearn_meta_image_folders"
# Modes of a first image that make mode=None mean "L".
_GREY_MODES = ("1", "L", "LA", "I", "F")
# What PIL raises for a file it cannot identify, or pixels it cannot decode.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class ImageFolderArray:
    """Images of a folder as a lazy, read-only uint8 array ``(n, C, H, W)``.

    Returned as ``data`` by :func:`load_image_folder`, which is how it should
    be made. Indexing reads only the requested images: an image is decoded
    with Pillow the first time it is read, converted to ``mode``, resized to
    ``image_size``, and written to an on-disk cache, from which every later
    read (later epochs, later runs, other processes) comes at memory speed.

    Parameters
    ----------
    filenames : sequence of str
        Absolute path of each image, in sample order.
    image_size : tuple of int
        ``(height, width)`` of the images returned.
    mode : {"L", "RGB", "RGBA"}
        Pillow mode the images are converted to: 1, 3 or 4 channels.
    pixels_path : str or path-like
        The cache of pixels, a uint8 ``.npy`` file of shape
        ``(n, C, H, W)``.
    filled_path : str or path-like
        The cache's flags, a uint8 ``.npy`` file of shape ``(n,)``: 1 where
        the image's pixels are in the cache.
    targets : array-like of shape (n,), default=None
        The class of each image, if known.

    Attributes
    ----------
    shape : tuple of int
        ``(n_samples, channels, height, width)``.
    dtype : numpy.dtype
        Always ``uint8``.
    ndim : int
        Always 4.
    filenames : ndarray of str of shape (n_samples,)
        Absolute path of each image.
    targets : ndarray of shape (n_samples,) or None
        The class of each image (torchvision's name for it), so a learner
        given the array alone, as ``fit(data)``, finds the labels.
    image_size : tuple of int
        ``(height, width)``.
    mode : str
        Pillow mode of the images: "L", "RGB" or "RGBA".

    See Also
    --------
    load_image_folder : Make one from a folder of class sub-folders.

    Notes
    -----
    ``data[i]`` is one ``(C, H, W)`` array; ``data[a:b]``, ``data[[i, j]]``,
    ``data[indices]`` (a 1-D integer array, in any order, with repeats and
    negative indices) and ``data[mask]`` (a boolean array of length
    ``n_samples``) stack the images read into ``(k, C, H, W)``. Indices past
    the first, as in ``data[indices, 0]``, index that result, so
    :func:`sklearn.utils._safe_indexing` and
    :func:`~sklearn.model_selection.train_test_split` work without reading the
    other images. ``np.asarray(data)`` reads every image into memory.

    Pickles hold the file names and the paths of the cache, not the pixels:
    a copy unpickled in another process (a :class:`torch.utils.data.DataLoader`
    worker, joblib) reads and fills the same cache. Processes and threads may
    read and fill it at the same time: they write identical bytes, and an
    image's flag is set only after its pixels are written.
    """

    def __init__(
        self,
        filenames,
        *,
        image_size: tuple[int, int],
        mode: str,
        pixels_path: str | os.PathLike,
        filled_path: str | os.PathLike,
        targets=None,
    ) -> None:
        self.filenames = np.asarray(filenames, dtype=str)
        self.targets = None if targets is None else np.asarray(targets)
        if self.targets is not None and self.targets.shape != (len(self.filenames),):
            raise ValueError(
                f"targets has shape {self.targets.shape}; expected one class per "
                f"image, ({len(self.filenames)},)."
            )
        self.image_size = tuple(int(side) for side in image_size)
        self.mode = mode
        self._pixels_path = os.fspath(pixels_path)
        self._filled_path = os.fspath(filled_path)
        self._maps = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.filenames), _CHANNELS[self.mode], *self.image_size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        height, width = self.image_size
        return (
            f"{type(self).__name__}(n_samples={len(self)}, "
            f"image_size=({height}, {width}), mode={self.mode!r})"
        )

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            if not key:
                raise IndexError(
                    f"{type(self).__name__} needs an index for the samples; got ()."
                )
            # A tuple inside a tuple is a list of indices, as in NumPy.
            first = list(key[0]) if isinstance(key[0], tuple) else key[0]
            images = self[first]
            if len(key) == 1:
                return images
            # The other indices apply to the image axes of what was read.
            rest = key[1:] if images.ndim == 3 else (slice(None), *key[1:])
            return images[rest]
        if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
            return self._read(self._check_indices(np.asarray([key])))[0]
        if isinstance(key, slice):
            return self._read(np.arange(len(self))[key])
        if isinstance(key, (list, np.ndarray)):
            return self._read(self._check_indices(key))
        raise TypeError(
            f"{type(self).__name__} indices must be an int, a slice, a list of "
            f"ints, or a 1-D array of ints or bools; got {type(key).__name__} "
            f"{key!r}."
        )

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError(
                f"{type(self).__name__} cannot be converted to an array without a "
                "copy: its images are read from files. Use np.asarray(data), "
                "which reads them all into memory."
            )
        images = self._read(np.arange(len(self)))
        return images if dtype is None else images.astype(dtype, copy=False)

    def __getstate__(self) -> dict:
        # The memory maps are reopened by path where the copy is unpickled.
        state = self.__dict__.copy()
        state["filenames"] = self.filenames.tolist()
        if self.targets is not None:
            # Each class once, and a small integer per image.
            state["targets"] = np.unique(self.targets, return_inverse=True)
        state["_maps"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.filenames = np.asarray(self.filenames, dtype=str)
        if self.targets is not None:
            classes, codes = self.targets
            self.targets = classes[codes]

    def _check_indices(self, key) -> np.ndarray:
        """Return ``key`` (a list or a 1-D array) as non-negative int64 indices."""
        n = len(self)
        indices = np.asarray(key)
        if indices.ndim != 1:
            raise IndexError(
                f"{type(self).__name__} takes a 1-D array of indices; got an array "
                f"of shape {indices.shape}."
            )
        if indices.dtype == bool:
            if len(indices) != n:
                raise IndexError(
                    f"The boolean index has length {len(indices)}, but "
                    f"{type(self).__name__} holds {n} images."
                )
            return np.flatnonzero(indices)
        if len(indices) == 0:
            return np.zeros(0, dtype=np.int64)
        if indices.dtype.kind not in "iu":
            raise IndexError(
                f"{type(self).__name__} indices must be integers or booleans; got "
                f"an array of dtype {indices.dtype}."
            )
        bad = (indices < -n) | (indices >= n)
        if bad.any():
            raise IndexError(
                f"Index {indices[bad][0]} is out of bounds for "
                f"{type(self).__name__} with {n} images."
            )
        return np.where(indices < 0, indices + n, indices).astype(np.int64)

    def _open(self) -> tuple[np.memmap, np.memmap]:
        """Return the cache's pixels and flags, opened for reading and writing."""
        # One attribute, set once, so a thread never sees half of the pair.
        if self._maps is None:
            try:
                pixels = np.load(self._pixels_path, mmap_mode="r+")
                filled = np.load(self._filled_path, mmap_mode="r+")
            except FileNotFoundError as exc:
                raise FileNotFoundError(
                    f"The image cache {exc.filename} is gone: it was deleted, or "
                    "replaced after the image folder changed. Call "
                    "load_image_folder again for a fresh array."
                ) from exc
            self._maps = pixels, filled
        return self._maps

    def _read(self, indices: np.ndarray) -> np.ndarray:
        """Images ``indices`` (in range), decoding those not yet in the cache."""
        pixels, filled = self._open()
        for i in np.unique(indices[filled[indices] == 0]):
            filename = self.filenames[i]
            try:
                image = _decode_image(filename, self.mode, self.image_size)
            except _IMAGE_ERRORS as exc:
                raise OSError(
                    f"Could not decode image {i} ({filename}): {exc}. The file is "
                    "damaged or truncated: replace or remove it, then call "
                    "load_image_folder again."
                ) from exc
            pixels[i] = image
            # Set only now, so a reader never trusts half-written pixels.
            filled[i] = 1
        return np.asarray(pixels[indices])


def load_image_folder(
    path: str | os.PathLike,
    *,
    size: int | tuple[int, int] | None = None,
    mode: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    extensions: tuple[str, ...] = EXTENSIONS,
    return_X_y: bool = False,
) -> Bunch | tuple[ImageFolderArray, np.ndarray]:
    """Load a folder of images, one sub-folder per class, as a lazy image pool.

    A class is a leaf folder (one with no sub-folder) holding images, named
    by its path relative to ``path`` with "/" separators, so nested layouts
    work: ``omniglot/Alphabet/character01/*.png`` gives the class
    ``"Alphabet/character01"``. Classes are sorted by name and the images of
    a class by file name; hidden files and folders (names starting with
    ".") and files with other extensions are ignored.

    Loading lists the files and reads each image's header, not its pixels
    (about a second per 10,000 files). The pixels are decoded the first time
    an image is read from ``data`` and kept in an on-disk cache (see Notes),
    so a data set larger than memory can feed a learner epoch after epoch.
    When the cache of an unchanged folder exists, loading skips the headers
    too.

    Parameters
    ----------
    path : str or path-like
        The folder holding one sub-folder (or nested sub-folders) per class.

    size : int or tuple of (int, int), default=None
        ``(height, width)`` of the images returned, or an int for square
        images. None means the size of the first image (in sorted order).
        Images of another size are resized with Pillow's bilinear filter
        (``Image.Resampling.BILINEAR``), after conversion to ``mode``.

    mode : {"L", "RGB", "RGBA"}, default=None
        Pillow mode of the images returned: greyscale (1 channel), colour (3
        channels) or colour with alpha (4 channels). None means "L" if the
        first image is greyscale (mode "1", "L", "LA", "I", "I;16" or "F")
        and "RGB" otherwise. Images are converted with ``Image.convert(mode)``
        by Pillow's rules: colour becomes grey by the ITU-R 601-2 luma
        transform, palette images take their palette's colours, alpha is
        dropped (not composited over a background) and 16-bit or float
        images are clipped to 0..255, not rescaled.

    cache_dir : str or path-like, default=None
        Folder of the decoded-image caches. None means
        ``sklearn_meta_image_folders`` in the folder named by the environment
        variable ``SKLEARN_META_DATA`` if set, else in
        :func:`sklearn.datasets.get_data_home`.

    extensions : tuple of str, default=(".png", ".jpg", ".jpeg", ".bmp", \
".gif", ".tif", ".tiff", ".webp")
        File name endings of the images, compared without regard to case.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ImageFolderArray of shape (n_samples, C, height, width)
            The images, uint8, read lazily: ``data[i]`` or
            ``data[indices]`` reads only those images, ``np.asarray(data)``
            reads all of them. ``C`` is 1 for "L", 3 for "RGB", 4 for "RGBA".
            ``data.targets`` is ``target``.
        target : ndarray of str of shape (n_samples,)
            The class of each image: its folder relative to ``path``.
        target_names : ndarray of str of shape (n_classes,)
            The classes, sorted.
        filenames : ndarray of str of shape (n_samples,)
            Absolute path of each image.
        DESCR : str
            Description of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        The two objects described above.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    NotADirectoryError
        If ``path`` is not a folder.
    ValueError
        If ``size``, ``mode`` or ``extensions`` are invalid, or the folder's
        layout is not one of classes: a folder holding both images and
        sub-folders, a class folder without images, no class or a single
        class.
    OSError
        If a file with an image extension is not an image Pillow can read.
        A file whose header reads but whose pixels do not (truncated or
        corrupt) raises :class:`OSError` when that image is read from
        ``data``, naming the file and its index.

    Notes
    -----
    The cache of a folder is three files in ``cache_dir``, named
    ``<folder>-<key>.json`` (the manifest: format version, key, size, mode
    and the nonce naming the other two), ``<folder>-<key>-<nonce>.npy`` (the
    pixels, uint8 of shape ``(n_samples, C, height, width)``) and
    ``<folder>-<key>-<nonce>.filled.npy`` (uint8 of shape ``(n_samples,)``:
    1 for each image whose pixels are written). ``<folder>`` is a hash of the
    resolved ``path`` and of ``size`` and ``mode`` as given; ``<key>`` a hash
    of those and of every image's relative path, byte size and modification
    time. A file added, removed, replaced or touched gives a new key, so a
    new cache, and that folder's older caches (at the same ``size`` and
    ``mode``) are deleted. Files are created under temporary names and
    renamed into place, and the space for the pixels is reserved at once,
    so an interrupted load never leaves a file that a later one trusts; a
    manifest that does not match its files is replaced. Processes that load
    a new folder at once (the ranks of a distributed job) all use the cache
    of the first to publish its manifest. An interrupted read leaves the
    flags of the images not yet written unset: the next read decodes only
    those.

    The cache needs ``n_samples * C * height * width`` bytes; 40,000 RGB
    images of 84x84 take 850 MB.

    Animated or multi-page files (GIF, TIFF, WebP) give their first frame.
    EXIF orientation tags are not applied: pixels are used as stored, as
    torchvision's ``ImageFolder`` does.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sklearn_meta.datasets import load_image_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> for label in ("cats", "dogs"):
    ...     (root / "pets" / label).mkdir(parents=True)
    ...     for i in range(3):
    ...         image = Image.new("RGB", (32, 24), (80 * i, 60, 0))
    ...         image.save(root / "pets" / label / f"{i}.png")
    >>> pets = load_image_folder(root / "pets", size=16, cache_dir=root / "cache")
    >>> pets.data
    ImageFolderArray(n_samples=6, image_size=(16, 16), mode='RGB')
    >>> pets.target_names
    array(['cats', 'dogs'], dtype='<U4')
    >>> pets.data[[0, 4]].shape
    (2, 3, 16, 16)
    >>> shutil.rmtree(root)
    """
    root = _check_folder(path)
    size = _check_size(size)
    if mode is not None and (not isinstance(mode, str) or mode not in _CHANNELS):
        raise ValueError(
            f"mode must be 'L', 'RGB', 'RGBA' or None; got {mode!r}. Pass 'L' for "
            "greyscale, 'RGB' for colour, or None to follow the first image."
        )
    extensions = _check_extensions(extensions)
    classes = _list_classes(root, extensions)
    files = [(name, entry) for name, entries in classes for entry in entries]
    rel_paths = [f"{name}/{entry.name}" for name, entry in files]
    stats = [entry.stat() for _, entry in files]
    folder_id = _hash([str(root), size, mode])[:16]
    key = _hash(
        [_CACHE_VERSION, str(root), size, mode],
        *(f"{p}\0{s.st_size}\0{s.st_mtime_ns}" for p, s in zip(rel_paths, stats)),
    )[:32]
    stem = f"{folder_id}-{key}"

    cache_dir = Path(
        _resolve_data_home(None) / _CACHE_FOLDER if cache_dir is None else cache_dir
    ).expanduser()
    manifest = _read_manifest(cache_dir / f"{stem}.json", key, len(files))
    if manifest is None:
        first_size, first_mode = _check_headers([entry.path for _, entry in files])
        if size is None:
            size = first_size
        if mode is None:
            grey = first_mode in _GREY_MODES or first_mode.startswith("I;16")
            mode = "L" if grey else "RGB"
        try:
            manifest = _create_cache(cache_dir, stem, key, len(files), size, mode)
        except PermissionError as exc:
            raise PermissionError(
                f"Could not write the image cache to {cache_dir} ({exc}). Pass a "
                "writable cache_dir, or set the SKLEARN_META_DATA environment "
                "variable to a writable folder."
            ) from exc
        _remove_stale(cache_dir, folder_id, key)

    pixels_path, filled_path = _cache_paths(cache_dir / f"{stem}.json", manifest)
    filenames = np.asarray([os.path.join(root, p) for p in rel_paths])
    target = np.asarray([name for name, _ in files])
    data = ImageFolderArray(
        filenames,
        image_size=manifest["image_size"],
        mode=manifest["mode"],
        pixels_path=pixels_path,
        filled_path=filled_path,
        targets=target,
    )
    if return_X_y:
        return data, target
    target_names = np.asarray([name for name, _ in classes])
    height, width = data.image_size
    descr = (
        f"Images of the folder {root}\n\n"
        f"{len(data)} images of {len(target_names)} classes (one per leaf "
        f"folder), {height}x{width} pixels, Pillow mode {data.mode!r}, uint8, "
        "decoded lazily into an on-disk cache.\n"
    )
    return Bunch(
        data=data,
        target=target,
        target_names=target_names,
        filenames=filenames,
        DESCR=descr,
    )


def _check_folder(path) -> Path:
    """``path`` resolved, after checking that it is a folder."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"The image folder {folder} does not exist. Pass the folder that holds "
            "one sub-folder of images per class."
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder} is not a folder. Pass the folder that holds one sub-folder "
            "of images per class, not a file."
        )
    return folder.resolve()


def _check_size(size) -> tuple[int, int] | None:
    """``size`` as ``(height, width)``, or None."""
    if size is None:
        return None
    sides = (size, size) if isinstance(size, numbers.Integral) else size
    if not (
        isinstance(sides, (tuple, list))
        and len(sides) == 2
        and all(
            isinstance(side, numbers.Integral)
            and not isinstance(side, (bool, np.bool_))
            and side >= 1
            for side in sides
        )
    ):
        raise ValueError(
            "size must be a positive int, a (height, width) pair of positive ints, "
            f"or None; got {size!r}. Pass for example size=84 or size=(84, 84), or "
            "None to keep the size of the first image."
        )
    return int(sides[0]), int(sides[1])


def _check_extensions(extensions) -> tuple[str, ...]:
    """``extensions`` as a tuple of lower-case strings."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    try:
        extensions = tuple(extensions)
    except TypeError:
        extensions = None
    if not extensions or not all(
        isinstance(ext, str) and ext.startswith(".") for ext in extensions
    ):
        raise ValueError(
            "extensions must be a non-empty tuple of file name endings starting "
            f'with "."; got {extensions!r}. Pass for example (".png", ".jpg").'
        )
    return tuple(ext.lower() for ext in extensions)


def _list_classes(root: Path, extensions) -> list[tuple[str, list[os.DirEntry]]]:
    """Each class's name and image entries, both sorted; checks the layout."""
    classes = []

    def visit(folder: str, name: str, ancestors: frozenset) -> None:
        with os.scandir(folder) as scan:
            entries = sorted(
                (entry for entry in scan if not entry.name.startswith(".")),
                key=lambda entry: entry.name,
            )
        subfolders = [entry for entry in entries if entry.is_dir()]
        images = [
            entry
            for entry in entries
            if not entry.is_dir()
            and os.path.splitext(entry.name)[1].lower() in extensions
            and entry.is_file()
        ]
        if subfolders and images:
            raise ValueError(
                f"The folder {folder} holds both images ({images[0].name}, ...) and "
                f"sub-folders ({subfolders[0].name}, ...), so it is unclear which "
                "are classes. Move its images into a sub-folder of their own, or "
                "its sub-folders out of it."
            )
        if not subfolders and name:
            if not images:
                raise ValueError(
                    f"The class folder {folder} holds no image (no file ending in "
                    f"{', '.join(extensions)}). Remove the folder, add its images, "
                    "or pass the ending of its files in extensions."
                )
            classes.append((name, images))
        for sub in subfolders:
            real = os.path.realpath(sub.path)
            if real in ancestors:
                raise ValueError(
                    f"The folder {sub.path} links back to {real}, which contains "
                    "it. Remove the link, or point path at a folder without loops."
                )
            prefix = f"{name}/" if name else ""
            visit(sub.path, prefix + sub.name, ancestors | {real})

    visit(str(root), "", frozenset({str(root)}))
    if not classes:
        raise ValueError(
            f"The folder {root} holds no class folder with images (files ending in "
            f"{', '.join(extensions)}). Put the images of each class in a "
            f"sub-folder of their own, for example {root / 'cat' / '0001.png'}."
        )
    if len(classes) == 1:
        raise ValueError(
            f"The folder {root} holds a single class ({classes[0][0]}), but "
            "meta-learning needs at least 2. Point path at the folder that holds "
            "one sub-folder per class, or add classes."
        )
    # Sorted by name, which a depth-first walk does not give ("a/b" > "a-c").
    classes.sort(key=lambda item: item[0])
    return classes


def _check_headers(filenames: list[str]) -> tuple[tuple[int, int], str]:
    """Check that every file is an image; return the first's (height, width), mode."""
    first = None
    for filename in filenames:
        try:
            image_size, image_mode = _read_header(filename)
        except _IMAGE_ERRORS as exc:
            raise OSError(
                f"Could not read {filename} as an image ({exc}). Remove or replace "
                "the file, or leave its ending out of extensions."
            ) from exc
        if first is None:
            width, height = image_size
            first = (height, width), image_mode
    return first


def _read_header(filename: str) -> tuple[tuple[int, int], str]:
    """Pillow's ``(width, height)`` and mode of an image, read from its header."""
    with Image.open(filename) as image:
        return image.size, image.mode


def _decode_image(filename: str, mode: str, image_size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 ``(C, height, width)``: decoded, converted, resized."""
    with Image.open(filename) as image:
        image = image.convert(mode)
    height, width = image_size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
