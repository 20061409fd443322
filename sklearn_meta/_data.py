"""Where a pool's samples live, and how a batch of them reaches the device.

A pool is read a batch at a time through :class:`_Samples`, whatever holds
it:

- an array in memory: float32 after scikit-learn's validation, or uint8
  images kept as uint8 (:class:`_TensorSource`). ``fit`` moves it to the
  device once, as a whole, as it always did;
- an array-like read by integer arrays: ``np.memmap``, h5py and zarr arrays,
  :func:`~sklearn_meta.datasets.load_image_folder`'s images
  (:class:`_ArrayLikeSource`);
- a map-style :class:`torch.utils.data.Dataset` of ``(x, label)`` items
  (:class:`_DatasetSource`).

The last two are lazy: only the rows a batch asks for are read, and their
values are checked as they are read (finite, one shape, a numeric dtype),
with errors naming the row. uint8 samples are pixel intensities: they travel
to the device as uint8 and become float32 there, divided by 255, which gives
exactly ``X.astype(np.float32) / 255`` (one correctly rounded division).
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

__all__: list[str] = []


def _to_float(values: torch.Tensor) -> torch.Tensor:
    """Return samples as float32: uint8 intensities divided by 255, floats cast."""
    if values.dtype == torch.uint8:
        return values.to(torch.float32).div_(255)
    return values.to(torch.float32)


def _as_float32(X) -> np.ndarray:
    """Return samples given as an array-like as float32, uint8 divided by 255.

    The host-side twin of :func:`_to_float`, for samples that are small and
    converted whole (a task's support and query sets).
    """
    X = np.asarray(X)
    if X.dtype == np.uint8:
        return X.astype(np.float32) / np.float32(255)
    return X.astype(np.float32, copy=False)


def _to_device(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """Move host samples to ``device`` (through pinned memory on CUDA)."""
    tensor = torch.from_numpy(np.ascontiguousarray(values))
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _check_dtype(dtype, what: str) -> np.dtype:
    """Return ``dtype`` if lazy samples may have it (uint8 or floating), else raise."""
    dtype = np.dtype(dtype)
    if dtype != np.uint8 and dtype.kind != "f":
        raise ValueError(
            f"{what} has dtype {dtype}; samples read from disk or from a Dataset "
            "must be uint8 images or floating-point values. Open the file with the "
            "dtype it was written with (for instance np.memmap(path, "
            "dtype=np.uint8, ...)), or convert the samples to float32."
        )
    return dtype


def _check_finite_rows(values: np.ndarray, rows: np.ndarray, name: str) -> None:
    """Raise naming the first of ``rows`` whose values are not finite."""
    if values.dtype.kind != "f":
        return
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not finite.all():
        row = int(rows[np.flatnonzero(~finite)[0]])
        raise ValueError(
            f"{name}[{row}] contains NaN or infinity. Remove that sample or impute "
            "its values."
        )


class _TensorSource:
    """Samples held in one tensor: an array in memory, or its copy on a device."""

    lazy = False

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor
        self.shape = tuple(tensor.shape)
        self.dtype = np.dtype(str(tensor.dtype).removeprefix("torch."))

    def read(self, rows: np.ndarray, device) -> torch.Tensor:
        """Return ``rows`` (1-D positions) as stored, on ``device``."""
        index = torch.as_tensor(rows, device=self.tensor.device)
        return self.tensor[index].to(device, non_blocking=True)

    def on_device(self, device) -> _TensorSource:
        """Return the source with its tensor on ``device`` (copied once)."""
        return _TensorSource(self.tensor.to(device))


class _FileRows:
    """Rows of a C-ordered ``np.memmap``, read from its file with ``pread``.

    Indexing the mapping would map the pages it touches (and the kernel's
    read-ahead around them) into the process, whose resident size then grows
    with every epoch, although those pages are the page cache's. Reading the
    file copies just the rows, and the process's memory stays flat.
    """

    def __init__(self, array: np.memmap):
        self.path = array.filename
        self.offset = int(array.offset)
        self.row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.itemsize
        self.dtype = array.dtype
        self.row_shape = array.shape[1:]
        self.fd = os.open(self.path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    @classmethod
    def of(cls, array) -> _FileRows | None:
        """Return a reader of ``array``'s file, or None if it has no simple one.

        That is a memmap made by ``np.memmap`` or ``np.load(mmap_mode=...)``
        itself (not a view of one), C-ordered, backed by a named file.
        """
        if (
            isinstance(array, np.memmap)
            and isinstance(array.base, mmap.mmap)
            and array.flags.c_contiguous
            and array.filename is not None
        ):
            return cls(array)
        return None

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """Read increasing ``rows``, each run of consecutive rows in one call."""
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        view = out.reshape(len(rows), -1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for start, stop in zip(
            np.r_[0, breaks].tolist(), np.r_[breaks, len(rows)].tolist()
        ):
            size = (stop - start) * self.row_bytes
            position = self.offset + int(rows[start]) * self.row_bytes
            data = os.pread(self.fd, size, position)
            if len(data) != size:
                raise ValueError(
                    f"{self.path} ends before row {int(rows[stop - 1])}: it is "
                    "shorter than the memmap's shape says."
                )
            view[start:stop] = np.frombuffer(data, np.uint8).reshape(stop - start, -1)
        return out


class _ArrayLikeSource:
    """An array-like on disk read by integer arrays: memmap, h5py, zarr, images."""

    lazy = True

    def __init__(self, array, name: str):
        self.array = array
        self.name = name
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = _check_dtype(array.dtype, f"{name} ({type(array).__name__})")
        # h5py reads increasing indices only; zarr reads them through oindex;
        # a plain memmap is read from its file.
        self.reader = _FileRows.of(array) or getattr(array, "oindex", None) or array

    def read(self, rows: np.ndarray, device) -> torch.Tensor:
        """Read ``rows`` (any order, repeats allowed), check them, move them."""
        unique, inverse = np.unique(rows, return_inverse=True)
        values = np.asarray(self.reader[unique])
        if values.shape != (len(unique), *self.shape[1:]):
            raise ValueError(
                f"Reading rows of {self.name} gave an array of shape {values.shape}; "
                f"expected {(len(unique), *self.shape[1:])}. {self.name} must "
                "return one sample per index of an integer array."
            )
        _check_finite_rows(values, unique, self.name)
        return _to_device(values[inverse.ravel()], device)

    def on_device(self, device) -> _ArrayLikeSource:
        """Lazy sources stay where they are: batches move, not the pool."""
        return self


class _DatasetSource:
    """A map-style torch ``Dataset`` whose items are ``(x, label)``."""

    lazy = True

    def __init__(self, dataset: Dataset, name: str):
        if isinstance(dataset, IterableDataset):
            raise TypeError(
                f"{name} is an IterableDataset; a pool must be a map-style Dataset "
                "(with __len__ and __getitem__), because episodes read samples by "
                "index."
            )
        if not hasattr(dataset, "__len__"):
            raise TypeError(
                f"{name} is a Dataset without __len__; a pool must know its size."
            )
        self.dataset = dataset
        self.name = name
        n = len(dataset)
        first = self._item(0) if n else np.empty((0,), np.float32)
        self.shape = (n, *first.shape)
        self.dtype = _check_dtype(first.dtype, f"{name}[0] (a sample of the Dataset)")

    def _item(self, i: int) -> np.ndarray:
        """Return the sample of item ``i``, checked to be ``(x, label)``."""
        item = self.dataset[i]
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(
                f"{self.name}[{i}] is a {type(item).__name__}, but items of a "
                "Dataset pool must be (x, label) pairs, as torchvision's datasets "
                "return them."
            )
        x = item[0]
        if isinstance(x, torch.Tensor):
            x = x.numpy(force=True)
        return np.asarray(x)

    def read(self, rows: np.ndarray, device) -> torch.Tensor:
        """Read the items of ``rows``, check their shape, dtype and values."""
        unique, inverse = np.unique(rows, return_inverse=True)
        samples = []
        for i in unique.tolist():
            x = self._item(i)
            if x.shape != self.shape[1:] or x.dtype != self.dtype:
                raise ValueError(
                    f"{self.name}[{i}] holds a sample of shape {x.shape} and dtype "
                    f"{x.dtype}, but {self.name}[0] has shape {self.shape[1:]} and "
                    f"dtype {self.dtype}; every sample of a pool must have the same."
                )
            samples.append(x)
        values = np.stack(samples) if samples else np.empty(self.shape, self.dtype)
        _check_finite_rows(values, unique, self.name)
        return _to_device(values[inverse.ravel()], device)

    def on_device(self, device) -> _DatasetSource:
        """Lazy sources stay where they are: batches move, not the pool."""
        return self


class _Samples:
    """The samples of a pool (or of a part of it), read by row a batch at a time.

    ``index`` maps this view's rows to the source's (None: all of them, in
    order); indexing a view makes another view and reads nothing.
    """

    def __init__(self, source, index: np.ndarray | None = None):
        self.source = source
        self.index = index

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_samples, *sample_shape)``."""
        n = self.source.shape[0] if self.index is None else len(self.index)
        return (n, *self.source.shape[1:])

    @property
    def ndim(self) -> int:
        """Number of dimensions of the samples, the sample axis included."""
        return len(self.source.shape)

    @property
    def dtype(self) -> np.dtype:
        """How the samples are stored (they are read as float32)."""
        return self.source.dtype

    @property
    def lazy(self) -> bool:
        """Whether the samples are read from disk or a Dataset as batches need them."""
        return self.source.lazy

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> _Samples:
        """Return the view of ``rows`` (a slice or an integer array)."""
        positions = np.arange(len(self))[rows]
        if positions.ndim != 1:
            raise IndexError("rows of samples are selected by a 1-D index")
        return _Samples(
            self.source, positions if self.index is None else self.index[positions]
        )

    def gather(self, rows, device) -> torch.Tensor:
        """Read ``rows`` (an integer array of any shape) as float32 on ``device``.

        Returns a tensor of shape ``rows.shape + sample_shape``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.ravel() if self.index is None else self.index[rows.ravel()]
        values = _to_float(self.source.read(flat, device))
        return values.view(*rows.shape, *self.source.shape[1:])

    def tensor(self, device) -> torch.Tensor:
        """Read every row of this view as float32 on ``device``."""
        return self.gather(np.arange(len(self)), device)

    def on_device(self, device) -> _Samples:
        """Return the view over a source that serves ``device`` best.

        Arrays in memory are copied to the device once (a no-op on the CPU);
        lazy sources are read a batch at a time.
        """
        return _Samples(self.source.on_device(device), self.index)


def _lazy_samples(X, name: str = "X") -> _Samples | None:
    """Wrap ``X`` when it is a pool to read as batches; None for in-memory data.

    uint8 arrays (images kept as uint8), ``np.memmap``, array-likes with
    ``shape``, ``dtype`` and integer-array indexing (h5py, zarr, image
    folders; their length is ``shape[0]``) and map-style Datasets are
    wrapped; other input (lists, float arrays, DataFrames, sparse matrices)
    is for scikit-learn's validation.
    """
    if isinstance(X, _Samples):
        return X
    if isinstance(X, Dataset):
        return _Samples(_DatasetSource(X, name))
    if isinstance(X, torch.Tensor):
        if X.dtype != torch.uint8:
            return None
        X = X.numpy(force=True)
    if isinstance(X, np.memmap):
        return _Samples(_ArrayLikeSource(X, name))
    if isinstance(X, np.ndarray):
        if X.dtype != np.uint8:
            return None
        return _Samples(_TensorSource(torch.from_numpy(np.ascontiguousarray(X))))
    if hasattr(X, "iloc") or hasattr(X, "__dataframe__") or hasattr(X, "tocsr"):
        return None
    if all(hasattr(X, a) for a in ("shape", "dtype", "__getitem__")):
        return _Samples(_ArrayLikeSource(X, name))
    return None


def _pool_labels(X):
    """Return the labels a pool carries (a ``targets`` attribute), or None.

    torchvision's datasets and :func:`~sklearn_meta.datasets.load_image_folder`'s
    images say their labels this way, so ``fit`` never iterates over a
    Dataset to find them.
    """
    if not isinstance(X, Dataset) and not hasattr(X, "shape"):
        return None
    targets = getattr(X, "targets", None)
    if targets is None:
        return None
    if isinstance(targets, torch.Tensor):
        targets = targets.numpy(force=True)
    return np.asarray(targets)


def _samples(X) -> _Samples:
    """Return ``X`` (validated samples: an array, a tensor or a view) as a view."""
    if isinstance(X, _Samples):
        return X
    return _Samples(_TensorSource(torch.as_tensor(X)))


def _feature_moments(
    X: _Samples, device, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-feature mean and variance (``ddof=0``) of samples, a chunk at a time.

    ``X`` is read ``chunk`` rows at a time (a lazy pool is never
    read whole), each chunk flattened to ``(n, D)``. Each chunk's mean and sum
    of squared deviations are computed in float64 and merged with the pairwise
    update of Chan, Golub & LeVeque (1983), which stays exact for constant
    features and does not lose the variance to cancellation as
    ``E[x^2] - E[x]^2`` does. Returns the mean and variance ``(D,)`` (float64,
    on ``device``) and the number of samples.
    """
    n, mean, m2 = 0, None, None
    for start in range(0, len(X), chunk):
        batch = X[start : start + chunk].tensor(device).flatten(1).double()
        k = len(batch)
        batch_mean = batch.mean(0)
        batch_m2 = (batch - batch_mean).square().sum(0)
        if mean is None:
            mean, m2 = batch_mean, batch_m2
        else:
            delta = batch_mean - mean
            mean = mean + delta * (k / (n + k))
            m2 = m2 + batch_m2 + delta.square() * (n * k / (n + k))
        n += k
    return mean, m2 / n, n


def _prefetched(jobs: Iterable[Callable[[], Any]], num_workers: int) -> Iterator[Any]:
    """Run ``jobs`` in order and yield their results in order.

    With ``num_workers`` threads the next ``2 * num_workers`` jobs run while
    the caller works on the current result (reading and decoding release the
    GIL). Which job yields which result never depends on the threads, so
    neither do the results.
    """
    if num_workers == 0:
        for job in jobs:
            yield job()
        return
    executor = ThreadPoolExecutor(num_workers, thread_name_prefix="sklearn_meta")
    pending: deque = deque()
    jobs = iter(jobs)
    try:
        for job in jobs:
            pending.append(executor.submit(job))
            if len(pending) >= 2 * num_workers:
                break
        while pending:
            result = pending.popleft().result()
            for job in jobs:
                pending.append(executor.submit(job))
                break
            yield result
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True)
