"""Meta-SGD: learned per-parameter step sizes."""

import torch

from sklearn_meta import (
    MetaSGDClassifier,
)
from sklearn_meta.nn import MLP
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast
from ._helpers import image_episodes


def test_meta_sgd_step_sizes_are_learned(digits):
    """Check that Meta-SGD's step sizes get gradients, drive adaptation and change."""
    X, y = digits
    X = X.reshape(len(X), -1)
    # Two inner steps: with the head equal for every class, the body's
    # gradient at the first step is zero (so are its step sizes' gradients).
    # The MLP body: its head starts at the meta-learned (shared) weights.
    clf = fast(
        MetaSGDClassifier,
        inner_lr=0.1,
        inner_steps=2,
        module=MLP,
        module__in_features=64,
    )
    clf.set_params(max_epochs=0).fit(X, y)
    batch = image_episodes(2, 3, 1, 2)
    batch = _EpisodeBatch(
        batch.X_support.flatten(2)[..., :64].float().expand(-1, -1, 64),
        batch.y_support,
        batch.X_query.flatten(2)[..., :64].float().expand(-1, -1, 64),
        batch.y_query,
        n_classes=3,
    )
    losses, _ = clf._episode_losses(batch)
    losses.mean().backward()
    for name, lr in clf.module_.lrs.items():
        assert lr.grad is not None and lr.grad.abs().sum() > 0, name
    # The step sizes drive the inner loop: zero steps, zero adaptation.
    with torch.no_grad():
        for lr in clf.module_.lrs.values():
            lr.zero_()
    fast_weights, _ = clf._adapt_tasks(
        batch.X_support, batch.y_support, batch.X_query, 3, 1, True
    )
    assert torch.equal(fast_weights["head.weight"][0, 0], clf.module_.head.weight)
    # And fit moves them away from inner_lr.
    clf.set_params(max_epochs=1).fit(X, y)
    values = torch.cat([v.flatten() for v in clf.module_.lrs.values()])
    assert not torch.allclose(values, torch.full_like(values, 0.1))
