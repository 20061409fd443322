"""The default tabular body: it starts at nearest centroid and learns from there.

Tabular classifiers centre samples on the pool's mean, L2-normalise them and
scale them (:class:`~sklearn_meta.nn.TabularEmbedding`), so that an untrained
learner *is* :class:`~sklearn_meta.NearestCentroidClassifier`; the gradient
learners' head starts at the support's prototypes for the same reason.
Meta-training at the default budget then beats the baseline on held-out
classes where the training classes teach something, and cross-validation
over classes chooses the body's capacity (``benchmarks/tabular.py`` and
``benchmarks/tabular_selection.py`` measure the whole suite).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from sklearn_meta import (
    ANILClassifier,
    MAMLClassifier,
    MatchingNetworkClassifier,
    MetaSGDClassifier,
    NearestCentroidClassifier,
    PrototypicalClassifier,
    ReptileClassifier,
    SiameseClassifier,
)
from sklearn_meta.model_selection import (
    ClassKFold,
    FewClassesWarning,
    episodic_score,
)
from sklearn_meta.nn import TabularEmbedding
from sklearn_meta.tasks import sample_tasks


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
        # The distance to a one-shot support sample: nearest centroid.
        (SiameseClassifier, {}),
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


@pytest.fixture(scope="module")
def synthetic_pool():
    """The tabular suite's synthetic problem: 100 classes, 30 noise features."""
    X, y = make_classification(
        n_samples=4000,
        n_features=40,
        n_informative=10,
        n_redundant=0,
        n_classes=100,
        n_clusters_per_class=1,
        class_sep=1.5,
        random_state=0,
    )
    X = X.astype(np.float32)
    train = y < 64
    return X[train], y[train], X[~train], y[~train]


@pytest.mark.parametrize("learner", [PrototypicalClassifier, SiameseClassifier])
def test_the_defaults_beat_nearest_centroid_on_the_synthetic_pool(
    synthetic_pool, learner
):
    """Check that meta-training at the defaults learns to weigh the features."""
    X, y, X_test, y_test = synthetic_pool
    baseline = NearestCentroidClassifier().fit(X, y)
    clf = learner(random_state=0).fit(X, y)
    for k_shot in (1, 5):
        difference, half = _paired_difference(clf, baseline, X_test, y_test, k_shot)
        assert difference - half > 0.3, (k_shot, difference, half)


def test_reptile_trains_on_the_queries_and_beats_nearest_centroid(synthetic_pool):
    """Check that Reptile at its defaults learns on the synthetic pool.

    Its head starts at the support's prototypes, so a support scores itself
    perfectly; trained on the query rows instead, the inner loop teaches
    the body which features separate classes (trained on the support, it
    ended 1.5 points below the baseline).
    """
    X, y, X_test, y_test = synthetic_pool
    baseline = NearestCentroidClassifier().fit(X, y)
    clf = ReptileClassifier(random_state=0).fit(X, y)
    for k_shot, margin in ((1, 0.3), (5, 0.0)):
        difference, half = _paired_difference(clf, baseline, X_test, y_test, k_shot)
        assert difference - half > margin, (k_shot, difference, half)


def test_with_five_training_classes_the_defaults_stay_near_the_baseline(flat_digits):
    """Check that MAML trained on digits 0-4 stays within a point of the baseline.

    Nothing learned from five classes carries over to 5-9; a learner that
    starts at nearest centroid loses little by training there.
    """
    X, y = flat_digits
    train = y < 5
    baseline = NearestCentroidClassifier().fit(X[train], y[train])
    with pytest.warns(FewClassesWarning):
        clf = MAMLClassifier(random_state=0).fit(X[train], y[train])
    for k_shot in (1, 5):
        difference, _ = _paired_difference(clf, baseline, X[~train], y[~train], k_shot)
        assert difference > -1.5, (k_shot, difference)


def test_a_pool_of_as_many_classes_as_ways_warns(flat_digits):
    """Check the warning that every training episode holds the same classes.

    It counts the classes left for training after ``train_split``, and is
    silent when the episodes can vary their classes.
    """
    X, y = flat_digits
    short = dict(max_epochs=1, episodes_per_epoch=4, random_state=0)
    with pytest.warns(
        FewClassesWarning,
        match=r"The training pool has 5 classes and the training episodes are "
        r"5-way: every episode holds the same classes.*lower n_way",
    ):
        PrototypicalClassifier(**short).fit(X[y < 5], y[y < 5])
    with pytest.warns(FewClassesWarning, match="has 5 classes"):
        PrototypicalClassifier(train_split=0.5, **short).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewClassesWarning)
        PrototypicalClassifier(**short).fit(X[y < 6], y[y < 6])
        PrototypicalClassifier(n_way=3, **short).fit(X[y < 5], y[y < 5])


def test_class_cv_chooses_the_residual_where_it_pays(omniglot_tabular):
    """Check that GridSearchCV over classes picks the residual on Omniglot features.

    And that the chosen learner beats nearest centroid by a margin on new
    characters (the default, without the residual, is close to it there).
    """
    X, y, X_test, y_test = omniglot_tabular
    search = GridSearchCV(
        PrototypicalClassifier(random_state=0),
        {"module__hidden_features": [0, 64]},
        cv=ClassKFold(3),
    ).fit(X, y)
    assert search.best_params_ == {"module__hidden_features": 64}
    baseline = NearestCentroidClassifier().fit(X, y)
    difference, half = _paired_difference(
        search.best_estimator_, baseline, X_test, y_test, 1
    )
    assert difference - half > 5, (difference, half)


def test_the_body_is_centred_on_every_sample_of_a_list_of_tasks(flat_digits):
    """Check the mean of tasks given as a list, and no centring from an iterator."""
    X, y = flat_digits
    tasks = sample_tasks(X, y, n_tasks=6, n_way=3, k_shot=2, n_query=4, random_state=0)
    clf = PrototypicalClassifier(n_way=3, k_shot=2, n_query=4, max_epochs=0)
    every = np.concatenate([np.concatenate([t.X_support, t.X_query]) for t in tasks])
    mean = clf.fit(tasks).module_.mean.numpy()
    np.testing.assert_allclose(mean, every.mean(0), atol=1e-6)
    # An iterator cannot be read twice for its mean: the body is not centred.
    assert not clf.fit(iter(tasks)).module_.mean.any()
