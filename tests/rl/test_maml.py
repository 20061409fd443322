"""Tests of sklearn_meta.rl: task families, policy gradients and MAMLPolicy."""

import re

import gymnasium
import joblib
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_meta.rl import (
    AdaptedPolicy,
    BernoulliBanditEnv,
    BernoulliBanditTasks,
    BernoulliBanditVectorEnv,
    CartPoleTaskEnv,
    CartPoleTasks,
    CartPoleVectorEnv,
    MAMLPolicy,
    PointNavigationEnv,
    PointNavigationTasks,
    PointNavigationVectorEnv,
    make_vector_env,
)
from sklearn_meta.rl._rollout import _advantages, _linear_baseline, _Rollouts

#: Small settings for fast end-to-end runs.
FAST = dict(
    hidden_layer_sizes=(8,),
    meta_batch_size=3,
    n_episodes=3,
    max_iter=2,
    n_eval_tasks=3,
    random_state=0,
)


class _Reach1D(gymnasium.Env):
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


def _reach_tasks(rng):
    return _Reach1D(rng.uniform(-1, 1))


@pytest.fixture(scope="module")
def bandit_policy():
    return MAMLPolicy(**FAST).fit(BernoulliBanditTasks(n_arms=3, max_episode_steps=4))


@pytest.fixture(scope="module")
def navigation_policy():
    return MAMLPolicy(**FAST).fit(PointNavigationTasks(max_episode_steps=5))


# -- environments -------------------------------------------------------------


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
    """Check the 2D navigation task: clipped velocities, -distance, goal reached."""
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
    assert isinstance(make_vector_env([_Reach1D()]), SyncVectorEnv)
    with pytest.raises(ValueError, match="envs is empty"):
        make_vector_env([])


# -- policy gradients ------------------------------------------------------------


def _baseline_shrinkage(n_episodes, horizon):
    """Closed-form factor of the expected bandit gradient with the linear baseline.

    The baseline ``b = H G`` is a linear smoother of the returns-to-go ``G``
    fitted on the same steps, with a hat matrix ``H`` that depends only on
    the time step here (the observation is constant and no episode ends
    early). ``∇ log π(a_i)`` correlates only with the reward of step ``i``,
    which ``G_j`` contains for ``j`` earlier in the same episode, so the
    expected estimate is ``(1 - Σ_i Σ_{j ∈ S_i} H_ij / n) ∇J``.
    """
    n = n_episodes * horizon
    obs = torch.ones(n, n_episodes, horizon, 1, dtype=torch.float64)
    unit_targets = torch.eye(n, dtype=torch.float64).view(n, n_episodes, horizon)
    hat = _linear_baseline(obs, torch.ones(n, n_episodes, horizon), unit_targets)
    hat = hat.reshape(n, n).T.numpy()
    episode, step = np.divmod(np.arange(n), horizon)
    same = (episode[:, None] == episode[None, :]) & (step[None, :] <= step[:, None])
    return 1 - (hat * same).sum() / n


def _bandit_gradient_estimates(baseline, normalize, n_rep, n_episodes, horizon):
    """Monte Carlo policy gradients of ``n_rep`` identical bandits, and the truth."""
    probs = np.array([0.2, 0.5, 0.9])
    policy = MAMLPolicy(
        hidden_layer_sizes=(),
        baseline=baseline,
        normalize_advantages=normalize,
        discount=1.0,
        n_episodes=n_episodes,
        max_iter=0,
        random_state=0,
    ).fit(lambda rng: BernoulliBanditEnv(probs, horizon))
    params = policy._params()
    logits = params["net.0.weight"][:, 0] + params["net.0.bias"]
    pi = torch.softmax(logits.double(), 0).numpy()
    assert pi.max() - pi.min() > 0.05  # a non-trivial point
    true_grad = pi * (probs - pi @ probs)

    env = BernoulliBanditEnv(probs, horizon)
    vector_env = make_vector_env([env] * n_rep, copies=n_episodes)
    fast = {
        k: v.clone().requires_grad_()
        for k, v in policy._task_params(n_rep, False).items()
    }
    generator = torch.Generator().manual_seed(0)
    rollouts = policy._collect(vector_env, n_rep, fast, generator, 0, horizon)
    losses = policy._policy_losses(fast, rollouts)
    (grad,) = torch.autograd.grad(losses.sum(), fast["net.0.bias"])
    return -grad.double().numpy(), true_grad


def test_bandit_policy_gradient_is_unbiased():
    """Check that the Monte Carlo mean of the inner gradient is the true gradient.

    A linear policy over a constant observation is a softmax over logits
    ``z``; with per-step reward ``r ~ Bernoulli(p_a)`` the expected reward
    per step is ``J = Σ_a π_a p_a`` and ``dJ/dz_k = π_k (p_k - J)``. The
    inner loss is the mean over steps, so minus its gradient estimates that
    exactly without a baseline, and ``c dJ/dz`` with the linear baseline
    fitted on the same episodes (``c`` in closed form above, about 0.8 here:
    a missing baseline would be off by 20%). Each of 800 identical tasks
    gives an independent estimate in one vectorised call.
    """
    n_rep, n_episodes, horizon = 800, 4, 4
    sems = {}
    for baseline, factor in [
        (None, 1.0),
        ("linear", _baseline_shrinkage(n_episodes, horizon)),
    ]:
        estimates, true_grad = _bandit_gradient_estimates(
            baseline, False, n_rep, n_episodes, horizon
        )
        mean = estimates.mean(0)
        sem = estimates.std(0, ddof=1) / np.sqrt(n_rep)
        expected = factor * true_grad
        assert np.all(np.abs(mean - expected) < 4 * sem), (baseline, mean, expected)
        # The estimate is informative: a sign error or a dropped (or added
        # instead of subtracted) baseline would be many standard errors off.
        assert np.abs(true_grad).max() > 8 * sem.max()
        assert np.abs((1 - factor) * true_grad).max() > 4 * sem.max() or factor == 1
        sems[baseline] = sem
    assert 0.75 < _baseline_shrinkage(n_episodes, horizon) < 0.9
    # The baseline reduces the variance.
    assert np.all(sems["linear"] < 0.7 * sems[None])
    # Normalised advantages rescale the gradient but keep its direction.
    estimates, true_grad = _bandit_gradient_estimates(
        "linear", True, n_rep, n_episodes, horizon
    )
    mean = estimates.mean(0)
    cosine = mean @ true_grad / np.linalg.norm(mean) / np.linalg.norm(true_grad)
    assert cosine > 0.99, (mean, true_grad)


class _ClippedLine(gymnasium.Env):
    """One step: the reward is the action, clipped to [-0.3, 0.3] by the policy."""

    observation_space = spaces.Box(1.0, 1.0, (1,), np.float32)
    action_space = spaces.Box(-0.3, 0.3, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32))
        return np.ones(1, np.float32), float(action[0]), False, True, {}


def test_gaussian_policy_gradient_is_unbiased_under_action_clipping():
    """Check the Gaussian policy gradient (mean and log std) with clipped actions.

    With ``a ~ N(mu, sigma²)`` clipped to ``[l, h]`` by the environment, the
    expected reward ``J = E[clip(a)]`` has a closed form; its gradient is
    estimated without bias only if the log-probability is that of the
    unclipped sample, which the episodes keep.
    """
    from scipy.stats import norm

    low, high, n_rep, n_episodes = -0.3, 0.3, 200, 4
    module = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(module.weight)
    torch.nn.init.constant_(module.bias, 0.2)
    policy = MAMLPolicy(
        module,
        init_std=0.4,
        baseline=None,
        normalize_advantages=False,
        n_episodes=n_episodes,
        max_iter=0,
        max_episode_steps=1,
        random_state=0,
    ).fit(lambda rng: _ClippedLine())

    def expected_reward(mu, sigma):
        a, b = (low - mu) / sigma, (high - mu) / sigma
        inside = norm.cdf(b) - norm.cdf(a)
        return (
            low * norm.cdf(a)
            + high * norm.sf(b)
            + mu * inside
            + sigma * (norm.pdf(a) - norm.pdf(b))
        )

    mu, sigma, h = 0.2, 0.4, 1e-5
    true_grad = np.array(
        [
            norm.cdf((high - mu) / sigma) - norm.cdf((low - mu) / sigma),
            (
                expected_reward(mu, sigma * np.exp(h))
                - expected_reward(mu, sigma * np.exp(-h))
            )
            / (2 * h),
        ]
    )
    vector_env = make_vector_env([_ClippedLine()] * n_rep, copies=n_episodes)
    fast = {
        k: v.clone().requires_grad_()
        for k, v in policy._task_params(n_rep, False).items()
    }
    generator = torch.Generator().manual_seed(0)
    rollouts = policy._collect(vector_env, n_rep, fast, generator, 0, 1)
    # The episodes keep the unclipped samples; the environment got clipped ones.
    assert rollouts.actions.abs().max() > 1.0
    assert rollouts.rewards.abs().max() <= high + 1e-6
    # The Gaussian log-density with the learned log std.
    params = {k: v[0] for k, v in fast.items()}
    obs, actions = rollouts.obs[0, :, 0], rollouts.actions[0, :, 0]
    torch.testing.assert_close(
        policy.module_.log_prob(params, obs, actions),
        torch.distributions.Normal(0.2, 0.4).log_prob(actions).sum(-1),
    )
    losses = policy._policy_losses(fast, rollouts)
    grads = torch.autograd.grad(losses.sum(), [fast["net.bias"], fast["log_std"]])
    estimates = -torch.cat(grads, 1).double().numpy()
    mean = estimates.mean(0)
    sem = estimates.std(0, ddof=1) / np.sqrt(n_rep)
    assert np.all(np.abs(mean - true_grad) < 4 * sem), (mean, true_grad, sem)
    assert np.abs(true_grad[0]) > 15 * sem[0]
    assert np.abs(true_grad[1]) > 4 * sem[1]


def _rollouts(rewards, mask, obs=None):
    rewards = torch.tensor(rewards, dtype=torch.float32)[None]
    mask = torch.tensor(mask, dtype=torch.float32)[None]
    if obs is None:
        obs = torch.zeros((*rewards.shape, 1))
    return _Rollouts(obs, torch.zeros(rewards.shape), rewards, mask)


def test_advantages_without_baseline_are_discounted_returns_to_go():
    """Check advantages against hand-computed discounted returns-to-go."""
    rollouts = _rollouts([[1.0, 2.0, 3.0, 0.0]], [[1, 1, 1, 0]])
    adv = _advantages(
        rollouts, discount=0.5, gae_lambda=1.0, baseline=None, normalize=False
    )
    np.testing.assert_allclose(adv[0, 0], [1 + 1 + 0.75, 2 + 1.5, 3, 0])
    # λ = 0 keeps the one-step TD error, here the reward alone.
    adv0 = _advantages(
        rollouts, discount=0.5, gae_lambda=0.0, baseline=None, normalize=False
    )
    np.testing.assert_allclose(adv0[0, 0], [1, 2, 3, 0])
    norm = _advantages(
        rollouts, discount=0.5, gae_lambda=1.0, baseline=None, normalize=True
    )[0, 0, :3]
    assert float(norm.mean()) == pytest.approx(0, abs=1e-6)
    assert float(norm.std(unbiased=False)) == pytest.approx(1, abs=1e-5)


def test_gae_with_baseline_matches_a_loop_over_time():
    """Check GAE (lambda < 1) with the baseline fitted to discounted returns-to-go."""
    rng = np.random.default_rng(0)
    discount, lam = 0.9, 0.5
    rewards = rng.normal(size=(2, 6))
    mask = np.ones((2, 6))
    mask[1, 4:] = 0
    rewards *= mask
    obs = torch.tensor(rng.normal(size=(1, 2, 6, 2)), dtype=torch.float32)
    rollouts = _rollouts(rewards.tolist(), mask.tolist(), obs)
    adv = _advantages(
        rollouts, discount=discount, gae_lambda=lam, baseline="linear", normalize=False
    )[0].numpy()
    returns = np.zeros_like(rewards)
    for t in reversed(range(6)):
        later = returns[:, t + 1] if t < 5 else 0.0
        returns[:, t] = rewards[:, t] + discount * later * mask[:, t]
    values = _linear_baseline(
        obs, torch.tensor(mask[None]), torch.tensor(returns[None])
    )[0].numpy()
    expected = np.zeros_like(rewards)
    for t in reversed(range(6)):
        next_value = values[:, t + 1] if t < 5 else 0.0
        delta = (rewards[:, t] + discount * next_value - values[:, t]) * mask[:, t]
        later = expected[:, t + 1] if t < 5 else 0.0
        expected[:, t] = delta + discount * lam * later * mask[:, t]
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)


def test_linear_baseline_is_each_tasks_least_squares_fit():
    """Check the linear baseline against NumPy least squares, task by task."""
    rng = np.random.default_rng(0)
    obs = torch.tensor(rng.normal(size=(2, 3, 5, 2)))
    mask = torch.ones(2, 3, 5)
    mask[1, 2, 3:] = 0
    targets = torch.tensor(rng.normal(size=(2, 3, 5)))
    values = _linear_baseline(obs, mask, targets).numpy()
    t = np.arange(5) / 100
    for b in range(2):
        rows, ys, idx = [], [], []
        for e in range(3):
            for s in range(5):
                if mask[b, e, s]:
                    o = obs[b, e, s].numpy()
                    rows.append([*o, *o**2, t[s], t[s] ** 2, t[s] ** 3, 1.0])
                    ys.append(float(targets[b, e, s]))
                    idx.append((e, s))
        X = np.array(rows)
        coef = np.linalg.solve(X.T @ X + 1e-5 * np.eye(X.shape[1]), X.T @ ys)
        expected = X @ coef
        got = np.array([values[b, e, s] for e, s in idx])
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert values[1, 2, 3:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_a_per_task_loop(first_order):
    """Check the vectorised meta-gradient against a loop over tasks with autograd."""
    policy = MAMLPolicy(
        hidden_layer_sizes=(6,), n_episodes=2, max_iter=0, random_state=0
    ).fit(PointNavigationTasks(max_episode_steps=4))
    envs = [PointNavigationTasks(max_episode_steps=4)(s) for s in range(3)]
    vector_env = make_vector_env(envs, copies=2)
    gen = torch.Generator().manual_seed(0)
    fixed = policy._task_params(3, False)
    support = policy._collect(vector_env, 3, fixed, gen, 1, 4)
    query = policy._collect(vector_env, 3, fixed, gen, 2, 4)

    from sklearn_meta._functional import _gradient_steps

    fast = _gradient_steps(
        policy._task_params(3, True),
        lambda fast, step: policy._policy_losses(fast, support),
        1,
        policy._inner_update,
        track=True,
        first_order=first_order,
    )
    meta = dict(policy.module_.named_parameters())
    got = torch.autograd.grad(
        policy._policy_losses(fast, query).mean(), list(meta.values())
    )

    def task_loss(params, rollouts, b):
        adv = _advantages(
            rollouts, discount=0.99, gae_lambda=1.0, baseline="linear", normalize=True
        )[b].reshape(-1)
        obs = rollouts.obs[b].reshape(-1, 2)
        actions = rollouts.actions[b].reshape(-1, 2)
        mask = rollouts.mask[b].reshape(-1)
        logp = policy.module_.log_prob(params, obs, actions)
        return -(logp * adv * mask).sum() / mask.sum()

    total = 0
    for b in range(3):
        inner = torch.autograd.grad(
            task_loss(meta, support, b),
            list(meta.values()),
            create_graph=not first_order,
        )
        adapted = {k: v - 0.1 * g for (k, v), g in zip(meta.items(), inner)}
        total = total + task_loss(adapted, query, b) / 3
    expected = torch.autograd.grad(total, list(meta.values()))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_each_step_collects_fresh_episodes_with_the_current_policy(
    monkeypatch, navigation_policy
):
    """Check that step k's episodes, and the evaluation's, use the adapted policy.

    Collection 0 acts with the meta-parameters; collection k + 1 with the
    fast weights after one more policy-gradient step on episodes k; the last
    collection (the post-adaptation episodes) with the returned weights.
    """
    policy = navigation_policy
    seen = []
    collect = policy._collect

    def recording(vector_env, n_tasks, fast, *args):
        seen.append({k: v.detach().clone() for k, v in fast.items()})
        return collect(vector_env, n_tasks, fast, *args)

    monkeypatch.setattr(policy, "_collect", recording)
    envs = [PointNavigationTasks(max_episode_steps=5)(s) for s in range(2)]
    fast, rollouts = policy._adapt_tasks(
        envs,
        3,
        2,
        np.random.default_rng(0),
        track=False,
        first_order=True,
        evaluate=True,
    )
    assert len(seen) == len(rollouts) == 3
    meta = policy._task_params(2, False)
    for k, v in meta.items():
        assert torch.equal(seen[0][k], v), k
    for step in range(2):
        params = {k: v.clone().requires_grad_() for k, v in seen[step].items()}
        loss = policy._policy_losses(params, rollouts[step]).sum()
        grads = torch.autograd.grad(loss, list(params.values()))
        for (k, v), g in zip(params.items(), grads):
            torch.testing.assert_close(seen[step + 1][k], v - policy.inner_lr * g)
        assert not torch.equal(seen[step + 1]["log_std"], seen[step]["log_std"])
    for k, v in fast.items():
        assert torch.equal(v, seen[2][k]), k
    assert not torch.equal(rollouts[0].actions, rollouts[1].actions)


# -- the learner -------------------------------------------------------------------


def test_maml_navigation_one_step_beats_pretraining_and_random_init():
    """Check the paper's comparison on 2D navigation after one adaptation step.

    A shorter horizon (20 steps) and a smaller network than the paper's keep
    the budget to seconds; the goals, actions and rewards are the paper's.
    """
    tasks = PointNavigationTasks(max_episode_steps=20)
    params = dict(
        hidden_layer_sizes=(32, 32),
        meta_batch_size=10,
        n_episodes=10,
        max_iter=100,
        lr=3e-3,
        adapt_steps=1,
        random_state=0,
    )
    maml = MAMLPolicy(**params).fit(tasks)
    pretrained = MAMLPolicy(**params, inner_steps=0).fit(tasks)
    random_init = MAMLPolicy(**{**params, "max_iter": 0}).fit(tasks)
    curves = {
        name: model.adaptation_returns(tasks, n_tasks=40)
        for name, model in [
            ("maml", maml),
            ("pretrained", pretrained),
            ("random", random_init),
        ]
    }
    after = {name: curve[:, 1].mean() for name, curve in curves.items()}
    assert after["maml"] > after["pretrained"] + 1.5, after
    assert after["maml"] > after["random"] + 3.0, after
    # The step itself helps the meta-learned policy.
    assert after["maml"] > curves["maml"][:, 0].mean() + 1.5
    # The history records meta-training, and returns went up.
    history = maml.history_
    assert len(history) == 100
    assert np.mean(history[-10:, "return_after"]) > np.mean(
        history[:10, "return_after"]
    )
    assert maml.score(tasks) == pytest.approx(after["maml"])


def test_bandit_and_cartpole_end_to_end(bandit_policy):
    """Check fit, adapt, predict, predict_proba and score on discrete families."""
    env = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)(5)
    adapted = bandit_policy.adapt(env)
    assert isinstance(adapted, AdaptedPolicy)
    proba = adapted.predict_proba(np.ones((2, 1)))
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert adapted.predict([[1.0]]).tolist() == [proba[0].argmax()]
    # sample draws from predict_proba.
    draws = adapted.sample(np.ones((4000, 1)), random_state=0)
    freq = np.bincount(draws, minlength=3) / 4000
    np.testing.assert_allclose(freq, proba[0], atol=0.03)
    np.testing.assert_array_equal(
        bandit_policy.sample(np.ones((50, 1)), random_state=3),
        bandit_policy.sample(np.ones((50, 1)), random_state=3),
    )
    assert 0 <= adapted.score(env) <= 4
    assert adapted.adaptation_returns_.shape == (1,)

    cartpole = MAMLPolicy(**FAST, max_episode_steps=15).fit(CartPoleTasks())
    assert cartpole.history_[-1, "return_after"] <= 15
    policy = cartpole.adapt(CartPoleTasks()(1), n_episodes=2)
    assert set(policy.predict(np.zeros((4, 4))).tolist()) <= {0, 1}
    assert 1 <= policy.score(CartPoleTasks()(1)) <= 15
    assert 0 < cartpole.score(CartPoleTasks()) <= 15


def test_user_defined_family_runs_through_sync_vector_env():
    """Check that a user's gymnasium family (no spec, no vector env) works."""
    with pytest.raises(
        ValueError, match=r"no spec\.max_episode_steps\. Pass max_episode"
    ):
        MAMLPolicy(**FAST).fit(_reach_tasks)
    policy = MAMLPolicy(**FAST, first_order=True, max_episode_steps=5).fit(_reach_tasks)
    adapted = policy.adapt(_Reach1D(0.3))
    assert adapted.predict([[0.0]]).shape == (1, 1)
    assert -5 * 1.3 <= adapted.score(_Reach1D(0.3)) <= 0
    assert not hasattr(adapted, "predict_proba")
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as e:
        adapted.predict_proba([[0.0]])
    assert "only available for a Discrete action space" in str(e.value.__cause__)


def test_adapted_policy_round_trips_through_joblib(tmp_path, bandit_policy):
    """Check that adapted policies reload with identical actions and scores."""
    env = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)(7)
    adapted = bandit_policy.adapt(env)
    joblib.dump(adapted, tmp_path / "policy.joblib")
    loaded = joblib.load(tmp_path / "policy.joblib")
    obs = np.ones((3, 1))
    np.testing.assert_array_equal(loaded.predict_proba(obs), adapted.predict_proba(obs))
    assert loaded.score(env) == adapted.score(env)

    nav = MAMLPolicy(**FAST).fit(PointNavigationTasks(max_episode_steps=5))
    goal_env = PointNavigationEnv((0.3, -0.2), 5)
    policy = nav.adapt(goal_env)
    joblib.dump(policy, tmp_path / "nav.joblib")
    loaded = joblib.load(tmp_path / "nav.joblib")
    obs = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    np.testing.assert_array_equal(loaded.predict(obs), policy.predict(obs))
    assert np.abs(policy.predict(obs)).max() <= 0.1
    draws = policy.sample(obs, random_state=0)
    assert draws.shape == (10, 2) and np.abs(draws).max() <= 0.1
    np.testing.assert_array_equal(loaded.sample(obs, random_state=0), draws)
    assert not np.array_equal(policy.sample(obs, random_state=1), draws)
    assert loaded.score(goal_env) == policy.score(goal_env)
    # The meta-learner round-trips too and adapts identically.
    joblib.dump(nav, tmp_path / "meta.joblib")
    meta = joblib.load(tmp_path / "meta.joblib")
    np.testing.assert_array_equal(
        meta.adapt(goal_env).predict(obs), policy.predict(obs)
    )


def test_clone_get_params_and_random_state(navigation_policy):
    """Check clone/get_params/set_params, repeatability and adapt's independence."""
    params = navigation_policy.get_params()
    assert params["meta_batch_size"] == 3 and params["baseline"] == "linear"
    cloned = clone(navigation_policy)
    assert not hasattr(cloned, "module_")
    assert cloned.get_params() == params
    cloned.set_params(inner_lr=0.05, first_order=True)
    assert cloned.inner_lr == 0.05 and navigation_policy.inner_lr == 0.1
    again = clone(navigation_policy).fit(PointNavigationTasks(max_episode_steps=5))
    for (k, v), w in zip(
        navigation_policy.module_.state_dict().items(),
        again.module_.state_dict().values(),
    ):
        assert torch.equal(v, w), k
    env = PointNavigationEnv((0.1, 0.4), 5)
    before = {k: v.clone() for k, v in navigation_policy.module_.state_dict().items()}
    first = navigation_policy.adapt(env)
    second = navigation_policy.adapt(env)
    obs = np.array([[0.0, 0.0], [0.2, 0.1]])
    np.testing.assert_array_equal(first.predict(obs), second.predict(obs))
    for k, v in navigation_policy.module_.state_dict().items():
        assert torch.equal(v, before[k]), k
    # An adapted policy's clone keeps the meta-learner and adapts again.
    refit = clone(first)
    assert refit.meta_learner is navigation_policy
    np.testing.assert_array_equal(refit.fit(env).predict(obs), first.predict(obs))
    other = navigation_policy.adapt(env, random_state=1)
    assert not torch.equal(other.params_["net.0.bias"], first.params_["net.0.bias"])
    # The meta-learned policy itself is a policy too.
    assert navigation_policy.predict(obs).shape == (2, 2)


def test_inner_steps_zero_and_max_iter_zero():
    """Check joint pre-training (no inner step) and the untrained policy."""
    tasks = PointNavigationTasks(max_episode_steps=5)
    joint = MAMLPolicy(**FAST, inner_steps=0).fit(tasks)
    assert joint.history_[-1, "return_before"] == joint.history_[-1, "return_after"]
    assert joint.adaptation_returns(tasks, n_tasks=2).shape == (2, 1)
    assert joint.adaptation_returns(tasks, steps=3, n_tasks=2).shape == (2, 4)
    untrained = MAMLPolicy(**{**FAST, "max_iter": 0}).fit(tasks)
    assert len(untrained.history_) == 0
    # Two inner steps in meta-training, each on fresh episodes, second order.
    two = MAMLPolicy(**FAST, inner_steps=2).fit(tasks)
    assert len(two.history_) == 2 and two.adapt(tasks(0)).adaptation_returns_.shape == (
        2,
    )
    assert all(p.grad is not None for p in two.module_.parameters())


def test_first_order_drops_only_the_second_order_terms():
    """Check that first_order changes the meta-gradient, not the episodes."""
    tasks = PointNavigationTasks(max_episode_steps=5)
    fits = {
        first_order: MAMLPolicy(**{**FAST, "max_iter": 1}, first_order=first_order).fit(
            tasks
        )
        for first_order in (False, True)
    }
    for column in ("return_before", "return_after"):
        assert fits[False].history_[-1, column] == fits[True].history_[-1, column]
    grads = [
        {k: p.grad for k, p in fits[fo].module_.named_parameters()}
        for fo in (False, True)
    ]
    assert any(not torch.allclose(grads[0][k], grads[1][k]) for k in grads[0])


# -- errors ------------------------------------------------------------------------


def test_errors_for_bad_task_samplers_and_environments(navigation_policy):
    """Check the errors for samplers, spaces and environments a policy cannot use."""
    with pytest.raises(TypeError, match="task_sampler must be a callable"):
        MAMLPolicy(**FAST).fit([PointNavigationEnv()])
    with pytest.raises(TypeError, match="The task sampler returned int, not a"):
        MAMLPolicy(**FAST).fit(lambda rng: 3)

    def dict_obs(rng):
        env = _Reach1D()
        env.observation_space = spaces.Discrete(4)
        return env

    with pytest.raises(ValueError, match="needs a 1-D Box observation space"):
        MAMLPolicy(**FAST, max_episode_steps=3).fit(dict_obs)

    def multi_discrete(rng):
        env = _Reach1D()
        env.action_space = spaces.MultiDiscrete([2, 3])
        return env

    with pytest.raises(ValueError, match="needs a Discrete action space"):
        MAMLPolicy(**FAST, max_episode_steps=3).fit(multi_discrete)
    with pytest.raises(
        ValueError, match=re.escape("differs from the observation_space")
    ):
        navigation_policy.adapt(BernoulliBanditEnv())
    with pytest.raises(TypeError, match=r"env must be a gymnasium\.Env; got str"):
        navigation_policy.adapt("CartPole-v1")
    with pytest.raises(
        ValueError, match=r"'n_episodes' parameter of AdaptedPolicy must be None or"
    ):
        AdaptedPolicy(navigation_policy, n_episodes=0).fit(PointNavigationEnv())
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_episodes' parameter of MAMLPolicy.adapt must be None or an int "
            "in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adapt(PointNavigationEnv(), n_episodes=0)
    with pytest.raises(
        ValueError,
        match=r"The 'random_state' parameter of MAMLPolicy\.adapt must be None, an "
        r"instance of 'int', .* Got 'x' instead\.",
    ):
        navigation_policy.adapt(PointNavigationEnv(), random_state="x")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_episodes' parameter of AdaptedPolicy.score must be None or an "
            "int in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adapt(PointNavigationEnv(max_episode_steps=5)).score(
            PointNavigationEnv(), 0
        )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'steps' parameter of MAMLPolicy.adaptation_returns must be None or "
            "an int in the range [0, inf). Got -1 instead."
        ),
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), steps=-1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_tasks' parameter of MAMLPolicy.adaptation_returns must be None "
            "or an int in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), n_tasks=0)
    with pytest.raises(
        ValueError,
        match=r"The 'random_state' parameter of MAMLPolicy\.adaptation_returns must "
        r"be None, an instance of 'int', .* Got 1\.5 instead\.",
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), random_state=1.5)
    with pytest.raises(ValueError, match="X has 3 features"):
        navigation_policy.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="The 'inner_lr' parameter of MAMLPolicy"):
        MAMLPolicy(inner_lr=0).fit(PointNavigationTasks())
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        MAMLPolicy().predict([[0.0, 0.0]])
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        MAMLPolicy().adapt(PointNavigationEnv())
    with pytest.raises(TypeError, match="needs a MAMLPolicy as meta_learner"):
        AdaptedPolicy("nope").fit(PointNavigationEnv())
    with pytest.raises(NotFittedError, match="AdaptedPolicy instance is not fitted"):
        AdaptedPolicy(navigation_policy).predict([[0.0, 0.0]])


def test_failed_fit_leaves_the_policy_unfitted():
    """Check that a fit failing after some meta-updates leaves no fitted state."""
    tasks = PointNavigationTasks(max_episode_steps=3)
    calls = []

    def sampler_switching_family(rng):
        calls.append(1)
        # The first env and the first meta-batch are navigation; then a bandit.
        if len(calls) <= 1 + FAST["meta_batch_size"]:
            return tasks(rng)
        return BernoulliBanditEnv()

    policy = MAMLPolicy(**{**FAST, "max_iter": 3})
    with pytest.raises(ValueError, match="differs from the observation_space"):
        policy.fit(sampler_switching_family)
    assert len(calls) > 1 + FAST["meta_batch_size"]  # failed after one update
    assert not [k for k in vars(policy) if k.endswith("_") and k[0] != "_"]
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        policy.predict([[0.0, 0.0]])


def test_errors_for_modules_of_the_wrong_shape():
    """Check that a user module with wrong output size fails early and clearly."""
    tasks = PointNavigationTasks(max_episode_steps=3)
    with pytest.raises(ValueError, match=r"to \(n, 2\) action means; it returned"):
        MAMLPolicy(torch.nn.Linear(2, 5), **FAST).fit(tasks)
    with pytest.raises(ValueError, match="could not process observations"):
        MAMLPolicy(torch.nn.Linear(7, 2), **FAST).fit(tasks)
    with pytest.raises(TypeError, match="callable returning one; got int"):
        MAMLPolicy(lambda: 3, **FAST).fit(tasks)
    module = torch.nn.Linear(2, 2)
    before = module.weight.detach().clone()
    MAMLPolicy(module, **FAST).fit(tasks)
    assert torch.equal(module.weight, before)  # never trained in place
    # Random layers run under vmap too (dropout in meta-training only).
    dropout = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
    )
    policy = MAMLPolicy(dropout, **FAST).fit(tasks)
    obs = np.zeros((3, 2))
    adapted = policy.adapt(PointNavigationEnv(max_episode_steps=3))
    np.testing.assert_array_equal(adapted.predict(obs), adapted.predict(obs))
    assert not policy.module_.training  # fit leaves the policy in eval mode


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_policy_adapts_and_loads_on_cpu(tmp_path):
    """Check that a policy meta-trained on CUDA acts the same on the CPU."""
    import os
    import subprocess
    import sys

    tasks = PointNavigationTasks(max_episode_steps=5)
    policy = MAMLPolicy(**FAST, device="cuda").fit(tasks)
    assert next(policy.module_.parameters()).is_cuda
    adapted = policy.adapt(PointNavigationEnv((0.3, 0.1), 5))
    obs = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 2))
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    np.save(tmp_path / "obs.npy", obs)
    script = (
        "import joblib, numpy as np, torch, warnings;"
        "assert not torch.cuda.is_available();"
        "warnings.simplefilter('ignore');"
        f"d = {str(tmp_path)!r};"
        "a = joblib.load(d + '/adapted.joblib');"
        "np.save(d + '/a.npy', a.predict(np.load(d + '/obs.npy')))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_allclose(
        np.load(tmp_path / "a.npy"), adapted.predict(obs), atol=1e-5
    )
