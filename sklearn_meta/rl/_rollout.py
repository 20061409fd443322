"""Experience for policy gradients: episodes, the linear baseline, advantages.

Episodes of a meta-batch of tasks are collected together from one vector
environment (``n_tasks * n_episodes`` sub-environments) and kept as padded
tensors with a task and an episode dimension, ``(B, E, T, ...)``, with a mask
of the steps taken, so everything downstream (the baseline fit, the
advantages, the policy-gradient loss) is one batched computation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

#: Ridge penalty of the linear baseline, raised tenfold while the fit is not
#: finite (as in Duan et al., 2016).
_BASELINE_RIDGE = 1e-5
#: Scale of the time feature of the linear baseline (Duan et al., 2016).
_TIME_SCALE = 100.0


class _Rollouts(NamedTuple):
    """Padded episodes of a meta-batch of tasks.

    ``obs`` ``(B, E, T, obs_dim)``; ``actions`` ``(B, E, T, action_dim)``
    (Box) or ``(B, E, T)`` (Discrete); ``rewards`` and ``mask`` ``(B, E, T)``,
    the mask 1 for steps taken and 0 after an episode ended.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor

    def returns(self) -> torch.Tensor:
        """Undiscounted return of each episode ``(B, E)``."""
        return self.rewards.sum(-1)


def _collect(
    vector_env,
    n_tasks: int,
    act: Callable[[torch.Tensor], torch.Tensor],
    to_env: Callable[[torch.Tensor], np.ndarray],
    max_steps: int,
    seed: int | list[int],
    device: torch.device,
) -> _Rollouts:
    """Run one episode in every sub-environment of ``vector_env`` at once.

    Sub-environment ``i * E + j`` is episode ``j`` of task ``i``. ``act``
    maps observations ``(B, E, obs_dim)`` to actions ``(B, E, ...)``;
    ``to_env`` turns those into what the environment takes. Collection stops
    when every episode has ended or after ``max_steps`` steps; a
    sub-environment that ended is still stepped (vector environments step all
    together) but its steps are masked.
    """
    n_envs = vector_env.num_envs
    obs, _ = vector_env.reset(seed=seed)
    alive = np.ones(n_envs, dtype=bool)
    all_obs, all_actions, all_rewards, all_alive = [], [], [], []
    for _ in range(max_steps):
        obs_t = torch.as_tensor(
            np.asarray(obs, dtype=np.float32).reshape(n_envs, -1), device=device
        ).view(n_tasks, n_envs // n_tasks, -1)
        actions = act(obs_t)
        obs, reward, terminated, truncated, _ = vector_env.step(to_env(actions))
        all_obs.append(obs_t)
        all_actions.append(actions)
        all_rewards.append(np.where(alive, reward, 0.0))
        all_alive.append(alive)
        alive = alive & ~(np.asarray(terminated) | np.asarray(truncated))
        if not alive.any():
            break

    def stack(arrays):
        t = torch.as_tensor(np.stack(arrays, axis=1), dtype=torch.float32)
        return t.to(device).view(n_tasks, n_envs // n_tasks, -1)

    return _Rollouts(
        torch.stack(all_obs, dim=2),
        torch.stack(all_actions, dim=2),
        stack(all_rewards),
        stack(all_alive),
    )


def _discount_matrix(n_steps: int, factor: float, dtype, device) -> torch.Tensor:
    """Upper-triangular ``(T, T)`` matrix of ``factor ** (j - i)`` for ``j >= i``.

    ``x @ M.T`` is the discounted sum of ``x`` from each step to the end.
    """
    t = torch.arange(n_steps, device=device, dtype=dtype)
    power = t[None, :] - t[:, None]
    return torch.where(power >= 0, factor ** power.clamp_min(0), 0.0)


def _linear_baseline(
    obs: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Value estimates of a linear baseline fitted to each task's returns.

    The features of Duan et al. (2016), the baseline of the MAML paper:
    ``(o, o², t, t², t³, 1)`` with ``o`` the observation clipped to
    ``[-10, 10]`` and ``t`` the time step over 100. One ridge regression per
    task (``obs`` ``(B, E, T, d)``, ``mask`` and ``targets`` ``(B, E, T)``),
    solved for all tasks in one batched call; returns ``(B, E, T)``.
    """
    obs = obs.double().clamp(-10, 10)
    n_tasks, n_episodes, n_steps, _ = obs.shape
    t = torch.arange(n_steps, dtype=torch.float64, device=obs.device) / _TIME_SCALE
    t = t.view(1, 1, -1, 1).expand(n_tasks, n_episodes, -1, 1)
    features = torch.cat(
        [obs, obs**2, t, t**2, t**3, torch.ones_like(t)], dim=-1
    ).reshape(n_tasks, n_episodes * n_steps, -1)
    weight = mask.double().reshape(n_tasks, -1, 1)
    X = features * weight
    y = (targets.double() * mask).reshape(n_tasks, -1, 1)
    gram = X.transpose(1, 2) @ X
    rhs = X.transpose(1, 2) @ y
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    ridge = _BASELINE_RIDGE
    for _ in range(5):
        coef = torch.linalg.solve(gram + ridge * eye, rhs)
        if torch.isfinite(coef).all():
            break
        ridge *= 10
    return (features @ coef).view(n_tasks, n_episodes, n_steps) * mask


def _advantages(
    rollouts: _Rollouts,
    *,
    discount: float,
    gae_lambda: float,
    baseline: str | None,
    normalize: bool,
) -> torch.Tensor:
    """Advantages ``(B, E, T)`` of every step, with a baseline fitted per task.

    Generalised advantage estimation (Schulman et al., 2016):
    ``A_t = sum_k (gamma lambda)^k delta_{t+k}`` with the TD error
    ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)`` and ``V`` the linear
    baseline fitted to the discounted returns-to-go (zero without a
    baseline), ``V = 0`` after an episode ends. ``lambda = 1`` gives
    returns-to-go minus the baseline, the estimator of the MAML paper. With
    ``normalize``, each task's advantages are standardised over its steps.
    """
    rewards, mask = rollouts.rewards.double(), rollouts.mask.double()
    n_steps = rewards.shape[-1]
    trace = _discount_matrix(
        n_steps, discount * gae_lambda, rewards.dtype, rewards.device
    )
    if baseline is None:
        values = torch.zeros_like(rewards)
    else:
        # With lambda = 1 (the default) the returns' matrix is the trace's.
        gamma = (
            trace
            if gae_lambda == 1
            else _discount_matrix(n_steps, discount, rewards.dtype, rewards.device)
        )
        values = _linear_baseline(rollouts.obs, mask, rewards @ gamma.T)
    next_values = torch.nn.functional.pad(values[..., 1:], (0, 1))
    deltas = (rewards + discount * next_values - values) * mask
    advantages = (deltas @ trace.T) * mask
    if normalize:
        n = mask.sum((1, 2), keepdim=True)
        mean = advantages.sum((1, 2), keepdim=True) / n
        var = (((advantages - mean) * mask) ** 2).sum((1, 2), keepdim=True) / n
        advantages = (advantages - mean) / (var.sqrt() + 1e-8) * mask
    return advantages.float()
