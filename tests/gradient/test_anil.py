"""ANIL: only the head adapts."""

import torch

from sklearn_meta import (
    ANILClassifier,
)
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast
from ._helpers import image_episodes


def test_anil_adapts_only_the_head(digits):
    """Check that ANIL's inner loop changes the head and leaves the body as it is."""
    X, y = digits
    clf = fast(ANILClassifier, module__hidden_channels=4).fit(X, y)
    batch = image_episodes(3, 3, 1, 2)
    batch = _EpisodeBatch(*(t.float() for t in batch[:4]), n_classes=3)
    batch = batch._replace(
        y_support=batch.y_support.long(), y_query=batch.y_query.long()
    )
    with torch.no_grad():
        fast_weights, _ = clf._adapt_tasks(
            batch.X_support, batch.y_support, batch.X_query, 3, 3, True
        )
    meta = clf._meta_params()
    for name, value in fast_weights.items():
        if name.startswith("body."):
            assert torch.equal(value, meta[name].expand_as(value)), name
    assert not torch.equal(
        fast_weights["head.weight"],
        meta["head.weight"].expand_as(fast_weights["head.weight"]),
    )
