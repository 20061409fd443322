"""Tests of Siamese Networks: the pair losses, the two faces, learning."""

import re

import joblib
import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_meta.metric._siamese import (
    SiameseClassifier,
    _balanced_pair_weights,
    _bce_pair_loss,
    _contrastive_pair_loss,
    _euclidean,
    _SiameseNetwork,
    _weighted_l1_logits,
)
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast
from ._helpers import assert_adapts_to_digits_named_in_words, identity_learner


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _hand_episode():
    """One 3-way episode, 1 or 2 shots, with 2-feature samples used as embeddings."""
    X_support = torch.tensor(
        [[[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [0.5, 0.5]]], dtype=torch.float32
    )
    y_support = torch.tensor([[0, 1, 2, 0]])
    X_query = torch.tensor([[[0.2, 0.9], [1.5, 0.0], [-1.0, 2.0]]], dtype=torch.float32)
    y_query = torch.tensor([[0, 1, 2]])
    return _EpisodeBatch(X_support, y_support, X_query, y_query, 3)


def _hand_balanced_mean(losses, same):
    """Mean over same pairs and over different pairs, averaged (the balanced loss)."""
    return 0.5 * losses[same].mean() + 0.5 * losses[~same].mean()


@pytest.fixture(scope="module")
def fitted(digits):
    """A learner meta-trained on digits 0-6."""
    X, y = digits
    return fast(SiameseClassifier).fit(X[y < 7], y[y < 7])


@pytest.mark.parametrize("loss", ["bce", "contrastive"])
def test_predict_pairs_is_symmetric_and_in_the_unit_interval(digits, loss):
    """Check that pair similarities are symmetric and lie in (0, 1)."""
    X, y = digits
    clf = fast(SiameseClassifier, loss=loss).fit(X[y < 7], y[y < 7])
    A, B = X[:40], X[40:80]
    ab, ba = clf.predict_pairs(A, B), clf.predict_pairs(B, A)
    assert ab.shape == (40,) and ab.dtype == np.float64
    np.testing.assert_array_equal(ab, ba)
    assert ((ab > 0) & (ab < 1)).all()


def test_one_shot_rule_is_the_most_similar_support_example(fitted, digits):
    """Check that predict_proba is a softmax of per-class max log similarities."""
    X, y = digits
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (7, 8, 9)])
    query = np.flatnonzero(y >= 7)[100:130]
    adapted = fitted.adapt(X[support], y[support])
    similarity = np.stack(
        [
            fitted.predict_pairs(X[query], np.repeat(X[[s]], len(query), 0))
            for s in support
        ],
        axis=1,
    )
    scores = np.stack(
        [np.log(similarity[:, y[support] == c]).max(1) for c in (7, 8, 9)], axis=1
    )
    expected = np.exp(scores - scores.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(adapted.predict_proba(X[query]), expected, atol=1e-5)
    np.testing.assert_array_equal(
        adapted.predict(X[query]), np.array([7, 8, 9])[scores.argmax(1)]
    )


def test_bce_episode_loss_weights_same_and_different_pairs_equally():
    """Check that the BCE episode loss equals a hand-computed balanced BCE."""
    clf = identity_learner(SiameseClassifier, 2, loss="bce")
    with torch.no_grad():
        clf.module_.head.weight.copy_(torch.tensor([[-1.5, 0.7]]))
        clf.module_.head.bias.fill_(0.4)
    batch = _hand_episode()
    losses, accuracy = clf._episode_losses(batch)

    X_s, X_q = batch.X_support[0].numpy(), batch.X_query[0].numpy()
    logits = np.abs(X_q[:, None] - X_s[None]) @ np.array([-1.5, 0.7]) + 0.4
    same = batch.y_query[0].numpy()[:, None] == batch.y_support[0].numpy()[None]
    p = _sigmoid(logits)
    bce = -np.where(same, np.log(p), np.log(1 - p))
    assert same.sum() == 4 and (~same).sum() == 8  # unbalanced pairs
    np.testing.assert_allclose(
        losses.detach().numpy(), [_hand_balanced_mean(bce, same)], rtol=1e-5
    )
    nearest = batch.y_support[0].numpy()[logits.argmax(1)]
    np.testing.assert_allclose(
        accuracy.numpy(), [(nearest == batch.y_query[0].numpy()).mean()]
    )


def test_contrastive_episode_loss_matches_hand_computation():
    """Check that the contrastive episode loss equals a hand computation."""
    clf = identity_learner(SiameseClassifier, 2, loss="contrastive", margin=1.3)
    batch = _hand_episode()
    losses, accuracy = clf._episode_losses(batch)

    X_s, X_q = batch.X_support[0].numpy(), batch.X_query[0].numpy()
    d = np.linalg.norm(X_q[:, None] - X_s[None], axis=-1)
    same = batch.y_query[0].numpy()[:, None] == batch.y_support[0].numpy()[None]
    per_pair = 0.5 * np.where(same, d**2, np.maximum(0, 1.3 - d) ** 2)
    np.testing.assert_allclose(
        losses.detach().numpy(), [_hand_balanced_mean(per_pair, same)], rtol=1e-5
    )
    nearest = batch.y_support[0].numpy()[d.argmin(1)]
    np.testing.assert_allclose(
        accuracy.numpy(), [(nearest == batch.y_query[0].numpy()).mean()]
    )


def test_balanced_weights_sum_to_one_half_per_kind():
    """Check that same and different pairs each carry half of every episode."""
    same = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)) < 0.2
    weights = _balanced_pair_weights(same.double())
    torch.testing.assert_close(
        (weights * same).sum((1, 2)), torch.full((3,), 0.5, dtype=torch.float64)
    )
    torch.testing.assert_close(
        (weights * ~same).sum((1, 2)), torch.full((3,), 0.5, dtype=torch.float64)
    )


def test_pair_losses_gradients_match_finite_differences():
    """Check that both pair losses' gradients, head included, match gradcheck."""
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z_q = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(1, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(1, generator=g, dtype=torch.float64, requires_grad=True)
    y_s = torch.tensor([[0, 0, 1, 1, 2, 2]] * 2)
    same = torch.tensor([[0, 1, 2, 1]] * 2)[:, :, None] == y_s[:, None, :]

    def bce(z_s, z_q, weight, bias):
        head = nn.Linear(3, 1).double()
        del head.weight, head.bias
        head.weight, head.bias = weight, bias
        logits = _weighted_l1_logits(z_q[:, :, None], z_s[:, None], head)
        return _bce_pair_loss(logits, same)

    def contrastive(z_s, z_q):
        distances = _euclidean(z_q[:, :, None], z_s[:, None])
        return _contrastive_pair_loss(distances, same, 2.0)

    assert torch.autograd.gradcheck(bce, (z_s, z_q, weight, bias))
    assert torch.autograd.gradcheck(contrastive, (z_s, z_q))


def test_head_is_part_of_the_module_and_meta_learned(digits):
    """Check that the weighted L1 head joins a user's module and is trained."""
    X, y = digits
    X = X.reshape(len(X), -1)
    backbone = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8))
    untrained = fast(SiameseClassifier, backbone, loss="bce", max_epochs=0).fit(X, y)
    trained = fast(SiameseClassifier, backbone, loss="bce").fit(X, y)
    module = trained.module_
    assert isinstance(module, _SiameseNetwork)
    assert module.backbone is not backbone  # the user's module is not trained
    assert module.head.in_features == 8
    assert "head.weight" in module.state_dict()  # saved by checkpoints
    assert not torch.equal(untrained.module_.head.weight, module.head.weight)


def _mean_pair_similarities(clf, X, y):
    """Mean predict_pairs of 300 same-class and of ~300 different-class pairs."""
    same = np.flatnonzero(y[:-1] == y[1:])[:300]
    i, j = np.random.default_rng(0).integers(len(y), size=(2, 300))
    different = y[i] != y[j]
    return (
        clf.predict_pairs(X[same], X[same + 1]).mean(),
        clf.predict_pairs(X[i[different]], X[j[different]]).mean(),
    )


def test_siamese_learns_omniglot_verification_and_one_shot(omniglot_small):
    """Check that short training separates new characters' pairs and lifts accuracy."""
    X, y, Xe, ye = omniglot_small
    params = dict(
        n_way=5,
        k_shot=1,
        n_query=3,
        train_n_way=20,  # 60 same and 1,140 different pairs per episode
        episodes_per_epoch=60,
        lr=3e-4,
        n_eval_episodes=100,
        random_state=0,
    )
    untrained = SiameseClassifier(**params, max_epochs=0).fit(X[:400], y[:400])
    trained = SiameseClassifier(**params, max_epochs=1).fit(X[:2000], y[:2000])
    before, after = untrained.score(Xe, ye), trained.score(Xe, ye)
    assert after > 0.6, after  # chance is 0.2
    assert after > before + 0.03, (before, after)

    same_before, different_before = _mean_pair_similarities(untrained, Xe, ye)
    same_after, different_after = _mean_pair_similarities(trained, Xe, ye)
    gap_before, gap_after = same_before - different_before, same_after - different_after
    assert gap_after > 0.02 and gap_after > gap_before, (gap_before, gap_after)
    batch_losses = trained.history_[-1, "batches", :, "train_loss"]
    assert np.mean(batch_losses[-10:]) < np.mean(batch_losses[:10])


def test_contrastive_loss_trains(digits):
    """Check that the contrastive option lowers its loss and beats chance."""
    X, y = digits
    params = dict(loss="contrastive", train_n_way=7, max_epochs=3)
    clf = fast(SiameseClassifier, **params).fit(X[y < 7], y[y < 7])
    losses = clf.history_[:, "train_loss"]
    assert losses[-1] < losses[0] / 2
    assert clf.history_[-1, "train_acc"] > clf.history_[0, "train_acc"]
    assert clf.score(X[y >= 7], y[y >= 7]) > 0.4  # chance is 1/3


def test_round_trips_through_joblib(fitted, digits, tmp_path):
    """Check that a pickled learner and its adapted classifier predict the same."""
    X, y = digits
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (7, 8, 9)])
    adapted = fitted.adapt(X[support], y[support])
    joblib.dump((fitted, adapted), tmp_path / "siamese.joblib")
    learner, adapted_loaded = joblib.load(tmp_path / "siamese.joblib")
    np.testing.assert_array_equal(learner.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(
        learner.predict_pairs(X[:50], X[50:100]),
        fitted.predict_pairs(X[:50], X[50:100]),
    )
    np.testing.assert_array_equal(
        adapted_loaded.predict_proba(X[y >= 7]), adapted.predict_proba(X[y >= 7])
    )


def test_adapt_to_string_labels_and_more_ways_than_training(fitted, digits):
    """Check that a 3-way learner adapts to 5 string-labelled ways above chance."""
    assert_adapts_to_digits_named_in_words(fitted, digits)


# The order of a set's options in sklearn's message follows string hashing.
_LOSS_OPTIONS = SiameseClassifier._parameter_constraints["loss"][0]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss": "hinge"}, f"must be {_LOSS_OPTIONS}. Got 'hinge' instead."),
        (
            {"margin": 0.0},
            "must be a float in the range (0.0, inf). Got 0.0 instead.",
        ),
    ],
)
def test_invalid_siamese_parameters_are_rejected(digits, params, message):
    """Check that an unknown loss and a non-positive margin are refused."""
    X, y = digits
    (name,) = params
    expected = f"The '{name}' parameter of SiameseClassifier {message}"
    with pytest.raises(InvalidParameterError, match=re.escape(expected)):
        fast(SiameseClassifier, **params).fit(X, y)


def test_predict_pairs_rejects_different_row_counts(fitted, digits):
    """Check that predict_pairs refuses X1 and X2 of different lengths."""
    X, _ = digits
    expected = (
        "X1 has 3 samples but X2 has 4; predict_pairs compares row i of X1 with "
        "row i of X2. Pass arrays with the same number of rows."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        fitted.predict_pairs(X[:3], X[:4])


def test_predict_pairs_requires_a_fitted_learner(digits):
    """Check that predict_pairs before fit raises sklearn's NotFittedError."""
    from sklearn.exceptions import NotFittedError

    X, _ = digits
    with pytest.raises(NotFittedError):
        SiameseClassifier().predict_pairs(X[:2], X[2:4])


def test_auto_loss_is_the_papers_on_images_and_contrastive_on_tabular_data(digits):
    """Check which pair loss loss="auto" trains with, and that it is kept."""
    X, y = digits
    images = fast(SiameseClassifier, max_epochs=0).fit(X, y)
    assert images.module_.loss == "bce"
    tabular = fast(SiameseClassifier, max_epochs=0).fit(X.reshape(len(X), -1), y)
    assert tabular.module_.loss == "contrastive"
    # The parameter stays "auto" (clone-safe); the fitted network records the loss.
    assert tabular.get_params()["loss"] == "auto"
