"""The regressor side of the meta-learners, and the regressor ``adapt`` returns.

:class:`MetaRegressorMixin` makes a meta-learner a scikit-learn regressor.
Tasks come from ``fit(tasks)`` or from a pool with ``groups`` (each group one
task; episodes are random support/query splits of a group); a pool without
groups is one task.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._adapt import _AdaptedEstimator
from ._validation import (
    _NUMERIC_TARGETS,
    _check_finite_outputs,
    _check_targets,
    _Pool,
)
from .tasks import EpisodeSampler

__all__ = ["AdaptedRegressor", "MetaRegressorMixin"]


def _r2_score(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """R² of one task's predictions; ``y`` and ``pred`` are ``(n_samples, ...)``.

    Targets with no variance give a finite score (the denominator is clamped).
    """
    ss_res = ((y - pred) ** 2).sum()
    ss_tot = ((y - y.mean(0)) ** 2).sum()
    return 1 - ss_res / ss_tot.clamp_min(torch.finfo(y.dtype).tiny)


class MetaRegressorMixin(RegressorMixin):
    """Regression behaviour of a meta-learner.

    Tasks come from ``fit(tasks)`` or from a pool with ``groups`` (each group
    one task, episodes are random support/query splits of a group); a pool
    without groups is one task. After ``fit(X, y)`` the learner predicts
    after adapting to the whole pool; ``score`` is the *episodic* R²;
    ``adapt`` returns an :class:`AdaptedRegressor` for a new support set.
    """

    _score_name = "r2"
    _classification = False
    #: An episode is a support/query split of one task: a single "way".
    _train_n_way = 1

    def _check_targets(self, y, name: str = "y_support") -> np.ndarray:
        """Validate targets against the shape seen in ``fit``; return float32."""
        return _check_targets(y, len(y), self._y_shape_, self, name)

    def _set_target_shape(self, shape: tuple) -> None:
        """Record the shape of one target and the number of outputs."""
        self._y_shape_ = tuple(shape)
        self.n_outputs_ = int(np.prod(shape)) if shape else 1

    def _fit_targets(self, pool: _Pool) -> None:
        """Learn the targets' shape; a split needs groups (tasks) to hold out."""
        if pool.groups is None and self.train_split is not None:
            raise ValueError(
                "train_split holds out tasks, but a pool without groups is a "
                "single task. Pass groups (one per sample) or train_split=None."
            )
        self._set_target_shape(pool.targets.shape[1:])

    def _make_sampler(self, pool: _Pool, rows, episode: tuple, what: str):
        """Sample support/query splits within each task (group) of ``rows``."""
        _, k_shot, n_query = episode
        codes = pool.codes[rows]
        need = k_shot + n_query
        counts = np.bincount(codes)
        if (counts[counts > 0] < need).any():
            raise ValueError(
                f"{what}: every task (group) needs at least k_shot + n_query = "
                f"{need} samples; the smallest has {counts[counts > 0].min()}. Lower "
                "k_shot or n_query."
            )
        return EpisodeSampler._from_codes(codes, 1, k_shot, n_query)

    def _prepare_tasks(self, tasks):
        """Check the tasks and learn the targets' shape from the first."""
        train, valid, pool = super()._prepare_tasks(tasks)
        first = train.stream.first()
        self._set_target_shape(first[1].shape[1:])
        return train, valid, pool

    def _fit_pool(self, pool: _Pool | None) -> None:
        """Defer the adaptation to (a sample of) the pool that ``predict`` uses."""
        if pool is None:
            self.pool_state_ = None
            return
        pool = self._pool_to_adapt(pool)
        self._defer_pool_state(pool.X, torch.from_numpy(pool.targets), 0)

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
        X = self._check_X(X)
        if self.pool_state_ is None:
            raise NotFittedError(
                f"This {type(self).__name__} has no prediction over a training pool: "
                "it was meta-trained on tasks rather than a pool, or its parameters "
                "were reloaded with load_params. Call adapt(X_support, y_support) "
                "to get a regressor for a task."
            )
        outputs = _check_finite_outputs(self._predict_logits(self.pool_state_, X), self)
        return outputs.double().cpu().numpy()

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

    def score(self, X, y=None, groups=None) -> float:
        """Mean R² over ``n_eval_episodes`` tasks drawn from ``(X, y, groups)``.

        Each episode is a random support/query split of one group (of the
        whole pool without groups): the learner adapts to the support part and
        is scored on the query part. Episodes come from a fixed seed. Given
        tasks instead of a pool, it adapts to each task's support set and
        scores its query set.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or sequence of Task
            A pool of samples, or tasks (then ``y`` and ``groups`` must be None).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets of the pool.
        groups : array-like of shape (n_samples,), default=None
            The task of each sample.

        Returns
        -------
        score : float
            Mean episodic R².
        """
        return float(np.mean(self._episodic_scores(X, y, groups=groups)))

    def _episode_targets(self, pool: _Pool, sampler, support, query):
        """Each episode's own support targets, and its query targets."""
        return pool.targets[support], torch.as_tensor(pool.targets[query])

    def _episode_scores(self, outputs: torch.Tensor, y_query: torch.Tensor):
        """R² ``(E,)`` of each episode's query predictions."""
        y_query = y_query.to(device=outputs.device, dtype=torch.float64)
        return torch.vmap(_r2_score)(y_query, outputs.double().reshape(y_query.shape))

    def __sklearn_tags__(self):
        """Declare no NaN support, multi-output targets and determinism."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags


class AdaptedRegressor(RegressorMixin, _AdaptedEstimator):
    """A meta-learning regressor adapted to one support set: an ordinary regressor.

    ``AdaptedRegressor(meta_learner).fit(X_support, y_support)`` is what
    ``meta_learner.adapt(X_support, y_support)`` returns; like
    :class:`AdaptedClassifier` it keeps a frozen view of the meta-learner,
    pickles, sits in a Pipeline, and its ``score`` is the ordinary R².

    Parameters
    ----------
    meta_learner : meta-learner estimator, default=None
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
    _kind = "regressor"

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
        X, y = self._check_support(learner, X, y, _NUMERIC_TARGETS)
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
