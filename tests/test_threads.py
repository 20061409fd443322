"""Tests that fitted and adapted estimators predict correctly from many threads."""

import copy
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.base import ClassifierMixin, RegressorMixin
from torch import nn

from sklearn_meta import MANNClassifier, MetaLSTMClassifier
from sklearn_meta.datasets import make_sinusoid_tasks

from ._settings import FAST_PARAMS, fast

N_THREADS = 8
CALLS_PER_THREAD = 6

#: Every learner of the registry, by task type.
CLASSIFIERS = [cls for cls in FAST_PARAMS if issubclass(cls, ClassifierMixin)]
REGRESSORS = [cls for cls in FAST_PARAMS if issubclass(cls, RegressorMixin)]


@pytest.fixture(autouse=True)
def _switch_threads_often():
    """Let the interpreter switch threads every microsecond, to expose races."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(saved)


def _in_threads(fn, inputs):
    """Call ``fn`` on every input from ``N_THREADS`` threads at once, in turn."""
    work = [x for x in inputs for _ in range(CALLS_PER_THREAD)] * N_THREADS
    with ThreadPoolExecutor(N_THREADS) as pool:
        return list(pool.map(fn, work)), work


def _assert_concurrent_equals_serial(predict, queries):
    """Check that every threaded call returns exactly the serial answer."""
    expected = {id(q): predict(q) for q in queries}
    results, work = _in_threads(predict, queries)
    for got, q in zip(results, work, strict=True):
        np.testing.assert_array_equal(got, expected[id(q)])


#: Learners whose fast settings are for tabular data, and what else they need.
_TABULAR = {MANNClassifier: {"max_classes": 5}, MetaLSTMClassifier: {}}


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_classifiers_predict_the_same_from_many_threads(cls, digits):
    """Check that threads sharing a learner get the serial answers exactly.

    One adapted estimator shared by eight threads, and the first prediction
    of a fitted learner (which adapts it to the training pool, in place) made
    by eight threads at once.
    """
    X, y = digits
    if cls in _TABULAR:
        X = X.reshape(len(X), -1)
    learner = fast(cls, **_TABULAR.get(cls, {})).fit(X[y < 5], y[y < 5])
    fresh = copy.deepcopy(learner)  # no prediction made yet
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    queries = [X[y >= 5][i : i + n] for i, n in ((0, 1), (10, 5), (40, 17))]
    adapted = learner.adapt(X[support], y[support])
    _assert_concurrent_equals_serial(adapted.predict_proba, queries)

    # The first prediction of a fitted learner, made by all threads at once.
    results, _ = _in_threads(fresh.predict_proba, queries[:1])
    for got in results:
        np.testing.assert_array_equal(got, learner.predict_proba(queries[0]))


@pytest.mark.parametrize("cls", REGRESSORS, ids=lambda c: c.__name__)
def test_regressors_with_batch_norm_predict_the_same_from_many_threads(cls):
    """Check that regressors whose body has batch norm are safe in threads."""
    tasks = make_sinusoid_tasks(n_tasks=40, k_support=5, k_query=5, random_state=0)
    body = nn.Sequential(nn.Linear(1, 16), nn.BatchNorm1d(16), nn.ReLU())
    learner = fast(cls, body).fit(tasks)
    task = tasks[0]
    adapted = learner.adapt(task.X_support, task.y_support)
    X = np.linspace(-5, 5, 23, dtype=np.float32)[:, None]
    _assert_concurrent_equals_serial(adapted.predict, [X[:1], X[:6], X])
