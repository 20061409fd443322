"""What the meta-learned policies share: acting, task families, episodes.

:class:`_PolicyMixin` gives a fitted policy its public ``predict``,
``sample`` and ``predict_proba``, for the meta-learner and for the policies
adaptation returns alike. :class:`_BaseMetaPolicy` holds what a meta-learner
of policies does whatever its meta-learning: check the environments of a task
family, build the policy network, collect episodes under fast weights and
score them with the policy-gradient surrogate.
"""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from typing import Any

import gymnasium
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EpochTimer, PrintLog
from torch.func import vmap

from .._callbacks import _CallbacksMixin
from .._distributed import _join_fit
from .._functional import _named_parameters
from .._modules import _make_module, _probe_module, _resolve_device
from .._persistence import _CheckpointMixin, _TorchStateMixin
from .._random import Stream, _as_generator, _draw_seed, _stream, _torch_generator
from .._sklearn import Interval, StrOptions, _fit_context
from ..nn import MLP
from ._policy import _check_spaces, _PolicyModel, _to_env_actions
from ._rollout import _advantages, _collect, _Rollouts

#: Steps whose action noise a collection draws at once, per task.
_NOISE_BLOCK = 128

#: The seeds a method (or an adapted policy) takes: sklearn's, and Generators.
_RANDOM_STATE = [None, numbers.Integral, np.random.RandomState, np.random.Generator]


def _collection_seeds(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Draw the seeds of an adaptation's ``steps + 1`` collections of episodes."""
    return rng.integers(2**31 - 1, size=steps + 1)


def _check_task_sampler(task_sampler) -> None:
    if isinstance(task_sampler, type):
        # A class is callable too, but calling it with a random state builds a
        # sampler with that state as its first parameter.
        raise TypeError(
            f"task_sampler must be an instance, not the class "
            f"{task_sampler.__name__}: pass {task_sampler.__name__}() (with its "
            "parameters, if any)."
        )
    if not callable(task_sampler):
        raise TypeError(
            "task_sampler must be a callable that takes a random state and returns "
            "a gymnasium.Env for a random task (for instance "
            f"sklearn_meta.rl.PointNavigationTasks()); got "
            f"{type(task_sampler).__name__}."
        )


def _is_discrete(estimator) -> bool:
    """Whether ``predict_proba`` applies: a categorical (Discrete) policy."""
    learner = getattr(estimator, "learner_", estimator)
    if not hasattr(learner, "action_space_"):
        return True  # not fitted yet: calling it raises NotFittedError
    if not isinstance(learner.action_space_, gymnasium.spaces.Discrete):
        raise AttributeError(
            "predict_proba is only available for a Discrete action space; this "
            f"policy acts in {learner.action_space_}. Use predict for actions."
        )
    return True


class _PolicyMixin(metaclass=ABCMeta):
    """The public acting methods of a fitted policy.

    A policy is the network of a fitted meta-learner with one set of
    parameters: the meta-learned ones (the meta-learner acting before any
    adaptation) or those adaptation gave (an adapted policy). A class says
    which in ``_acting_with``.
    """

    @abstractmethod
    def _acting_with(self) -> tuple[_BaseMetaPolicy, dict]:
        """Return the fitted meta-learner whose network acts, and its parameters."""

    def _outputs(self, X) -> tuple[_BaseMetaPolicy, dict, torch.Tensor]:
        """Check the observations ``X``; return the network's outputs on them.

        Also returns the acting meta-learner and its parameters; the outputs
        are logits ``(n_samples, n_actions)`` or means ``(n_samples,
        action_dim)``.
        """
        check_is_fitted(self)
        learner, params = self._acting_with()
        X = validate_data(self, X, reset=False, dtype=np.float32)
        with torch.no_grad():
            out = learner.module_.outputs(
                params, torch.as_tensor(X, device=learner.device_)
            )
        return learner, params, out

    def predict(self, X) -> np.ndarray:
        """Return the actions of the policy: the most likely, or the mean.

        The policy of a :class:`MAMLPolicy` is the meta-learned one, before
        any adaptation; that of an :class:`AdaptedPolicy` is the adapted one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.

        Returns
        -------
        actions : ndarray of shape (n_samples,) or (n_samples, action_dim)
            The most likely action (Discrete) or the mean action clipped to
            the action bounds (Box).
        """
        learner, _, out = self._outputs(X)
        actions = out.argmax(-1) if learner._discrete else out
        return _to_env_actions(learner.action_space_, actions)

    def sample(self, X, random_state=None) -> np.ndarray:
        """Draw actions from the stochastic policy.

        This is how the policy acts when it collects episodes and when it is
        scored; :meth:`predict` gives the most likely (or mean) action of the
        same policy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.
        random_state : int, Generator or None, default=None
            Seeds the draw.

        Returns
        -------
        actions : ndarray of shape (n_samples,) or (n_samples, action_dim)
            Actions as the environment takes them (Gaussian ones clipped to
            the action bounds).
        """
        learner, params, out = self._outputs(X)
        generator = _torch_generator(_as_generator(random_state), learner.device_)
        log_std = params["log_std"][None] if "log_std" in params else None
        model = learner.module_
        with torch.no_grad():
            noise = model.noise((1, len(out)), generator)
            actions = model.sample(out[None], log_std, noise)[0]
        return _to_env_actions(learner.action_space_, actions)

    @available_if(_is_discrete)
    def predict_proba(self, X) -> np.ndarray:
        """Return the action probabilities of the policy (Discrete actions).

        The probabilities of the policy that :meth:`predict` uses. Only a
        policy over a Discrete action space has this method.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_actions)
            The probability of each action.
        """
        _, _, out = self._outputs(X)
        return torch.softmax(out.double(), -1).cpu().numpy()


class _BaseMetaPolicy(
    _PolicyMixin, _CallbacksMixin, _CheckpointMixin, _TorchStateMixin, BaseEstimator
):
    """A meta-learner of policies over a family of gymnasium environments.

    It owns the parameters of the policy and of its episodes and what they
    are used for; a subclass adds the meta-learning: its parameters,
    ``_fit(task_sampler)`` (which starts with :meth:`_initialize`),
    adaptation and scoring.
    """

    _parameter_constraints: dict = {
        "module": [None, callable],
        "hidden_layer_sizes": ["array-like"],
        "init_std": [Interval(numbers.Real, 0, None, closed="neither")],
        "discount": [Interval(numbers.Real, 0, 1, closed="both")],
        "gae_lambda": [Interval(numbers.Real, 0, 1, closed="both")],
        "baseline": [StrOptions({"linear"}), None],
        "normalize_advantages": ["boolean"],
        "max_episode_steps": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _default_callbacks(self, n_batches: int) -> list[tuple[str, Any]]:
        """Return the callbacks every fit has: the timer and, verbose, the log."""
        callbacks = [("epoch_timer", EpochTimer())]
        if self.verbose:
            callbacks.append(("print_log", PrintLog()))
        return callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, task_sampler):
        """Meta-train on environments drawn from a task family.

        Parameters
        ----------
        task_sampler : callable
            ``task_sampler(rng)`` returns a new :class:`gymnasium.Env` for a
            random task, drawn from the :class:`numpy.random.Generator`
            ``rng`` (for instance :class:`PointNavigationTasks`).

        Returns
        -------
        self : object
            The meta-trained policy.
        """
        _check_task_sampler(task_sampler)
        self._clear_fitted()
        try:
            return self._fit(task_sampler)
        except Exception:
            # A failed fit leaves the policy unfitted, not half-trained.
            self._clear_fitted()
            raise
        finally:
            self.__dict__.pop("_dp", None)

    @abstractmethod
    def _fit(self, task_sampler):
        """Meta-train on ``task_sampler`` (``fit`` clears fitted state around it)."""

    # -- environments --------------------------------------------------------------

    def _check_env(self, env, what: str = "env") -> gymnasium.Env:
        """Check that ``env`` is an environment of the family seen in ``fit``."""
        if not isinstance(env, gymnasium.Env):
            raise TypeError(
                f"{what} must be a gymnasium.Env; got {type(env).__name__}."
            )
        _check_spaces(env, type(self).__name__)
        if hasattr(self, "observation_space_"):
            for name in ("observation_space", "action_space"):
                seen, got = getattr(self, name + "_"), getattr(env, name)
                if got != seen:
                    raise ValueError(
                        f"The {what}'s {name} {got} differs from the {name} "
                        f"{seen} seen in fit; a policy acts in the family it was "
                        "meta-trained on."
                    )
        return env

    def _sample_envs(self, task_sampler, rng: np.random.Generator, n: int) -> list:
        """Draw ``n`` environments from ``task_sampler`` and check each."""
        envs = []
        for _ in range(n):
            env = task_sampler(rng)
            if not isinstance(env, gymnasium.Env):
                raise TypeError(
                    f"The task sampler returned {type(env).__name__}, not a "
                    "gymnasium.Env. A task sampler must return a new environment "
                    "for a random task each time it is called."
                )
            envs.append(self._check_env(env, "task sampler's environment"))
        return envs

    def _horizon(self, envs) -> int:
        """Longest episode to collect in ``envs``."""
        limits = {getattr(env.spec, "max_episode_steps", None) for env in envs}
        if None in limits:
            if self.max_episode_steps is None:
                raise ValueError(
                    "Cannot tell how long an episode of the environment lasts: it has "
                    "no spec.max_episode_steps. Pass max_episode_steps to "
                    f"{type(self).__name__}."
                )
            return self.max_episode_steps
        limit = max(limits)
        return (
            limit
            if self.max_episode_steps is None
            else min(limit, self.max_episode_steps)
        )

    # -- the policy ----------------------------------------------------------------

    def _initialize(self, task_sampler) -> None:
        """Set the device, the seed, the family's spaces and a new ``module_``.

        Under torchrun, also join the data-parallel fit: every process then
        has rank 0's seed and initial weights.
        """
        self.device_ = _resolve_device(self.device)
        self._seed_ = _draw_seed(self.random_state)
        dp = _join_fit(self)
        (first,) = self._sample_envs(
            task_sampler, _stream(self._seed_, Stream.FIRST_ENV), 1
        )
        self.observation_space_ = first.observation_space
        self.action_space_ = first.action_space
        self.n_features_in_ = first.observation_space.shape[0]
        self.module_ = self._initialize_module()
        if dp is not None:
            dp.broadcast_module(self.module_)

    def _initialize_module(self) -> _PolicyModel:
        obs_dim = self.n_features_in_
        n_out = self.action_space_.n if self._discrete else self.action_space_.shape[0]
        net = _make_module(
            self.module,
            {},
            lambda: MLP(obs_dim, tuple(self.hidden_layer_sizes), out_features=n_out),
            seed=self._seed_,
            device=self.device_,
        )
        shape = _probe_module(
            net,
            torch.zeros(2, obs_dim, device=self.device_),
            "observations",
            f"Check that the module takes observations of {obs_dim} features.",
        )
        if shape != (2, n_out):
            what = "logits, one per action" if self._discrete else "action means"
            raise ValueError(
                f"The module must map observations (n, {obs_dim}) to (n, {n_out}) "
                f"{what}; it returned shape {shape} for n=2."
            )
        return _PolicyModel(net, self.action_space_, self.init_std).to(self.device_)

    @property
    def _discrete(self) -> bool:
        return isinstance(self.action_space_, gymnasium.spaces.Discrete)

    def _params(self) -> dict:
        """Return the meta-learned parameters, detached."""
        params = _named_parameters(self.module_, self.module_.net)
        return {k: v.detach() for k, v in params.items()}

    def _acting_with(self) -> tuple[_BaseMetaPolicy, dict]:
        return self, self._params()

    # -- episodes ------------------------------------------------------------------

    def _collect(
        self,
        vector_env,
        n_tasks: int,
        fast: dict,
        seed: int,
        horizon: int,
        first_task: int = 0,
    ) -> _Rollouts:
        """Episodes of every sub-environment under the fast weights ``fast``.

        Task ``i`` of ``vector_env`` is task ``first_task + i`` of its
        meta-batch. Its randomness (its sub-environments' seeds and its
        actions) comes from a stream of its own, keyed by ``seed`` and that
        number, so its episodes are the same whichever tasks it is collected
        with: in one call or in several, in one process or in several.
        """
        model = self.module_
        outputs = vmap(model.outputs, randomness="different")
        log_std = fast.get("log_std")
        copies = vector_env.num_envs // n_tasks
        streams = [
            _stream(seed, Stream.TASK_EPISODES, first_task + i) for i in range(n_tasks)
        ]
        env_seeds = [
            int(s) for rng in streams for s in rng.integers(2**31 - 1, size=copies)
        ]
        generators = [_torch_generator(rng, self.device_) for rng in streams]
        noise: list[torch.Tensor] = []

        def act(obs: torch.Tensor) -> torch.Tensor:
            if not noise:
                # The next steps' noise, (steps, B, E, ...), drawn per task in
                # blocks of a fixed size (not the horizon, which depends on
                # the tasks collected together).
                drawn = [model.noise((_NOISE_BLOCK, copies), g) for g in generators]
                noise.extend(torch.stack(drawn, 1).unbind(0)[::-1])
            return model.sample(outputs(fast, obs), log_std, noise.pop())

        with torch.no_grad():
            return _collect(
                vector_env,
                n_tasks,
                act,
                lambda a: _to_env_actions(self.action_space_, a),
                horizon,
                env_seeds,
                self.device_,
            )

    def _policy_losses(self, fast: dict, rollouts: _Rollouts) -> torch.Tensor:
        """Each task's policy-gradient surrogate ``(B,)`` on its own episodes."""
        with torch.no_grad():
            advantages = _advantages(
                rollouts,
                discount=self.discount,
                gae_lambda=self.gae_lambda,
                baseline=self.baseline,
                normalize=self.normalize_advantages,
            )
        n_tasks = rollouts.mask.shape[0]
        obs = rollouts.obs.reshape(n_tasks, -1, rollouts.obs.shape[-1])
        actions = rollouts.actions.reshape(n_tasks, -1, *rollouts.actions.shape[3:])
        log_prob = vmap(self.module_.log_prob, randomness="different")(
            fast, obs, actions
        )
        mask = rollouts.mask.reshape(n_tasks, -1)
        weighted = log_prob * advantages.reshape(n_tasks, -1) * mask
        return -weighted.sum(1) / mask.sum(1)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")
