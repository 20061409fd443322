"""Tasks and episodes: the unit of data every meta-learner trains on.

A *task* is a small learning problem with a support set to adapt on and a query
set to be judged on. An *episode* is a task drawn from a labelled pool:
``n_way`` classes, ``k_shot`` support and ``n_query`` query examples per class,
labels re-mapped to ``0..n_way-1``.

Episodes are drawn by index arithmetic on a class index of the pool, so the pool
itself is never copied: :class:`EpisodeSampler` returns integer indices, and the
learners gather the rows they need (on the device, in one call per meta-batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from ._data import _as_float32
from ._random import _as_generator
from ._validation import _check_class_labels

__all__ = ["EpisodeSampler", "Task", "sample_tasks"]


@dataclass(frozen=True)
class Task:
    """One small learning problem: a support set to adapt on, a query set to judge.

    Parameters
    ----------
    X_support : array-like of shape (n_support, ...)
        Inputs of the support set: ``(n, n_features)`` for tabular data,
        ``(n, channels, height, width)`` for images.
    y_support : array-like of shape (n_support,)
        Labels (classification: numbers or strings) or targets (regression).
    X_query : array-like of shape (n_query, ...)
        Inputs of the query set, same trailing shape as ``X_support``.
    y_query : array-like of shape (n_query,)
        Labels or targets of the query set. For classification every query label
        must appear in ``y_support``.
    metadata : dict, default=None
        Anything that describes the task (for instance the amplitude and phase
        of a sinusoid). Not used by the learners.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_meta.tasks import Task
    >>> task = Task(np.zeros((2, 3)), ["a", "b"], np.ones((4, 3)), ["a", "b", "b", "a"])
    >>> task.X_query.shape
    (4, 3)
    """

    X_support: Any
    y_support: Any
    X_query: Any
    y_query: Any
    metadata: dict = field(default_factory=dict)


class _EpisodeBatch(NamedTuple):
    """A meta-batch of episodes of equal shape, as tensors on one device.

    ``X_support`` is ``(B, n_support, *sample_shape)``, ``y_support`` is
    ``(B, n_support)`` (int64 class codes ``0..n_classes-1`` for classification),
    ``X_query`` is ``(B, n_query, *sample_shape)`` and ``y_query`` is
    ``(B, n_query)``.
    """

    X_support: torch.Tensor
    y_support: torch.Tensor
    X_query: torch.Tensor
    y_query: torch.Tensor
    n_classes: int


def _sample_without_replacement(
    rng: np.random.Generator, n: np.ndarray, m: int
) -> np.ndarray:
    """Draw ``m`` distinct positions in ``[0, n)`` for every entry of ``n``.

    Vectorised Floyd's algorithm followed by a shuffle, so every subset and
    every order is equally likely. ``n`` is an integer array of any shape with
    ``n >= m``; the result has shape ``n.shape + (m,)``.
    """
    n = np.asarray(n, dtype=np.int64)
    chosen = np.empty((*n.shape, m), dtype=np.int64)
    for j in range(m):
        bound = n - m + j + 1
        t = np.floor(rng.random(n.shape) * bound).astype(np.int64)
        seen = (chosen[..., :j] == t[..., None]).any(axis=-1)
        chosen[..., j] = np.where(seen, bound - 1, t)
    order = np.argsort(rng.random(chosen.shape), axis=-1)
    return np.take_along_axis(chosen, order, axis=-1)


def _describe(values: Iterable, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(
        repr(v.item() if hasattr(v, "item") else v) for v in values[:limit]
    )
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return shown + more


class EpisodeSampler:
    """Draw N-way K-shot episodes from a labelled pool by index arithmetic.

    Each episode picks ``n_way`` distinct classes, then ``k_shot + n_query``
    distinct examples of each; the first ``k_shot`` of every class form the
    support set. With ``groups``, each group is its own pool (one task family,
    for instance one patient): an episode first picks a group, then classes
    inside it, so labels only need to be meaningful within a group.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels of the pool (numbers or strings).
    n_way : int
        Classes per episode.
    k_shot : int
        Support examples per class.
    n_query : int
        Query examples per class.
    groups : array-like of shape (n_samples,), default=None
        Group of each sample. Episodes never mix groups.

    Raises
    ------
    ValueError
        If the pool (or a group) has fewer than ``n_way`` classes, or a class
        has fewer than ``k_shot + n_query`` examples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_meta.tasks import EpisodeSampler
    >>> y = np.repeat(["a", "b", "c"], 4)
    >>> sampler = EpisodeSampler(y, n_way=2, k_shot=1, n_query=2)
    >>> support, query = sampler.sample(3, random_state=0)
    >>> support.shape, query.shape
    ((3, 2), (3, 4))
    >>> sampler.support_labels()
    array([0, 1])
    """

    def __init__(self, y, n_way: int, k_shot: int, n_query: int, groups=None):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional; got shape {y.shape}.")
        group_names = group_codes = None
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != y.shape:
                raise ValueError(
                    f"groups must have the same length as y; got {len(groups)} "
                    f"groups for {len(y)} labels."
                )
            group_names, group_codes = np.unique(groups, return_inverse=True)
        classes, class_codes = np.unique(y, return_inverse=True)
        self._index(
            n_way, k_shot, n_query, class_codes, classes, group_codes, group_names
        )

    @classmethod
    def _from_codes(
        cls,
        class_codes: np.ndarray,
        n_way: int,
        k_shot: int,
        n_query: int,
        *,
        classes: np.ndarray | None = None,
        group_codes: np.ndarray | None = None,
        group_names: np.ndarray | None = None,
    ) -> EpisodeSampler:
        """Build a sampler from codes a validation already produced.

        ``class_codes`` (and ``group_codes``) are int arrays ``(n_samples,)``;
        ``classes`` and ``group_names`` name the codes in error messages.
        """
        sampler = cls.__new__(cls)
        sampler._index(
            n_way, k_shot, n_query, class_codes, classes, group_codes, group_names
        )
        return sampler

    def _index(
        self, n_way, k_shot, n_query, class_codes, classes, group_codes, group_names
    ) -> None:
        """Index the pool's cells (one per group and class) for sampling."""
        self.n_way = int(n_way)
        self.k_shot = int(k_shot)
        self.n_query = int(n_query)
        per_class = self.k_shot + self.n_query
        grouped = group_codes is not None
        if grouped:
            # Codes of a subset of the pool's groups: number the present ones.
            present, group_codes = np.unique(group_codes, return_inverse=True)
            group_names = present if group_names is None else group_names[present]
        else:
            group_codes = np.zeros(len(class_codes), dtype=np.int64)

        # One cell per (group, class): sorted sample indices with start offsets.
        cell_key = group_codes * (class_codes.max(initial=0) + 1) + class_codes
        _, cell_of_sample, cell_counts = np.unique(
            cell_key, return_inverse=True, return_counts=True
        )
        self._order = np.argsort(cell_of_sample, kind="stable")
        self._cell_start = np.concatenate([[0], np.cumsum(cell_counts)[:-1]])
        self._cell_count = cell_counts
        first_sample = self._order[self._cell_start]
        cell_group = group_codes[first_sample]

        def name(names, codes):
            return codes if names is None else names[codes]

        too_small = cell_counts < per_class
        if too_small.any():
            bad = first_sample[too_small]
            where = (
                ""
                if not grouped
                else " (in groups "
                + _describe(np.unique(name(group_names, group_codes[bad])))
                + ")"
            )
            raise ValueError(
                f"Every class needs at least k_shot + n_query = {per_class} "
                f"examples, but class(es) {_describe(name(classes, class_codes[bad]))}"
                f"{where} have {_describe(cell_counts[too_small])}. Lower k_shot or "
                "n_query, or remove those classes from the pool."
            )

        n_groups = cell_group.max(initial=-1) + 1
        classes_per_group = np.bincount(cell_group, minlength=n_groups)
        short = classes_per_group < self.n_way
        if not grouped and short.any():
            raise ValueError(
                f"n_way={self.n_way} is larger than the number of classes in y "
                f"({classes_per_group[0] if len(classes_per_group) else 0}). "
                f"Lower n_way or pass data with at least {self.n_way} classes."
            )
        if short.any():
            raise ValueError(
                f"n_way={self.n_way} is larger than the number of classes in "
                f"group(s) {_describe(name(group_names, np.flatnonzero(short)))} "
                f"({_describe(classes_per_group[short])}). Lower n_way or drop "
                "those groups."
            )
        # Cells are sorted by group, so each group's cells are contiguous.
        self._group_cell_start = np.concatenate(
            [[0], np.cumsum(classes_per_group)[:-1]]
        )
        self._group_cell_count = classes_per_group

    def support_labels(self) -> np.ndarray:
        """Episode labels of the support indices, shape ``(n_way * k_shot,)``."""
        return np.repeat(np.arange(self.n_way), self.k_shot)

    def query_labels(self) -> np.ndarray:
        """Episode labels of the query indices, shape ``(n_way * n_query,)``."""
        return np.repeat(np.arange(self.n_way), self.n_query)

    def sample(
        self, n_episodes: int, random_state=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw episodes as indices into the pool.

        Parameters
        ----------
        n_episodes : int
            Number of episodes.
        random_state : int, RandomState instance, Generator or None, default=None
            Source of randomness. A :class:`numpy.random.Generator` is used as is.

        Returns
        -------
        support : ndarray of shape (n_episodes, n_way * k_shot)
            Pool indices of the support examples, class-major: the labels are
            :meth:`support_labels`.
        query : ndarray of shape (n_episodes, n_way * n_query)
            Pool indices of the query examples, labels :meth:`query_labels`.
        """
        rng = _as_generator(random_state)
        n_groups = len(self._group_cell_count)
        group = rng.integers(n_groups, size=n_episodes)
        class_pos = _sample_without_replacement(
            rng, self._group_cell_count[group], self.n_way
        )
        cell = self._group_cell_start[group][:, None] + class_pos  # (E, n_way)
        per_class = self.k_shot + self.n_query
        sample_pos = _sample_without_replacement(rng, self._cell_count[cell], per_class)
        idx = self._order[self._cell_start[cell][..., None] + sample_pos]
        support = idx[..., : self.k_shot].reshape(n_episodes, -1)
        query = idx[..., self.k_shot :].reshape(n_episodes, -1)
        return support, query


def sample_tasks(
    X,
    y,
    *,
    n_way: int,
    k_shot: int,
    n_query: int,
    n_tasks: int,
    groups=None,
    random_state=None,
) -> list[Task]:
    """Draw episodes from a labelled pool as :class:`Task` objects.

    Labels keep their original values (not re-mapped), so the tasks can be fed
    to ``adapt`` and ``predict`` as a user would.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        The pool.
    y : array-like of shape (n_samples,)
        Class labels of the pool.
    n_way, k_shot, n_query : int
        Episode shape, as in :class:`EpisodeSampler`.
    n_tasks : int
        Number of tasks to draw.
    groups : array-like of shape (n_samples,), default=None
        Draw each task from a single group.
    random_state : int, RandomState instance, Generator or None, default=None
        Source of randomness.

    Returns
    -------
    tasks : list of Task
        ``n_tasks`` tasks with ``n_way * k_shot`` support and
        ``n_way * n_query`` query examples.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_meta.tasks import sample_tasks
    >>> X, y = load_iris(return_X_y=True)
    >>> tasks = sample_tasks(X, y, n_way=2, k_shot=5, n_query=3, n_tasks=4,
    ...                      random_state=0)
    >>> len(tasks), tasks[0].X_support.shape
    (4, (10, 4))
    """
    X = np.asarray(X)
    y = np.asarray(y)
    sampler = EpisodeSampler(y, n_way, k_shot, n_query, groups=groups)
    support, query = sampler.sample(n_tasks, random_state)
    return [Task(X[s], y[s], X[q], y[q]) for s, q in zip(support, query)]


def _stratified_sample(y: np.ndarray, size: int, rng) -> np.ndarray:
    """Sorted indices of ``size`` rows, spread over the labels as evenly as possible."""
    if y.ndim > 1 or y.dtype.kind == "f":
        return np.sort(rng.choice(len(y), size, replace=False))
    order = rng.permutation(len(y))
    codes = np.unique(y[order], return_inverse=True)[1]
    by_code = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_code]
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_code] = np.arange(len(y)) - np.searchsorted(sorted_codes, sorted_codes)
    return np.sort(order[np.argsort(rank, kind="stable")[:size]])


def _encode_task_labels(task: Task, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Re-map a classification task's labels to ``0..n_classes-1``."""
    y_support = _check_class_labels(task.y_support, f"Task {index}'s y_support")
    y_query = _check_class_labels(task.y_query, f"Task {index}'s y_query")
    classes, ys = np.unique(np.asarray(y_support), return_inverse=True)
    yq = np.asarray(y_query)
    pos = np.searchsorted(classes, yq)
    pos = np.clip(pos, 0, len(classes) - 1)
    unknown = classes[pos] != yq
    if unknown.any():
        raise ValueError(
            f"Task {index} has query labels {_describe(np.unique(yq[unknown]))} that "
            "are not in its support set. Every query label must appear in y_support."
        )
    return ys, pos, len(classes)


def _check_task(task, index: int, classification: bool) -> tuple:
    """Validate one task; return float32 arrays and encoded targets."""
    if not isinstance(task, Task):
        raise TypeError(
            f"fit(tasks) expects Task objects; item {index} is a "
            f"{type(task).__name__}. Build tasks with sklearn_meta.tasks.Task, or "
            "pass a labelled pool as fit(X, y)."
        )
    # uint8 samples are pixel intensities, as in a pool: divided by 255.
    Xs = _as_float32(task.X_support)
    Xq = _as_float32(task.X_query)
    if Xs.ndim < 2 or Xq.shape[1:] != Xs.shape[1:]:
        raise ValueError(
            f"Task {index}: X_support and X_query must be at least 2-dimensional "
            f"with the same trailing shape; got {Xs.shape} and {Xq.shape}."
        )
    for name, arr, target in (
        ("support", Xs, task.y_support),
        ("query", Xq, task.y_query),
    ):
        if len(arr) == 0:
            raise ValueError(f"Task {index} has an empty {name} set.")
        if len(np.asarray(target)) != len(arr):
            raise ValueError(
                f"Task {index}: X_{name} has {len(arr)} rows but y_{name} has "
                f"{len(np.asarray(target))}."
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"Task {index}: X_{name} contains NaN or infinity.")
    if classification:
        ys, yq, n_classes = _encode_task_labels(task, index)
    else:
        ys = np.asarray(task.y_support, dtype=np.float32)
        yq = np.asarray(task.y_query, dtype=np.float32)
        n_classes = 0
    return Xs, ys, Xq, yq, n_classes


def _batch_from_tasks(checked: Sequence[tuple], device) -> list[_EpisodeBatch]:
    """Stack checked tasks into as few equal-shape meta-batches as possible."""
    by_shape: dict[tuple, list[tuple]] = {}
    for item in checked:
        Xs, ys, Xq, _, n_classes = item
        by_shape.setdefault((Xs.shape, Xq.shape, ys.shape[1:], n_classes), []).append(
            item
        )
    batches = []
    for items in by_shape.values():
        stack = [np.stack([it[i] for it in items]) for i in range(4)]
        batches.append(
            _EpisodeBatch(
                *(torch.as_tensor(a).to(device) for a in stack), n_classes=items[0][4]
            )
        )
    return batches


class _TaskStream:
    """Serve meta-batches from a sequence (reshuffled per epoch) or an iterator."""

    def __init__(self, tasks, classification: bool):
        self.classification = classification
        if isinstance(tasks, Sequence):
            if len(tasks) == 0:
                raise ValueError("fit(tasks) got an empty sequence of tasks.")
            self._tasks = tasks
            self._iterator = None
        elif isinstance(tasks, Iterator) or isinstance(tasks, Iterable):
            self._tasks = None
            self._iterator = iter(tasks)
        else:
            raise TypeError(
                "tasks must be a sequence or an iterator of Task objects; got "
                f"{type(tasks).__name__}."
            )
        self._cursor = 0
        self.exhausted = False

    @property
    def is_finite(self) -> bool:
        """Whether the tasks are a sequence (not an iterator)."""
        return self._tasks is not None

    def __len__(self) -> int:
        """Return the number of tasks of a sequence (0 for an iterator)."""
        return len(self._tasks) if self._tasks is not None else 0

    def first(self) -> tuple:
        """Return the first task, checked (to infer shapes before training)."""
        if self._tasks is not None:
            return _check_task(self._tasks[0], 0, self.classification)
        first = next(self._iterator, None)
        if first is None:
            raise ValueError("fit(tasks) got an empty iterator of tasks.")
        self._iterator = _chain_one(first, self._iterator)
        return _check_task(first, 0, self.classification)

    def take(self, n: int, rng: np.random.Generator) -> list[tuple]:
        """Next ``n`` checked tasks (fewer when an iterator runs dry)."""
        out = []
        if self._tasks is not None:
            # Stateless for sequences (depends on ``rng`` only), so an epoch is
            # reproducible from its seed and a resumed fit draws the same tasks.
            n_tasks = len(self._tasks)
            order = np.concatenate(
                [rng.permutation(n_tasks) for _ in range(-(-n // n_tasks))]
            )[:n]
            out = [
                _check_task(self._tasks[i], int(i), self.classification) for i in order
            ]
        else:
            for _ in range(n):
                task = next(self._iterator, None)
                if task is None:
                    self.exhausted = True
                    break
                out.append(_check_task(task, self._cursor, self.classification))
                self._cursor += 1
        return out


def _chain_one(first, rest):
    yield first
    yield from rest
