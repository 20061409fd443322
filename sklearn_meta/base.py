"""The meta-learner contract and its training loop.

:class:`BaseMetaLearner` holds the contract of the package in one place: the
common parameters and their constraints, the three forms of ``fit`` (a
labelled pool, groups as tasks, a sequence of :class:`~sklearn_meta.tasks.Task`),
the episodic training loop driven by skorch's callbacks and ``History``, and
episodic evaluation. What it builds on lives in rooms of its own:

- ``_episodes.py``: episode sources and the meta-validation split;
- ``_validation.py``: the one validation path of samples, labels and groups;
- ``_classifier.py`` / ``_regressor.py``: each task type's mixin and the
  estimator ``adapt`` returns; ``_adapt.py``: ``adapt`` for pipelines;
- ``_persistence.py``: pickling, checkpoints and inference copies;
- ``_params.py``: ``module__*``/``optimizer__*`` parameter routing;
- ``_modules.py``: building the module; ``_random.py``: the random streams.

The public names of those rooms are re-exported here, where they have always
been importable from.
"""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog, ProgressBar
from skorch.history import History
from torch import nn

from ._adapt import adapt
from ._callbacks import _CallbacksMixin
from ._classifier import AdaptedClassifier, MetaClassifierMixin
from ._data import _feature_moments, _Samples, _samples
from ._distributed import _join_fit, _reporting_failures
from ._episodes import (
    _INFERENCE_CHUNK,
    _EpisodeSourcesMixin,
    _fit_takes_tasks,
    _n_total,
)
from ._evaluation import _EpisodicEvaluationMixin, _PoolPredictionMixin
from ._modules import _make_module, _probe_module, _resolve_device
from ._params import _RoutedParamsMixin
from ._persistence import _CheckpointMixin, _TorchStateMixin
from ._random import Stream, _draw_seed, _stream, _torch_seeded
from ._regressor import AdaptedRegressor, MetaRegressorMixin
from ._sklearn import HasMethods, Interval, RealNotInt, StrOptions, _fit_context
from ._validation import _check_X
from .nn import TabularEmbedding, _default_backbone
from .tasks import _EpisodeBatch

__all__ = [
    "AdaptedClassifier",
    "AdaptedRegressor",
    "BaseMetaLearner",
    "MetaClassifierMixin",
    "MetaRegressorMixin",
    "adapt",
]


class BaseMetaLearner(
    _EpisodeSourcesMixin,
    _PoolPredictionMixin,
    _EpisodicEvaluationMixin,
    _RoutedParamsMixin,
    _CallbacksMixin,
    _CheckpointMixin,
    _TorchStateMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of the meta-learners: the contract and the training loop.

    Not meant to be used directly: a learner combines it with
    :class:`~sklearn_meta.base.MetaClassifierMixin` or
    :class:`~sklearn_meta.base.MetaRegressorMixin` and says what is special
    about it by overriding these hooks (the family bases,
    ``BaseGradientLearner`` and ``BaseMetricLearner``, fill most of them in).

    Must override:

    - ``_episode_losses(batch)``: per-episode losses and scores ``(B,)`` of
      a meta-batch (:class:`~sklearn_meta.tasks._EpisodeBatch`);
    - ``_adapt(X, y, n_classes)``: adapt to one support set, return a state;
    - ``_predict_logits(state, X)``: outputs for ``X`` from that state.

    May override:

    - ``_build_module(sample_shape, **kwargs)``: the default module;
    - ``_wrap_module(module, dim)``: add meta-learned parts around it;
    - ``_check_params()``: checks relating several parameters;
    - ``_fit(X, y, groups)``: what ``fit`` does between clearing the fitted
      state and returning (the default meta-trains; the non-learned
      baselines learn feature statistics instead);
    - ``_train_step(batches)``: one meta-update (the default backpropagates
      the mean loss and steps through ``_step_optimizer``);
    - ``_step_size`` and ``_episodes_per_epoch``: episodes per update and
      per epoch;
    - ``_train_n_way``: ways of the training episodes;
    - ``_prepare_pool(X, y, groups)`` and ``_prepare_tasks(tasks)``: the
      sources of episodes (``_episodes.py``);
    - ``_pool_to_adapt(pool)``: the part of the pool ``predict`` adapts to;
    - ``_fit_pool(pool)``: what ``fit`` keeps for ``predict``;
    - ``_episode_logits_from_pool(X, support, y_support, query, n_way)``:
      batched evaluation of many episodes drawn from one pool;
    - ``_not_for_inference``: fitted attributes an adapted estimator's frozen
      copy leaves behind.

    The task-type mixins provide ``_classification``, ``_score_name``,
    ``_make_sampler``, ``_fit_targets``, ``_episode_targets`` and
    ``_episode_scores``. Parameters common to every learner are documented on
    each learner.
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
        "eval_n_way": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "eval_k_shot": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "eval_n_query": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "augment": [None, callable, list, tuple],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "device": [str, torch.device],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

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

    #: Whether the default body of a classifier on tabular data is a
    #: :class:`~sklearn_meta.nn.TabularEmbedding` centred on the pool's mean
    #: (docs/design.md, "Tabular few-shot").
    _tabular_embedding = True

    def _build_module(
        self, sample_shape: tuple[int, ...], input_mean=None, **kwargs
    ) -> nn.Module:
        """Build the default module for samples of ``sample_shape``.

        ``input_mean`` is the per-feature mean of ``fit``'s samples when
        :meth:`_embeds_tabular` (else None); ``kwargs`` are the user's
        ``module__*`` parameters.
        """
        if self._embeds_tabular(sample_shape):
            kwargs.setdefault("mean", input_mean)
            return TabularEmbedding(
                kwargs.pop("in_features", sample_shape[0]), **kwargs
            )
        return _default_backbone(sample_shape, **kwargs)

    def _embeds_tabular(self, sample_shape: tuple[int, ...]) -> bool:
        """Whether ``module=None`` builds a :class:`TabularEmbedding` here."""
        return (
            self._classification
            and self._tabular_embedding
            and self.module is None
            and len(sample_shape) == 1
        )

    def _input_mean(self, X, pool) -> np.ndarray | None:
        """Return the per-feature mean of ``fit``'s samples for the default body.

        Read from the pool a chunk at a time, or from every task of a
        sequence; None when the default body does not need it, or when
        ``fit`` was given an iterator of tasks (whose samples cannot be read
        twice: the body is then not centred).
        """
        if not self._embeds_tabular(self.sample_shape_):
            return None
        if pool is not None:
            mean, _, _ = _feature_moments(
                _samples(pool.X), self.device_, _INFERENCE_CHUNK
            )
            return mean.numpy(force=True)
        if not isinstance(X, Sequence):
            return None
        # Task by task, in float64: no copy of all the tasks' samples at once.
        total, n = 0.0, 0
        for task in X:
            for part in (task.X_support, task.X_query):
                part = np.asarray(part, dtype=np.float64)
                total, n = total + part.sum(0), n + len(part)
        return total / n

    @property
    def _train_n_way(self) -> int:
        """Classes per training episode (metric learners may train wider)."""
        return self.n_way

    @property
    def _eval_episode(self) -> tuple[int, int, int]:
        """``(n_way, k_shot, n_query)`` of evaluation episodes.

        The ``eval_*`` parameters, each defaulting to its training value:
        ``score``, meta-validation and ``episodic_score`` draw these episodes.
        Regressors' episodes have one way.
        """

        def setting(name: str, default: int) -> int:
            value = getattr(self, f"eval_{name}", None)
            return default if value is None else value

        n_way = setting("n_way", self.n_way) if self._classification else 1
        return n_way, setting("k_shot", self.k_shot), setting("n_query", self.n_query)

    # -- data ---------------------------------------------------------------------

    def _check_X(self, X) -> np.ndarray | _Samples:
        """Validate samples for a fitted learner (a float32 array, or a view)."""
        return _check_X(self, X, reset=False, sample_shape=self.sample_shape_)

    def _map_chunks(
        self, fn: Callable[[torch.Tensor], torch.Tensor], X
    ) -> torch.Tensor:
        """Apply ``fn`` to ``X`` in chunks on the device; concatenate the results.

        ``X`` is an array, a tensor or a :class:`~sklearn_meta._data._Samples`
        view: a lazy pool is read a chunk at a time, never whole.
        """
        X = _samples(X)
        outs = [
            fn(X[i : i + _INFERENCE_CHUNK].tensor(self.device_))
            for i in range(0, len(X), _INFERENCE_CHUNK)
        ]
        return torch.cat(outs)

    # -- initialisation ---------------------------------------------------------

    def _initialize_module(self, input_mean: np.ndarray | None = None) -> nn.Module:
        """Build the seeded module from the ``module`` parameter and wrap it.

        ``input_mean`` goes to the default body (see :meth:`_input_mean`).
        """
        module = _make_module(
            self.module,
            self._routed("module"),
            lambda **kwargs: self._build_module(
                self.sample_shape_, input_mean, **kwargs
            ),
            seed=self._seed_,
            device=self.device_,
        )
        dim = self._check_module(module)
        # Seeded like the backbone, leaving the caller's RNG untouched.
        with _torch_seeded(self._seed_ + 1):
            wrapped = self._wrap_module(module, dim)
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
        """Return the callbacks every fit has: timer, loss and score records, log."""
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

    def _train_step(self, batches: list[_EpisodeBatch]) -> dict:
        """One meta-update on ``batches``: backpropagate the mean loss, step."""
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        losses, scores = [], []
        for batch in batches:
            batch_losses, batch_scores = self._episode_losses(batch)
            losses.append(batch_losses)
            if batch_scores is not None:
                scores.append(batch_scores.detach())
        # The mean over the whole meta-batch: with several processes, each
        # backpropagates its share of the sum, and the sums are added.
        (torch.cat(losses).sum() / _n_total(batches)).backward()
        return self._meta_update(
            batches, [t.detach() for t in losses], scores, _n_total(batches)
        )

    def _meta_update(self, batches, losses, scores, n_total: int) -> dict:
        """Apply the meta-gradient in ``.grad``; return the step's record.

        ``losses`` and ``scores`` are this process's per-task tensors;
        ``n_total`` the tasks of the whole meta-batch (of every process).
        """
        self._step_optimizer(batches)
        return self._step_record(losses, scores, n_total)

    def _step_record(self, losses, scores, n_total: int) -> dict:
        """Return the mean loss and score of a step over every process's tasks."""
        losses = torch.cat(losses)
        dp = self._data_parallel
        if dp is None:
            score = torch.cat(scores).mean().item() if scores else None
            return {"loss": losses.mean(), "score": score, "n": n_total}
        score_sum = torch.cat(scores).sum().item() if scores else 0.0
        loss_sum, score_sum = dp.reduce_numbers(losses.sum().item(), score_sum)
        return {
            "loss": torch.tensor(loss_sum / n_total),
            "score": score_sum / n_total if scores else None,
            "n": n_total,
        }

    def _step_optimizer(self, batches: list[_EpisodeBatch]) -> None:
        """Apply the meta-gradient held in ``.grad``.

        With several processes, the processes first report their status and
        sum their gradients (and average their buffers). A non-finite
        gradient stops training before it reaches the weights. The callbacks
        see it first (``on_grad_computed``, as in skorch), then it is clipped
        to ``max_grad_norm`` when the learner has that parameter, then the
        optimiser steps.
        """
        dp = self._data_parallel
        if dp is not None:
            dp.sync_status()
            dp.reduce_gradients(self.module_.parameters())
            dp.average_buffers(self.module_)
        self._check_finite_gradients()
        self.notify(
            "on_grad_computed",
            named_parameters=list(self.module_.named_parameters()),
            X=batches,
            y=None,
            training=True,
        )
        max_norm = getattr(self, "max_grad_norm", None)
        if max_norm is not None:
            nn.utils.clip_grad_norm_(self.module_.parameters(), max_norm)
        self.optimizer_.step()

    def _check_finite_gradients(self) -> None:
        """Raise, naming the epoch and batch, if a meta-gradient is not finite.

        Buffers are checked too: a batch-norm layer's running statistics are
        updated by the forward pass, before any gradient.
        """
        tensors = [p.grad for p in self.module_.parameters() if p.grad is not None]
        tensors += [b for b in self.module_.buffers() if b.is_floating_point()]
        if not tensors or torch.stack([torch.isfinite(t).all() for t in tensors]).all():
            return
        epoch = len(self.history_)
        batch = len(self.history_[-1]["batches"]) if epoch else 0
        raise ValueError(
            f"Meta-training met a non-finite number at epoch {epoch}, batch "
            f"{batch}: the data or the learning rate are too large for float32 "
            "arithmetic. Scale the inputs (for instance with "
            "sklearn.preprocessing.StandardScaler) or lower lr."
        )

    def _valid_step(self, batches: list[_EpisodeBatch]) -> dict:
        """Losses and scores of meta-validation ``batches``, without gradients.

        With several processes, each scores its share of every batch.
        """
        self.module_.eval()
        n_total = _n_total(batches)
        dp = self._data_parallel
        if dp is not None:
            batches = [
                _EpisodeBatch(*(t[dp.share(len(b[0]))] for t in b[:4]), b[4])
                for b in batches
            ]
        losses, scores = [], []
        with torch.no_grad():
            for batch in batches:
                batch_losses, batch_scores = self._episode_losses(batch)
                losses.append(batch_losses)
                if batch_scores is not None:
                    scores.append(batch_scores)
        if dp is not None:
            dp.sync_status()
        return self._step_record(losses, scores, n_total)

    def _run_epoch(self, source, rng, training: bool) -> None:
        """Run one epoch's meta-batches of ``source``, recording the history."""
        prefix = "train" if training else "valid"
        step_fn = self._train_step if training else self._valid_step
        n_episodes = self._episodes_per_epoch
        for batches in source.batches(rng, n_episodes, self._step_size):
            self.history_.new_batch()
            self.notify("on_batch_begin", batch=batches, training=training)
            step = self._run_step(step_fn, batches)
            self.history_.record_batch(f"{prefix}_loss", step["loss"].item())
            self.history_.record_batch(f"{prefix}_batch_size", step["n"])
            if step["score"] is not None:
                self.history_.record_batch(
                    f"{prefix}_{self._score_name}", step["score"]
                )
            self.notify("on_batch_end", batch=batches, training=training, **step)

    def _run_step(self, step_fn, batches) -> dict:
        """Run one training or validation step.

        With several processes, a step that fails tells the others, so that
        every process raises rather than waits.
        """
        dp = self._data_parallel
        if dp is None:
            return step_fn(batches)
        return dp.run_step(step_fn, batches, owner=type(self).__name__)

    @property
    def _step_size(self) -> int:
        """Episodes (or samples) per optimiser step."""
        return self.meta_batch_size

    @property
    def _episodes_per_epoch(self) -> int:
        """Episodes per epoch, rounded down to whole meta-batches."""
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
        finally:
            self.__dict__.pop("_dp", None)

    def _check_params(self) -> None:
        """Check what the constraints of single parameters cannot: their relations.

        Called at the start of ``fit``, after every constructor parameter was
        validated; raises ``ValueError`` naming the parameters. The default
        checks nothing.
        """

    def _fit(self, X, y, groups):
        """Meta-train (``fit`` clears the fitted state around it)."""
        self._check_extra_params()
        self._check_params()
        self.device_ = _resolve_device(self.device)
        self._seed_ = _draw_seed(self.random_state)
        dp = _join_fit(self)
        if _fit_takes_tasks(X, y, groups):
            train, valid, pool = self._prepare_tasks(X)
        else:
            train, valid, pool = self._prepare_pool(X, y, groups)

        self.module_ = self._initialize_module(self._input_mean(X, pool))
        if dp is not None:
            dp.broadcast_module(self.module_)
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

        def run_epoch(epoch: int) -> None:
            # Each epoch draws its episodes from its own seed, so a run resumed
            # from a checkpoint (which restores the history) draws the same.
            rng = _stream(self._seed_, Stream.EPOCH, epoch)
            self._run_epoch(train, rng, training=True)
            if valid is not None:
                self._run_epoch(valid, None, training=False)

        with _reporting_failures(dp):
            self._train_epochs(
                self.max_epochs,
                run_epoch,
                X=X,
                y=y,
                exhausted=lambda: getattr(train, "exhausted", False),
                dataset_train=train,
                dataset_valid=valid,
            )
        # A fitted learner predicts in inference mode: batch-norm layers use
        # their running statistics, so a prediction does not depend on the
        # other samples it comes with.
        self.module_.eval()
        self._fit_pool(pool)
        return self
