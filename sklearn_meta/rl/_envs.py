"""Task families of reinforcement learning: environments, vector environments, samplers.

Every environment is a :class:`gymnasium.Env` whose task (a goal, the arm
probabilities, the physics) is fixed when it is made, so a *task* is an
environment and a *task sampler* is a callable that makes one for a random
task: ``sampler(random_state) -> gymnasium.Env``.

Each shipped family also has a :class:`gymnasium.vector.VectorEnv` that steps
many environments, each with its own task, as NumPy arrays: a meta-batch of
tasks times their episodes in one call per time step, with no Python loop over
environments. :func:`make_vector_env` returns it for a list of shipped
environments, and a :class:`gymnasium.vector.SyncVectorEnv` for any other
environment.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from .._random import _as_generator
from .._sklearn import Interval, validate_params

__all__ = [
    "BernoulliBanditEnv",
    "BernoulliBanditTasks",
    "BernoulliBanditVectorEnv",
    "CartPoleTaskEnv",
    "CartPoleTasks",
    "CartPoleVectorEnv",
    "PointNavigationEnv",
    "PointNavigationTasks",
    "PointNavigationVectorEnv",
    "make_vector_env",
]


#: Constraints of constructor arguments: an episode's horizon, a positive number.
_HORIZON = [Interval(numbers.Integral, 1, None, closed="left")]
_POSITIVE = [Interval(numbers.Real, 0, None, closed="neither")]


def _checked(**constraints):
    """Check constructor arguments as estimators check parameters (a ValueError)."""
    return validate_params(constraints, prefer_skip_nested_validation=True)


class _TaskSampler:
    """A task sampler, shown by its arguments as an estimator is."""

    def __repr__(self) -> str:
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        args = ", ".join(f"{name}={getattr(self, name)}" for name in names)
        return f"{type(self).__name__}({args})"


def _spec(name: str, max_episode_steps: int, **kwargs) -> EnvSpec:
    """Make a spec that remakes the environment (``gymnasium.make(env.spec)``).

    Not registered; collectors read the episode limit from it.
    """
    return EnvSpec(
        f"sklearn_meta/{name}-v0",
        entry_point=f"sklearn_meta.rl._envs:{name}Env",
        max_episode_steps=max_episode_steps,
        kwargs={**kwargs, "max_episode_steps": max_episode_steps},
    )


def _check_range(value, name: str, low: float = -math.inf) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (low, high) of numbers; got {value!r}."
        ) from None
    if not (low <= lo <= hi):
        raise ValueError(
            f"{name} must be a pair (low, high) with {low} <= low <= high; got "
            f"{value!r}."
        )
    return lo, hi


class _BatchedVectorEnv(VectorEnv):
    """Many environments of one family, each with its own task, as arrays.

    Every sub-environment starts and stops together: ``reset`` resets all of
    them and there is no automatic reset (``autoreset_mode`` is
    ``DISABLED``); a sub-environment stepped after its episode ended keeps
    going and its outputs should be ignored, as collectors do.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}
    _name = ""

    def __init__(self, single_env: gymnasium.Env, num_envs: int, max_episode_steps):
        self.num_envs = int(num_envs)
        self.single_observation_space = single_env.observation_space
        self.single_action_space = single_env.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.spec = _spec(self._name, self.max_episode_steps)
        self._t = 0
        #: Each sub-environment's generator, after a reset with one seed each.
        self._rngs: list[np.random.Generator] | None = None

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict | None = None,
    ):
        """Reset every sub-environment.

        Parameters
        ----------
        seed : int or sequence of int, default=None
            An int seeds the one random generator of the vector environment.
            A sequence of ``num_envs`` ints seeds each sub-environment's own
            generator, as gymnasium's vector environments take them: a
            sub-environment's randomness then depends on its seed alone, not
            on the others it runs with.
        options : dict, default=None
            Not used.

        Returns
        -------
        observations : ndarray of shape (num_envs, ...)
            The first observations.
        info : dict
            Empty.
        """
        if seed is not None and not isinstance(seed, numbers.Integral):
            seeds = [int(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"seed must be an int or {self.num_envs} ints, one per "
                    f"sub-environment; got {len(seeds)}."
                )
            self._rngs = [np.random.default_rng(s) for s in seeds]
            self._np_random = np.random.default_rng(seeds)
        elif seed is not None:
            self._rngs = None
            self._np_random, self._np_random_seed = gymnasium.utils.seeding.np_random(
                int(seed)
            )
        self._t = 0
        return self._reset_state(), {}

    def _draw(self, draw):
        """Return ``draw(generator, n)`` for every sub-environment, stacked.

        One draw of ``n = num_envs`` rows from the vector environment's
        generator, or one row from each sub-environment's own (after a reset
        with one seed per sub-environment).
        """
        if self._rngs is None:
            return draw(self.np_random, self.num_envs)
        return np.concatenate([draw(rng, 1) for rng in self._rngs])

    def step(self, actions):
        """Step every sub-environment.

        Parameters
        ----------
        actions : ndarray of shape (num_envs, ...)
            One action per sub-environment.

        Returns
        -------
        observations, rewards, terminations, truncations, info
            Arrays with one entry per sub-environment, as gymnasium's
            vector API returns them.
        """
        self._t += 1
        obs, reward, terminated = self._step_state(np.asarray(actions))
        truncated = np.full(self.num_envs, self._t >= self.max_episode_steps)
        return obs, reward, terminated, truncated & ~terminated, {}


class PointNavigationEnv(gymnasium.Env):
    """A point in the plane moving to a goal: the MAML paper's 2D navigation task.

    The state is the point's position, which starts at the origin; an action
    is a velocity, clipped to ``[-0.1, 0.1]`` in each coordinate, added to the
    position; the reward is minus the distance to the goal. An episode ends
    when the point is within 0.01 of the goal or after ``max_episode_steps``
    steps (Finn et al., 2017, section 5.3).

    Parameters
    ----------
    goal : array-like of shape (2,), default=(0.5, 0.5)
        The goal: the task.
    max_episode_steps : int, default=100
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import PointNavigationEnv
    >>> env = PointNavigationEnv(goal=(0.3, 0.0))
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([1.0, 0.0])
    >>> obs.tolist(), round(reward, 3)
    ([0.10000000149011612, 0.0], -0.2)
    """

    metadata = {"render_modes": []}
    max_speed = 0.1
    goal_tolerance = 0.01

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, goal=(0.5, 0.5), max_episode_steps: int = 100):
        self.goal = np.asarray(goal, dtype=np.float64)
        if self.goal.shape != (2,) or not np.isfinite(self.goal).all():
            raise ValueError(f"goal must be 2 finite numbers (x, y); got {goal!r}.")
        self.max_episode_steps = int(max_episode_steps)
        self.spec = _spec(
            "PointNavigation", self.max_episode_steps, goal=tuple(self.goal.tolist())
        )
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(
            -self.max_speed, self.max_speed, (2,), np.float32
        )
        self._position = np.zeros(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Put the point at the origin; see :meth:`gymnasium.Env.reset`."""
        super().reset(seed=seed)
        self._position = np.zeros(2)
        self._t = 0
        return self._position.astype(np.float32), {}

    def step(self, action):
        """Move by the clipped velocity ``action``; see :meth:`gymnasium.Env.step`."""
        velocity = np.clip(np.asarray(action, dtype=np.float64), -0.1, 0.1)
        self._position = self._position + velocity
        self._t += 1
        distance = float(np.linalg.norm(self._position - self.goal))
        terminated = distance < self.goal_tolerance
        truncated = not terminated and self._t >= self.max_episode_steps
        return self._position.astype(np.float32), -distance, terminated, truncated, {}

    @classmethod
    def _vector_env(cls, envs, copies: int) -> PointNavigationVectorEnv:
        goals = np.repeat([env.goal for env in envs], copies, axis=0)
        return PointNavigationVectorEnv(goals, envs[0].max_episode_steps)


class PointNavigationVectorEnv(_BatchedVectorEnv):
    """Many :class:`PointNavigationEnv` stepped at once, one goal each.

    Parameters
    ----------
    goals : array-like of shape (num_envs, 2)
        The goal of each sub-environment.
    max_episode_steps : int, default=100
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import PointNavigationVectorEnv
    >>> envs = PointNavigationVectorEnv([[0.3, 0.0], [0.0, -0.5]])
    >>> obs, info = envs.reset(seed=0)
    >>> obs, rewards, terminated, truncated, info = envs.step([[1, 0], [0, 1]])
    >>> rewards.round(3).tolist()
    [-0.2, -0.6]
    """

    _name = "PointNavigation"

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, goals, max_episode_steps: int = 100):
        self.goals = np.asarray(goals, dtype=np.float64)
        if self.goals.ndim != 2 or self.goals.shape[1] != 2:
            raise ValueError(
                f"goals must have shape (num_envs, 2); got {self.goals.shape}."
            )
        super().__init__(PointNavigationEnv(), len(self.goals), max_episode_steps)

    def _reset_state(self):
        self._position = np.zeros((self.num_envs, 2))
        return self._position.astype(np.float32)

    def _step_state(self, actions):
        self._position = self._position + np.clip(actions, -0.1, 0.1)
        distance = np.linalg.norm(self._position - self.goals, axis=1)
        return (
            self._position.astype(np.float32),
            -distance,
            distance < PointNavigationEnv.goal_tolerance,
        )


class PointNavigationTasks(_TaskSampler):
    """Sample 2D navigation tasks: goals uniform in a square.

    Calling the sampler with a random state returns a new
    :class:`PointNavigationEnv` for a goal drawn uniformly in
    ``[goal_low, goal_high]²`` (``[-0.5, 0.5]²`` in the MAML paper).

    Parameters
    ----------
    goal_low, goal_high : float, default=-0.5, 0.5
        Bounds of the goals in each coordinate.
    max_episode_steps : int, default=100
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import PointNavigationTasks
    >>> env = PointNavigationTasks()(random_state=0)
    >>> env.goal.round(3).tolist()
    [0.137, -0.23]
    """

    @_checked(max_episode_steps=_HORIZON)
    def __init__(
        self, goal_low: float = -0.5, goal_high: float = 0.5, max_episode_steps=100
    ):
        self.goal_low, self.goal_high = _check_range(
            (goal_low, goal_high), "(goal_low, goal_high)"
        )
        self.max_episode_steps = int(max_episode_steps)

    def __call__(self, random_state=None) -> PointNavigationEnv:
        """Return an environment for a random goal.

        Parameters
        ----------
        random_state : int, numpy.random.Generator or None, default=None
            Where the goal is drawn from.

        Returns
        -------
        env : PointNavigationEnv
            A new environment.
        """
        rng = _as_generator(random_state)
        goal = rng.uniform(self.goal_low, self.goal_high, size=2)
        return PointNavigationEnv(goal, self.max_episode_steps)


class BernoulliBanditEnv(gymnasium.Env):
    """A multi-armed bandit with Bernoulli rewards, played for a few pulls.

    Each step pulls one arm (a discrete action); the reward is 1 with the
    arm's probability, else 0. The observation is the constant ``[1.0]``, so
    a policy is a distribution over arms; an episode is
    ``max_episode_steps`` pulls.

    Parameters
    ----------
    probs : array-like of shape (n_arms,), default=(0.2, 0.8)
        The probability of a reward of each arm: the task.
    max_episode_steps : int, default=10
        Pulls per episode.

    Examples
    --------
    >>> from sklearn_meta.rl import BernoulliBanditEnv
    >>> env = BernoulliBanditEnv([0.0, 1.0])
    >>> obs, info = env.reset(seed=0)
    >>> env.step(1)[1], env.step(0)[1]
    (1.0, 0.0)
    """

    metadata = {"render_modes": []}

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, probs=(0.2, 0.8), max_episode_steps: int = 10):
        self.probs = np.asarray(probs, dtype=np.float64)
        if (
            self.probs.ndim != 1
            or len(self.probs) < 2
            or not ((self.probs >= 0) & (self.probs <= 1)).all()
        ):
            raise ValueError(
                "probs must be a 1-D array of at least 2 probabilities in [0, 1]; "
                f"got {probs!r}."
            )
        self.max_episode_steps = int(max_episode_steps)
        self.spec = _spec(
            "BernoulliBandit", self.max_episode_steps, probs=tuple(self.probs.tolist())
        )
        self.observation_space = spaces.Box(1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(len(self.probs))
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode of pulls; see :meth:`gymnasium.Env.reset`."""
        super().reset(seed=seed)
        self._t = 0
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        """Pull arm ``action``; see :meth:`gymnasium.Env.step`."""
        if not self.action_space.contains(action):
            raise ValueError(
                f"action must be an arm in 0..{len(self.probs) - 1}; got {action!r}."
            )
        reward = float(self.np_random.random() < self.probs[int(action)])
        self._t += 1
        truncated = self._t >= self.max_episode_steps
        return np.ones(1, dtype=np.float32), reward, False, truncated, {}

    @classmethod
    def _vector_env(cls, envs, copies: int) -> BernoulliBanditVectorEnv:
        probs = np.repeat([env.probs for env in envs], copies, axis=0)
        return BernoulliBanditVectorEnv(probs, envs[0].max_episode_steps)


class BernoulliBanditVectorEnv(_BatchedVectorEnv):
    """Many :class:`BernoulliBanditEnv` played at once, each with its own arms.

    Parameters
    ----------
    probs : array-like of shape (num_envs, n_arms)
        The reward probability of each arm of each sub-environment.
    max_episode_steps : int, default=10
        Pulls per episode.

    Examples
    --------
    >>> from sklearn_meta.rl import BernoulliBanditVectorEnv
    >>> envs = BernoulliBanditVectorEnv([[0.0, 1.0], [1.0, 0.0]])
    >>> obs, info = envs.reset(seed=0)
    >>> envs.step([1, 1])[1].tolist()
    [1.0, 0.0]
    """

    _name = "BernoulliBandit"

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, probs, max_episode_steps: int = 10):
        self.probs = np.asarray(probs, dtype=np.float64)
        if self.probs.ndim != 2:
            raise ValueError(
                f"probs must have shape (num_envs, n_arms); got {self.probs.shape}."
            )
        super().__init__(
            BernoulliBanditEnv(self.probs[0]), len(self.probs), max_episode_steps
        )

    def _reset_state(self):
        return np.ones((self.num_envs, 1), dtype=np.float32)

    def _step_state(self, actions):
        p = self.probs[np.arange(self.num_envs), actions.astype(np.int64)]
        reward = (self._draw(lambda rng, n: rng.random(n)) < p).astype(np.float64)
        obs = np.ones((self.num_envs, 1), dtype=np.float32)
        return obs, reward, np.zeros(self.num_envs, dtype=bool)


class BernoulliBanditTasks(_TaskSampler):
    """Sample bandit tasks: each arm's reward probability uniform in [0, 1].

    Parameters
    ----------
    n_arms : int, default=5
        Number of arms.
    max_episode_steps : int, default=10
        Pulls per episode.

    Examples
    --------
    >>> from sklearn_meta.rl import BernoulliBanditTasks
    >>> BernoulliBanditTasks(n_arms=3)(random_state=0).probs.round(2).tolist()
    [0.64, 0.27, 0.04]
    """

    @_checked(
        n_arms=[Interval(numbers.Integral, 2, None, closed="left")],
        max_episode_steps=_HORIZON,
    )
    def __init__(self, n_arms: int = 5, max_episode_steps: int = 10):
        self.n_arms = int(n_arms)
        self.max_episode_steps = int(max_episode_steps)

    def __call__(self, random_state=None) -> BernoulliBanditEnv:
        """Return a bandit with random arm probabilities.

        Parameters
        ----------
        random_state : int, numpy.random.Generator or None, default=None
            Where the probabilities are drawn from.

        Returns
        -------
        env : BernoulliBanditEnv
            A new environment.
        """
        rng = _as_generator(random_state)
        return BernoulliBanditEnv(rng.random(self.n_arms), self.max_episode_steps)


class CartPoleTaskEnv(CartPoleEnv):
    """Gymnasium's CartPole with its own pole length and mass, and a horizon.

    The dynamics, observations, actions and reward are those of
    :class:`gymnasium.envs.classic_control.cartpole.CartPoleEnv` (reward 1
    per step while the pole is up); the task is the pole's half-length and
    mass. Episodes are truncated after ``max_episode_steps`` steps.

    Parameters
    ----------
    length : float, default=0.5
        Half the pole's length (gymnasium's ``length``), in metres.
    masspole : float, default=0.1
        The pole's mass, in kilograms.
    max_episode_steps : int, default=200
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import CartPoleTaskEnv
    >>> env = CartPoleTaskEnv(length=1.0, masspole=0.3)
    >>> obs, info = env.reset(seed=0)
    >>> env.polemass_length
    0.3
    """

    @_checked(length=_POSITIVE, masspole=_POSITIVE, max_episode_steps=_HORIZON)
    def __init__(
        self, length: float = 0.5, masspole: float = 0.1, max_episode_steps=200
    ):
        super().__init__()
        self.length = float(length)
        self.masspole = float(masspole)
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
        self.max_episode_steps = int(max_episode_steps)
        self.spec = _spec(
            "CartPoleTask",
            self.max_episode_steps,
            length=self.length,
            masspole=self.masspole,
        )
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; see :meth:`gymnasium.Env.reset`."""
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """Push the cart; see :meth:`gymnasium.Env.step`."""
        obs, reward, terminated, _, info = super().step(action)
        self._t += 1
        truncated = not terminated and self._t >= self.max_episode_steps
        return obs, reward, terminated, truncated, info

    @classmethod
    def _vector_env(cls, envs, copies: int) -> CartPoleVectorEnv:
        return CartPoleVectorEnv(
            np.repeat([env.length for env in envs], copies),
            np.repeat([env.masspole for env in envs], copies),
            envs[0].max_episode_steps,
        )


class CartPoleVectorEnv(_BatchedVectorEnv):
    """Many :class:`CartPoleTaskEnv` stepped at once, each with its own pole.

    The same Euler integration as gymnasium's CartPole, on arrays.

    Parameters
    ----------
    length : array-like of shape (num_envs,)
        Half the pole's length of each sub-environment.
    masspole : array-like of shape (num_envs,)
        The pole's mass of each sub-environment.
    max_episode_steps : int, default=200
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import CartPoleVectorEnv
    >>> envs = CartPoleVectorEnv([0.5, 1.0], [0.1, 0.2])
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (2, 4)
    """

    _name = "CartPoleTask"

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, length, masspole, max_episode_steps: int = 200):
        self.length = np.asarray(length, dtype=np.float64)
        self.masspole = np.asarray(masspole, dtype=np.float64)
        if self.length.ndim != 1 or self.length.shape != self.masspole.shape:
            raise ValueError(
                "length and masspole must be 1-D arrays of the same length; got "
                f"shapes {self.length.shape} and {self.masspole.shape}."
            )
        self._single = CartPoleTaskEnv()
        # Constant per sub-environment: computed once, not at every step.
        self._total_mass = self.masspole + self._single.masscart
        self._polemass_length = self.masspole * self.length
        super().__init__(self._single, len(self.length), max_episode_steps)

    def _reset_state(self):
        self._state = self._draw(lambda rng, n: rng.uniform(-0.05, 0.05, size=(n, 4)))
        return self._state.astype(np.float32)

    def _step_state(self, actions):
        c = self._single
        x, x_dot, theta, theta_dot = self._state.T
        force = np.where(actions == 1, c.force_mag, -c.force_mag)
        cos, sin = np.cos(theta), np.sin(theta)
        total_mass, polemass_length = self._total_mass, self._polemass_length
        temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        thetaacc = (c.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * cos / total_mass
        self._state = np.stack(
            [
                x + c.tau * x_dot,
                x_dot + c.tau * xacc,
                theta + c.tau * theta_dot,
                theta_dot + c.tau * thetaacc,
            ],
            axis=1,
        )
        x, theta = self._state[:, 0], self._state[:, 2]
        terminated = (np.abs(x) > c.x_threshold) | (
            np.abs(theta) > c.theta_threshold_radians
        )
        # Reward 1 per step, including the step on which the pole falls.
        return self._state.astype(np.float32), np.ones(self.num_envs), terminated


class CartPoleTasks(_TaskSampler):
    """Sample CartPole tasks: pole half-length and mass uniform in ranges.

    Parameters
    ----------
    length : tuple of float, default=(0.25, 1.0)
        Range of the pole's half-length (gymnasium's default is 0.5).
    masspole : tuple of float, default=(0.05, 0.5)
        Range of the pole's mass (gymnasium's default is 0.1).
    max_episode_steps : int, default=200
        Horizon of an episode.

    Examples
    --------
    >>> from sklearn_meta.rl import CartPoleTasks
    >>> env = CartPoleTasks()(random_state=0)
    >>> round(env.length, 3), round(env.masspole, 3)
    (0.728, 0.171)
    """

    @_checked(max_episode_steps=_HORIZON)
    def __init__(self, length=(0.25, 1.0), masspole=(0.05, 0.5), max_episode_steps=200):
        self.length = _check_range(length, "length", low=1e-6)
        self.masspole = _check_range(masspole, "masspole", low=1e-6)
        self.max_episode_steps = int(max_episode_steps)

    def __call__(self, random_state=None) -> CartPoleTaskEnv:
        """Return a CartPole with a random pole.

        Parameters
        ----------
        random_state : int, numpy.random.Generator or None, default=None
            Where the pole's length and mass are drawn from.

        Returns
        -------
        env : CartPoleTaskEnv
            A new environment.
        """
        rng = _as_generator(random_state)
        length, masspole = rng.uniform(*self.length), rng.uniform(*self.masspole)
        return CartPoleTaskEnv(length, masspole, self.max_episode_steps)


def make_vector_env(
    envs: Sequence[gymnasium.Env], copies: int = 1, *, batched: bool = True
) -> VectorEnv:
    """Make one vector environment running ``copies`` episodes of each environment.

    Sub-environment ``i * copies + j`` is copy ``j`` of ``envs[i]``. For the
    shipped families (all of one class) it is that family's NumPy vector
    environment, which steps every sub-environment in one array operation;
    for any other environment it is a :class:`gymnasium.vector.SyncVectorEnv`
    over deep copies of the environments, stepped one after another.

    Parameters
    ----------
    envs : sequence of gymnasium.Env
        The environments (the tasks).
    copies : int, default=1
        Episodes to run at once in each environment.
    batched : bool, default=True
        Use the family's NumPy vector environment when there is one; False
        always gives a ``SyncVectorEnv`` (to compare the two).

    Returns
    -------
    vector_env : gymnasium.vector.VectorEnv
        ``len(envs) * copies`` sub-environments.

    Examples
    --------
    >>> from sklearn_meta.rl import PointNavigationTasks, make_vector_env
    >>> envs = [PointNavigationTasks()(seed) for seed in range(3)]
    >>> make_vector_env(envs, copies=4).num_envs
    12
    """
    envs = list(envs)
    if not envs:
        raise ValueError("envs is empty; pass at least one environment.")
    kind = type(envs[0])
    if (
        batched
        and hasattr(kind, "_vector_env")
        and all(type(env) is kind for env in envs)
        and len({env.max_episode_steps for env in envs}) == 1
    ):
        return kind._vector_env(envs, copies)
    return SyncVectorEnv(
        [lambda env=env: copy.deepcopy(env) for env in envs for _ in range(copies)],
        autoreset_mode=AutoresetMode.NEXT_STEP,
    )
