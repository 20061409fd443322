"""Tests of the policy's gradients (sklearn_meta/rl/_policy.py).

The log-densities of ``_policy.py`` under the policy losses of ``_base.py``:
Monte Carlo means of the inner gradient against closed forms.
"""

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from sklearn_meta.rl import BernoulliBanditEnv, MAMLPolicy, make_vector_env
from sklearn_meta.rl._rollout import _linear_baseline


def _independent_rollouts(policy, env, n_rep, n_episodes, horizon):
    """Episodes of ``n_rep`` copies of a task, one independent estimate each.

    Returns the per-task parameters, which require gradients, and the episodes.
    """
    vector_env = make_vector_env([env] * n_rep, copies=n_episodes)
    fast = {
        k: v.clone().requires_grad_()
        for k, v in policy._task_params(n_rep, False).items()
    }
    return fast, policy._collect(vector_env, n_rep, fast, 0, horizon)


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
    fast, rollouts = _independent_rollouts(policy, env, n_rep, n_episodes, horizon)
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
    """Check that the Gaussian policy gradient is unbiased under action clipping.

    With ``a ~ N(mu, sigma²)`` clipped to ``[l, h]`` by the environment, the
    expected reward ``J = E[clip(a)]`` has a closed form; its gradient in the
    mean and in the log std is
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
    fast, rollouts = _independent_rollouts(policy, _ClippedLine(), n_rep, n_episodes, 1)
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
