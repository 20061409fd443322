"""Episode sources and the meta-validation split.

``fit`` turns its input into two sources of meta-batches: the meta-training
episodes, drawn afresh every epoch, and the fixed meta-validation episodes
(or None). Pools are validated once (:func:`~sklearn_meta._validation._check_pool`)
and sampled by index arithmetic on the device; tasks given by the user are
checked as they are drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
import torch

from ._data import _prefetched, _Samples, _samples
from ._random import Stream, _stream
from ._validation import _check_pool, _Pool
from .augment import Compose
from .tasks import (
    EpisodeSampler,
    Task,
    _batch_from_tasks,
    _check_task,
    _EpisodeBatch,
    _TaskStream,
)

__all__: list[str] = []

#: Samples per forward pass at inference time.
_INFERENCE_CHUNK = 256
#: Episodes per forward pass when scoring.
_SCORING_CHUNK = 64


class FewClassesWarning(UserWarning):
    """Meta-training on a pool with as many classes as a training episode.

    Raised by ``fit`` of a classifier when the training pool (after
    ``train_split``) has exactly as many classes as its training episodes
    have ways. Every episode then holds the same classes: meta-training learns
    to tell them apart, and little that carries over to new classes. On
    scikit-learn's digits, fitted on 0-4 and scored on 5-9, no meta-learner
    of the package beat nearest centroid; only the transfer baseline
    (:class:`~sklearn_meta.FineTuneClassifier`, which trains no episodes)
    did, by 0.7 points at 5 shots (``docs/benchmarks.md``, "Tabular
    few-shot"). Silence it with ``warnings.simplefilter("ignore",
    FewClassesWarning)`` when the test classes are the training classes on
    purpose.
    """


def _everything(n: int) -> slice:
    """Return the share of ``n`` tasks a process alone takes: all of them."""
    return slice(0, n)


class _MetaBatch(list):
    """The batches of one meta-update, and the size of the whole meta-batch.

    With several processes, each holds its share of the tasks (or samples);
    ``n_total`` counts those of every process, which losses are averaged
    over.
    """

    def __init__(self, batches, n_total: int):
        super().__init__(batches)
        self.n_total = n_total


def _n_total(batches) -> int:
    """Tasks (or samples) of the whole meta-batch ``batches`` belongs to."""
    n_total = getattr(batches, "n_total", None)
    return sum(len(b[0]) for b in batches) if n_total is None else n_total


def _is_task_collection(X, y=None) -> bool:
    """Whether ``fit(X, y)`` received tasks rather than a labelled pool."""
    if isinstance(X, Task):
        return False
    if isinstance(X, Iterator):
        return True
    if not isinstance(X, Sequence):
        return False
    if len(X) == 0:
        # An empty list without labels is an empty sequence of tasks.
        return y is None
    return isinstance(X[0], Task)


def _fit_takes_tasks(X, y, groups) -> bool:
    """Whether ``fit`` received tasks; raise if ``y`` or ``groups`` came with them."""
    if not _is_task_collection(X, y):
        return False
    if y is not None or groups is not None:
        raise ValueError("fit(tasks) takes the tasks alone; y and groups must be None.")
    return True


class _PoolEpisodes:
    """Meta-batches of episodes drawn from a labelled pool.

    ``X`` is the pool's samples (a :class:`~sklearn_meta._data._Samples`
    view: an array in memory already on the device, or a lazy pool read a
    meta-batch at a time). With ``num_workers`` threads the next meta-batches
    are read while one trains; ``augment`` (a callable on a batch of samples)
    transforms the training episodes on the device, in the training thread,
    so that it draws from the generators ``fit`` seeded.
    """

    def __init__(
        self,
        X: _Samples,
        sampler: EpisodeSampler,
        device: torch.device,
        targets: torch.Tensor | None = None,
        *,
        augment=None,
        num_workers: int = 0,
        part=_everything,
    ):
        self.X = X
        self.sampler = sampler
        self.device = device
        # Regression: the pool's targets; None for classification, whose
        # episodes carry the sampler's labels 0..n_way-1 instead.
        self.targets = targets
        self.augment = augment
        self.num_workers = num_workers
        #: The slice of a meta-batch of n tasks this process takes.
        self.part = part
        self.y_support = torch.as_tensor(sampler.support_labels(), device=device)
        self.y_query = torch.as_tensor(sampler.query_labels(), device=device)

    def _read(self, support: np.ndarray, query: np.ndarray):
        """Read the samples of episodes given as index arrays."""
        return self.X.gather(support, self.device), self.X.gather(query, self.device)

    def _episodes(self, support, query, X_s, X_q) -> _EpisodeBatch:
        """Make the meta-batch of episodes whose samples were read."""
        if self.augment is not None:
            X_s = _augmented(self.augment, X_s)
            X_q = _augmented(self.augment, X_q)
        n = len(support)
        if self.targets is not None:
            s = torch.as_tensor(support, device=self.device)
            q = torch.as_tensor(query, device=self.device)
            return _EpisodeBatch(X_s, self.targets[s], X_q, self.targets[q], 0)
        return _EpisodeBatch(
            X_s,
            self.y_support.expand(n, -1),
            X_q,
            self.y_query.expand(n, -1),
            n_classes=self.sampler.n_way,
        )

    def gather(self, support: np.ndarray, query: np.ndarray) -> _EpisodeBatch:
        """Gather episodes given as index arrays ``(B, n_support)``/``(B, n_query)``."""
        return self._episodes(support, query, *self._read(support, query))

    def batches(
        self, rng, n_episodes: int, batch_size: int
    ) -> Iterator[list[_EpisodeBatch]]:
        """Yield meta-batches of at most ``batch_size`` of ``n_episodes`` episodes."""
        draws = []
        for start in range(0, n_episodes, batch_size):
            support, query = self.sampler.sample(
                min(batch_size, n_episodes - start), rng
            )
            # With several processes, this one reads and adapts its share.
            part = self.part(len(support))
            draws.append((len(support), support[part], query[part]))
        reads = (partial(self._read, *draw[1:]) for draw in draws)
        for draw, read in zip(draws, _prefetched(reads, self.num_workers)):
            yield _MetaBatch([self._episodes(*draw[1:], *read)], draw[0])


def _augmented(augment, X: torch.Tensor) -> torch.Tensor:
    """Apply ``augment`` to a batch ``(..., C, H, W)`` of images, keeping its shape."""
    flat = X.reshape(-1, *X.shape[-3:])
    out = augment(flat)
    if not isinstance(out, torch.Tensor) or out.shape != flat.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"augment must return a tensor of the shape it was given, "
            f"{tuple(flat.shape)}; got {got}."
        )
    return out.reshape(X.shape)


class _TaskEpisodes:
    """Meta-batches of user-given tasks."""

    def __init__(self, stream: _TaskStream, device: torch.device, part=_everything):
        self.stream = stream
        self.device = device
        self.part = part

    @property
    def exhausted(self) -> bool:
        """Whether an iterator of tasks ran dry."""
        return self.stream.exhausted

    def batches(
        self, rng, n_episodes: int, batch_size: int
    ) -> Iterator[list[_EpisodeBatch]]:
        """Yield meta-batches of at most ``batch_size`` of ``n_episodes`` tasks."""
        for start in range(0, n_episodes, batch_size):
            checked = self.stream.take(min(batch_size, n_episodes - start), rng)
            if not checked:
                return
            local = checked[self.part(len(checked))]
            if not local:
                raise ValueError(
                    f"A meta-batch of {len(checked)} tasks cannot be shared by the "
                    "processes of this fit: each needs one. Give more tasks, or "
                    "a meta_batch_size at least the number of processes."
                )
            yield _MetaBatch(_batch_from_tasks(local, self.device), len(checked))


class _FixedEpisodes:
    """A fixed set of meta-batches (the meta-validation episodes)."""

    def __init__(self, batches: list[list[_EpisodeBatch]]):
        self._batches = batches

    def batches(self, rng=None, n_episodes=None, batch_size=None):
        """Yield the same meta-batches every time."""
        yield from self._batches


class _EpisodeSourcesMixin:
    """Turn ``fit``'s input into meta-training and meta-validation episodes.

    Hooks of the task types (the classifier and regressor mixins): whether
    ``_classification`` applies, ``_make_sampler`` (how a pool is sampled)
    and ``_fit_targets`` (what ``fit`` learns from the targets).
    """

    _classification = True

    def _fit_targets(self, pool: _Pool) -> None:
        """Learn what the targets say (regressors: their shape)."""

    def _make_sampler(self, pool: _Pool, rows, episode: tuple, what: str):
        """Return a sampler of ``episode`` (ways, shots, queries) over ``rows``."""
        n_way, k_shot, n_query = episode
        try:
            return EpisodeSampler._from_codes(
                pool.codes[rows],
                n_way,
                k_shot,
                n_query,
                classes=pool.classes,
                group_codes=None if pool.groups is None else pool.groups[rows],
                group_names=pool.group_names,
            )
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc

    def _split_units(self, pool: _Pool) -> np.ndarray:
        """Codes of what a float ``train_split`` holds out: groups, else classes."""
        return pool.codes if pool.groups is None else pool.groups

    def _validation_split(self, pool: _Pool):
        """Split a pool into meta-training and meta-validation rows (or None)."""
        split = self.train_split
        if split is None:
            return np.arange(len(pool.X)), None
        if hasattr(split, "split"):
            train, valid = next(iter(split.split(pool.X, pool.codes, pool.groups)))
            return np.asarray(train), np.asarray(valid)
        units = self._split_units(pool)
        n_units = units.max() + 1
        n_valid = int(np.ceil(split * n_units))
        if n_valid >= n_units:
            what = "classes" if pool.groups is None else "groups"
            raise ValueError(
                f"train_split={split} would hold out all {n_units} {what}; use a "
                "smaller fraction."
            )
        rng = _stream(self._seed_, Stream.VALIDATION_SPLIT)
        held_out = rng.permutation(n_units)[:n_valid]
        is_valid = np.isin(units, held_out)
        return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)

    def _warn_if_few_classes(self, pool: _Pool, rows: np.ndarray) -> None:
        """Warn when every training episode would hold the same classes."""
        if not self._classification:
            return
        n_classes = len(np.unique(pool.codes[rows]))
        if n_classes == self._train_n_way:
            warnings.warn(
                f"The training pool has {n_classes} classes and the training "
                f"episodes are {n_classes}-way: every episode holds the same "
                "classes, so meta-training learns to tell these apart and "
                "little that carries over to new classes, where nearest centroid "
                "(NearestCentroidClassifier) is hard to beat. Fit on a pool with "
                "more classes than n_way, or lower n_way (user guide, 'Few "
                "training classes').",
                FewClassesWarning,
                stacklevel=6,
            )

    def _prepare_pool(self, X, y, groups):
        """Validate a labelled pool; return its training and validation sources.

        Returns ``(train, valid, pool)``: ``valid`` is None without
        ``train_split``; ``pool`` is the validated pool ``predict`` adapts to.
        """
        pool = _check_pool(
            self, X, y, groups, classification=self._classification, reset=True
        )
        self.sample_shape_ = tuple(pool.X.shape[1:])
        self._check_augment()
        self._fit_targets(pool)
        train_idx, valid_idx = self._validation_split(pool)
        self._warn_if_few_classes(pool, train_idx)
        samples = _samples(pool.X).on_device(self.device_)
        targets = None
        if pool.targets is not None:
            targets = torch.from_numpy(pool.targets).to(self.device_)
        what = "Training pool" if valid_idx is None else "Meta-training pool"
        episode = (self._train_n_way, self.k_shot, self.n_query)
        sampler = self._make_sampler(pool, train_idx, episode, what)
        if valid_idx is not None:
            samples = samples[train_idx]
            targets = None if targets is None else targets[torch.as_tensor(train_idx)]
        train = _PoolEpisodes(
            samples,
            sampler,
            self.device_,
            targets,
            augment=self._augment_fn(),
            num_workers=self.num_workers,
            part=self._part,
        )
        valid = None
        if valid_idx is not None:
            valid = self._validation_episodes(pool, valid_idx)
        return train, valid, pool

    @property
    def _part(self):
        """The share of a meta-batch this process takes (all, alone)."""
        dp = self._data_parallel
        if dp is None:
            return _everything
        dp.check_size(self._step_size, "Each meta-batch")
        return dp.share

    def _check_augment(self) -> None:
        """Raise if ``augment`` is set for samples that are not images."""
        if getattr(self, "augment", None) is not None and len(self.sample_shape_) != 3:
            raise ValueError(
                f"augment transforms images (samples of shape (channels, height, "
                f"width)); these samples have shape {self.sample_shape_}. Pass "
                "augment=None for tabular data."
            )

    def _augment_fn(self):
        """Return the callable ``augment`` asks for (None: no augmentation)."""
        augment = getattr(self, "augment", None)
        if augment is None or callable(augment):
            return augment
        return Compose(augment)

    def _validation_episodes(
        self, pool: _Pool, valid_idx: np.ndarray, samples: _Samples | None = None
    ) -> _FixedEpisodes:
        """Draw the fixed meta-validation episodes once from the held-out rows.

        ``samples`` are the pool's samples on the device (by default read
        from ``pool``).
        """
        sampler = self._make_sampler(
            pool,
            valid_idx,
            self._eval_episode,
            f"Meta-validation split (train_split={self.train_split!r})",
        )
        if samples is None:
            samples = _samples(pool.X)
        targets = None
        if pool.targets is not None:
            targets = torch.from_numpy(pool.targets[valid_idx]).to(self.device_)
        source = _PoolEpisodes(samples[valid_idx], sampler, self.device_, targets)
        support, query = sampler.sample(
            self.n_valid_episodes, _stream(self._seed_, Stream.VALIDATION_EPISODES)
        )
        return _FixedEpisodes(
            [
                [
                    source.gather(
                        support[i : i + _SCORING_CHUNK], query[i : i + _SCORING_CHUNK]
                    )
                ]
                for i in range(0, len(support), _SCORING_CHUNK)
            ]
        )

    def _prepare_tasks(self, tasks):
        """Check a sequence or iterator of tasks; return their sources.

        Returns ``(train, valid, None)``: there is no pool to adapt to.
        """
        if self.train_split is not None and not isinstance(tasks, Sequence):
            raise ValueError(
                "train_split needs a sequence of tasks to hold some out; got an "
                f"iterator ({type(tasks).__name__}). Pass a list, or train_split=None."
            )
        classification = self._classification
        valid = None
        if self.train_split is not None:
            if hasattr(self.train_split, "split"):
                train_idx, valid_idx = next(
                    iter(self.train_split.split(np.arange(len(tasks))))
                )
            else:
                rng = _stream(self._seed_, Stream.VALIDATION_SPLIT)
                order = rng.permutation(len(tasks))
                n_valid = int(np.ceil(self.train_split * len(tasks)))
                if n_valid >= len(tasks):
                    raise ValueError(
                        f"train_split={self.train_split} would hold out all "
                        f"{len(tasks)} tasks; use a smaller fraction or more tasks."
                    )
                valid_idx, train_idx = order[:n_valid], order[n_valid:]
            checked = [_check_task(tasks[i], int(i), classification) for i in valid_idx]
            valid = _FixedEpisodes(
                [
                    _batch_from_tasks(checked[i : i + _SCORING_CHUNK], self.device_)
                    for i in range(0, len(checked), _SCORING_CHUNK)
                ]
            )
            tasks = [tasks[i] for i in train_idx]
        stream = _TaskStream(tasks, classification)
        first = stream.first()
        self.sample_shape_ = tuple(first[0].shape[1:])
        self.n_features_in_ = first[0].shape[1]
        return _TaskEpisodes(stream, self.device_, self._part), valid, None
