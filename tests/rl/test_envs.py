"""Tests of the task families and vector environments (sklearn_meta/rl/_envs.py)."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv

from sklearn_meta.rl import (
    BernoulliBanditEnv,
    BernoulliBanditTasks,
    BernoulliBanditVectorEnv,
    CartPoleTaskEnv,
    CartPoleTasks,
    CartPoleVectorEnv,
    PointNavigationEnv,
    PointNavigationTasks,
    PointNavigationVectorEnv,
    make_vector_env,
)

from ._helpers import Reach1D


@pytest.mark.filterwarnings("ignore:.*Box observation space m")
@pytest.mark.parametrize(
    "env",
    [
        PointNavigationEnv((0.2, -0.3)),
        BernoulliBanditEnv([0.1, 0.7]),
        CartPoleTaskEnv(),
    ],
    ids=lambda env: type(env).__name__,
)
def test_shipped_envs_pass_gymnasium_checker(env):
    """Check that the shipped environments follow the gymnasium API."""
    check_env(env, skip_render_check=True)


def test_point_navigation_dynamics_and_termination():
    """Check that 2D navigation clips steps, rewards -distance, ends at goal or time."""
    env = PointNavigationEnv(goal=(0.2, 0.0), max_episode_steps=100)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0, 0])
    obs, reward, terminated, truncated, _ = env.step([5.0, -0.05])
    np.testing.assert_allclose(obs, [0.1, -0.05])
    assert reward == pytest.approx(-np.hypot(0.1, 0.05))
    assert not terminated and not truncated
    obs, reward, terminated, truncated, _ = env.step([0.1, 0.05])
    assert terminated and not truncated
    short = PointNavigationEnv(goal=(0.5, 0.5), max_episode_steps=2)
    short.reset()
    short.step([0, 0])
    assert short.step([0, 0])[3]


def test_task_samplers_draw_tasks_in_their_ranges():
    """Check that samplers return new environments with tasks in range."""
    rng = np.random.default_rng(0)
    goals = np.array([PointNavigationTasks()(rng).goal for _ in range(200)])
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and goals.std() > 0.2
    probs = np.array([BernoulliBanditTasks(n_arms=4)(rng).probs for _ in range(50)])
    assert probs.shape == (50, 4) and probs.min() >= 0 and probs.max() <= 1
    poles = [CartPoleTasks(length=(0.3, 0.4), masspole=(1, 2))(rng) for _ in range(20)]
    assert all(0.3 <= p.length <= 0.4 and 1 <= p.masspole <= 2 for p in poles)
    assert all(p.polemass_length == p.length * p.masspole for p in poles)
    assert (
        PointNavigationTasks()(3).goal.tolist()
        == PointNavigationTasks()(3).goal.tolist()
    )


@pytest.mark.parametrize(
    "make, bad, match",
    [
        (PointNavigationEnv, dict(goal=(1, 2, 3)), "goal must be 2 finite numbers"),
        (
            PointNavigationEnv,
            dict(max_episode_steps=0),
            r"The 'max_episode_steps' parameter of PointNavigationEnv\.__init__ must "
            r"be an int in the range \[1, inf\)\. Got 0 instead\.",
        ),
        (BernoulliBanditEnv, dict(probs=[0.5, 1.5]), "probs must be a 1-D array"),
        (
            BernoulliBanditTasks,
            dict(n_arms=1),
            r"The 'n_arms' parameter of BernoulliBanditTasks\.__init__ must be an "
            r"int in the range \[2, inf\)\. Got 1 instead\.",
        ),
        (
            CartPoleTaskEnv,
            dict(length=0),
            r"The 'length' parameter of CartPoleTaskEnv\.__init__ must be a float "
            r"in the range \(0\.0, inf\)\. Got 0 instead\.",
        ),
        (CartPoleTasks, dict(masspole=(2, 1)), r"masspole must be a pair"),
        (PointNavigationTasks, dict(goal_low=1, goal_high=0), "goal_low, goal_high"),
    ],
)
def test_envs_and_samplers_reject_bad_parameters(make, bad, match):
    """Check that environments and samplers reject bad parameters clearly."""
    with pytest.raises(ValueError, match=match):
        make(**bad)


def _run_both(envs, vector_env, actions, setup=None):
    """Step single environments and a vector environment with the same actions."""
    obs, _ = vector_env.reset(seed=0)
    singles = []
    for i, env in enumerate(envs):
        env.reset(seed=i)
        if setup is not None:
            setup(env, vector_env, i)
        singles.append(env)
    alive = np.ones(len(envs), dtype=bool)
    for a in actions:
        v_obs, v_rew, v_term, v_trunc, _ = vector_env.step(a)
        for i, env in enumerate(singles):
            if not alive[i]:
                continue  # the vector env keeps going; its outputs are masked
            obs, rew, term, trunc, _ = env.step(a[i])
            alive[i] = not (term or trunc)
            np.testing.assert_allclose(v_obs[i], obs, rtol=1e-6, atol=1e-7)
            assert v_rew[i] == pytest.approx(rew)
            assert (v_term[i], v_trunc[i]) == (term, trunc)


def test_vector_envs_step_like_the_single_envs():
    """Check that each family's vector environment matches its single env."""
    rng = np.random.default_rng(0)
    goals = rng.uniform(-0.5, 0.5, (3, 2))
    _run_both(
        [PointNavigationEnv(g, 6) for g in goals],
        PointNavigationVectorEnv(goals, 6),
        rng.uniform(-0.2, 0.2, (6, 3, 2)),
    )
    probs = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    _run_both(
        [BernoulliBanditEnv(p, 4) for p in probs],
        BernoulliBanditVectorEnv(probs, 4),
        rng.integers(0, 3, (4, 2)),
    )
    lengths, masses = np.array([0.3, 0.5, 1.0]), np.array([0.05, 0.1, 0.4])

    def same_start(env, vector_env, i):
        env.state = vector_env._state[i].copy()

    _run_both(
        [CartPoleTaskEnv(length, mass, 30) for length, mass in zip(lengths, masses)],
        CartPoleVectorEnv(lengths, masses, 30),
        rng.integers(0, 2, (25, 3)),
        setup=same_start,
    )


def test_make_vector_env_batches_shipped_families_and_syncs_others():
    """Check that make_vector_env picks the NumPy vector env or SyncVectorEnv."""
    envs = [PointNavigationTasks()(seed) for seed in range(3)]
    batched = make_vector_env(envs, copies=2)
    assert isinstance(batched, PointNavigationVectorEnv) and batched.num_envs == 6
    np.testing.assert_array_equal(batched.goals[2:4], [envs[1].goal] * 2)
    sync = make_vector_env(envs, copies=2, batched=False)
    assert isinstance(sync, SyncVectorEnv) and sync.num_envs == 6
    assert isinstance(make_vector_env([Reach1D()]), SyncVectorEnv)
    with pytest.raises(ValueError, match="envs is empty"):
        make_vector_env([])


@pytest.mark.parametrize("family", ["bandit", "cartpole"])
def test_one_seed_per_sub_environment_makes_each_independent_of_the_others(family):
    """Check that a sub-environment seeded alone plays as it does among others.

    A reset with one seed per sub-environment (gymnasium's vector
    convention) gives each its own generator: the last two of four play the
    same episode as a vector environment of those two alone.
    """
    if family == "bandit":
        probs = np.array([[0.3, 0.6], [0.5, 0.5], [0.2, 0.9], [0.7, 0.4]])

        def make(rows):
            return BernoulliBanditVectorEnv(probs[rows], 6)

    else:
        lengths, masses = np.array([0.3, 0.5, 1.0, 0.7]), np.full(4, 0.1)

        def make(rows):
            return CartPoleVectorEnv(lengths[rows], masses[rows], 6)

    seeds = [11, 12, 13, 14]
    actions = np.random.default_rng(0).integers(0, 2, (6, 4))
    whole, part = make(slice(0, 4)), make(slice(2, 4))
    obs_whole, _ = whole.reset(seed=seeds)
    obs_part, _ = part.reset(seed=seeds[2:])
    np.testing.assert_array_equal(obs_whole[2:], obs_part)
    played = [obs_part.ravel()]
    for step in actions:
        got_whole, got_part = whole.step(step), part.step(step[2:])
        for w, p in zip(got_whole[:4], got_part[:4]):
            np.testing.assert_array_equal(w[2:], p)
        played.append(got_part[1])
    # Other seeds play another episode (other starts, or other rewards).
    other = make(slice(2, 4))
    replayed = [other.reset(seed=[21, 22])[0].ravel()]
    replayed += [other.step(step[2:])[1] for step in actions]
    assert not np.array_equal(np.concatenate(played), np.concatenate(replayed))
    with pytest.raises(ValueError, match="one per sub-environment; got 3"):
        whole.reset(seed=[1, 2, 3])
