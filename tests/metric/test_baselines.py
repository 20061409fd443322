"""Tests of the non-learned baselines: nearest centroid and nearest neighbour."""

import io
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sklearn_meta import (
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    Task,
    adapt,
)
from sklearn_meta.io import dump, load
from sklearn_meta.model_selection import ClassKFold, episodic_score
from sklearn_meta.tasks import sample_tasks

from .._settings import fast

BASELINES = [NearestCentroidClassifier, NearestNeighborClassifier]

#: Every (standardize, l2_normalize) combination.
TRANSFORMS = [
    (standardize, l2_normalize)
    for standardize in ("none", "center", "standardize")
    for l2_normalize in (False, True)
]


@pytest.fixture(scope="module")
def digits_split(digits):
    """Digits 0-4 to fit on and digits 5-9 to test on, as 64 features."""
    X, y = digits
    X = X.reshape(len(X), -1)
    return X[y < 5], y[y < 5], X[y >= 5], y[y >= 5]


def numpy_transform(X_pool, X, standardize, l2_normalize):
    """The transforms by their definitions, with the pool's statistics, in NumPy."""
    pool = X_pool.reshape(len(X_pool), -1).astype(np.float64)
    Z = X.reshape(len(X), -1).astype(np.float64)
    if standardize != "none":
        Z = Z - pool.mean(0)
    if standardize == "standardize":
        std = pool.std(0)
        Z = Z / np.where(std == 0, 1, std)  # the digits' constant pixels
    if l2_normalize:
        Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    return Z


def nearest_centroid(Z, y):
    """Fit scikit-learn's NearestCentroid on ``(Z, y)``.

    It computes the within-class spread (for shrinkage, unused here) and warns
    when a feature has none, as in one-shot support sets.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", "self.within_class_std_dev_", UserWarning)
        return NearestCentroid().fit(Z, y)


def assert_same_where_clear(got, expected, distances):
    """Assert equal predictions wherever the nearest class is nearest by a margin.

    ``distances`` ``(n_query, n_classes)`` are the reference's. The raw digits
    are integers, so two classes can be at the same distance, and rounding then
    picks either; such ties must be rare.
    """
    ordered = np.sort(distances, axis=1)
    clear = ordered[:, 1] - ordered[:, 0] > 1e-9
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got[clear], expected[clear])


def _tasks(X, y, k_shot):
    """Twenty 5-way episodes with 15 queries per class, labels as they are."""
    return sample_tasks(
        X, y, n_way=5, k_shot=k_shot, n_query=15, n_tasks=20, random_state=k_shot
    )


@pytest.mark.parametrize("k_shot", [1, 5])
@pytest.mark.parametrize(("standardize", "l2_normalize"), TRANSFORMS)
def test_nearest_centroid_equals_sklearn_on_transformed_features(
    digits_split, standardize, l2_normalize, k_shot
):
    """Check predictions and probabilities against NearestCentroid on episodes.

    The probabilities are the softmax of the negative squared distances to
    the class means.
    """
    X_pool, y_pool, X_test, y_test = digits_split
    clf = NearestCentroidClassifier(
        standardize=standardize, l2_normalize=l2_normalize
    ).fit(X_pool, y_pool)
    for task in _tasks(X_test, y_test, k_shot):
        Z_s, Z_q = (
            numpy_transform(X_pool, X, standardize, l2_normalize)
            for X in (task.X_support, task.X_query)
        )
        reference = nearest_centroid(Z_s, task.y_support)
        adapted = clf.adapt(task.X_support, task.y_support)
        squared = ((Z_q[:, None] - reference.centroids_[None]) ** 2).sum(-1)
        np.testing.assert_allclose(
            adapted.predict_proba(task.X_query), softmax(-squared, axis=1), atol=1e-9
        )
        assert_same_where_clear(
            adapted.predict(task.X_query), reference.predict(Z_q), squared
        )


@pytest.mark.parametrize("k_shot", [1, 5])
@pytest.mark.parametrize(("standardize", "l2_normalize"), TRANSFORMS)
def test_nearest_neighbor_equals_sklearn_on_transformed_features(
    digits_split, standardize, l2_normalize, k_shot
):
    """Check predictions and probabilities against 1-NN on episodes.

    The probabilities are the softmax of the negative distances to the nearest
    support sample of each class. Where two classes are at the same distance
    (the raw digits are integers), both rules may take either.
    """
    X_pool, y_pool, X_test, y_test = digits_split
    clf = NearestNeighborClassifier(
        standardize=standardize, l2_normalize=l2_normalize
    ).fit(X_pool, y_pool)
    for task in _tasks(X_test, y_test, k_shot):
        Z_s, Z_q = (
            numpy_transform(X_pool, X, standardize, l2_normalize)
            for X in (task.X_support, task.X_query)
        )
        reference = KNeighborsClassifier(n_neighbors=1).fit(Z_s, task.y_support)
        adapted = clf.adapt(task.X_support, task.y_support)
        distances = np.sqrt(((Z_q[:, None] - Z_s[None]) ** 2).sum(-1))
        nearest = np.stack(
            [distances[:, task.y_support == c].min(1) for c in adapted.classes_], 1
        )
        np.testing.assert_allclose(
            adapted.predict_proba(task.X_query), softmax(-nearest, axis=1), atol=1e-9
        )
        assert_same_where_clear(
            adapted.predict(task.X_query), reference.predict(Z_q), nearest
        )


def test_predict_after_fit_classifies_among_the_pool_classes(digits_split):
    """Check predict after fit(X, y): NearestCentroid and 1-NN over the pool."""
    X_pool, y_pool, X_test, _ = digits_split
    Z_pool, Z_test = (
        numpy_transform(X_pool, X, "center", True) for X in (X_pool, X_test)
    )
    centroid = NearestCentroidClassifier().fit(X_pool, y_pool)
    np.testing.assert_array_equal(
        centroid.predict(X_test), nearest_centroid(Z_pool, y_pool).predict(Z_test)
    )
    neighbour = NearestNeighborClassifier().fit(X_pool, y_pool)
    np.testing.assert_array_equal(neighbour.predict(X_pool), y_pool)  # itself
    np.testing.assert_array_equal(neighbour.classes_, np.arange(5))


@pytest.mark.parametrize(("standardize", "l2_normalize"), TRANSFORMS)
def test_transforms_equal_their_numpy_definitions(
    digits_split, standardize, l2_normalize
):
    """Check the fixed module and mean_/scale_ against NumPy and StandardScaler."""
    X_pool, y_pool, X_test, _ = digits_split
    clf = NearestCentroidClassifier(
        standardize=standardize, l2_normalize=l2_normalize
    ).fit(X_pool, y_pool)
    with torch.no_grad():
        got = clf.module_(torch.from_numpy(X_test)).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(
        got, numpy_transform(X_pool, X_test, standardize, l2_normalize), atol=1e-12
    )
    scaler = StandardScaler().fit(X_pool.astype(np.float64))
    if standardize == "none":
        assert clf.mean_ is None
    else:
        np.testing.assert_allclose(clf.mean_, scaler.mean_, rtol=1e-13)
    if standardize == "standardize":
        np.testing.assert_allclose(clf.scale_, scaler.scale_, rtol=1e-12)
        assert (clf.scale_[X_pool.std(0) == 0] == 1).all()
    else:
        assert clf.scale_ is None


def test_statistics_come_from_the_training_pool_only(digits_split):
    """Check that adapt, predict and score use the pool's statistics, unchanged."""
    X_pool, y_pool, X_test, y_test = digits_split
    clf = NearestCentroidClassifier(standardize="standardize").fit(X_pool, y_pool)
    mean, scale = clf.mean_, clf.scale_
    np.testing.assert_allclose(mean, X_pool.astype(np.float64).mean(0), rtol=1e-13)
    support = np.concatenate([np.flatnonzero(y_test == c)[:3] for c in range(5, 10)])
    adapted = clf.adapt(X_test[support], y_test[support])
    adapted.predict(X_test)
    clf.score(X_test, y_test)
    episodic_score(clf, X_test, y_test, n_episodes=10)
    np.testing.assert_array_equal(clf.mean_, mean)
    np.testing.assert_array_equal(clf.scale_, scale)
    np.testing.assert_array_equal(adapted.learner_.mean_, mean)
    # The prototypes are the support's class means under the pool's statistics.
    Z = numpy_transform(X_pool, X_test[support], "standardize", True)
    expected = nearest_centroid(Z, y_test[support]).centroids_
    np.testing.assert_allclose(
        adapted.state_["summary"][0].numpy(), expected, atol=1e-12
    )


def test_statistics_are_streamed_in_float64_from_lazy_pools(tmp_path):
    """Check memmap and uint8 pools, read by chunks, against NumPy in float64.

    The features sit far from zero, where E[x^2] - E[x]^2 would lose the
    variance; 1,000 rows are four chunks.
    """
    rng = np.random.default_rng(0)
    X = (1e4 + rng.normal(size=(1000, 6)) * [1, 1e-2, 1, 1, 0, 3]).astype(np.float32)
    y = np.arange(1000) % 5
    path = tmp_path / "pool.dat"
    disk = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    disk[:] = X
    disk.flush()
    pool = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    clf = NearestCentroidClassifier(standardize="standardize").fit(pool, y)
    exact = X.astype(np.float64)
    np.testing.assert_allclose(clf.mean_, exact.mean(0), rtol=1e-15)
    np.testing.assert_allclose(
        clf.scale_[[0, 1, 2, 3, 5]], exact.std(0)[[0, 1, 2, 3, 5]], rtol=1e-10
    )
    assert clf.scale_[4] == 1  # a constant feature
    images = rng.integers(0, 256, size=(600, 1, 3, 3), dtype=np.uint8)
    clf = NearestNeighborClassifier(standardize="standardize").fit(images, y[:600])
    pixels = images.reshape(600, -1).astype(np.float32) / 255
    np.testing.assert_allclose(clf.mean_, pixels.astype(np.float64).mean(0), rtol=1e-14)
    np.testing.assert_allclose(clf.scale_, pixels.astype(np.float64).std(0), rtol=1e-12)


def test_fit_on_tasks_learns_from_every_task_sample(digits_split):
    """Check fit(tasks): statistics over support and query sets of every task."""
    X_pool, y_pool, X_test, y_test = digits_split
    tasks = _tasks(X_pool, y_pool, 1)[:4]
    clf = NearestCentroidClassifier().fit(tasks)
    samples = np.concatenate([np.r_[t.X_support, t.X_query] for t in tasks])
    np.testing.assert_allclose(
        clf.mean_, samples.astype(np.float64).mean(0), rtol=1e-13
    )
    assert clf.pool_state_ is None and clf.n_features_in_ == 64
    assert clf.adapt(X_test[:10], y_test[:10]).predict(X_test).shape == (len(X_test),)
    assert 0 <= clf.score(_tasks(X_test, y_test, 1)) <= 1


def test_fit_on_an_iterator_of_tasks_needs_no_statistics(digits_split):
    """Check that an iterator is read for its shape alone, and refused if more."""
    X_pool, y_pool, _, _ = digits_split
    tasks = _tasks(X_pool, y_pool, 1)
    clf = NearestNeighborClassifier(standardize="none").fit(iter(tasks))
    assert clf.sample_shape_ == (64,)
    msg = (
        "NearestNeighborClassifier with standardize='center' learns its statistics "
        "from every sample of the tasks, so it needs them up front: pass a list of "
        "tasks, not an iterator (list_iterator)."
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        NearestNeighborClassifier().fit(iter(tasks))


def test_tasks_of_different_sample_shapes_are_refused(digits_split):
    """Check that tasks must share one sample shape, naming the odd one."""
    X_pool, y_pool, _, _ = digits_split
    tasks = _tasks(X_pool, y_pool, 1)[:2]
    odd = Task(
        tasks[1].X_support[:, :32],
        tasks[1].y_support,
        tasks[1].X_query[:, :32],
        tasks[1].y_query,
    )
    msg = "Task 1 has samples of shape (32,), but task 0 has samples of shape (64,)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        NearestCentroidClassifier().fit([tasks[0], odd])


def test_fit_validates_the_pool_as_every_learner_does(digits_split):
    """Check the episode and groups checks of the learners' fit."""
    X_pool, y_pool, _, _ = digits_split
    with pytest.raises(
        ValueError, match=r"n_way=6 is larger than the number of classes in y \(5\)"
    ):
        NearestCentroidClassifier(n_way=6).fit(X_pool, y_pool)
    with pytest.raises(ValueError, match="takes the tasks alone"):
        NearestCentroidClassifier().fit(_tasks(X_pool, y_pool, 1), y_pool)
    groups = np.arange(len(y_pool)) % 2
    clf = NearestCentroidClassifier(n_way=3).fit(X_pool, y_pool, groups=groups)
    np.testing.assert_allclose(clf.mean_, X_pool.astype(np.float64).mean(0), rtol=1e-13)
    with pytest.raises(
        ValueError, match=r"n_way=3 is larger than the number of classes in group\(s\)"
    ):
        NearestCentroidClassifier(n_way=3).fit(X_pool, y_pool, groups=y_pool % 2)


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_nothing_is_trained(cls, digits_split, monkeypatch):
    """Check that there is no parameter, optimiser, history or gradient step."""
    X_pool, y_pool, X_test, y_test = digits_split

    def refuse(*args, **kwargs):
        raise AssertionError("a baseline took a gradient step")

    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    monkeypatch.setattr(torch.optim.Optimizer, "step", refuse)
    clf = fast(cls).fit(X_pool, y_pool)
    assert list(clf.module_.parameters()) == []
    for name in ("optimizer_", "history_", "callbacks_", "history"):
        assert not hasattr(clf, name)
    adapted = clf.adapt(X_test[:20], y_test[:20])
    assert not any(
        t.requires_grad for t in adapted.state_["summary"] if torch.is_tensor(t)
    )
    adapted.predict(X_test)
    clf.score(X_test, y_test)


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_held_out_digits_are_well_above_chance(cls, digits_split):
    """Check 5-way 1-shot accuracy on digits 5-9 after fitting on 0-4 (chance 0.2).

    Measured (600 episodes): 0.631 on standardised features, 0.729 with the
    default transform (centred, L2-normalised), for both baselines.
    """
    X_pool, y_pool, X_test, y_test = digits_split
    standardised = cls(standardize="standardize", l2_normalize=False)
    assert standardised.fit(X_pool, y_pool).score(X_test, y_test) > 0.6
    assert cls().fit(X_pool, y_pool).score(X_test, y_test) > 0.7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"standardize": "scale"},
            # The options are a set, printed in the order of the string hashes.
            r"The 'standardize' parameter of NearestCentroidClassifier must be a str "
            r"among \{('(none|center|standardize)'(, )?){3}\}\. Got 'scale' instead\.",
        ),
        (
            {"l2_normalize": "yes"},
            re.escape(
                "The 'l2_normalize' parameter of NearestCentroidClassifier must be an "
                "instance of 'bool' or an instance of 'numpy.bool'. Got 'yes' instead."
            ),
        ),
        (
            {"n_way": 1},
            re.escape(
                "The 'n_way' parameter of NearestCentroidClassifier must be an int in "
                "the range [2, inf). Got 1 instead."
            ),
        ),
    ],
)
def test_bad_parameters_are_refused_with_sklearn_wording(digits_split, params, message):
    """Check the constraints' messages, as scikit-learn words them."""
    X_pool, y_pool, _, _ = digits_split
    with pytest.raises(ValueError, match=message):
        NearestCentroidClassifier(**params).fit(X_pool, y_pool)


def test_routed_parameters_are_refused(digits_split):
    """Check that module__*/optimizer__* parameters have nowhere to go."""
    X_pool, y_pool, _, _ = digits_split
    clf = NearestNeighborClassifier().set_params(module__hidden=3)
    msg = (
        "NearestNeighborClassifier got unexpected parameter(s) ['module__hidden']. "
        "It has no module or optimizer to route module__* or optimizer__* "
        "parameters to."
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        clf.fit(X_pool, y_pool)


def test_search_pipeline_clone_and_persistence(digits):
    """Check GridSearchCV over a Pipeline, adapt, clone, pickle and the safe format."""
    X, y = digits
    X = X.reshape(len(X), -1)
    pipe = make_pipeline(
        MinMaxScaler(), NearestCentroidClassifier(n_way=3, n_eval_episodes=50)
    )
    grid = {"nearestcentroidclassifier__standardize": ["none", "standardize"]}
    search = GridSearchCV(pipe, grid, cv=ClassKFold(3)).fit(X, y)
    assert search.best_params_["nearestcentroidclassifier__standardize"] == "none"
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (1, 4, 7)])
    adapted = adapt(search.best_estimator_, X[support], y[support])
    np.testing.assert_array_equal(adapted[-1].classes_, [1, 4, 7])
    learner = clone(search.best_estimator_[-1]).set_params(standardize="standardize")
    learner.fit(X[y < 5], y[y < 5])
    adapted = learner.adapt(X[support], y[support])
    buffer = io.BytesIO()
    dump([learner, adapted], buffer)
    buffer.seek(0)
    copies = [pickle.loads(pickle.dumps([learner, adapted])), load(buffer)]
    for loaded, loaded_adapted in copies:
        np.testing.assert_array_equal(loaded.scale_, learner.scale_)
        np.testing.assert_array_equal(loaded.predict_proba(X), learner.predict_proba(X))
        np.testing.assert_array_equal(
            loaded_adapted.predict_proba(X), adapted.predict_proba(X)
        )
