"""Tests of the advantages and the linear baseline (sklearn_meta/rl/_rollout.py)."""

import numpy as np
import pytest
import torch

from sklearn_meta.rl._rollout import _advantages, _linear_baseline, _Rollouts


def _rollouts(rewards, mask, obs=None):
    rewards = torch.tensor(rewards, dtype=torch.float32)[None]
    mask = torch.tensor(mask, dtype=torch.float32)[None]
    if obs is None:
        obs = torch.zeros((*rewards.shape, 1))
    return _Rollouts(obs, torch.zeros(rewards.shape), rewards, mask)


def test_advantages_without_baseline_are_discounted_returns_to_go():
    """Check that advantages are hand-computed discounted returns-to-go."""
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
    """Check that GAE (lambda < 1) with the linear baseline matches a loop over time."""
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
    """Check that the linear baseline is NumPy's least squares fit, task by task."""
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
