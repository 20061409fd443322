"""Support sets and estimator-contract checks shared by the memory-based learners."""

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from sklearn_meta._random import SCORING_SEED
from sklearn_meta.model_selection import ClassKFold
from sklearn_meta.tasks import EpisodeSampler, sample_tasks

from .._helpers import assert_same_weights, weights
from .._settings import FAST_PARAMS, fast


def support_of(y, classes=(5, 6, 7), k_shot=2):
    """Indices of the first ``k_shot`` samples of each class in ``classes``."""
    return np.concatenate([np.flatnonzero(y == c)[:k_shot] for c in classes])


def assert_predicts_each_query_alone(adapted, queries):
    """Assert that the probabilities of queries in a batch are those of each alone."""
    together = adapted.predict_proba(queries)
    alone = np.vstack([adapted.predict_proba(q[None]) for q in queries])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


def assert_adapt_returns_a_new_estimator_and_round_trips(cls, X, y, tmp_path):
    """Assert that adapt leaves the meta-learner alone and both pickle exactly."""
    clf = fast(cls).fit(X[y < 5], y[y < 5])
    before = weights(clf.module_)
    support = support_of(y)
    adapted = clf.adapt(X[support], np.array(["x", "y", "z"]).repeat(2))
    assert_same_weights(weights(clf.module_), before)
    np.testing.assert_array_equal(adapted.classes_, ["x", "y", "z"])
    queries = X[y >= 5][:30]
    assert adapted.predict_proba(queries).shape == (30, 3)
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    joblib.dump(clf, tmp_path / "meta.joblib")
    loaded = joblib.load(tmp_path / "adapted.joblib")
    np.testing.assert_array_equal(
        loaded.predict_proba(queries), adapted.predict_proba(queries)
    )
    meta = joblib.load(tmp_path / "meta.joblib")
    np.testing.assert_array_equal(
        meta.adapt(X[support], np.array(["x", "y", "z"]).repeat(2)).predict_proba(
            queries
        ),
        adapted.predict_proba(queries),
    )


def assert_fits_on_groups_and_on_tasks(cls, X, y):
    """Assert that fit takes groups or tasks, and that the same seed repeats a run.

    After fit(tasks), score is the accuracy that the classifier made by adapt
    reaches on the episode score draws.
    """
    groups = np.arange(len(y)) % 4
    a = fast(cls).fit(X, y, groups=groups)
    b = fast(cls).fit(X, y, groups=groups)
    assert_same_weights(weights(a.module_), weights(b.module_))
    tasks = sample_tasks(
        X[y < 6], y[y < 6], n_way=3, k_shot=2, n_query=2, n_tasks=16, random_state=0
    )
    # The tasks fix the training queries; n_query and n_eval_episodes shape
    # score's episodes only. One episode: the MANN stores the supports of a
    # score in orders drawn from one stream, and only the first is the order
    # adapt uses.
    learner = fast(cls, n_query=20, n_eval_episodes=1).fit(tasks)
    X_eval, y_eval = X[y >= 6], y[y >= 6]
    sampler = EpisodeSampler(
        y_eval, n_way=3, k_shot=FAST_PARAMS[cls]["k_shot"], n_query=20
    )
    support, query = sampler.sample(1, np.random.default_rng(SCORING_SEED))
    adapted = learner.adapt(X_eval[support[0]], sampler.support_labels())
    accuracy = np.mean(adapted.predict(X_eval[query[0]]) == sampler.query_labels())
    assert learner.score(X_eval, y_eval) == pytest.approx(accuracy)
    with pytest.raises(NotFittedError, match="meta-trained on tasks"):
        learner.predict(X[:3])


def assert_grid_search_with_class_folds(cls, X, y):
    """Assert that GridSearchCV tunes a meta-parameter by episodic score."""
    search = GridSearchCV(fast(cls), {"lr": [1e-3, 3e-3]}, cv=ClassKFold(2)).fit(X, y)
    assert search.best_params_["lr"] in (1e-3, 3e-3)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def assert_predict_before_fit_raises(cls, X):
    """Assert that predict before fit raises sklearn's NotFittedError."""
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not"):
        fast(cls).predict(X[:2])
