"""Tests of the one validation path (``sklearn_meta/_validation.py``)."""

import re

import numpy as np
import pytest
from torch import nn

import sklearn_meta._validation as validation
from sklearn_meta import (
    FineTuneClassifier,
    MAMLClassifier,
    MAMLRegressor,
    MANNClassifier,
    PrototypicalClassifier,
    Task,
)
from sklearn_meta._random import Stream
from sklearn_meta.nn import MLP
from sklearn_meta.tasks import EpisodeSampler

from ._settings import fast


def _regressor(**overrides):
    """A fast MAML regressor for pools of 8 samples per task."""
    return fast(MAMLRegressor, k_shot=3, n_query=3, n_eval_episodes=5, **overrides)


def _tabular(n_classes=6, per_class=8, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    X = rng.normal(size=(len(y), n_features)) + y[:, None]
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted_classifier():
    X, y = _tabular()
    return fast(PrototypicalClassifier).fit(X, y)


@pytest.fixture(scope="module")
def fitted_regressor():
    X, _ = _tabular()
    groups = np.repeat(np.arange(6), 8)
    y = X.sum(1)
    return _regressor().fit(X, y, groups=groups)


def test_groups_length_error_has_one_wording_in_fit_and_score(fitted_classifier):
    """Check that fit and score word a groups-length mismatch the same way."""
    X, y = _tabular()
    msg = re.escape(
        f"groups has 3 entries but X has {len(X)} samples; give one group per sample."
    )
    with pytest.raises(ValueError, match=msg):
        fast(PrototypicalClassifier).fit(X, y, groups=[0, 1, 2])
    with pytest.raises(ValueError, match=msg):
        fitted_classifier.score(X, y, groups=[0, 1, 2])


def test_regressor_groups_length_error_has_the_same_wording(fitted_regressor):
    """Check that a regressor words a groups-length mismatch as a classifier does."""
    X, _ = _tabular()
    msg = re.escape(
        f"groups has 2 entries but X has {len(X)} samples; give one group per sample."
    )
    with pytest.raises(ValueError, match=msg):
        _regressor().fit(X, X.sum(1), groups=[0, 1])
    with pytest.raises(ValueError, match=msg):
        fitted_regressor.score(X, X.sum(1), groups=[0, 1])


def test_score_raises_when_labels_and_samples_differ_in_length(fitted_classifier):
    """Check that score names both lengths when y is shorter than X."""
    X, y = _tabular()
    msg = re.escape(
        f"y has {len(y) - 1} entries but X has {len(X)} samples; give one label "
        "per sample."
    )
    with pytest.raises(ValueError, match=msg):
        fitted_classifier.score(X, y[:-1])


def test_regressor_score_rejects_non_finite_targets(fitted_regressor):
    """Check that a NaN target in score raises instead of scoring NaN."""
    X, _ = _tabular()
    y = X.sum(1)
    y[5] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        fitted_regressor.score(X, y, groups=np.repeat(np.arange(6), 8))


def test_fit_builds_the_sampler_from_the_validated_codes(monkeypatch):
    """Check that fit samples episodes without validating the labels again."""

    def refuse(*args, **kwargs):
        raise AssertionError("EpisodeSampler re-validated a checked pool")

    monkeypatch.setattr(EpisodeSampler, "__init__", refuse)
    X, y = _tabular()
    clf = fast(PrototypicalClassifier).fit(X, y.astype(str))
    assert clf.predict(X[:3]).dtype.kind == "U"


def test_sampler_names_the_original_labels_of_a_validated_pool():
    """Check that a too-small class is named by its label, not its code."""
    X, y = _tabular(n_classes=4, per_class=3)
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    msg = r"class\(es\) 'ant', 'bee', 'cat', 'dog' have 3, 3, 3, 3"
    with pytest.raises(ValueError, match=msg):
        fast(PrototypicalClassifier, n_query=5).fit(X, labels)


def test_adapted_estimator_validates_queries_once(fitted_classifier, monkeypatch):
    """Check that an adapted classifier runs sklearn's validation once per predict."""
    X, y = _tabular()
    adapted = fitted_classifier.adapt(X[::8], y[::8])
    calls = []
    original = validation.validate_data

    def counting(*args, **kwargs):
        calls.append(type(args[0]).__name__)
        return original(*args, **kwargs)

    monkeypatch.setattr(validation, "validate_data", counting)
    adapted.predict(X[:5])
    assert calls == ["AdaptedClassifier"]
    calls.clear()
    fitted_classifier.adapt(X[::8], y[::8])
    assert calls == ["AdaptedClassifier"]


def test_adapted_estimator_rejects_samples_of_another_shape(fitted_classifier):
    """Check that queries of another sample shape than the learner's raise."""
    X, y = _tabular()
    adapted = fitted_classifier.adapt(X[::8], y[::8])
    with pytest.raises(ValueError, match="X has 5 features, but AdaptedClassifier"):
        adapted.predict(np.zeros((2, 5), dtype=np.float32))


def test_random_streams_are_distinct():
    """Check that no two named random streams share a number."""
    assert len(Stream.__members__) == len(list(Stream))


def test_failed_fit_leaves_no_fitted_attribute():
    """Check that a fit failing after set-up clears every fitted attribute."""
    X, y = _tabular()
    clf = fast(PrototypicalClassifier, n_way=10)
    with pytest.raises(ValueError, match="n_way=10 is larger"):
        clf.fit(X, y)
    assert [k for k in vars(clf) if k.endswith("_")] == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: fast(PrototypicalClassifier),
        lambda: fast(FineTuneClassifier),
        lambda: fast(MAMLClassifier),
    ],
    ids=["Prototypical", "FineTune", "MAML"],
)
def test_fit_refuses_a_pool_of_one_class(make):
    """Check that every classifier refuses to meta-train on a one-class pool."""
    X, y = _tabular()
    msg = "y has 1 class; a classifier needs at least 2 classes to meta-train on."
    with pytest.raises(ValueError, match=re.escape(msg)):
        make().fit(X[y == 0], y[y == 0])


def test_fit_on_an_empty_list_says_the_sequence_of_tasks_is_empty():
    """Check that fit([]) gets the empty-sequence message, not a missing-y one."""
    with pytest.raises(
        ValueError, match=r"fit\(tasks\) got an empty sequence of tasks"
    ):
        fast(PrototypicalClassifier).fit([])


def test_images_without_a_channel_axis_get_the_same_message_everywhere(
    fitted_classifier,
):
    """Check that (n, H, W) images get the dimension message in fit, adapt, predict."""
    X, y = _tabular(n_features=16)
    images = X.reshape(len(X), 4, 4)
    msg = re.escape(
        "got shape (10, 4, 4). For single-channel images add the channel axis"
    )
    with pytest.raises(ValueError, match=r"got shape \(48, 4, 4\)\. For single"):
        fast(PrototypicalClassifier).fit(images, y)
    image_learner = fast(PrototypicalClassifier).fit(images[:, None], y)
    with pytest.raises(ValueError, match=msg):
        image_learner.adapt(images[:10], y[:10])
    with pytest.raises(ValueError, match=msg):
        image_learner.predict(images[:10])
    adapted = image_learner.adapt(images[:10, None], y[:10])
    with pytest.raises(ValueError, match=msg):
        adapted.predict(images[:10])


@pytest.mark.parametrize(
    "cls, flat",
    [(PrototypicalClassifier, False), (MAMLClassifier, True), (MANNClassifier, True)],
    ids=["metric", "gradient", "memory"],
)
def test_fit_stops_at_non_finite_numbers_naming_epoch_and_batch(cls, flat, digits):
    """Check that a 1e30 pool stops meta-training with the epoch and batch named.

    1e30 is a legal float32, but squares overflow inside the network; a fit
    that met NaN or infinity leaves no fitted weights behind.
    """
    X, y = digits
    X = X.reshape(len(X), -1) if flat else X
    extra = {"max_classes": 10} if cls is MANNClassifier else {}
    if cls is MAMLClassifier:
        # The MLP: the default tabular body L2-normalises, so it takes 1e30
        # in its stride (tests/test_tabular.py).
        extra = {"module": MLP, "module__in_features": 64}
    learner = fast(cls, **extra)
    msg = r"non-finite number at epoch 1, batch 1: .* Scale the inputs"
    with pytest.raises(ValueError, match=msg):
        learner.fit(X * 1e30, y)
    assert not hasattr(learner, "module_")


def test_predictions_that_would_be_non_finite_raise(fitted_classifier):
    """Check that predict and adapted predict raise rather than answer with NaN."""
    X, y = _tabular()
    huge = X[:5] * 1e30
    learner = fast(PrototypicalClassifier, module=nn.Linear(4, 8)).fit(X, y)
    with pytest.raises(ValueError, match="computed non-finite outputs for X"):
        learner.predict(huge)
    adapted = learner.adapt(X[::8], y[::8])
    with pytest.raises(ValueError, match="AdaptedClassifier computed non-finite"):
        adapted.predict_proba(huge)


def test_channels_last_images_are_refused_with_the_transpose(fitted_classifier):
    """Check that (n, H, W, C) images are refused everywhere, naming the fix."""
    X, y = _tabular(n_features=192)
    channels_last = X.reshape(len(X), 8, 8, 3)
    msg = r"looks like channels-last images \(8x8 pixels with 3 channel\(s\)\).*"
    msg += re.escape("X.transpose(0, 3, 1, 2)")
    with pytest.raises(ValueError, match=msg):
        fast(PrototypicalClassifier).fit(channels_last, y)
    learner = fast(PrototypicalClassifier).fit(channels_last.transpose(0, 3, 1, 2), y)
    with pytest.raises(ValueError, match=msg):
        learner.adapt(channels_last[:10], y[:10])
    with pytest.raises(ValueError, match=msg):
        learner.predict(channels_last[:10])
    # Channels-first images whose width is small are not mistaken for it.
    wide = X.reshape(len(X), 3, 64, 1)
    fast(PrototypicalClassifier).fit(wide, y)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([1, "a"] * 24, dtype=object), "mixes numbers and strings"),
        (
            np.array([(i % 6, 0) for i in range(48)] + [None], dtype=object)[:-1],
            "holds a label of type tuple",
        ),
        (np.linspace(-3.18, 2.5, 48), r"looks continuous \(-3\.18, .*use a regressor"),
    ],
    ids=["mixed", "tuples", "continuous"],
)
def test_labels_a_classifier_cannot_take_get_a_message_naming_the_fix(labels, message):
    """Check mixed, non-scalar and continuous labels, in a pool and in tasks."""
    X, _ = _tabular()
    with pytest.raises(ValueError, match=message):
        fast(PrototypicalClassifier).fit(X, labels)
    task = Task(X[:6], labels[:6], X[6:12], labels[6:12])
    with pytest.raises(ValueError, match=f"Task 0's y_support {message}"):
        fast(PrototypicalClassifier).fit([task])


def test_labels_of_one_kind_are_accepted_whatever_the_kind():
    """Check that string, integer and integral float labels all train."""
    X, y = _tabular()
    for labels in (y, y.astype(str), y.astype(float), np.array(list("abcdef"))[y]):
        assert len(fast(PrototypicalClassifier).fit(X, labels).classes_) == 6
