"""MAML for reinforcement learning: a policy that adapts by policy-gradient steps."""

from __future__ import annotations

import copy
import numbers
import time

import gymnasium
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.history import History
from torch import nn
from torch.func import vmap

from .._functional import _gradient_steps
from .._modules import _resolve_device
from .._persistence import _pack_torch_state, _unpack_torch_state
from .._random import SCORING_SEED as _SCORING_SEED
from .._random import _as_generator
from .._sklearn import Interval, StrOptions, _fit_context
from ..nn import MLP
from ._envs import _check_int, make_vector_env
from ._policy import _check_spaces, _PolicyModel, _to_env_actions
from ._rollout import _advantages, _collect, _Rollouts

#: Tasks adapted in one vectorised call when evaluating.
_EVAL_CHUNK = 64


def _check_task_sampler(task_sampler) -> None:
    if not callable(task_sampler):
        raise TypeError(
            "task_sampler must be a callable that takes a random state and returns "
            "a gymnasium.Env for a random task (for instance "
            f"sklearn_meta.rl.PointNavigationTasks()); got "
            f"{type(task_sampler).__name__}."
        )


def _torch_generator(rng: np.random.Generator, device) -> torch.Generator:
    """Make a torch generator on ``device`` seeded from the NumPy ``rng``."""
    return torch.Generator(device=device).manual_seed(int(rng.integers(2**63 - 1)))


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


class MAMLPolicy(BaseEstimator):
    r"""Model-Agnostic Meta-Learning of a policy: fast adaptation by policy gradients.

    The meta-learned parameters are the starting point of ``inner_steps``
    policy-gradient steps, each on ``n_episodes`` episodes collected in a
    task with the current policy; they are trained so that the adapted
    policy earns a high return in that task (Finn et al., 2017, section
    5.3). The inner loss is the REINFORCE surrogate

    .. math:: L(\theta) = -\frac{1}{n} \sum_t \log \pi_\theta(a_t|s_t)
       \hat{A}_t

    over the ``n`` steps collected, with advantages from a linear baseline
    fitted to each task's returns. A meta-batch of tasks is collected from
    one vector environment and adapted in one vectorised call
    (:func:`torch.func.vmap` over :func:`torch.func.functional_call`, one
    :func:`torch.autograd.grad`). The outer update is Adam (``optimizer``)
    on the same surrogate evaluated on fresh episodes of the adapted
    policies, differentiated through the inner steps (second order) or,
    with ``first_order=True``, not.

    Discrete actions get a categorical policy (the network gives logits);
    1-D Box actions a Gaussian one (the network gives the mean; the log
    standard deviation is meta-learned and adapted too), clipped to the
    action bounds on the way to the environment.

    Parameters
    ----------
    module : torch.nn.Module, class or callable, default=None
        The policy network, mapping observations ``(n, obs_dim)`` to
        ``(n, n_actions)`` logits or ``(n, action_dim)`` means. A class or
        callable is called without arguments; an instance is copied, never
        trained in place. None: an MLP with ``hidden_layer_sizes``.
    hidden_layer_sizes : tuple of int, default=(100, 100)
        Hidden ReLU layers of the default network (the paper's).
    init_std : float, default=1.0
        Initial standard deviation of Gaussian policies.
    inner_lr : float, default=0.1
        Step size of the inner policy-gradient steps (the paper's).
    inner_steps : int, default=1
        Inner steps in meta-training, each on fresh episodes. 0 trains one
        policy on all tasks jointly (the paper's pre-training baseline).
    adapt_steps : int, default=None
        Steps taken by ``adapt`` and ``score``; None: ``inner_steps``.
    first_order : bool, default=False
        Ignore the second-order terms of the meta-gradient (first-order MAML).
    meta_batch_size : int, default=20
        Tasks per meta-update (the paper's 20).
    n_episodes : int, default=20
        Episodes per task and inner step (the paper's 20), and the default of
        ``adapt``.
    max_iter : int, default=100
        Meta-updates. 0 leaves the policy at its random initialisation.
    lr : float, default=1e-3
        Learning rate of the outer optimiser.
    optimizer : torch optimizer class, default=torch.optim.Adam
        The outer optimiser.
    discount : float, default=0.99
        Discount factor (gamma) of the returns.
    gae_lambda : float, default=1.0
        The lambda of generalised advantage estimation; 1 gives discounted
        returns-to-go minus the baseline, the paper's estimator.
    baseline : {"linear"} or None, default="linear"
        The linear feature baseline of Duan et al. (2016), fitted per task
        on the episodes of each step; None uses none.
    normalize_advantages : bool, default=True
        Standardise each task's advantages.
    max_episode_steps : int, default=None
        Longest episode collected; None uses each environment's
        ``spec.max_episode_steps`` (the shipped environments have one).
    n_eval_tasks : int, default=40
        Tasks ``score`` adapts to.
    device : str or torch.device, default="cpu"
        Where the policy runs; "auto" uses CUDA when present. Environments
        step on the CPU, so a small policy is fastest on the CPU too.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the tasks drawn and the actions sampled.

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-learned policy (``module_.net`` and, Gaussian, ``log_std``).
    optimizer_ : torch.optim.Optimizer
        The outer optimiser.
    history_ : skorch.history.History
        Per meta-update: ``train_loss``, ``return_before`` and
        ``return_after`` (mean episode return before and after adaptation),
        ``dur``.
    observation_space_, action_space_ : gymnasium.spaces.Space
        The spaces of the task family.
    n_features_in_ : int
        Size of an observation.
    device_ : torch.device
        The device used.

    See Also
    --------
    AdaptedPolicy : What :meth:`adapt` returns.
    sklearn_meta.MAMLRegressor : MAML for supervised tasks.

    References
    ----------
    .. [1] C. Finn, P. Abbeel and S. Levine, "Model-Agnostic Meta-Learning for
       Fast Adaptation of Deep Networks", ICML 2017.
    .. [2] Y. Duan, X. Chen, R. Houthooft, J. Schulman and P. Abbeel,
       "Benchmarking Deep Reinforcement Learning for Continuous Control",
       ICML 2016 (the linear feature baseline).
    .. [3] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-Dimensional Continuous Control Using Generalized Advantage
       Estimation", ICLR 2016.

    Examples
    --------
    >>> from sklearn_meta.rl import BernoulliBanditTasks, MAMLPolicy
    >>> tasks = BernoulliBanditTasks(n_arms=3)
    >>> policy = MAMLPolicy(hidden_layer_sizes=(16,), meta_batch_size=5,
    ...                     n_episodes=5, max_iter=3, random_state=0)
    >>> policy = policy.fit(tasks)
    >>> adapted = policy.adapt(tasks(random_state=1))
    >>> adapted.predict_proba([[1.0]]).shape
    (1, 3)
    """

    _parameter_constraints: dict = {
        "module": [None, callable],
        "hidden_layer_sizes": ["array-like"],
        "init_std": [Interval(numbers.Real, 0, None, closed="neither")],
        "inner_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "inner_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "adapt_steps": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "first_order": ["boolean"],
        "meta_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_episodes": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "discount": [Interval(numbers.Real, 0, 1, closed="both")],
        "gae_lambda": [Interval(numbers.Real, 0, 1, closed="both")],
        "baseline": [StrOptions({"linear"}), None],
        "normalize_advantages": ["boolean"],
        "max_episode_steps": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "n_eval_tasks": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(100, 100),
        init_std=1.0,
        inner_lr=0.1,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_batch_size=20,
        n_episodes=20,
        max_iter=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        discount=0.99,
        gae_lambda=1.0,
        baseline="linear",
        normalize_advantages=True,
        max_episode_steps=None,
        n_eval_tasks=40,
        device="cpu",
        random_state=None,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init_std = init_std
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.first_order = first_order
        self.meta_batch_size = meta_batch_size
        self.n_episodes = n_episodes
        self.max_iter = max_iter
        self.lr = lr
        self.optimizer = optimizer
        self.discount = discount
        self.gae_lambda = gae_lambda
        self.baseline = baseline
        self.normalize_advantages = normalize_advantages
        self.max_episode_steps = max_episode_steps
        self.n_eval_tasks = n_eval_tasks
        self.device = device
        self.random_state = random_state

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

    def _initialize_module(self) -> _PolicyModel:
        obs_dim = self.observation_space_.shape[0]
        space = self.action_space_
        n_out = space.n if self._discrete else space.shape[0]
        with torch.random.fork_rng(devices=[]):
            # Initialisers draw from torch's global generator; seed it inside a
            # forked state so the caller's generator is left untouched.
            torch.manual_seed(self._seed_)
            if self.module is None:
                net = MLP(obs_dim, tuple(self.hidden_layer_sizes), out_features=n_out)
            elif isinstance(self.module, nn.Module):
                net = copy.deepcopy(self.module)
            else:
                net = self.module()
        if not isinstance(net, nn.Module):
            raise TypeError(
                "The 'module' parameter must be a torch.nn.Module instance or a "
                f"callable returning one; got {type(net).__name__}."
            )
        net = net.to(self.device_)
        try:
            with torch.no_grad():
                shape = tuple(net(torch.zeros(2, obs_dim, device=self.device_)).shape)
        except Exception as exc:
            raise ValueError(
                f"The module could not process observations of shape (n, {obs_dim}): "
                f"{type(exc).__name__}: {exc}."
            ) from exc
        if shape != (2, n_out):
            what = "logits, one per action" if self._discrete else "action means"
            raise ValueError(
                f"The module must map observations (n, {obs_dim}) to (n, {n_out}) "
                f"{what}; it returned shape {shape} for n=2."
            )
        return _PolicyModel(net, space, self.init_std).to(self.device_)

    @property
    def _discrete(self) -> bool:
        return isinstance(self.action_space_, gymnasium.spaces.Discrete)

    @property
    def _adapt_steps(self) -> int:
        return self.inner_steps if self.adapt_steps is None else self.adapt_steps

    def _task_params(self, n_tasks: int, track: bool) -> dict:
        """Expand the meta-parameters to fast weights ``(n_tasks, ...)``."""
        meta = dict(self.module_.named_parameters())
        if not track:
            meta = {k: v.detach() for k, v in meta.items()}
        return {k: v.expand(n_tasks, *v.shape) for k, v in meta.items()}

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

    def _inner_update(self, fast: dict, grads: dict, state: dict):
        return {k: fast[k] - self.inner_lr * grads[k] for k in fast}, state

    def _collect(
        self,
        vector_env,
        n_tasks: int,
        fast: dict,
        generator: torch.Generator,
        seed: int,
        horizon: int,
    ) -> _Rollouts:
        """Episodes of every sub-environment under the fast weights ``fast``."""
        model = self.module_
        outputs = vmap(model.outputs, randomness="different")
        log_std = fast.get("log_std")

        def act(obs: torch.Tensor) -> torch.Tensor:
            return model.sample(outputs(fast, obs), log_std, generator)

        with torch.no_grad():
            return _collect(
                vector_env,
                n_tasks,
                act,
                lambda a: _to_env_actions(self.action_space_, a),
                horizon,
                seed,
                self.device_,
            )

    def _adapt_tasks(
        self,
        envs: list,
        n_episodes: int,
        steps: int,
        rng: np.random.Generator,
        *,
        track: bool,
        first_order: bool,
        evaluate: bool,
    ) -> tuple[dict, list[_Rollouts]]:
        """Adapt to each environment of ``envs`` by ``steps`` policy-gradient steps.

        Each step collects ``n_episodes`` fresh episodes per task with the
        current fast weights; with ``evaluate``, episodes of the adapted
        policies are collected at the end too. Returns the fast weights
        ``(B, ...)`` and the episodes of each step.
        """
        n_tasks = len(envs)
        vector_env = make_vector_env(envs, n_episodes)
        horizon = self._horizon(envs)
        seeds = rng.integers(2**31 - 1, size=steps + 1)
        generator = _torch_generator(rng, self.device_)
        rollouts: list[_Rollouts] = []

        def task_losses(fast: dict, step: int) -> torch.Tensor:
            episodes = self._collect(
                vector_env, n_tasks, fast, generator, int(seeds[step]), horizon
            )
            rollouts.append(episodes)
            return self._policy_losses(fast, episodes)

        fast = _gradient_steps(
            self._task_params(n_tasks, track),
            task_losses,
            steps,
            self._inner_update,
            track=track,
            first_order=first_order,
        )
        if evaluate:
            rollouts.append(
                self._collect(
                    vector_env, n_tasks, fast, generator, int(seeds[steps]), horizon
                )
            )
        vector_env.close()
        return fast, rollouts

    # -- meta-training -------------------------------------------------------------

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
        self : MAMLPolicy
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

    def _clear_fitted(self) -> None:
        for attr in [k for k in vars(self) if k.endswith("_") and k[0] != "_"]:
            delattr(self, attr)

    def _fit(self, task_sampler) -> MAMLPolicy:
        self.device_ = _resolve_device(self.device)
        self._seed_ = int(_as_generator(self.random_state).integers(2**31 - 1))
        (first,) = self._sample_envs(
            task_sampler, np.random.default_rng([self._seed_, 3]), 1
        )
        self.observation_space_ = first.observation_space
        self.action_space_ = first.action_space
        self.n_features_in_ = first.observation_space.shape[0]
        self.module_ = self._initialize_module()
        self.optimizer_ = self.optimizer(self.module_.parameters(), lr=self.lr)
        self.history_ = History()
        for _ in range(self.max_iter):
            self._meta_step(task_sampler)
        self.module_.eval()
        return self

    def _meta_step(self, task_sampler) -> None:
        start = time.perf_counter()
        # Each meta-update draws from its own seed.
        rng = np.random.default_rng([self._seed_, 0, len(self.history_)])
        envs = self._sample_envs(task_sampler, rng, self.meta_batch_size)
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        fast, rollouts = self._adapt_tasks(
            envs,
            self.n_episodes,
            self.inner_steps,
            rng,
            track=True,
            first_order=self.first_order,
            evaluate=True,
        )
        # The surrogate of the adapted policies on their own episodes: its
        # gradient is the policy gradient of the post-adaptation return,
        # carried back through the inner steps to the meta-parameters.
        loss = self._policy_losses(fast, rollouts[-1]).mean()
        loss.backward()
        self.optimizer_.step()
        self.history_.new_epoch()
        self.history_.record("epoch", len(self.history_))
        self.history_.record("train_loss", loss.item())
        self.history_.record("return_before", rollouts[0].returns().mean().item())
        self.history_.record("return_after", rollouts[-1].returns().mean().item())
        self.history_.record("dur", time.perf_counter() - start)

    # -- adaptation and evaluation -----------------------------------------------

    def adapt(self, env, n_episodes=None, random_state=None) -> AdaptedPolicy:
        """Adapt to one environment; return a new fitted policy.

        Collects ``n_episodes`` episodes per step and takes ``adapt_steps``
        policy-gradient steps. The meta-learner is not changed.

        Parameters
        ----------
        env : gymnasium.Env
            An environment of the family seen in ``fit``.
        n_episodes : int, default=None
            Episodes per step; None: ``n_episodes`` of the meta-learner.
        random_state : int, Generator or None, default=None
            Seeds the episodes; None: a seed derived from ``random_state``
            of the meta-learner, so adaptation is repeatable.

        Returns
        -------
        policy : AdaptedPolicy
            A fitted, picklable policy.
        """
        return AdaptedPolicy(
            self, n_episodes=n_episodes, random_state=random_state
        ).fit(env)

    def adaptation_returns(
        self, task_sampler, *, steps=None, n_tasks=None, random_state=None
    ) -> np.ndarray:
        """Mean episode return of each task after 0, 1, ..., ``steps`` adaptation steps.

        Each step collects ``n_episodes`` episodes with the current policy;
        their mean return is the return after the steps taken so far, and
        they make the next step (the evaluation of the MAML paper's figure).

        Parameters
        ----------
        task_sampler : callable
            Returns an environment for a random task (see :meth:`fit`).
        steps : int, default=None
            Adaptation steps; None: ``adapt_steps``.
        n_tasks : int, default=None
            Tasks drawn; None: ``n_eval_tasks``.
        random_state : int, Generator or None, default=None
            Seeds the tasks and episodes; None: a fixed seed, so that models
            are compared on the same tasks.

        Returns
        -------
        returns : ndarray of shape (n_tasks, steps + 1)
            Column ``k`` is the mean return after ``k`` steps.
        """
        check_is_fitted(self)
        _check_task_sampler(task_sampler)
        steps = _check_int(
            self._adapt_steps if steps is None else steps, "steps", low=0
        )
        n_tasks = _check_int(
            self.n_eval_tasks if n_tasks is None else n_tasks, "n_tasks"
        )
        rng = _as_generator(_SCORING_SEED if random_state is None else random_state)
        envs = self._sample_envs(task_sampler, rng, n_tasks)
        self.module_.eval()
        out = []
        with torch.no_grad():
            for i in range(0, n_tasks, _EVAL_CHUNK):
                _, rollouts = self._adapt_tasks(
                    envs[i : i + _EVAL_CHUNK],
                    self.n_episodes,
                    steps,
                    rng,
                    track=False,
                    first_order=True,
                    evaluate=True,
                )
                out.append(torch.stack([r.returns().mean(1) for r in rollouts], 1))
        return torch.cat(out).double().cpu().numpy()

    def score(self, task_sampler) -> float:
        """Mean return after adaptation, over ``n_eval_tasks`` tasks.

        Each task adapts by ``adapt_steps`` steps on ``n_episodes`` episodes
        and is scored on ``n_episodes`` new episodes of the stochastic
        adapted policy. Tasks come from a fixed seed.

        Parameters
        ----------
        task_sampler : callable
            Returns an environment for a random task (see :meth:`fit`).

        Returns
        -------
        score : float
            Mean episode return after adaptation.
        """
        return float(self.adaptation_returns(task_sampler)[:, -1].mean())

    # -- acting with given parameters ------------------------------------------------

    def _check_obs(self, estimator, X) -> torch.Tensor:
        X = validate_data(estimator, X, reset=False, dtype=np.float32)
        return torch.as_tensor(X, device=self.device_)

    def _params(self) -> dict:
        return {k: v.detach() for k, v in self.module_.named_parameters()}

    def _predict(self, params: dict, obs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = self.module_.outputs(params, obs)
            actions = out.argmax(-1) if self._discrete else out
        return _to_env_actions(self.action_space_, actions)

    def _sample(self, params: dict, obs: torch.Tensor, random_state) -> np.ndarray:
        generator = _torch_generator(_as_generator(random_state), self.device_)
        with torch.no_grad():
            out = self.module_.outputs(params, obs)[None]
            log_std = params["log_std"][None] if "log_std" in params else None
            actions = self.module_.sample(out, log_std, generator)[0]
        return _to_env_actions(self.action_space_, actions)

    def _predict_proba(self, params: dict, obs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = self.module_.outputs(params, obs)
        return torch.softmax(out.double(), -1).cpu().numpy()

    def _mean_return(self, params: dict, env, n_episodes: int, rng) -> float:
        env = self._check_env(env)
        vector_env = make_vector_env([env], n_episodes)
        generator = _torch_generator(rng, self.device_)
        fast = {k: v[None] for k, v in params.items()}
        episodes = self._collect(
            vector_env,
            1,
            fast,
            generator,
            int(rng.integers(2**31 - 1)),
            self._horizon([env]),
        )
        vector_env.close()
        return float(episodes.returns().mean())

    def predict(self, X) -> np.ndarray:
        """Actions of the meta-learned (not adapted) policy.

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
        check_is_fitted(self)
        return self._predict(self._params(), self._check_obs(self, X))

    def sample(self, X, random_state=None) -> np.ndarray:
        """Draw actions from the meta-learned (not adapted) stochastic policy.

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
        check_is_fitted(self)
        return self._sample(self._params(), self._check_obs(self, X), random_state)

    @available_if(_is_discrete)
    def predict_proba(self, X) -> np.ndarray:
        """Return the action probabilities of the meta-learned policy (Discrete).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_actions)
            The probability of each action.
        """
        check_is_fitted(self)
        return self._predict_proba(self._params(), self._check_obs(self, X))

    # -- persistence ---------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __getstate__(self):
        return _pack_torch_state(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(_unpack_torch_state(state))

    def _inference_copy(self) -> MAMLPolicy:
        """Make a shallow copy without the optimiser; ``fit`` builds new modules."""
        frozen = copy.copy(self)
        frozen.__dict__.pop("optimizer_", None)
        return frozen


class AdaptedPolicy(BaseEstimator):
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
        "n_episodes": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": [
            None,
            numbers.Integral,
            np.random.RandomState,
            np.random.Generator,
        ],
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

    def _check_learner(self) -> MAMLPolicy:
        learner = self.meta_learner
        if not isinstance(learner, MAMLPolicy):
            raise TypeError(
                f"{type(self).__name__} needs a MAMLPolicy as meta_learner; got "
                f"{type(learner).__name__}."
            )
        check_is_fitted(learner)
        return learner

    def _n_episodes(self, learner, n_episodes) -> int:
        n = learner.n_episodes if n_episodes is None else n_episodes
        return _check_int(n, "n_episodes")

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
        n_episodes = self._n_episodes(learner, self.n_episodes)
        rng = (
            np.random.default_rng([learner._seed_, 4])
            if self.random_state is None
            else _as_generator(self.random_state)
        )
        learner.module_.eval()
        with torch.no_grad():
            fast, rollouts = learner._adapt_tasks(
                [env],
                n_episodes,
                learner._adapt_steps,
                rng,
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

    def predict(self, X) -> np.ndarray:
        """Actions of the adapted policy.

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
        check_is_fitted(self)
        return self.learner_._predict(self.params_, self.learner_._check_obs(self, X))

    def sample(self, X, random_state=None) -> np.ndarray:
        """Draw actions from the adapted stochastic policy.

        This is how the policy acts when it collects episodes and when it is
        scored; :meth:`predict` gives the most likely (or mean) action.

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
        check_is_fitted(self)
        return self.learner_._sample(
            self.params_, self.learner_._check_obs(self, X), random_state
        )

    @available_if(_is_discrete)
    def predict_proba(self, X) -> np.ndarray:
        """Return the action probabilities of the adapted policy (Discrete).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_actions)
            The probability of each action.
        """
        check_is_fitted(self)
        return self.learner_._predict_proba(
            self.params_, self.learner_._check_obs(self, X)
        )

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
        n = self._n_episodes(
            self.learner_, self.n_episodes if n_episodes is None else n_episodes
        )
        rng = np.random.default_rng(_SCORING_SEED)
        return self.learner_._mean_return(self.params_, env, n, rng)

    def __getstate__(self):
        return _pack_torch_state(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(_unpack_torch_state(state))
