"""The default tabular body: it starts at nearest centroid and learns from there.

Tabular classifiers centre samples on the pool's mean, L2-normalise them and
scale them (:class:`~sklearn_meta.nn.TabularEmbedding`), so that an untrained
learner *is* :class:`~sklearn_meta.NearestCentroidClassifier`; the gradient
learners' head starts at the support's prototypes for the same reason.
Meta-training at the default budget then beats the baseline on held-out
classes of a problem with many training classes (``benchmarks/tabular.py``
measures the whole suite).
"""

import numpy as np
import pytest

from sklearn_meta import (
    ANILClassifier,
    MAMLClassifier,
    MatchingNetworkClassifier,
    MetaSGDClassifier,
    NearestCentroidClassifier,
    PrototypicalClassifier,
    ReptileClassifier,
)
from sklearn_meta.model_selection import episodic_score
from sklearn_meta.nn import TabularEmbedding


@pytest.fixture(scope="module")
def flat_digits(digits):
    X, y = digits
    return X.reshape(len(X), -1), y


@pytest.fixture(scope="module")
def omniglot_tabular(omniglot_small):
    """150 background and 100 evaluation characters, averaged to 14x14 features."""

    def pooled(X):
        return X.reshape(len(X), 14, 2, 14, 2).mean((2, 4)).reshape(len(X), -1)

    X, y, Xe, ye = omniglot_small
    return pooled(X), y, pooled(Xe), ye


def _paired_difference(clf, baseline, X, y, k_shot, n_episodes=100):
    """Mean accuracy difference from ``baseline`` on the same episodes, in points."""
    scores = [
        episodic_score(
            model,
            X,
            y,
            n_way=5,
            k_shot=k_shot,
            n_query=15,
            n_episodes=n_episodes,
            random_state=0,
        ).scores
        for model in (clf, baseline)
    ]
    difference = scores[0] - scores[1]
    half = 1.96 * difference.std(ddof=1) / np.sqrt(len(difference))
    return 100 * difference.mean(), 100 * half


@pytest.mark.parametrize(
    "learner, params",
    [
        (PrototypicalClassifier, {}),
        (MAMLClassifier, {}),
        (ANILClassifier, {}),
        (MetaSGDClassifier, {}),
        (ReptileClassifier, {}),
        # Cosine attention over a one-shot support: nearest centroid by cosine.
        (MatchingNetworkClassifier, {"fce": False}),
    ],
    ids=lambda p: getattr(p, "__name__", ""),
)
def test_an_untrained_learner_predicts_as_nearest_centroid(
    flat_digits, learner, params
):
    """Check that the default tabular body and head start at the baseline."""
    X, y = flat_digits
    train, test = y < 5, y >= 5
    baseline = NearestCentroidClassifier().fit(X[train], y[train])
    clf = learner(max_epochs=0, random_state=0, **params)
    if hasattr(clf, "adapt_steps"):
        clf.set_params(adapt_steps=0)
    clf.fit(X[train], y[train])
    assert any(isinstance(m, TabularEmbedding) for m in clf.module_.modules())
    rng = np.random.default_rng(0)
    for _ in range(10):
        classes = rng.choice(np.unique(y[test]), 5, replace=False)
        rows = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
        support = np.concatenate([r[:1] for r in rows])
        query = np.concatenate([r[1:16] for r in rows])
        expected = baseline.adapt(X[support], y[support]).predict(X[query])
        got = clf.adapt(X[support], y[support]).predict(X[query])
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("learner", [PrototypicalClassifier, MAMLClassifier])
def test_meta_training_beats_nearest_centroid_on_omniglot_features(
    omniglot_tabular, learner
):
    """Check that the defaults beat the baseline on held-out tabular Omniglot."""
    X, y, X_test, y_test = omniglot_tabular
    baseline = NearestCentroidClassifier().fit(X, y)
    clf = learner(random_state=0).fit(X, y)
    for k_shot in (1, 5):
        difference, half = _paired_difference(clf, baseline, X_test, y_test, k_shot)
        assert difference - half > 2, (k_shot, difference, half)
