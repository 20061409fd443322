"""Tests of class-disjoint splitters, confidence intervals and episodic scoring."""

import pickle
import re
import warnings
from collections import Counter

import numpy as np
import pytest
import sklearn
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_meta.model_selection import (
    ClassKFold,
    ClassShuffleSplit,
    EpisodicScore,
    episodic_score,
    make_episodic_scorer,
    mean_confidence_interval,
)


class FakeMetaLearner(BaseEstimator):
    """A meta-learner stand-in whose episodic scores are a function of its inputs.

    Episode ``i`` scores ``quality + offset(X) + i * 0.01 - 0.001 * n_way``,
    where ``offset(X)`` is the mean of ``X``, so every argument that reaches
    ``_episodic_scores`` shows in the result.
    """

    def __init__(self, quality=0.5, n_way=5, n_episodes=4):
        self.quality = quality
        self.n_way = n_way
        self.n_episodes = n_episodes

    def fit(self, X, y=None, groups=None):
        """Record the classes, as a fitted meta-learner would."""
        self.classes_ = np.unique(y)
        return self

    def _episodic_scores(
        self,
        X,
        y,
        *,
        groups=None,
        n_way=None,
        k_shot=None,
        n_query=None,
        n_episodes=None,
        random_state=None,
    ):
        n_way = self.n_way if n_way is None else n_way
        n_episodes = self.n_episodes if n_episodes is None else n_episodes
        offset = float(np.mean(X))
        return self.quality + offset + 0.01 * np.arange(n_episodes) - 0.001 * n_way


class SpyMetaLearner(FakeMetaLearner):
    """A fake that records the keyword arguments of its last episodic call."""

    def _episodic_scores(self, X, y, **kwargs):
        self.seen_ = dict(kwargs, n_samples=len(X))
        return np.array([0.5, 0.7])


def make_pool(n_classes=6, n_per_class=4, labels=None):
    """Return a pool ``(X, y)`` with ``n_per_class`` rows of each class."""
    labels = np.arange(n_classes) if labels is None else np.asarray(labels)
    y = np.repeat(labels, n_per_class)
    X = np.arange(2 * len(y), dtype=float).reshape(-1, 2)
    return X, y


# --------------------------------------------------------------------------
# ClassKFold
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle, random_state", [(False, None), (True, 0)])
def test_class_kfold_splits_are_class_disjoint_and_cover_each_class_once(
    shuffle, random_state
):
    """Check that every class is in exactly one test fold and never in train."""
    X, y = make_pool(n_classes=11, n_per_class=3)
    cv = ClassKFold(4, shuffle=shuffle, random_state=random_state)
    test_count = np.zeros(len(y), dtype=int)
    for train, test in cv.split(X, y):
        assert not set(y[train]) & set(y[test])
        assert len(train) + len(test) == len(y)
        test_count[test] += 1
    np.testing.assert_array_equal(test_count, 1)


def test_class_kfold_balances_folds_by_number_of_classes():
    """Check that folds hold n_classes // n_splits classes or one more."""
    # Class sizes differ wildly; the folds still get 3, 3 and 2 classes.
    y = np.repeat(np.arange(8), [1, 1, 1, 1, 1, 1, 1, 30])
    X = np.zeros((len(y), 1))
    sizes = [len(np.unique(y[test])) for _, test in ClassKFold(3).split(X, y)]
    assert sizes == [3, 3, 2]


def test_class_kfold_without_shuffle_deals_sorted_classes_in_blocks():
    """Check that shuffle=False holds out contiguous blocks of sorted labels."""
    X, y = make_pool(labels=[5, 3, 1, 0, 4, 2])
    tests = [np.unique(y[test]).tolist() for _, test in ClassKFold(3).split(X, y)]
    assert tests == [[0, 1], [2, 3], [4, 5]]


def test_class_kfold_is_reproducible_with_random_state():
    """Check that the same random_state gives the same class assignment."""
    X, y = make_pool(n_classes=20)
    splits_a = list(ClassKFold(4, shuffle=True, random_state=3).split(X, y))
    splits_b = list(ClassKFold(4, shuffle=True, random_state=3).split(X, y))
    for (train_a, test_a), (train_b, test_b) in zip(splits_a, splits_b):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


def test_class_kfold_assigns_classes_differently_with_different_seeds():
    """Check that different random states give different, shuffled folds."""
    X, y = make_pool(n_classes=20)

    def classes_of_test_folds(random_state):
        cv = ClassKFold(4, shuffle=True, random_state=random_state)
        return [tuple(np.unique(y[test])) for _, test in cv.split(X, y)]

    assert classes_of_test_folds(0) != classes_of_test_folds(1)
    unshuffled = [tuple(np.unique(y[test])) for _, test in ClassKFold(4).split(X, y)]
    assert classes_of_test_folds(0) != unshuffled


def test_class_kfold_handles_string_labels():
    """Check that string labels split like their integer codes."""
    labels = ["ant", "bee", "cat", "dog", "eel", "fox"]
    X, y_str = make_pool(labels=labels)
    _, y_int = make_pool(n_classes=6)
    cv = ClassKFold(3, shuffle=True, random_state=0)
    for (train_s, test_s), (train_i, test_i) in zip(
        cv.split(X, y_str), cv.split(X, y_int)
    ):
        np.testing.assert_array_equal(train_s, train_i)
        np.testing.assert_array_equal(test_s, test_i)
        assert not set(y_str[train_s]) & set(y_str[test_s])


def test_class_kfold_get_n_splits_and_repr():
    """Check that get_n_splits is n_splits and the repr shows the parameters."""
    cv = ClassKFold(3, shuffle=True, random_state=0)
    assert cv.get_n_splits() == 3
    assert cv.get_n_splits(np.zeros((9, 1)), np.arange(9)) == 3
    assert repr(cv) == "ClassKFold(n_splits=3, random_state=0, shuffle=True)"


def test_class_kfold_raises_when_n_splits_exceeds_n_classes():
    """Check that fewer classes than folds raise an error naming both counts."""
    X, y = make_pool(n_classes=3)
    msg = (
        "n_splits=5 is larger than the number of classes in y (3). Lower n_splits "
        "or pass data with at least 5 classes."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        next(ClassKFold(5).split(X, y))


def test_class_kfold_raises_without_y():
    """Check that splitting without y raises a clear error."""
    X, _ = make_pool()
    with pytest.raises(ValueError, match=r"ClassKFold splits by the classes in y, so"):
        next(ClassKFold(2).split(X))


def test_class_kfold_raises_for_continuous_y():
    """Check that continuous targets in y are refused as labels."""
    X = np.zeros((6, 1))
    y = np.linspace(0.1, 0.9, 6)
    with pytest.raises(
        ValueError,
        match=r"ClassKFold needs class labels in y; got a target of type 'continuous'",
    ):
        next(ClassKFold(2).split(X, y))


def test_class_kfold_validates_its_parameters_like_kfold():
    """Check that bad constructor arguments raise sklearn's KFold errors."""
    with pytest.raises(ValueError, match=r"n_splits=2 or more, got n_splits=1"):
        ClassKFold(1)
    with pytest.raises(ValueError, match=r"Setting a random_state has no effect"):
        ClassKFold(3, random_state=0)


def test_class_kfold_warns_that_groups_are_ignored():
    """Check that passing groups warns and does not change the folds."""
    X, y = make_pool()
    groups = np.arange(len(y)) % 2
    with pytest.warns(UserWarning, match=r"ClassKFold ignores groups .*GroupKFold"):
        with_groups = list(ClassKFold(3).split(X, y, groups))
    without_groups = list(ClassKFold(3).split(X, y))
    for (train_a, test_a), (train_b, test_b) in zip(with_groups, without_groups):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


def test_class_kfold_works_in_cross_val_score_with_an_ordinary_classifier():
    """Check that ClassKFold is a valid cv; a plain classifier scores 0 on it."""
    rng = np.random.default_rng(0)
    X, y = make_pool(n_classes=6, n_per_class=10)
    X = X + rng.normal(size=X.shape)
    scores = cross_val_score(NearestCentroid(), X, y, cv=ClassKFold(3))
    # Test classes are never seen in fit, so no prediction can be right.
    np.testing.assert_array_equal(scores, 0.0)


# --------------------------------------------------------------------------
# ClassShuffleSplit
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, n_test, n_train",
    [
        ({}, 2, 8),  # default test_size=0.2 of 10 classes
        ({"test_size": 3}, 3, 7),
        ({"test_size": 0.25}, 3, 7),  # the fraction is rounded up
        ({"train_size": 4}, 6, 4),
        ({"test_size": 2, "train_size": 5}, 2, 5),
    ],
)
def test_class_shuffle_split_counts_classes(kwargs, n_test, n_train):
    """Check that test_size and train_size count classes, not samples."""
    X, y = make_pool(n_classes=10, n_per_class=3)
    cv = ClassShuffleSplit(n_splits=4, random_state=0, **kwargs)
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits() == 4
    for train, test in splits:
        assert len(np.unique(y[test])) == n_test
        assert len(np.unique(y[train])) == n_train
        assert not set(y[train]) & set(y[test])
        # whole classes: all three rows of every chosen class
        assert len(test) == 3 * n_test


def test_class_shuffle_split_is_reproducible_and_seed_dependent():
    """Check that random_state fixes the classes drawn and changing it moves them."""
    X, y = make_pool(n_classes=20)

    def classes_of_test_folds(random_state):
        cv = ClassShuffleSplit(3, test_size=5, random_state=random_state)
        return [tuple(np.unique(y[test])) for _, test in cv.split(X, y)]

    assert classes_of_test_folds(0) == classes_of_test_folds(0)
    assert classes_of_test_folds(0) != classes_of_test_folds(1)


def test_class_shuffle_split_handles_string_labels():
    """Check that string labels are held out as whole classes."""
    X, y = make_pool(labels=["ant", "bee", "cat", "dog", "eel"])
    for train, test in ClassShuffleSplit(3, test_size=2, random_state=0).split(X, y):
        assert len(set(y[test])) == 2
        assert not set(y[train]) & set(y[test])


def test_class_shuffle_split_raises_when_test_size_exceeds_n_classes():
    """Check that a test_size above the number of classes is refused."""
    X, y = make_pool(n_classes=3)
    with pytest.raises(
        ValueError,
        match=(
            r"ClassShuffleSplit counts test_size and train_size in classes, and y "
            r"has 3\. test_size=5 should be .* number of classes 3"
        ),
    ):
        next(ClassShuffleSplit(test_size=5).split(X, y))


def test_class_shuffle_split_raises_without_y():
    """Check that splitting without y raises a clear error."""
    X, _ = make_pool()
    with pytest.raises(ValueError, match=r"ClassShuffleSplit splits by the classes"):
        next(ClassShuffleSplit().split(X))


def test_class_shuffle_split_warns_that_groups_are_ignored():
    """Check that passing groups warns."""
    X, y = make_pool()
    with pytest.warns(UserWarning, match=r"ClassShuffleSplit ignores groups"):
        list(ClassShuffleSplit(2, random_state=0).split(X, y, np.zeros(len(y))))


# --------------------------------------------------------------------------
# mean_confidence_interval
# --------------------------------------------------------------------------


def test_mean_confidence_interval_matches_hand_computation():
    """Check that the half-width equals z * s / sqrt(n) with ddof=1."""
    scores = [0.9, 1.0, 0.8, 1.0, 0.7]
    mean, half_width = mean_confidence_interval(scores)
    n = len(scores)
    hand_mean = sum(scores) / n
    hand_var = sum((s - hand_mean) ** 2 for s in scores) / (n - 1)
    assert mean == pytest.approx(hand_mean)
    assert half_width == pytest.approx(1.959963984540054 * hand_var**0.5 / n**0.5)


def test_mean_confidence_interval_uses_the_requested_confidence():
    """Check that the half-width scales with the normal quantile."""
    scores = np.linspace(0, 1, 50)
    _, half_95 = mean_confidence_interval(scores)
    _, half_99 = mean_confidence_interval(scores, confidence=0.99)
    assert half_99 / half_95 == pytest.approx(norm.ppf(0.995) / norm.ppf(0.975))


def test_mean_confidence_interval_of_one_score_has_nan_width():
    """Check that a single score gives its value and an unknown (NaN) width."""
    mean, half_width = mean_confidence_interval([0.5])
    assert mean == 0.5
    assert np.isnan(half_width)


def test_mean_confidence_interval_raises_for_empty_scores():
    """Check that empty scores are refused."""
    with pytest.raises(ValueError, match=r"scores is empty; a mean and a confidence"):
        mean_confidence_interval([])


def test_mean_confidence_interval_raises_for_2d_scores():
    """Check that 2-D scores (not one per episode) are refused."""
    with pytest.raises(
        ValueError,
        match=r"scores must be a 1-D array .* got an array of shape \(2, 2\)",
    ):
        mean_confidence_interval([[0.1, 0.2], [0.3, 0.4]])


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, float("nan"), True, "95%"])
def test_mean_confidence_interval_raises_for_bad_confidence(confidence):
    """Check that a confidence level outside (0, 1) is refused."""
    msg = (
        "The 'confidence' parameter of mean_confidence_interval must be a float in "
        f"the range (0.0, 1.0). Got {confidence!r} instead."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        mean_confidence_interval([0.1, 0.2], confidence)


# --------------------------------------------------------------------------
# EpisodicScore and episodic_score
# --------------------------------------------------------------------------


def test_episodic_score_reports_mean_interval_and_scores():
    """Check that the mean and interval match the episode scores by hand."""
    X, y = make_pool()
    learner = FakeMetaLearner(quality=0.2, n_episodes=4).fit(X, y)
    result = episodic_score(learner, np.zeros_like(X), y)
    expected = 0.2 + 0.01 * np.arange(4) - 0.005
    np.testing.assert_allclose(result.scores, expected)
    assert result.mean == pytest.approx(expected.mean())
    hand = norm.ppf(0.975) * np.std(expected, ddof=1) / 2
    assert result.ci95 == pytest.approx(hand)
    assert result.confidence == 0.95
    assert result.n_episodes == 4


def test_episodic_score_passes_episode_settings_to_the_estimator():
    """Check that every episode argument reaches _episodic_scores unchanged."""
    X, y = make_pool()
    learner = SpyMetaLearner().fit(X, y)
    groups = np.arange(len(y)) % 3
    episodic_score(
        learner,
        X,
        y,
        groups=groups,
        n_way=3,
        k_shot=2,
        n_query=1,
        n_episodes=7,
        random_state=11,
    )
    seen = learner.seen_
    assert seen.pop("groups") is groups
    assert seen == {
        "n_way": 3,
        "k_shot": 2,
        "n_query": 1,
        "n_episodes": 7,
        "random_state": 11,
        "n_samples": len(X),
    }


def test_episodic_score_result_is_read_only_and_formats():
    """Check that the scores cannot be changed and the text forms of the result."""
    X, y = make_pool()
    result = episodic_score(
        FakeMetaLearner(quality=0.9).fit(X, y), np.zeros(X.shape), y
    )
    with pytest.raises(ValueError, match="read-only"):
        result.scores[0] = 0.0
    assert str(result) == f"{result.mean:.4f} ± {result.ci95:.4f}"
    text = f"{100 * result.mean:.2f} ± {100 * result.ci95:.2f} %"
    assert result.format(percent=True) == text
    assert result.format(digits=1) == f"{result.mean:.1f} ± {result.ci95:.1f}"
    assert repr(result).startswith("EpisodicScore(mean=0.9")
    assert "n_episodes=4" in repr(result)
    mean, ci95, _, confidence = result
    assert (mean, ci95, confidence) == (result.mean, result.ci95, 0.95)
    assert isinstance(result, EpisodicScore)


def test_episodic_score_transforms_x_through_a_pipeline():
    """Check that a pipeline's transformers run before its meta-learner scores."""
    X, y = make_pool()
    pipe = make_pipeline(
        FunctionTransformer(lambda X: X * 0 + 1.0), FakeMetaLearner(quality=0.0)
    ).fit(X, y)
    result = episodic_score(pipe, X, y, n_way=2)
    # offset(X) is 1.0 after the transformer, instead of the mean of X.
    np.testing.assert_allclose(result.scores, 1.0 + 0.01 * np.arange(4) - 0.002)


def test_episodic_score_raises_for_an_estimator_that_is_not_a_meta_learner():
    """Check that an estimator that is not a meta-learner raises a TypeError."""
    X, y = make_pool()
    msg = (
        "NearestCentroid is not a meta-learner: it has no _episodic_scores "
        "method, so it cannot be scored on episodes."
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        episodic_score(NearestCentroid().fit(X, y), X, y)


def test_episodic_score_raises_before_fit():
    """Check that an unfitted meta-learner raises sklearn's NotFittedError."""
    X, y = make_pool()
    with pytest.raises(NotFittedError, match=r"FakeMetaLearner instance is not fitted"):
        episodic_score(FakeMetaLearner(), X, y)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("n_way", 1, "an int in the range [2, inf) or None"),
        ("k_shot", 0, "an int in the range [1, inf) or None"),
        ("n_query", 2.5, "an int in the range [1, inf) or None"),
        ("n_episodes", 0, "an int in the range [1, inf) or None"),
    ],
)
def test_episodic_score_validates_episode_arguments(name, value, expected):
    """Check that episode arguments get sklearn's wording before any scoring."""
    X, y = make_pool()
    learner = SpyMetaLearner().fit(X, y)
    msg = f"The '{name}' parameter of episodic_score must be {expected}. Got {value!r}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        episodic_score(learner, X, y, **{name: value})
    assert not hasattr(learner, "seen_")


def test_episodic_score_raises_for_bad_confidence():
    """Check that confidence is validated before any episode is scored."""
    X, y = make_pool()
    learner = SpyMetaLearner().fit(X, y)
    with pytest.raises(
        ValueError, match=r"The 'confidence' parameter of episodic_score must be"
    ):
        episodic_score(learner, X, y, confidence=95)
    assert not hasattr(learner, "seen_")


# --------------------------------------------------------------------------
# make_episodic_scorer
# --------------------------------------------------------------------------


def test_episodic_scorer_returns_the_mean_episodic_score():
    """Check that the scorer returns the mean of episodic_score as a float."""
    X, y = make_pool()
    learner = FakeMetaLearner(quality=0.3).fit(X, y)
    scorer = make_episodic_scorer(n_way=2, n_episodes=3)
    expected = episodic_score(learner, X, y, n_way=2, n_episodes=3, random_state=0)
    assert scorer(learner, X, y) == pytest.approx(expected.mean)
    assert isinstance(scorer(learner, X, y), float)
    assert make_episodic_scorer(return_ci=True)(learner, X, y) == {
        "mean": pytest.approx(episodic_score(learner, X, y).mean),
        "ci95": pytest.approx(episodic_score(learner, X, y).ci95),
    }


def test_episodic_scorer_passes_its_settings_and_groups():
    """Check that the scorer's settings, its random_state and groups arrive."""
    X, y = make_pool()
    learner = SpyMetaLearner().fit(X, y)
    groups = np.zeros(len(y))
    scorer = make_episodic_scorer(n_way=4, k_shot=3, n_query=2, n_episodes=9)
    scorer(learner, X, y, groups=groups)
    assert learner.seen_["groups"] is groups
    assert learner.seen_["random_state"] == 0
    assert (learner.seen_["n_way"], learner.seen_["k_shot"]) == (4, 3)
    assert (learner.seen_["n_query"], learner.seen_["n_episodes"]) == (2, 9)


def test_episodic_scorer_raises_for_unknown_metadata():
    """Check that the scorer refuses metadata other than groups."""
    X, y = make_pool()
    learner = FakeMetaLearner().fit(X, y)
    msg = "The episodic scorer accepts groups as its only metadata; got sample_weight."
    with pytest.raises(TypeError, match=re.escape(msg)):
        make_episodic_scorer()(learner, X, y, sample_weight=np.ones(len(y)))


def test_episodic_scorer_raises_for_an_ordinary_estimator():
    """Check that scoring a non-meta-learner raises the TypeError."""
    X, y = make_pool()
    with pytest.raises(TypeError, match=r"DummyClassifier is not a meta-learner"):
        make_episodic_scorer()(DummyClassifier().fit(X, y), X, y)


def test_episodic_scorer_pickles_and_has_a_readable_repr():
    """Check that the scorer survives pickling, for n_jobs > 1."""
    scorer = make_episodic_scorer(n_way=5, k_shot=1, random_state=3, return_ci=True)
    assert repr(scorer) == (
        "make_episodic_scorer(n_way=5, k_shot=1, random_state=3, return_ci=True)"
    )
    assert repr(make_episodic_scorer()) == "make_episodic_scorer()"
    clone = pickle.loads(pickle.dumps(scorer))
    assert repr(clone) == repr(scorer)
    X, y = make_pool()
    learner = FakeMetaLearner().fit(X, y)
    assert clone(learner, X, y) == scorer(learner, X, y)


def test_episodic_scorer_works_in_cross_val_score_with_class_kfold():
    """Check that the scorer works as scoring= in cross_val_score with ClassKFold."""
    X, y = make_pool(n_classes=6)
    scores = cross_val_score(
        FakeMetaLearner(quality=0.4),
        X,
        y,
        cv=ClassKFold(3),
        scoring=make_episodic_scorer(n_way=2, n_episodes=5),
    )
    expected = [
        0.4 + X[test].mean() + 0.02 - 0.002 for _, test in ClassKFold(3).split(X, y)
    ]
    np.testing.assert_allclose(scores, expected)


def test_grid_search_with_episodic_scorer_picks_the_best_parameter():
    """Check that GridSearchCV with ClassKFold picks the best-scoring quality."""
    X, y = make_pool(n_classes=9)
    search = GridSearchCV(
        FakeMetaLearner(),
        {"quality": [0.1, 0.9, 0.5]},
        scoring=make_episodic_scorer(),
        cv=ClassKFold(3),
    ).fit(X, y)
    assert search.best_params_ == {"quality": 0.9}
    assert search.cv_results_["rank_test_score"].tolist() == [3, 1, 2]


def test_grid_search_with_interval_scorer_refits_on_the_mean():
    """Check that the dict scorer gives two metrics and refit='mean' works."""
    X, y = make_pool(n_classes=9)
    search = GridSearchCV(
        FakeMetaLearner(),
        {"quality": [0.1, 0.9]},
        scoring=make_episodic_scorer(return_ci=True),
        refit="mean",
        cv=ClassKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_params_ == {"quality": 0.9}
    assert search.best_estimator_.quality == 0.9
    assert np.all(search.cv_results_["mean_test_ci95"] > 0)


def test_episodic_scorer_receives_groups_through_metadata_routing():
    """Check that with metadata routing on, the scorer gets each fold's groups."""
    X, y = make_pool(n_classes=6)
    groups = np.repeat(np.arange(6), 4)
    seen = []

    class Recorder(FakeMetaLearner):
        def _episodic_scores(self, X, y, *, groups=None, **kwargs):
            seen.append(groups)
            return np.array([1.0, 1.0])

    with sklearn.config_context(enable_metadata_routing=True):
        learner = Recorder().set_fit_request(groups=True)
        cross_validate(
            learner,
            X,
            y,
            cv=GroupKFold(3),
            scoring=make_episodic_scorer(),
            params={"groups": groups},
        )
    assert len(seen) == 3
    for fold_groups, (_, test) in zip(seen, GroupKFold(3).split(X, y, groups)):
        np.testing.assert_array_equal(fold_groups, groups[test])


# --------------------------------------------------------------------------
# Scoring tasks, and scores on classes seen in fit
# --------------------------------------------------------------------------


def _digits_tabular():
    from sklearn_meta.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return X.reshape(len(X), -1), y


def test_score_and_episodic_score_take_tasks_as_fit_does():
    """Check that scoring tasks equals adapting to each and scoring its queries."""
    from sklearn.preprocessing import StandardScaler

    from sklearn_meta import PrototypicalClassifier, adapt
    from sklearn_meta.tasks import sample_tasks

    X, y = _digits_tabular()
    learner = PrototypicalClassifier(
        n_way=3, n_query=3, max_epochs=1, episodes_per_epoch=10, random_state=0
    )
    tasks = sample_tasks(
        X[y >= 5], y[y >= 5], n_tasks=6, n_way=3, k_shot=1, n_query=3, random_state=0
    )
    learner.fit(X[y < 5], y[y < 5])
    by_hand = [
        learner.adapt(t.X_support, t.y_support).score(t.X_query, t.y_query)
        for t in tasks
    ]
    result = episodic_score(learner, tasks)
    np.testing.assert_allclose(result.scores, by_hand)
    assert learner.score(tasks) == pytest.approx(np.mean(by_hand))
    assert make_episodic_scorer()(learner, iter(tasks)) == pytest.approx(
        np.mean(by_hand)
    )
    # A pipeline transforms each task's samples first.
    pipe = make_pipeline(StandardScaler(), clone(learner)).fit(X[y < 5], y[y < 5])
    by_hand = [
        adapt(pipe, t.X_support, t.y_support).score(t.X_query, t.y_query) for t in tasks
    ]
    np.testing.assert_allclose(episodic_score(pipe, tasks).scores, by_hand)
    with pytest.raises(ValueError, match=r"takes the tasks alone.*y, k_shot must"):
        episodic_score(learner, tasks, y[:3], k_shot=2)


def test_regressors_score_tasks():
    """Check a regressor's score on tasks against its adapted R² by hand."""
    from sklearn_meta import MAMLRegressor
    from sklearn_meta.datasets import make_sinusoid_tasks

    learner = MAMLRegressor(max_epochs=1, episodes_per_epoch=20, random_state=0)
    learner.fit(make_sinusoid_tasks(n_tasks=20, random_state=0))
    tasks = make_sinusoid_tasks(n_tasks=4, random_state=1)
    by_hand = [
        learner.adapt(t.X_support, t.y_support).score(t.X_query, t.y_query)
        for t in tasks
    ]
    assert learner.score(tasks) == pytest.approx(np.mean(by_hand), rel=1e-5)


def test_scoring_classes_seen_in_fit_warns_and_points_to_class_kfold():
    """Check the warning of stratified cross-validation, and its absence."""
    from sklearn_meta import PrototypicalClassifier
    from sklearn_meta.model_selection import SeenClassesWarning

    X, y = _digits_tabular()
    learner = PrototypicalClassifier(
        n_way=3, max_epochs=1, episodes_per_epoch=5, n_eval_episodes=5, random_state=0
    )
    with pytest.warns(SeenClassesWarning, match=r"100% of the classes.*ClassKFold"):
        cross_val_score(learner, X, y, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeenClassesWarning)
        cross_val_score(learner, X, y, cv=ClassKFold(2))
        learner.fit(X[y < 5], y[y < 5]).score(X[y >= 5], y[y >= 5])


# --------------------------------------------------------------------------
# The evaluation protocol: eval_n_way, eval_k_shot, eval_n_query
# --------------------------------------------------------------------------


@pytest.fixture
def sampled_episodes(monkeypatch):
    """Record ``(n_way, k_shot, n_query)`` of every episode sampler built."""
    from sklearn_meta.tasks import EpisodeSampler

    seen = []
    build = EpisodeSampler._from_codes.__func__

    def spy(cls, codes, n_way, k_shot, n_query, **kwargs):
        seen.append((n_way, k_shot, n_query))
        return build(cls, codes, n_way, k_shot, n_query, **kwargs)

    monkeypatch.setattr(EpisodeSampler, "_from_codes", classmethod(spy))
    return seen


def _proto(**params):
    from sklearn_meta import PrototypicalClassifier

    defaults = dict(
        n_way=3,
        k_shot=3,
        n_query=4,
        max_epochs=1,
        episodes_per_epoch=5,
        n_eval_episodes=10,
        random_state=0,
    )
    return PrototypicalClassifier(**{**defaults, **params})


def test_score_and_meta_validation_use_the_evaluation_settings(sampled_episodes):
    """Check that training draws (3, 3, 4) and evaluation (2, 1, 2) episodes."""
    X, y = _digits_tabular()
    learner = _proto(eval_n_way=2, eval_k_shot=1, eval_n_query=2, train_split=0.3)
    learner.fit(X[y < 8], y[y < 8])
    assert sampled_episodes == [(3, 3, 4), (2, 1, 2)]  # training, meta-validation
    scored = learner.score(X[y >= 8], y[y >= 8])
    assert sampled_episodes[-1] == (2, 1, 2)
    # The same weights scored under the plain settings of that protocol agree.
    same = clone(learner).set_params(n_way=2, k_shot=1, n_query=2)
    same.__dict__.update({k: v for k, v in vars(learner).items() if k.endswith("_")})
    same.set_params(eval_n_way=None, eval_k_shot=None, eval_n_query=None)
    assert same.score(X[y >= 8], y[y >= 8]) == scored
    assert episodic_score(learner, X[y >= 8], y[y >= 8]).mean == pytest.approx(scored)


def test_a_search_over_k_shot_scores_every_candidate_on_one_protocol(
    sampled_episodes,
):
    """Check that GridSearchCV over k_shot scores all candidates at eval_k_shot."""
    X, y = _digits_tabular()
    search = GridSearchCV(
        _proto(eval_k_shot=1), {"k_shot": [1, 5]}, cv=ClassKFold(2), refit=False
    ).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2
    # 2 candidates x 2 folds: the 5-shot candidate trained 5-shot twice, the
    # 1-shot one 1-shot twice, and all four test folds were scored 1-shot.
    assert Counter(sampled_episodes) == {(3, 5, 4): 2, (3, 1, 4): 2 + 4}


def test_regressors_score_with_their_evaluation_settings(sampled_episodes):
    """Check eval_k_shot and eval_n_query of a regressor's score."""
    from sklearn_meta import MAMLRegressor

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(8), 12)
    X = rng.normal(size=(len(groups), 2)).astype(np.float32)
    y = X.sum(1) * (1 + groups % 3)
    learner = MAMLRegressor(
        k_shot=5,
        n_query=5,
        eval_k_shot=2,
        eval_n_query=7,
        max_epochs=1,
        episodes_per_epoch=10,
        meta_batch_size=5,
        n_eval_episodes=5,
        random_state=0,
    ).fit(X, y, groups=groups)
    learner.score(X, y, groups=groups)
    assert sampled_episodes == [(1, 5, 5), (1, 2, 7)]


def test_mann_refuses_evaluation_ways_beyond_its_label_outputs():
    """Check that eval_n_way > max_classes is refused at fit, naming both."""
    from sklearn_meta import MANNClassifier

    X, y = _digits_tabular()
    with pytest.raises(ValueError, match="eval_n_way=6 is larger than max_classes=5"):
        MANNClassifier(n_way=3, max_classes=5, eval_n_way=6).fit(X, y)
