"""Tests of Prototypical Networks: the mathematics and that learning happens."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.neighbors import NearestCentroid
from torch import nn

from sklearn_meta import PrototypicalClassifier
from sklearn_meta.metric._prototypical import _compute_prototypes, _squared_euclidean
from sklearn_meta.nn import Conv4, TabularEmbedding

from .._settings import fast
from ._helpers import (
    assert_meta_batch_losses_equal_per_episode,
    assert_short_training_lifts_omniglot,
)


def test_compute_prototypes_equals_class_means_in_any_label_order():
    """Check that prototypes are per-class means whatever the order of labels."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 7, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([[2, 0, 1, 0, 2, 2, 1], [1, 1, 0, 2, 0, 2, 2]])
    protos = _compute_prototypes(z, y, 3)
    for b in range(2):
        for c in range(3):
            torch.testing.assert_close(protos[b, c], z[b, y[b] == c].mean(0))


def test_squared_euclidean_matches_cdist():
    """Check that the batched squared distance equals torch.cdist squared."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, 8, generator=g, dtype=torch.float64)
    b = torch.randn(3, 4, 8, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_squared_euclidean(a, b), torch.cdist(a, b) ** 2)


def test_prototypical_loss_gradient_matches_finite_differences():
    """Check that the episode loss's gradient matches finite differences."""
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y_s = torch.tensor([[0, 0, 1, 1, 2, 2]] * 2)
    y_q = torch.tensor([[0, 1, 2, 1]] * 2)

    def loss(z_s, z_q):
        logits = -_squared_euclidean(z_q, _compute_prototypes(z_s, y_s, 3))
        return nn.functional.cross_entropy(logits.flatten(0, 1), y_q.flatten())

    assert torch.autograd.gradcheck(loss, (z_s, z_q))


def test_identity_embedding_equals_nearest_centroid():
    """Check that with an identity embedding the classifier is NearestCentroid."""
    X, y = load_iris(return_X_y=True)
    clf = PrototypicalClassifier(nn.Identity(), n_way=3, max_epochs=0).fit(X, y)
    reference = NearestCentroid().fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), reference.predict(X))
    support = np.r_[0:5, 50:55, 100:105]
    adapted = clf.adapt(X[support], y[support])
    np.testing.assert_array_equal(
        adapted.predict(X), NearestCentroid().fit(X[support], y[support]).predict(X)
    )


def test_meta_batch_is_one_forward_pass_with_per_episode_losses():
    """Check that a stacked meta-batch gives the same losses as episodes one by one."""
    X, y = load_iris(return_X_y=True)
    clf = PrototypicalClassifier(
        n_way=3, k_shot=2, n_query=3, max_epochs=1, episodes_per_epoch=4, random_state=0
    ).fit(X, y)
    assert_meta_batch_losses_equal_per_episode(clf, X, y)


def test_default_backbones_follow_the_input_shape(digits):
    """Check that images get the conv net, tabular data the centred embedding."""
    X, y = digits
    assert isinstance(fast(PrototypicalClassifier).fit(X, y).module_, Conv4)
    flat = X.reshape(len(X), -1)
    module = fast(PrototypicalClassifier).fit(flat, y).module_
    assert isinstance(module, TabularEmbedding)
    # Centred on the pool's mean, learned from every sample given to fit.
    np.testing.assert_allclose(module.mean.numpy(), flat.mean(0), atol=1e-6)


def test_conv4_gives_64_dimensional_embeddings_on_28px_images():
    """Check that Conv4 embeds 28x28 images in 64 dimensions with 111,936 weights."""
    assert Conv4()(torch.zeros(3, 1, 28, 28)).shape == (3, 64)
    assert sum(p.numel() for p in Conv4().parameters()) == 111_936


def test_train_n_way_sets_the_ways_of_training_episodes(digits):
    """Check that training episodes use train_n_way classes."""
    X, y = digits
    seen = []

    class Spy(PrototypicalClassifier):
        def _episode_losses(self, batch):
            seen.append(batch.n_classes)
            return super()._episode_losses(batch)

    fast(Spy, train_n_way=7).fit(X, y)
    assert set(seen) == {7}
    with pytest.raises(
        ValueError, match=r"n_way=12 is larger than the number of classes"
    ):
        fast(PrototypicalClassifier, train_n_way=12).fit(X, y)


@pytest.mark.slow
def test_prototypical_learns_omniglot_well_above_chance(omniglot_small):
    """Check that short meta-training lifts 5-way 1-shot accuracy on new alphabets."""
    assert_short_training_lifts_omniglot(
        PrototypicalClassifier, omniglot_small, min_accuracy=0.8
    )


@pytest.mark.slow
def test_prototypical_reaches_high_accuracy_on_omniglot(data_home):
    """Check that longer training scores above 0.9 on new Omniglot alphabets."""
    from sklearn_meta.datasets import load_omniglot

    X, y = load_omniglot("background", data_home=data_home, return_X_y=True)
    Xe, ye = load_omniglot("evaluation", data_home=data_home, return_X_y=True)
    clf = PrototypicalClassifier(
        n_way=5,
        k_shot=1,
        n_query=5,
        train_n_way=30,
        max_epochs=5,
        episodes_per_epoch=100,
        random_state=0,
    )
    clf.fit(X, y)
    assert clf.score(Xe, ye) > 0.9
