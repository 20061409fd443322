"""A user-defined task family shared by the RL tests."""

import gymnasium
import numpy as np
from gymnasium import spaces


class Reach1D(gymnasium.Env):
    """A user-defined family: move on a line to a target (no vector env)."""

    def __init__(self, target=0.5):
        self.target = target
        self.observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = 0.0
        return np.array([self._x]), {}

    def step(self, action):
        self._x += 0.1 * float(np.asarray(action)[0])
        return np.array([self._x]), -abs(self._x - self.target), False, False, {}


def reach_tasks(rng):
    """The task sampler of ``Reach1D``: a target drawn in [-1, 1]."""
    return Reach1D(rng.uniform(-1, 1))
