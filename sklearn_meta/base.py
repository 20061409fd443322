"""The estimator machinery every meta-learner shares.

:class:`BaseMetaLearner` owns the contract of the package in one place: the
common parameters and their constraints, the three forms of ``fit`` (a labelled
pool, groups as tasks, a sequence of :class:`~sklearn_meta.tasks.Task`), the
episodic training loop driven by skorch's callbacks and ``History``,
class-disjoint meta-validation, device handling, checkpoints
(``save_params``/``load_params``) and pickling that maps CUDA tensors to the CPU
on machines without a GPU. A learner subclass only says how to turn a meta-batch
of episodes into losses, how to adapt to a support set and how to predict.
"""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog, ProgressBar
from skorch.history import History
from torch import nn

from ._modules import _make_module, _probe_module, _resolve_device, _seeded
from ._persistence import _CheckpointMixin, _TorchStateMixin
from ._random import SCORING_SEED, Stream, _as_generator, _draw_seed, _stream
from ._sklearn import HasMethods, Interval, RealNotInt, _fit_context
from .nn import _default_backbone
from .tasks import (
    EpisodeSampler,
    Task,
    _batch_from_tasks,
    _check_task,
    _EpisodeBatch,
    _TaskStream,
)

__all__ = [
    "AdaptedClassifier",
    "AdaptedRegressor",
    "BaseMetaLearner",
    "MetaClassifierMixin",
    "MetaRegressorMixin",
    "adapt",
]

#: Parameter prefixes routed to components, as in skorch (``module__hidden=32``).
_ROUTED_PREFIXES = ("module__", "optimizer__")
#: Samples per forward pass at inference time.
_INFERENCE_CHUNK = 256
#: Episodes per forward pass when scoring.
_SCORING_CHUNK = 64


def _is_task_collection(X) -> bool:
    """Whether ``fit(X)`` received tasks rather than a labelled pool."""
    if isinstance(X, Task):
        return False
    if isinstance(X, Iterator):
        return True
    return isinstance(X, Sequence) and len(X) > 0 and isinstance(X[0], Task)


class _PoolEpisodes:
    """Meta-batches of episodes drawn from a labelled pool living on a device."""

    def __init__(
        self,
        X: torch.Tensor,
        sampler: EpisodeSampler,
        targets: torch.Tensor | None = None,
    ):
        self.X = X
        self.sampler = sampler
        # Regression: the pool's targets; None for classification, whose
        # episodes carry the sampler's labels 0..n_way-1 instead.
        self.targets = targets
        self.y_support = torch.as_tensor(sampler.support_labels(), device=X.device)
        self.y_query = torch.as_tensor(sampler.query_labels(), device=X.device)

    def gather(self, support: np.ndarray, query: np.ndarray) -> _EpisodeBatch:
        """Gather episodes given as index arrays ``(B, n_support)``/``(B, n_query)``."""
        device = self.X.device
        s = torch.as_tensor(support, device=device)
        q = torch.as_tensor(query, device=device)
        n = len(support)
        if self.targets is not None:
            return _EpisodeBatch(
                self.X[s], self.targets[s], self.X[q], self.targets[q], n_classes=0
            )
        return _EpisodeBatch(
            self.X[s],
            self.y_support.expand(n, -1),
            self.X[q],
            self.y_query.expand(n, -1),
            n_classes=self.sampler.n_way,
        )

    def batches(
        self, rng, n_episodes: int, batch_size: int
    ) -> Iterator[list[_EpisodeBatch]]:
        for start in range(0, n_episodes, batch_size):
            support, query = self.sampler.sample(
                min(batch_size, n_episodes - start), rng
            )
            yield [self.gather(support, query)]


class _TaskEpisodes:
    """Meta-batches of user-given tasks."""

    def __init__(self, stream: _TaskStream, device: torch.device):
        self.stream = stream
        self.device = device

    @property
    def exhausted(self) -> bool:
        return self.stream.exhausted

    def batches(
        self, rng, n_episodes: int, batch_size: int
    ) -> Iterator[list[_EpisodeBatch]]:
        for start in range(0, n_episodes, batch_size):
            checked = self.stream.take(min(batch_size, n_episodes - start), rng)
            if not checked:
                return
            yield _batch_from_tasks(checked, self.device)


class _FixedEpisodes:
    """A fixed set of meta-batches (the meta-validation episodes)."""

    def __init__(self, batches: list[list[_EpisodeBatch]]):
        self._batches = batches

    def batches(self, rng=None, n_episodes=None, batch_size=None):
        yield from self._batches


class BaseMetaLearner(
    _CheckpointMixin, _TorchStateMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base class of the meta-learners: parameters, training loop, persistence.

    Not meant to be used directly; see the learners in
    :mod:`sklearn_meta.metric`. Parameters common to every learner are
    documented on each learner.
    """

    _parameter_constraints: dict = {
        "module": [None, callable],
        "n_way": [Interval(numbers.Integral, 2, None, closed="left")],
        "k_shot": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_query": [Interval(numbers.Integral, 1, None, closed="left")],
        "meta_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "episodes_per_epoch": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "train_split": [
            None,
            Interval(RealNotInt, 0, 1, closed="neither"),
            HasMethods(["split"]),
        ],
        "n_valid_episodes": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_eval_episodes": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # -- parameters ---------------------------------------------------------

    def _store_routed_kwargs(self, kwargs: dict) -> None:
        """Keep extra keyword arguments (``module__*``/``optimizer__*``) as parameters.

        Like every parameter they are only validated in ``fit``.
        """
        for key, value in kwargs.items():
            setattr(self, key, value)

    def _extra_param_names(self) -> list[str]:
        known = set(self._get_param_names())
        return [
            k
            for k in vars(self)
            if k not in known and not k.startswith("_") and not k.endswith("_")
        ]

    def _check_extra_params(self) -> None:
        unexpected = [
            k for k in self._extra_param_names() if not k.startswith(_ROUTED_PREFIXES)
        ]
        if unexpected:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) "
                f"{sorted(unexpected)}. "
                "Only parameters routed to a component, prefixed 'module__' or "
                "'optimizer__', may be added."
            )

    def get_params(self, deep: bool = True) -> dict:
        """Get parameters, including routed ``module__*``/``optimizer__*`` ones.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update((k, getattr(self, k)) for k in self._extra_param_names())
        return params

    def set_params(self, **params) -> BaseMetaLearner:
        """Set parameters, including routed ``module__*``/``optimizer__*`` ones.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to their new values.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        extra = set(self._extra_param_names())
        routed = {
            k: v
            for k, v in params.items()
            if k.startswith(_ROUTED_PREFIXES) or k in extra
        }
        for key, value in routed.items():
            setattr(self, key, value)
        rest = {k: v for k, v in params.items() if k not in routed}
        if rest:
            super().set_params(**rest)
        return self

    def _routed(self, prefix: str) -> dict:
        return {
            k[len(prefix) + 2 :]: v
            for k, v in vars(self).items()
            if k.startswith(prefix + "__")
        }

    #: Passed to sklearn's ``validate_data`` with ``y`` (regressors: numeric).
    _y_check_kwargs: dict = {}

    # -- what a learner provides ---------------------------------------------

    @abstractmethod
    def _episode_losses(
        self, batch: _EpisodeBatch
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training losses and scores of a meta-batch of episodes.

        Returns ``(losses, scores)``, each of shape ``(B,)``; ``scores`` (for
        instance query accuracy) may be None.
        """

    @abstractmethod
    def _adapt(self, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict:
        """Adapt to one support set; return the task state ``_predict_logits`` uses."""

    @abstractmethod
    def _predict_logits(self, state: dict, X: np.ndarray) -> torch.Tensor:
        """Compute outputs for ``X`` (a float32 array) from an adapted task state."""

    def _build_module(self, sample_shape: tuple[int, ...], **kwargs) -> nn.Module:
        """Build the default module for samples of ``sample_shape``."""
        return _default_backbone(sample_shape, **kwargs)

    @property
    def _train_n_way(self) -> int:
        return self.n_way

    # -- data ------------------------------------------------------------------

    def _check_X(self, X, *, reset: bool, y=None):
        """Validate ``X`` (and ``y``) with sklearn; return float32 arrays."""
        kwargs = dict(
            dtype=np.float32, allow_nd=True, ensure_min_samples=2 if reset else 1
        )
        if y is not None:
            X, y = validate_data(
                self, X, y, reset=reset, **kwargs, **self._y_check_kwargs
            )
        else:
            X = validate_data(self, X, reset=reset, **kwargs)
        if X.ndim not in (2, 4):
            raise ValueError(
                "X must be 2-dimensional (n_samples, n_features) for tabular data or "
                "4-dimensional (n_samples, channels, height, width) for images; got "
                f"shape {X.shape}."
            )
        if reset:
            self.sample_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.sample_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{self.sample_shape_}."
            )
        X = np.ascontiguousarray(X)
        return X if y is None else (X, y)

    def _map_chunks(
        self, fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray
    ) -> torch.Tensor:
        """Apply ``fn`` to ``X`` in chunks on the device; concatenate the results."""
        outs = [
            fn(torch.as_tensor(X[i : i + _INFERENCE_CHUNK]).to(self.device_))
            for i in range(0, len(X), _INFERENCE_CHUNK)
        ]
        return torch.cat(outs)

    def _pool_from_Xy(self, X, y, groups):
        """Validate a labelled pool; return X, encoded y, classes and groups."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None. Pass a labelled pool as fit(X, y) or a sequence of Task objects "
                "as fit(tasks)."
            )
        X, y = self._check_X(X, reset=True, y=y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if groups is not None:
            groups = column_or_1d(np.asarray(groups))
            if len(groups) != len(y):
                raise ValueError(
                    f"groups has {len(groups)} entries but X has {len(y)} samples; "
                    "give one group per sample."
                )
        return X, y_encoded, classes, groups

    def _validation_split(self, y_encoded, groups, X):
        """Split a pool into meta-training and meta-validation indices."""
        split = self.train_split
        if split is None:
            return np.arange(len(y_encoded)), None
        if hasattr(split, "split"):
            train, valid = next(iter(split.split(X, y_encoded, groups)))
            return np.asarray(train), np.asarray(valid)
        # A float: hold out that fraction of the classes (of the groups with groups).
        units = (
            y_encoded if groups is None else np.unique(groups, return_inverse=True)[1]
        )
        n_units = units.max() + 1
        n_valid = int(np.ceil(split * n_units))
        if n_valid >= n_units:
            raise ValueError(
                f"train_split={split} would hold out all {n_units} "
                f"{'classes' if groups is None else 'groups'}; use a smaller fraction."
            )
        rng = _stream(self._seed_, Stream.VALIDATION_SPLIT)
        held_out = rng.permutation(n_units)[:n_valid]
        is_valid = np.isin(units, held_out)
        return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)

    def _make_sampler(self, y, groups, n_way, what: str) -> EpisodeSampler:
        try:
            return EpisodeSampler(y, n_way, self.k_shot, self.n_query, groups=groups)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc

    def _prepare_pool(self, X, y, groups):
        X, y_encoded, classes, groups = self._pool_from_Xy(X, y, groups)
        train_idx, valid_idx = self._validation_split(y_encoded, groups, X)
        X_t = torch.from_numpy(X).to(self.device_)
        g_train = None if groups is None else groups[train_idx]
        what = "Meta-training pool" if valid_idx is not None else "Training pool"
        train_sampler = self._make_sampler(
            y_encoded[train_idx], g_train, self._train_n_way, what
        )
        train = _PoolEpisodes(
            X_t[torch.as_tensor(train_idx, device=self.device_)]
            if valid_idx is not None
            else X_t,
            train_sampler,
        )
        valid = None
        if valid_idx is not None:
            valid = self._validation_episodes(X_t, y_encoded, groups, valid_idx)
        return train, valid, (X, y_encoded, classes)

    def _validation_episodes(
        self, X_t, y_encoded, groups, valid_idx, n_way=None, targets=None
    ) -> _FixedEpisodes:
        """Draw the fixed meta-validation episodes once from the held-out part.

        ``targets`` (regression) are the pool's targets on the device.
        """
        g_valid = None if groups is None else groups[valid_idx]
        sampler = self._make_sampler(
            y_encoded[valid_idx],
            g_valid,
            self.n_way if n_way is None else n_way,
            f"Meta-validation split (train_split={self.train_split!r})",
        )
        rows = torch.as_tensor(valid_idx, device=self.device_)
        pool = _PoolEpisodes(
            X_t[rows], sampler, None if targets is None else targets[rows]
        )
        support, query = sampler.sample(
            self.n_valid_episodes, _stream(self._seed_, Stream.VALIDATION_EPISODES)
        )
        return _FixedEpisodes(
            [
                [
                    pool.gather(
                        support[i : i + _SCORING_CHUNK], query[i : i + _SCORING_CHUNK]
                    )
                ]
                for i in range(0, len(support), _SCORING_CHUNK)
            ]
        )

    def _prepare_tasks(self, tasks):
        if self.train_split is not None and not isinstance(tasks, Sequence):
            raise ValueError(
                "train_split needs a sequence of tasks to hold some out; got an "
                f"iterator ({type(tasks).__name__}). Pass a list, or train_split=None."
            )
        classification = isinstance(self, ClassifierMixin)
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
        Xs = stream.first()[0]
        self.sample_shape_ = tuple(Xs.shape[1:])
        self.n_features_in_ = Xs.shape[1]
        return _TaskEpisodes(stream, self.device_), valid, None

    # -- initialisation ---------------------------------------------------------

    def _initialize_module(self) -> nn.Module:
        module = _make_module(
            self.module,
            self._routed("module"),
            lambda **kwargs: self._build_module(self.sample_shape_, **kwargs),
            seed=self._seed_,
            device=self.device_,
        )
        dim = self._check_module(module)
        # Seeded like the backbone, leaving the caller's RNG untouched.
        wrapped = _seeded(self._seed_ + 1, lambda: self._wrap_module(module, dim))
        return wrapped.to(self.device_)

    def _wrap_module(self, module: nn.Module, dim: int) -> nn.Module:
        """Add the learner's own meta-learned parts around the user's module.

        ``dim`` is the size of the module's flattened output. The default adds
        nothing. A learner with extra parts returns one container module, so
        that ``module_`` (what optimisers, checkpoints and early stopping see)
        holds everything meta-learned.
        """
        return module

    def _check_module(self, module: nn.Module) -> int:
        """Run the module once on two zero samples so a mismatch fails early.

        Returns the size of its flattened output.
        """
        sample = torch.zeros((2, *self.sample_shape_), device=self.device_)
        shape = _probe_module(
            module,
            sample,
            "samples",
            "Check that the module's input layer matches the data (module__* "
            "parameters set the default's sizes).",
        )
        return int(np.prod(shape[1:]))

    def _default_callbacks(self, n_batches: int) -> list[tuple[str, Any]]:
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring("train_loss", on_train=True)),
            (
                "train_score",
                PassthroughScoring(
                    f"train_{self._score_name}", lower_is_better=False, on_train=True
                ),
            ),
            ("valid_loss", PassthroughScoring("valid_loss")),
            (
                "valid_score",
                PassthroughScoring(f"valid_{self._score_name}", lower_is_better=False),
            ),
        ]
        if self.verbose:
            callbacks += [
                ("progress_bar", ProgressBar(batches_per_epoch=n_batches)),
                ("print_log", PrintLog()),
            ]
        return callbacks

    def _initialize_callbacks(self, n_batches: int) -> list[tuple[str, Any]]:
        callbacks = self._default_callbacks(n_batches)
        names = {name for name, _ in callbacks}
        for item in self.callbacks or []:
            name, cb = item if isinstance(item, tuple) else (type(item).__name__, item)
            if isinstance(cb, type):
                cb = cb()
            if name in names:
                raise ValueError(
                    f"Callback name {name!r} is used twice; give callbacks unique "
                    "names by passing (name, callback) tuples."
                )
            names.add(name)
            callbacks.append((name, cb))
        return [(name, cb.initialize()) for name, cb in callbacks]

    # -- training ---------------------------------------------------------------

    @property
    def history(self) -> History:
        """The training history (skorch's :class:`~skorch.history.History`)."""
        return self.history_

    def notify(self, method_name: str, **cb_kwargs) -> None:
        """Call ``method_name`` on every callback, as skorch's nets do.

        Parameters
        ----------
        method_name : str
            The callback hook, for instance ``"on_epoch_end"``.
        **cb_kwargs : dict
            Passed to the hook.
        """
        for _, cb in self.callbacks_:
            getattr(cb, method_name)(self, **cb_kwargs)

    def _train_step(self, batches: list[_EpisodeBatch]) -> dict:
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        loss, score, n = self._mean_losses(batches)
        loss.backward()
        self.notify(
            "on_grad_computed",
            named_parameters=list(self.module_.named_parameters()),
            X=batches,
            y=None,
            training=True,
        )
        self.optimizer_.step()
        return {"loss": loss.detach(), "score": score, "n": n}

    def _valid_step(self, batches: list[_EpisodeBatch]) -> dict:
        self.module_.eval()
        with torch.no_grad():
            loss, score, n = self._mean_losses(batches)
        return {"loss": loss, "score": score, "n": n}

    def _mean_losses(self, batches):
        losses, scores = [], []
        for batch in batches:
            batch_losses, batch_scores = self._episode_losses(batch)
            losses.append(batch_losses)
            if batch_scores is not None:
                scores.append(batch_scores.detach())
        losses = torch.cat(losses)
        score = torch.cat(scores).mean().item() if scores else None
        return losses.mean(), score, len(losses)

    def _run_epoch(self, source, rng, training: bool) -> None:
        prefix = "train" if training else "valid"
        step_fn = self._train_step if training else self._valid_step
        n_episodes = self._episodes_per_epoch
        for batches in source.batches(rng, n_episodes, self._step_size):
            self.history_.new_batch()
            self.notify("on_batch_begin", batch=batches, training=training)
            step = step_fn(batches)
            self.history_.record_batch(f"{prefix}_loss", step["loss"].item())
            self.history_.record_batch(f"{prefix}_batch_size", step["n"])
            if step["score"] is not None:
                self.history_.record_batch(
                    f"{prefix}_{self._score_name}", step["score"]
                )
            self.notify("on_batch_end", batch=batches, training=training, **step)

    @property
    def _step_size(self) -> int:
        """Episodes (or samples) per optimiser step."""
        return self.meta_batch_size

    @property
    def _episodes_per_epoch(self) -> int:
        # Whole meta-batches only.
        return max(
            self._step_size,
            self.episodes_per_epoch // self._step_size * self._step_size,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Meta-train on episodes from a pool, from groups, or on given tasks.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or sequence/iterator of Task
            A labelled pool, ``(n_samples, n_features)`` for tabular data or
            ``(n_samples, channels, height, width)`` for images; or the tasks
            themselves (then ``y`` and ``groups`` must be None).
        y : array-like of shape (n_samples,), default=None
            Labels of the pool.
        groups : array-like of shape (n_samples,), default=None
            With a pool: the task each sample belongs to; episodes are drawn
            within a group.

        Returns
        -------
        self : object
            The meta-trained learner.
        """
        self._clear_fitted()
        try:
            return self._fit(X, y, groups)
        except Exception:
            # A failed fit leaves the estimator unfitted, not half-fitted.
            self._clear_fitted()
            raise

    def _check_params(self) -> None:
        """Check what the constraints of single parameters cannot: their relations.

        Called at the start of ``fit``, after every constructor parameter was
        validated; raises ``ValueError`` naming the parameters. The default
        checks nothing.
        """

    def _fit(self, X, y, groups):
        self._check_extra_params()
        self._check_params()
        self.device_ = _resolve_device(self.device)
        self._seed_ = _draw_seed(self.random_state)
        if _is_task_collection(X):
            if y is not None or groups is not None:
                raise ValueError(
                    "fit(tasks) takes the tasks alone; y and groups must be None."
                )
            train, valid, pool = self._prepare_tasks(X)
        else:
            train, valid, pool = self._prepare_pool(X, y, groups)

        self.module_ = self._initialize_module()
        trainable = [p for p in self.module_.parameters() if p.requires_grad]
        if trainable:
            self.optimizer_ = self.optimizer(
                trainable, lr=self.lr, **self._routed("optimizer")
            )
        elif self.max_epochs > 0:
            raise ValueError(
                "The module has no trainable parameters, so there is nothing to "
                "meta-train. Pass max_epochs=0 to use it as a fixed embedding."
            )
        else:
            self.optimizer_ = None
        self.history_ = History()
        n_valid = 0 if valid is None else sum(1 for _ in valid.batches())
        self.callbacks_ = self._initialize_callbacks(
            -(-self._episodes_per_epoch // self._step_size) + n_valid
        )

        self.notify("on_train_begin", X=X, y=y)
        try:
            for _ in range(self.max_epochs):
                if getattr(train, "exhausted", False):
                    break  # an iterator of tasks ran dry
                # Each epoch draws from its own seed, so a run resumed from a
                # checkpoint (which restores the history) draws the same episodes.
                rng = _stream(self._seed_, Stream.EPOCH, len(self.history_))
                self.history_.new_epoch()
                self.history_.record("epoch", len(self.history_))
                self.notify("on_epoch_begin", dataset_train=train, dataset_valid=valid)
                self._run_epoch(train, rng, training=True)
                if valid is not None:
                    self._run_epoch(valid, None, training=False)
                self.notify("on_epoch_end", dataset_train=train, dataset_valid=valid)
        except KeyboardInterrupt:
            # skorch's EarlyStopping stops training this way (as in skorch's nets).
            pass
        self.notify("on_train_end", X=X, y=y)
        self._fit_pool(pool)
        return self

    def _fit_pool(self, pool) -> None:
        """After meta-training, adapt to the whole training pool (if any)."""

    # The adaptation to the training pool that ``predict`` uses is made when
    # first needed: ``fit`` records what to adapt to, and the first access to
    # ``pool_state_`` adapts and keeps the result. Meta-learning rarely
    # predicts over the training classes, and with a convolutional network on
    # the CPU that adaptation can take longer than a short meta-training. The
    # result lives in a dict made by ``fit``, so a first ``predict`` fills it
    # without changing the estimator's ``__dict__`` (scikit-learn checks that).

    def _defer_pool_state(self, X: torch.Tensor, y: torch.Tensor, n_classes: int):
        """Record the pool sample that ``pool_state_`` adapts to when first used."""
        self._pool_cache_ = {"pending": (X, y, n_classes)}

    @property
    def pool_state_(self):
        """The adaptation to the training pool that ``predict`` uses (or None)."""
        cache = self.__dict__.get("_pool_cache_")
        if cache is None:
            raise AttributeError(f"{type(self).__name__!r} has no 'pool_state_'")
        if "state" not in cache:
            # Two threads may both adapt (to the same result); "state" is set
            # before "pending" goes, so one that finds neither can read it.
            pending = cache.get("pending")
            if pending is not None:
                self.module_.eval()
                cache["state"] = self._adapt(*pending)
                cache.pop("pending", None)
        return cache["state"]

    @pool_state_.setter
    def pool_state_(self, value) -> None:
        self._pool_cache_ = {"state": value}

    def _pool_to_adapt(self, pool):
        """Return the part of the training pool ``predict`` adapts to (all of it)."""
        return pool

    def _episode_logits_from_pool(
        self, X, support, y_support, query, n_way
    ) -> torch.Tensor:
        """Query outputs ``(E, n_query_total, ...)`` of episodes drawn from ``X``.

        ``y_support`` holds the support labels shared by every episode
        ``(n_support,)`` or each episode's own ``(E, n_support, ...)``. The
        default adapts to each support set in turn; learners whose adaptation
        batches override it.
        """
        y_support = np.asarray(y_support)
        shared = y_support.ndim == 1 and isinstance(self, ClassifierMixin)
        outs = []
        for i in range(len(support)):
            state = self._adapt(
                torch.from_numpy(X[support[i]]).to(self.device_),
                torch.as_tensor(
                    y_support if shared else y_support[i], device=self.device_
                ),
                n_way,
            )
            outs.append(self._predict_logits(state, X[query[i]]))
        return torch.stack(outs)


class MetaClassifierMixin(ClassifierMixin):
    """Classification behaviour of a meta-learner.

    After ``fit(X, y)`` the learner predicts over the classes of the pool (it
    adapts to the whole pool); ``score`` is the *episodic* accuracy;
    ``adapt`` returns an :class:`AdaptedClassifier` for a new support set.
    """

    _score_name = "acc"
    #: Largest number of classes ``adapt`` accepts (None: no limit).
    _max_adapt_classes: int | None = None

    def _fit_pool(self, pool) -> None:
        if pool is None:
            self.pool_state_ = None
            return
        X, y_encoded, classes = self._pool_to_adapt(pool)
        self.classes_ = classes
        self._check_adapt_classes(len(classes), "y")
        self._defer_pool_state(
            torch.from_numpy(X), torch.as_tensor(y_encoded), len(classes)
        )

    def _check_adapt_classes(self, n_classes: int, name: str = "y_support") -> None:
        if n_classes < 2:
            raise ValueError(
                f"{name} has {n_classes} class; a classifier needs at least 2 classes."
            )
        limit = self._max_adapt_classes
        if limit is not None and n_classes > limit:
            raise ValueError(
                f"{name} has {n_classes} classes but {type(self).__name__} can take at "
                f"most {limit}. Pass a support set with at most {limit} classes."
            )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities over the classes seen in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        if self.pool_state_ is None:
            raise NotFittedError(
                f"This {type(self).__name__} has no prediction over training classes: "
                "it was meta-trained on tasks rather than a labelled pool, or its "
                "parameters were reloaded with load_params. Call "
                "adapt(X_support, y_support) to get a classifier for a task."
            )
        return _softmax_numpy(self._predict_logits(self.pool_state_, X))

    def predict(self, X) -> np.ndarray:
        """Predict the class of each sample among the classes seen in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def adapt(self, X_support, y_support) -> AdaptedClassifier:
        """Adapt to a support set; return a new fitted classifier.

        The meta-learner is not changed, so it can serve many tasks.

        Parameters
        ----------
        X_support : array-like of shape (n_support, ...)
            Support samples, of the same sample shape as in ``fit``.
        y_support : array-like of shape (n_support,)
            Their labels (any hashable values).

        Returns
        -------
        classifier : AdaptedClassifier
            A fitted, picklable classifier whose ``classes_`` are the support's
            labels.
        """
        return AdaptedClassifier(self).fit(X_support, y_support)

    def score(self, X, y, groups=None) -> float:
        """Mean accuracy over ``n_eval_episodes`` episodes drawn from ``(X, y)``.

        This is the few-shot evaluation: each episode adapts to its own support
        set and is scored on its query set, so ``(X, y)`` should hold classes
        never seen in ``fit``. Episodes come from a fixed seed, so different
        models are scored on the same episodes. For the mean with its 95%
        confidence interval use :func:`sklearn_meta.model_selection.episodic_score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            A labelled pool.
        y : array-like of shape (n_samples,)
            Labels.
        groups : array-like of shape (n_samples,), default=None
            Draw each episode within a group.

        Returns
        -------
        score : float
            Mean episodic accuracy.
        """
        return float(np.mean(self._episodic_scores(X, y, groups=groups)))

    def _episodic_scores(
        self,
        X,
        y,
        *,
        groups=None,
        n_way=None,
        k_shot=None,
        n_query=None,
        n_episodes=None,
        random_state=None,
    ) -> np.ndarray:
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels.")
        check_classification_targets(y)
        n_way = self.n_way if n_way is None else n_way
        sampler = EpisodeSampler(
            y,
            n_way,
            self.k_shot if k_shot is None else k_shot,
            self.n_query if n_query is None else n_query,
            groups=groups,
        )
        n_episodes = self.n_eval_episodes if n_episodes is None else n_episodes
        rng = _as_generator(SCORING_SEED if random_state is None else random_state)
        support, query = sampler.sample(n_episodes, rng)
        self.module_.eval()
        with torch.no_grad():
            logits = self._episode_logits_from_pool(
                X, support, sampler.support_labels(), query, n_way
            )
        y_query = torch.as_tensor(sampler.query_labels(), device=logits.device)
        return (logits.argmax(-1) == y_query).double().mean(-1).cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class MetaRegressorMixin(RegressorMixin):
    """Regression behaviour of a meta-learner.

    Tasks come from ``fit(tasks)`` or from a pool with ``groups`` (each group
    one task, episodes are random support/query splits of a group); a pool
    without groups is one task. After ``fit(X, y)`` the learner predicts
    after adapting to the whole pool; ``score`` is the *episodic* R²;
    ``adapt`` returns an :class:`AdaptedRegressor` for a new support set.
    """

    _score_name = "r2"
    _y_check_kwargs = {"y_numeric": True, "multi_output": True}

    def _check_targets(self, y, name: str = "y_support") -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        shape = y.shape[1:]
        if shape == (1,) and self._y_shape_ == ():
            y, shape = y[:, 0], ()
        if shape != self._y_shape_:
            raise ValueError(
                f"{name} has targets of shape {shape} per sample, but "
                f"{type(self).__name__} was fitted on targets of shape "
                f"{self._y_shape_}."
            )
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinity.")
        return y

    def _set_target_shape(self, shape: tuple) -> None:
        self._y_shape_ = tuple(shape)
        self.n_outputs_ = int(np.prod(shape)) if shape else 1

    def _prepare_pool(self, X, y, groups):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None. Pass a pool as fit(X, y, groups=...) or a sequence of Task "
                "objects as fit(tasks)."
            )
        X, y = self._check_X(X, reset=True, y=y)
        y = np.asarray(y, dtype=np.float32)
        self._set_target_shape(y.shape[1:])
        if groups is None:
            if self.train_split is not None:
                raise ValueError(
                    "train_split holds out tasks, but a pool without groups is a "
                    "single task. Pass groups (one per sample) or train_split=None."
                )
            units = np.zeros(len(y), dtype=np.int64)
        else:
            groups = column_or_1d(np.asarray(groups))
            if len(groups) != len(y):
                raise ValueError(
                    f"groups has {len(groups)} entries but X has {len(y)} samples; "
                    "give one group per sample."
                )
            units = np.unique(groups, return_inverse=True)[1]
        train_idx, valid_idx = self._validation_split(units, groups, X)
        X_t = torch.from_numpy(X).to(self.device_)
        y_t = torch.from_numpy(y).to(self.device_)
        rows = torch.as_tensor(train_idx, device=self.device_)
        what = "Meta-training pool" if valid_idx is not None else "Training pool"
        train = _PoolEpisodes(
            X_t[rows], self._make_sampler(units[train_idx], None, 1, what), y_t[rows]
        )
        valid = None
        if valid_idx is not None:
            valid = self._validation_episodes(
                X_t, units, None, valid_idx, n_way=1, targets=y_t
            )
        return train, valid, (X, y)

    def _make_sampler(self, units, groups, n_way, what: str) -> EpisodeSampler:
        """Sample support/query splits within a task; ``units`` codes the tasks."""
        need = self.k_shot + self.n_query
        counts = np.bincount(units)
        if (counts[counts > 0] < need).any():
            raise ValueError(
                f"{what}: every task (group) needs at least k_shot + n_query = "
                f"{need} samples; the smallest has {counts[counts > 0].min()}. Lower "
                "k_shot or n_query."
            )
        return EpisodeSampler(units, 1, self.k_shot, self.n_query)

    def _prepare_tasks(self, tasks):
        train, valid, pool = super()._prepare_tasks(tasks)
        first = train.stream.first()
        self._set_target_shape(first[1].shape[1:])
        return train, valid, pool

    def _fit_pool(self, pool) -> None:
        if pool is None:
            self.pool_state_ = None
            return
        X, y = self._pool_to_adapt(pool)
        self._defer_pool_state(torch.from_numpy(X), torch.from_numpy(y), 0)

    def predict(self, X) -> np.ndarray:
        """Predict targets after adapting to the training pool.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        if self.pool_state_ is None:
            raise NotFittedError(
                f"This {type(self).__name__} has no prediction over a training pool: "
                "it was meta-trained on tasks rather than a pool, or its parameters "
                "were reloaded with load_params. Call adapt(X_support, y_support) "
                "to get a regressor for a task."
            )
        return self._predict_logits(self.pool_state_, X).double().cpu().numpy()

    def adapt(self, X_support, y_support) -> AdaptedRegressor:
        """Adapt to a support set; return a new fitted regressor.

        The meta-learner is not changed, so it can serve many tasks.

        Parameters
        ----------
        X_support : array-like of shape (n_support, ...)
            Support samples, of the same sample shape as in ``fit``.
        y_support : array-like of shape (n_support,) or (n_support, n_outputs)
            Their targets.

        Returns
        -------
        regressor : AdaptedRegressor
            A fitted, picklable regressor.
        """
        return AdaptedRegressor(self).fit(X_support, y_support)

    def score(self, X, y, groups=None) -> float:
        """Mean R² over ``n_eval_episodes`` tasks drawn from ``(X, y, groups)``.

        Each episode is a random support/query split of one group (of the
        whole pool without groups): the learner adapts to the support part and
        is scored on the query part. Episodes come from a fixed seed.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            A pool of samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        groups : array-like of shape (n_samples,), default=None
            The task of each sample.

        Returns
        -------
        score : float
            Mean episodic R².
        """
        return float(np.mean(self._episodic_scores(X, y, groups=groups)))

    def _episodic_scores(
        self,
        X,
        y,
        *,
        groups=None,
        k_shot=None,
        n_query=None,
        n_episodes=None,
        random_state=None,
        n_way=None,
    ) -> np.ndarray:
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        y = self._check_targets(y, "y")
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} targets.")
        units = (
            np.zeros(len(y), dtype=np.int64)
            if groups is None
            else np.unique(column_or_1d(np.asarray(groups)), return_inverse=True)[1]
        )
        sampler = EpisodeSampler(
            units,
            1,
            self.k_shot if k_shot is None else k_shot,
            self.n_query if n_query is None else n_query,
        )
        n_episodes = self.n_eval_episodes if n_episodes is None else n_episodes
        rng = _as_generator(SCORING_SEED if random_state is None else random_state)
        support, query = sampler.sample(n_episodes, rng)
        self.module_.eval()
        pred = self._episode_logits_from_pool(X, support, y[support], query, 0)
        y_query = torch.as_tensor(y[query], device=pred.device, dtype=torch.float64)
        pred = pred.double().reshape(y_query.shape)
        return torch.vmap(_r2_score)(y_query, pred).cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags


def _r2_score(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """R² of one task's predictions; ``y`` and ``pred`` are ``(n_samples, ...)``.

    Targets with no variance give a finite score (the denominator is clamped).
    """
    ss_res = ((y - pred) ** 2).sum()
    ss_tot = ((y - y.mean(0)) ** 2).sum()
    return 1 - ss_res / ss_tot.clamp_min(torch.finfo(y.dtype).tiny)


def _softmax_numpy(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


class _AdaptedEstimator(_TorchStateMixin, BaseEstimator):
    """What adapted classifiers and regressors share: a frozen meta-learner view."""

    _meta_mixin: type

    def __init__(self, meta_learner=None):
        self.meta_learner = meta_learner

    def __sklearn_clone__(self):
        return type(self)(self.meta_learner)

    def _check_learner(self):
        learner = self.meta_learner
        if not isinstance(learner, self._meta_mixin):
            kind = "classifier" if isinstance(self, ClassifierMixin) else "regressor"
            raise TypeError(
                f"{type(self).__name__} needs a meta-learning {kind} of sklearn_meta "
                f"as meta_learner; got {type(learner).__name__}."
            )
        check_is_fitted(learner)
        return learner

    def _adapt_to(self, learner, X, targets, n_classes: int) -> None:
        self.learner_ = learner._inference_copy()
        self.learner_.module_.eval()
        self.state_ = self.learner_._adapt(
            torch.from_numpy(X).to(learner.device_),
            torch.as_tensor(targets, device=learner.device_),
            n_classes,
        )

    def _outputs(self, X) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)
        X = self.learner_._check_X(X, reset=False)
        self.learner_.module_.eval()
        return self.learner_._predict_logits(self.state_, X)


class AdaptedClassifier(ClassifierMixin, _AdaptedEstimator):
    """A meta-learner adapted to one support set: an ordinary classifier.

    ``AdaptedClassifier(meta_learner).fit(X_support, y_support)`` is what
    ``meta_learner.adapt(X_support, y_support)`` returns. It keeps its own
    frozen view of the meta-learner, so refitting the meta-learner later does
    not change it; it pickles, sits in a Pipeline, and its ``score`` is the
    ordinary accuracy on its own classes. ``clone`` keeps the (fitted)
    meta-learner, so cloning and refitting adapts again, to a new support set.

    Parameters
    ----------
    meta_learner : meta-learner estimator
        A fitted meta-learning classifier (for instance a
        :class:`~sklearn_meta.PrototypicalClassifier`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of the support set.
    n_features_in_ : int
        Number of features (channels for images) seen in ``fit``.
    learner_ : meta-learner estimator
        The frozen view of the meta-learner used to predict.
    state_ : dict
        What adaptation produced (prototypes, adapted weights...).
    """

    _meta_mixin = MetaClassifierMixin

    def fit(self, X, y):
        """Adapt the meta-learner to the support set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_support, ...)
            Support samples.
        y : array-like of shape (n_support,)
            Support labels.

        Returns
        -------
        self : AdaptedClassifier
            The adapted classifier.
        """
        learner = self._check_learner()
        X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True)
        X = learner._check_X(X, reset=False)
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        learner._check_adapt_classes(len(self.classes_))
        self._adapt_to(learner, X, y_encoded, len(self.classes_))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return _softmax_numpy(self._outputs(X))

    def predict(self, X) -> np.ndarray:
        """Predict labels of the query samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class AdaptedRegressor(RegressorMixin, _AdaptedEstimator):
    """A meta-learning regressor adapted to one support set: an ordinary regressor.

    ``AdaptedRegressor(meta_learner).fit(X_support, y_support)`` is what
    ``meta_learner.adapt(X_support, y_support)`` returns; like
    :class:`AdaptedClassifier` it keeps a frozen view of the meta-learner,
    pickles, sits in a Pipeline, and its ``score`` is the ordinary R².

    Parameters
    ----------
    meta_learner : meta-learner estimator
        A fitted meta-learning regressor (for instance a
        :class:`~sklearn_meta.MAMLRegressor`).

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    learner_ : meta-learner estimator
        The frozen view of the meta-learner used to predict.
    state_ : dict
        What adaptation produced (the adapted weights).
    """

    _meta_mixin = MetaRegressorMixin

    def fit(self, X, y):
        """Adapt the meta-learner to the support set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_support, ...)
            Support samples.
        y : array-like of shape (n_support,) or (n_support, n_outputs)
            Support targets.

        Returns
        -------
        self : AdaptedRegressor
            The adapted regressor.
        """
        learner = self._check_learner()
        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float32,
            allow_nd=True,
            y_numeric=True,
            multi_output=True,
        )
        X = learner._check_X(X, reset=False)
        y = learner._check_targets(y)
        self._adapt_to(learner, X, y, 0)
        return self

    def predict(self, X) -> np.ndarray:
        """Predict targets of the query samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions.
        """
        return self._outputs(X).double().cpu().numpy()


def adapt(estimator, X_support, y_support):
    """Adapt a fitted meta-learner, or a Pipeline ending in one, to a support set.

    Parameters
    ----------
    estimator : meta-learner or Pipeline
        A fitted meta-learner, or a fitted :class:`~sklearn.pipeline.Pipeline`
        whose last step is one.
    X_support : array-like of shape (n_support, ...)
        Support samples, as the pipeline's first step takes them.
    y_support : array-like of shape (n_support,)
        Support labels.

    Returns
    -------
    adapted : estimator or Pipeline
        The adapted estimator; for a Pipeline, a new Pipeline with the same
        fitted preprocessing steps and the adapted estimator as its last step.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_meta import PrototypicalClassifier, adapt
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), PrototypicalClassifier(
    ...     n_way=2, k_shot=2, n_query=3, max_epochs=1, episodes_per_epoch=5,
    ...     random_state=0)).fit(X[y < 2], y[y < 2])
    >>> labels = ["virginica", "virginica", "setosa", "setosa"]
    >>> adapted = adapt(pipe, X[[100, 101, 0, 1]], labels)
    >>> adapted.predict(X[[102, 2]]).tolist()
    ['virginica', 'setosa']
    """
    if isinstance(estimator, Pipeline):
        check_is_fitted(estimator)
        head = estimator[:-1]
        X_support = head.transform(X_support) if len(head) else X_support
        name, last = estimator.steps[-1]
        adapted_last = adapt(last, X_support, y_support)
        return Pipeline([*estimator.steps[:-1], (name, adapted_last)])
    if not hasattr(estimator, "adapt"):
        raise TypeError(
            f"adapt needs a meta-learner or a Pipeline ending in one; got "
            f"{type(estimator).__name__}, which has no adapt method."
        )
    return estimator.adapt(X_support, y_support)
