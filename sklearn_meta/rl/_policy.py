"""Stochastic policies over gymnasium spaces, written for stateless fast weights.

A policy is the user's network (or an MLP) mapping observations to action
logits (``Discrete`` actions: a categorical policy) or to the mean of a
Gaussian with a learned, state-independent log standard deviation (``Box``
actions), as in the MAML paper. Every function takes the parameters as a
dict, so it runs under :func:`torch.func.functional_call` and
:func:`torch.func.vmap` with one set of fast weights per task.
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from .._functional import _functional_call

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _PolicyModel(nn.Module):
    """Everything meta-learned: the network and (Gaussian) the log std."""

    def __init__(self, net: nn.Module, action_space: spaces.Space, init_std: float):
        super().__init__()
        self.net = net
        self.discrete = isinstance(action_space, spaces.Discrete)
        if not self.discrete:
            self.log_std = nn.Parameter(
                torch.full(action_space.shape, math.log(init_std))
            )

    def outputs(self, params: dict, obs: torch.Tensor) -> torch.Tensor:
        """Logits or Gaussian means ``(..., n_out)`` of observations ``(..., d)``."""
        net = {k[4:]: v for k, v in params.items() if k.startswith("net.")}
        shape = obs.shape[:-1]
        out = _functional_call(self.net, net, (obs.reshape(-1, obs.shape[-1]),))
        return out.reshape(*shape, out.shape[-1])

    def log_prob(
        self, params: dict, obs: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Log-probability ``(n,)`` of actions given observations ``(n, d)``."""
        out = self.outputs(params, obs)
        if self.discrete:
            return F.log_softmax(out, -1).gather(-1, actions[..., None])[..., 0]
        log_std = params["log_std"]
        z = (actions - out) * torch.exp(-log_std)
        return (-0.5 * z**2 - log_std - _LOG_SQRT_2PI).sum(-1)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Draw the randomness of ``shape`` actions, for :meth:`sample`.

        Uniforms on [0, 1) in float64 ``shape`` (Discrete), or standard
        normals ``(*shape, action_dim)`` (Box), on the generator's device.
        """
        device = generator.device
        if self.discrete:
            return torch.rand(
                shape, generator=generator, device=device, dtype=torch.float64
            )
        return torch.randn(
            (*shape, *self.log_std.shape), generator=generator, device=device
        )

    def sample(
        self,
        outputs: torch.Tensor,
        log_std: torch.Tensor | None,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Actions from outputs ``(B, E, n_out)`` and :meth:`noise` ``(B, E, ...)``.

        A categorical draw by the inverse of the distribution function (the
        first action whose cumulative probability exceeds the uniform, in
        float64), or the mean plus the noise scaled by ``exp(log_std)``
        (``log_std`` ``(B, d)``). Actions are a function of the noise, so the
        noise's generator alone decides them.
        """
        if self.discrete:
            cdf = torch.softmax(outputs.double(), -1).cumsum(-1)
            picks = (cdf <= noise[..., None]).sum(-1)
            return picks.clamp_max(outputs.shape[-1] - 1)
        return outputs + torch.exp(log_std)[:, None, :] * noise


def _check_spaces(env: gymnasium.Env, owner: str) -> None:
    """Raise a ValueError if a policy cannot act in ``env``'s spaces."""
    obs_space, action_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(
            f"{owner} needs a 1-D Box observation space; the environment has "
            f"{obs_space}. Flatten its observations, for instance with "
            "gymnasium.wrappers.FlattenObservation."
        )
    box = isinstance(action_space, spaces.Box) and len(action_space.shape) == 1
    if not (box or isinstance(action_space, spaces.Discrete)):
        raise ValueError(
            f"{owner} needs a Discrete action space (categorical policy) or a 1-D "
            f"Box action space (Gaussian policy); the environment has "
            f"{action_space}."
        )


def _to_env_actions(action_space: spaces.Space, actions: torch.Tensor) -> np.ndarray:
    """Actions as an environment takes them: shifted arms, or clipped to bounds.

    A Gaussian action is clipped to the space's bounds only on its way to
    the environment; its log-probability is that of the unclipped sample.
    """
    actions = actions.detach().cpu().numpy()
    if isinstance(action_space, spaces.Discrete):
        return (actions + action_space.start).astype(np.int64).reshape(-1)
    actions = np.clip(actions, action_space.low, action_space.high)
    return actions.astype(action_space.dtype).reshape(-1, *action_space.shape)
