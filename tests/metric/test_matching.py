"""Tests of Matching Networks: the attention, full context embeddings, learning."""

import re

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_meta import MatchingNetworkClassifier
from sklearn_meta._data import _samples
from sklearn_meta._episodes import _PoolEpisodes
from sklearn_meta.metric._matching import (
    _cosine_attention,
    _FullContextEmbedding,
    _label_mixture_log_proba,
)
from sklearn_meta.tasks import EpisodeSampler

from .._settings import fast
from ._helpers import (
    assert_adapts_to_digits_named_in_words,
    assert_meta_batch_losses_equal_per_episode,
    assert_short_training_lifts_omniglot,
    identity_learner,
)


def _fce_parameters(module):
    return {
        name: p.detach().clone()
        for name, p in module.named_parameters()
        if not name.startswith("backbone.")
    }


@pytest.fixture(scope="module")
def fce_fitted(digits):
    """A learner with full context embeddings meta-trained on digits 0-6."""
    X, y = digits
    return fast(MatchingNetworkClassifier, fce=True, fce_steps=2).fit(
        X[y < 7], y[y < 7]
    )


def test_attention_is_a_distribution_peaked_on_the_own_class():
    """Check that attention is non-negative, sums to one, and favours the own class."""
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(2, 6, 4, generator=g)
    z_q = torch.randn(2, 5, 4, generator=g)
    attention = _cosine_attention(z_q, z_s, 0.5)
    assert attention.shape == (2, 5, 6)
    assert (attention >= 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 5))

    # An identity embedding of one-hot-like samples: each query matches one support.
    X_support = np.eye(4, dtype=np.float32)
    X_query = X_support[[2, 0, 3, 1]] + 0.1
    adapted = identity_learner(MatchingNetworkClassifier, 4).adapt(
        X_support, np.arange(4)
    )
    summary = adapted.state_["summary"]
    attention = adapted.learner_._attention(summary, torch.from_numpy(X_query)[None])
    attention = attention[0]
    torch.testing.assert_close(attention.sum(-1), torch.ones(4))
    np.testing.assert_array_equal(attention.argmax(-1).numpy(), [2, 0, 3, 1])
    assert (attention.max(-1).values > 0.9).all()


def test_probabilities_are_the_attention_weighted_sum_of_support_labels():
    """Check that predict_proba equals a hand-computed attention over the support."""
    X_support = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    y_support = np.array(["b", "a", "a"])
    X_query = np.array([[2.0, 1.0], [-1.0, 3.0]], dtype=np.float32)
    adapted = identity_learner(MatchingNetworkClassifier, 2, temperature=0.5).adapt(
        X_support, y_support
    )

    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    cosine = unit(X_query.astype(float)) @ unit(X_support.astype(float)).T
    weights = np.exp(cosine / 0.5)
    weights /= weights.sum(1, keepdims=True)
    expected = np.c_[weights[:, 1] + weights[:, 2], weights[:, 0]]  # classes a, b
    np.testing.assert_array_equal(adapted.classes_, ["a", "b"])
    np.testing.assert_allclose(adapted.predict_proba(X_query), expected, rtol=1e-5)


def test_label_mixture_log_proba_is_finite_for_classes_without_weight():
    """Check that a class no support example carries gets a finite logit."""
    attention = torch.tensor([[[0.25, 0.75]]])
    one_hot = torch.tensor([[[1, 0, 0], [0, 1, 0]]])
    log_proba = _label_mixture_log_proba(attention, one_hot)
    torch.testing.assert_close(log_proba[..., :2].exp(), attention)
    assert torch.isfinite(log_proba).all() and log_proba[0, 0, 2] < -80


def test_matching_loss_gradient_matches_finite_differences():
    """Check that the episode loss's gradient matches finite differences."""
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    one_hot = nn.functional.one_hot(torch.tensor([[0, 0, 1, 1, 2, 2]] * 2), 3)
    y_q = torch.tensor([[0, 1, 2, 1]] * 2)

    def loss(z_s, z_q):
        attention = _cosine_attention(z_q, z_s, 0.3)
        log_proba = _label_mixture_log_proba(attention, one_hot)
        return nn.functional.nll_loss(log_proba.flatten(0, 1), y_q.flatten())

    assert torch.autograd.gradcheck(loss, (z_s, z_q))


def test_full_context_embedding_gradient_matches_finite_differences():
    """Check that gradients through the FCE LSTMs match finite differences."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fce = _FullContextEmbedding(nn.Identity(), dim=3, steps=2).double()
    g = torch.Generator().manual_seed(1)
    z_s = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    one_hot = nn.functional.one_hot(torch.tensor([[0, 0, 1, 1]] * 2), 2)
    y_q = torch.tensor([[0, 1, 1]] * 2)

    def loss(z_s, z_q):
        support = fce.embed_support(z_s)
        attention = _cosine_attention(fce.embed_query(z_q, support), support, 0.5)
        log_proba = _label_mixture_log_proba(attention, one_hot)
        return nn.functional.nll_loss(log_proba.flatten(0, 1), y_q.flatten())

    assert torch.autograd.gradcheck(loss, (z_s, z_q))


@pytest.mark.parametrize("fce", [False, True])
def test_meta_batch_losses_equal_per_episode_losses(fce):
    """Check that a stacked meta-batch gives the same losses as episodes one by one."""
    X, y = load_iris(return_X_y=True)
    clf = MatchingNetworkClassifier(
        n_way=3,
        k_shot=2,
        n_query=3,
        fce=fce,
        max_epochs=1,
        episodes_per_epoch=4,
        random_state=0,
    ).fit(X, y)
    assert_meta_batch_losses_equal_per_episode(clf, X, y)


@pytest.mark.slow
def test_matching_learns_omniglot_well_above_chance(omniglot_small):
    """Check that short meta-training lifts 5-way 1-shot accuracy on new alphabets."""
    assert_short_training_lifts_omniglot(
        MatchingNetworkClassifier, omniglot_small, min_accuracy=0.75
    )


def test_fce_wraps_any_backbone_and_its_lstms_are_meta_learned(digits):
    """Check that FCE LSTMs join a user's module, receive gradients and change."""
    X, y = digits
    X = X.reshape(len(X), -1)
    backbone = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8))
    params = dict(fce=True, fce_steps=3)
    untrained = fast(MatchingNetworkClassifier, backbone, **params, max_epochs=0)
    trained = fast(MatchingNetworkClassifier, backbone, **params)
    untrained.fit(X, y), trained.fit(X, y)

    module = trained.module_
    assert isinstance(module, _FullContextEmbedding) and module.steps == 3
    assert module.backbone is not backbone  # the user's module is not trained
    assert module.support_lstm.hidden_size == 8
    assert {p.data_ptr() for p in module.parameters()} == {
        p.data_ptr()
        for group in trained.optimizer_.param_groups
        for p in group["params"]
    }
    assert "support_lstm.weight_hh_l0" in module.state_dict()  # saved by checkpoints
    before, after = _fce_parameters(untrained.module_), _fce_parameters(module)
    assert before.keys() == after.keys() and len(after) > 0
    assert all(not torch.equal(before[k], after[k]) for k in before)

    pool = _PoolEpisodes(_samples(X), EpisodeSampler(y, 3, 1, 3), torch.device("cpu"))
    module.zero_grad()
    losses, _ = trained._episode_losses(pool.gather(*pool.sampler.sample(2, 0)))
    losses.mean().backward()
    for name, p in module.named_parameters():
        if not name.startswith("backbone."):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fce_is_seeded_and_leaves_the_global_rng_alone(digits):
    """Check that the FCE initialisation follows random_state only."""
    X, y = digits
    params = dict(fce=True, max_epochs=0)
    state = torch.random.get_rng_state()
    a = fast(MatchingNetworkClassifier, **params).fit(X, y)
    torch.testing.assert_close(torch.random.get_rng_state(), state)
    b = fast(MatchingNetworkClassifier, **params).fit(X, y)
    c = fast(MatchingNetworkClassifier, **params, random_state=1).fit(X, y)
    first, second, other = (_fce_parameters(m.module_) for m in (a, b, c))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_fce_round_trips_through_joblib(fce_fitted, digits, tmp_path):
    """Check that a pickled FCE learner and its adapted classifier predict the same."""
    X, y = digits
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (7, 8, 9)])
    adapted = fce_fitted.adapt(X[support], y[support])
    joblib.dump((fce_fitted, adapted), tmp_path / "matching.joblib")
    learner, adapted_loaded = joblib.load(tmp_path / "matching.joblib")
    np.testing.assert_array_equal(learner.predict_proba(X), fce_fitted.predict_proba(X))
    np.testing.assert_array_equal(
        adapted_loaded.predict_proba(X[y >= 7]), adapted.predict_proba(X[y >= 7])
    )
    assert learner.score(X[y >= 7], y[y >= 7]) == fce_fitted.score(X[y >= 7], y[y >= 7])


@pytest.mark.parametrize("fce", [False, True])
def test_adapt_to_string_labels_and_more_ways_than_training(digits, fce):
    """Check that a 3-way learner adapts to 5 string-labelled ways above chance."""
    X, y = digits
    clf = fast(MatchingNetworkClassifier, fce=fce).fit(X[y < 5], y[y < 5])
    assert_adapts_to_digits_named_in_words(clf, digits)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"fce_steps": 0}, "must be an int in the range [1, inf). Got 0 instead."),
        (
            {"temperature": 0.0},
            "must be a float in the range (0.0, inf). Got 0.0 instead.",
        ),
        (
            {"fce": "yes"},
            "must be an instance of 'bool' or an instance of 'numpy.bool'. "
            "Got 'yes' instead.",
        ),
    ],
)
def test_invalid_matching_parameters_are_rejected(digits, params, message):
    """Check that invalid fce_steps, temperature and fce raise sklearn's messages."""
    X, y = digits
    (name,) = params
    expected = f"The '{name}' parameter of MatchingNetworkClassifier {message}"
    with pytest.raises(InvalidParameterError, match=re.escape(expected)):
        fast(MatchingNetworkClassifier, **params).fit(X, y)
