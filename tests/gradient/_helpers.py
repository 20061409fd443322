"""Episodes, sine-wave pools and meta-gradients shared by the gradient tests."""

import numpy as np
import torch

from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.tasks import _EpisodeBatch


def image_episodes(n_tasks, n_way, k_shot, n_query, seed=0):
    """Random float64 8x8 image episodes, each task with its own label order."""
    g = torch.Generator().manual_seed(seed)
    X_s = torch.rand(n_tasks, n_way * k_shot, 1, 8, 8, generator=g, dtype=torch.double)
    X_q = torch.rand(n_tasks, n_way * n_query, 1, 8, 8, generator=g, dtype=torch.double)
    # Each task gets its own label order.
    perms = torch.stack([torch.randperm(n_way, generator=g) for _ in range(n_tasks)])
    y_s = perms.repeat_interleave(k_shot, 1)
    y_q = perms.repeat_interleave(n_query, 1)
    return _EpisodeBatch(X_s, y_s, X_q, y_q, n_classes=n_way)


def vectorised_meta_gradient(learner, batch):
    """The meta-gradient of the mean episode loss, one tensor per parameter."""
    learner.module_.zero_grad(set_to_none=True)
    losses, _ = learner._episode_losses(batch)
    losses.mean().backward()
    return [
        torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for p in learner.module_.parameters()
    ]


def sinusoid_mse(reg, tasks):
    errors = [
        np.mean(
            (reg.adapt(t.X_support, t.y_support).predict(t.X_query) - t.y_query) ** 2
        )
        for t in tasks
    ]
    return float(np.mean(errors))


def sinusoid_pool(n_tasks=40, seed=0):
    """Sinusoid tasks stacked as a pool with one group per task."""
    tasks = make_sinusoid_tasks(
        n_tasks=n_tasks, k_support=10, k_query=10, random_state=seed
    )
    X = np.concatenate([np.r_[t.X_support, t.X_query] for t in tasks])
    y = np.concatenate([np.r_[t.y_support, t.y_query] for t in tasks])
    return X, y, np.repeat(np.arange(n_tasks), 20)
