"""Meta-trained policies shared by the RL tests."""

import pytest

from sklearn_meta.rl import BernoulliBanditTasks, MAMLPolicy, PointNavigationTasks

from .._settings import fast


@pytest.fixture(scope="module")
def bandit_policy():
    """A fast MAMLPolicy meta-trained on 3-armed bandits of 4 steps."""
    return fast(MAMLPolicy).fit(BernoulliBanditTasks(n_arms=3, max_episode_steps=4))


@pytest.fixture(scope="module")
def navigation_policy():
    """A fast MAMLPolicy meta-trained on 2D navigation of 5 steps."""
    return fast(MAMLPolicy).fit(PointNavigationTasks(max_episode_steps=5))
