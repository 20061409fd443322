"""A meta-learned policy adapted to one environment: what ``adapt`` returns."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._persistence import _TorchStateMixin
from .._random import SCORING_SEED, Stream, _as_generator, _stream
from .._sklearn import Interval, _fit_context, validate_params
from ._base import _RANDOM_STATE, _BaseMetaPolicy, _collection_seeds, _PolicyMixin
from ._envs import make_vector_env

_N_EPISODES = [None, Interval(numbers.Integral, 1, None, closed="left")]


class AdaptedPolicy(_PolicyMixin, _TorchStateMixin, BaseEstimator):
    """A meta-learned policy adapted to one environment: an ordinary policy.

    ``AdaptedPolicy(meta_learner).fit(env)`` is what
    ``meta_learner.adapt(env)`` returns: the meta-learner's policy after
    ``adapt_steps`` policy-gradient steps on episodes collected in ``env``.
    It keeps a frozen view of the meta-learner, so refitting the meta-learner
    later does not change it, and it pickles. ``clone`` keeps the (fitted)
    meta-learner, so cloning and fitting adapts again.

    Parameters
    ----------
    meta_learner : MAMLPolicy, default=None
        A fitted meta-learned policy. None is there only so that every
        parameter has a default; ``fit`` needs a fitted :class:`MAMLPolicy`.
    n_episodes : int, default=None
        Episodes collected per adaptation step and used by ``score``; None:
        ``n_episodes`` of the meta-learner.
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds the episodes of adaptation; None: a seed derived from the
        meta-learner's, so adaptation is repeatable.

    Attributes
    ----------
    learner_ : MAMLPolicy
        The frozen view of the meta-learner.
    params_ : dict of str to torch.Tensor
        The adapted parameters.
    adaptation_returns_ : ndarray of shape (adapt_steps,)
        Mean return of the episodes each adaptation step was computed from.
    n_features_in_ : int
        Size of an observation.

    Examples
    --------
    >>> from sklearn_meta.rl import MAMLPolicy, PointNavigationTasks
    >>> tasks = PointNavigationTasks(max_episode_steps=10)
    >>> meta = MAMLPolicy(hidden_layer_sizes=(16,), meta_batch_size=4,
    ...                   n_episodes=4, max_iter=2, random_state=0).fit(tasks)
    >>> policy = meta.adapt(tasks(random_state=1))
    >>> policy.predict([[0.0, 0.0], [0.1, 0.2]]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        # Checked in fit, with a message naming what is expected.
        "meta_learner": "no_validation",
        "n_episodes": _N_EPISODES,
        "random_state": _RANDOM_STATE,
    }

    def __init__(self, meta_learner=None, *, n_episodes=None, random_state=None):
        self.meta_learner = meta_learner
        self.n_episodes = n_episodes
        self.random_state = random_state

    def __sklearn_clone__(self):
        return type(self)(
            self.meta_learner,
            n_episodes=self.n_episodes,
            random_state=self.random_state,
        )

    def _check_learner(self) -> _BaseMetaPolicy:
        learner = self.meta_learner
        if not isinstance(learner, _BaseMetaPolicy):
            raise TypeError(
                f"{type(self).__name__} needs a MAMLPolicy as meta_learner; got "
                f"{type(learner).__name__}."
            )
        check_is_fitted(learner)
        return learner

    def _n_episodes(self, learner: _BaseMetaPolicy) -> int:
        return learner.n_episodes if self.n_episodes is None else self.n_episodes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, env):
        """Adapt the meta-learned policy to ``env``.

        Parameters
        ----------
        env : gymnasium.Env
            An environment of the family the meta-learner was trained on.

        Returns
        -------
        self : AdaptedPolicy
            The adapted policy.
        """
        learner = self._check_learner()
        env = learner._check_env(env)
        n_episodes = self._n_episodes(learner)
        rng = (
            _stream(learner._seed_, Stream.ADAPT_EPISODES)
            if self.random_state is None
            else _as_generator(self.random_state)
        )
        learner.module_.eval()
        with torch.no_grad():
            fast, rollouts = learner._adapt_tasks(
                [env],
                n_episodes,
                learner._adapt_steps,
                _collection_seeds(rng, learner._adapt_steps),
                track=False,
                first_order=True,
                evaluate=False,
            )
        self.learner_ = learner._inference_copy()
        self.params_ = {k: v[0] for k, v in fast.items()}
        self.adaptation_returns_ = np.array(
            [r.returns().mean().item() for r in rollouts]
        )
        self.n_features_in_ = learner.n_features_in_
        return self

    def _acting_with(self) -> tuple[_BaseMetaPolicy, dict]:
        return self.learner_, self.params_

    @validate_params({"n_episodes": _N_EPISODES}, prefer_skip_nested_validation=True)
    def score(self, env, n_episodes=None) -> float:
        """Mean return of the adapted (stochastic) policy over new episodes.

        Episodes come from a fixed seed, so different policies are scored on
        the same randomness.

        Parameters
        ----------
        env : gymnasium.Env
            The environment to play (usually the one adapted to).
        n_episodes : int, default=None
            Episodes to average over; None: ``n_episodes``.

        Returns
        -------
        score : float
            Mean undiscounted episode return.
        """
        check_is_fitted(self)
        learner = self.learner_
        if n_episodes is None:
            n_episodes = self._n_episodes(learner)
        env = learner._check_env(env)
        vector_env = make_vector_env([env], n_episodes)
        fast = {k: v[None] for k, v in self.params_.items()}
        episodes = learner._collect(
            vector_env, 1, fast, SCORING_SEED, learner._horizon([env])
        )
        vector_env.close()
        return float(episodes.returns().mean())
