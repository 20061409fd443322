"""Prediction over the training pool and episodic evaluation.

After ``fit(X, y)`` a meta-learner is an ordinary estimator over the pool's
classes: it adapts to (a sample of) the pool when first asked to predict and
keeps the result. ``score`` and :func:`~sklearn_meta.model_selection.episodic_score`
adapt to many episodes drawn from a pool and score each on its queries.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._data import _samples
from ._distributed import _data_parallel
from ._episodes import _is_task_collection
from ._random import SCORING_SEED, _as_generator
from ._validation import _check_pool, _Pool
from .tasks import EpisodeSampler, _check_task

__all__: list[str] = []


class SeenClassesWarning(UserWarning):
    """Few-shot scores on classes seen in ``fit``: inflated, not few-shot.

    Raised by a classifier's ``score`` and by
    :func:`~sklearn_meta.model_selection.episodic_score` when most classes of the
    pool scored were in the pool the learner was meta-trained on, which is what
    ``cross_val_score(clf, X, y, cv=3)`` does (its stratified folds share every
    class). Cross-validate with :class:`~sklearn_meta.model_selection.ClassKFold`
    instead; silence it with ``warnings.simplefilter("ignore",
    SeenClassesWarning)`` when scoring training classes on purpose.
    """


def _warn_if_seen(learner, pool: _Pool) -> None:
    """Warn when most of the classes scored were classes of the training pool."""
    seen = getattr(learner, "classes_", None)
    if seen is None or pool.classes is None:
        return
    share = float(np.isin(pool.classes, seen).mean())
    if share > 0.5:
        warnings.warn(
            f"{share:.0%} of the classes scored were in the pool "
            f"{type(learner).__name__} was meta-trained on, so these few-shot "
            "scores are inflated. Score classes never seen in fit; to "
            "cross-validate, pass cv=sklearn_meta.model_selection.ClassKFold(5) "
            "instead of a stratified split.",
            SeenClassesWarning,
            stacklevel=4,
        )


class _PoolPredictionMixin:
    """The adaptation to the training pool that ``predict`` uses, made lazily.

    ``fit`` records what to adapt to, and the first access to ``pool_state_``
    adapts and keeps the result. Meta-learning rarely predicts over the
    training classes, and with a convolutional network on the CPU that
    adaptation can take longer than a short meta-training. The result lives
    in a dict made by ``fit``, so a first ``predict`` fills it without
    changing the estimator's ``__dict__`` (scikit-learn checks that).
    """

    def _after_params_loaded(self) -> None:
        """Drop the prediction over the pool: it was made with other weights."""
        self.pool_state_ = None

    def _fit_pool(self, pool: _Pool | None) -> None:
        """After meta-training, keep what ``predict`` adapts to (the task types')."""

    def _defer_pool_state(self, X, y: torch.Tensor, n_classes: int):
        """Record the pool sample that ``pool_state_`` adapts to when first used.

        ``X`` is the samples as validated (an array, or a view of a lazy
        pool, which adaptation reads in chunks).
        """
        self._pool_cache_ = {"pending": (X, y, n_classes)}

    def _settle(self) -> None:
        """Make the pending prediction over the pool, which then drops the pool."""
        if "pending" in (self.__dict__.get("_pool_cache_") or {}):
            self.pool_state_  # noqa: B018 (the property computes and keeps it)

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
        """Set the adaptation ``predict`` uses (None: no prediction over a pool)."""
        self._pool_cache_ = {"state": value}

    def _pool_to_adapt(self, pool: _Pool) -> _Pool:
        """Return the part of the training pool ``predict`` adapts to (all of it)."""
        return pool


class _EpisodicEvaluationMixin:
    """Adapt to many episodes drawn from one pool and score each on its queries."""

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
        shared = y_support.ndim == 1 and self._classification
        outs = []
        for i in range(len(support)):
            state = self._adapt(
                _samples(X)[support[i]].tensor(self.device_),
                torch.as_tensor(
                    y_support if shared else y_support[i], device=self.device_
                ),
                n_way,
            )
            outs.append(self._predict_logits(state, X[query[i]]))
        return torch.stack(outs)

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
        """Score ``n_episodes`` episodes drawn from a pool; return one score each.

        Classifiers draw ``n_way`` episodes (within a group with ``groups``);
        regressors draw random support/query splits of one group (of the
        whole pool without groups). The task type says what the targets of an
        episode are (``_episode_targets``) and how it is scored
        (``_episode_scores``: accuracy, R²). Episodes come from a fixed seed
        unless ``random_state`` is given, so models are compared on the same
        episodes.
        """
        check_is_fitted(self)
        if _is_task_collection(X, y):
            given = [
                name
                for name, value in (
                    ("y", y),
                    ("groups", groups),
                    ("n_way", n_way),
                    ("k_shot", k_shot),
                    ("n_query", n_query),
                    ("n_episodes", n_episodes),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"Scoring tasks takes the tasks alone: each brings its own "
                    f"support and query sets, so {', '.join(given)} must be None."
                )
            return self._task_scores(X)
        pool = _check_pool(
            self,
            X,
            y,
            groups,
            classification=self._classification,
            reset=False,
            target_shape=getattr(self, "_y_shape_", None),
        )
        if self._classification and groups is None:
            _warn_if_seen(self, pool)
        eval_n_way, eval_k_shot, eval_n_query = self._eval_episode
        n_way = (eval_n_way if n_way is None else n_way) if self._classification else 1
        sampler = EpisodeSampler._from_codes(
            pool.codes,
            n_way,
            eval_k_shot if k_shot is None else k_shot,
            eval_n_query if n_query is None else n_query,
            classes=pool.classes,
            group_codes=pool.groups if self._classification else None,
            group_names=pool.group_names,
        )
        n_episodes = self.n_eval_episodes if n_episodes is None else n_episodes
        rng = _as_generator(SCORING_SEED if random_state is None else random_state)
        support, query = sampler.sample(n_episodes, rng)
        # Under torchrun each process scores a share of the episodes.
        dp = _data_parallel(getattr(self, "distributed", False), self.device_)
        if dp is not None:
            part = dp.share(len(support))
            support, query = support[part], query[part]
        scores = np.empty(0)
        if len(support):
            y_support, y_query = self._episode_targets(pool, sampler, support, query)
            self.module_.eval()
            with torch.no_grad():
                outputs = self._episode_logits_from_pool(
                    pool.X,
                    support,
                    y_support,
                    query,
                    n_way if self._classification else 0,
                )
                scores = self._episode_scores(outputs, y_query).cpu().numpy()
        return scores if dp is None else dp.gather(scores)

    def _task_scores(self, tasks) -> np.ndarray:
        """Adapt to each task's support set and score its query set; one score each."""
        scores = []
        self.module_.eval()
        with torch.no_grad():
            for i, task in enumerate(tasks):
                Xs, ys, Xq, yq, n_classes = _check_task(task, i, self._classification)
                if Xs.shape[1:] != tuple(self.sample_shape_):
                    raise ValueError(
                        f"Task {i} has samples of shape {Xs.shape[1:]}, but "
                        f"{type(self).__name__} was fitted on samples of shape "
                        f"{tuple(self.sample_shape_)}."
                    )
                if not self._classification:
                    ys = self._check_targets(ys, f"Task {i}'s y_support")
                    yq = self._check_targets(yq, f"Task {i}'s y_query")
                state = self._adapt(
                    torch.from_numpy(Xs).to(self.device_),
                    torch.as_tensor(ys, device=self.device_),
                    n_classes,
                )
                outputs = self._predict_logits(state, Xq)
                scores.append(
                    self._episode_scores(outputs[None], torch.as_tensor(yq)[None])
                )
        if not scores:
            raise ValueError("Scoring tasks needs at least one task; got none.")
        return torch.cat(scores).cpu().numpy()
