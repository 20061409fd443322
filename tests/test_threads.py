"""Tests that fitted and adapted estimators predict correctly from many threads."""

import copy
import gc
import itertools
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import ClassifierMixin, RegressorMixin
from torch import nn

from sklearn_meta import MAMLClassifier, MANNClassifier, MetaLSTMClassifier
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


#: The load test: seconds of serving, of which the first are warm-up.
LOAD_SECONDS = 12
WARM_UP_SECONDS = 3

#: Calls the test must make after the warm-up, so that it measures serving and
#: not a stall: a fifth of the ~2,800 that 8 threads made on a two-core machine
#: whose other core was busy.
MIN_CALLS = 500

#: Growth of the resident set allowed from the end of the warm-up to the end:
#: what does not grow with the calls (torch's and the allocator's per-thread
#: caches, glibc's arenas) is in place by then; this test measured 6-8 MiB.
#: Over MIN_CALLS calls, 50 MiB is ~100 KB a call: keeping what a call builds,
#: a copy of the adapted weights (~440 KB for the Conv4 of 8x8 digits) or the
#: activations of a 17-query batch (up to ~280 KB a layer), goes over it.
MAX_RSS_GROWTH = 50 * 2**20


def _resident_bytes():
    """The resident set of this process (VmRSS of /proc/self/status), in bytes."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("/proc/self/status has no VmRSS line")


@pytest.mark.slow
@pytest.mark.load
@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the RSS from /proc"
)
def test_serving_from_a_thread_pool_is_exact_and_keeps_memory_flat(digits):
    """Check that a learner served by 8 threads for seconds stays exact and flat.

    An adapted MAML classifier (task-wise batch norm in its Conv4 backbone)
    answers predict_proba on fixed query batches from a pool of N_THREADS
    workers, switching threads every microsecond (the module's fixture), for
    LOAD_SECONDS: every answer must equal the serial one exactly, no call may
    raise, and the resident memory may not grow by MAX_RSS_GROWTH after the
    warm-up.
    """
    X, y = digits
    learner = fast(MAMLClassifier).fit(X[y < 5], y[y < 5])
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    adapted = learner.adapt(X[support], y[support])
    rest = X[y >= 5]
    queries = [rest[i : i + n] for i, n in ((0, 1), (10, 5), (40, 17), (100, 64))]
    expected = [adapted.predict_proba(q) for q in queries]
    turns = itertools.count()  # next() is atomic under the GIL
    deadline = time.monotonic() + LOAD_SECONDS

    def serve():
        """Answer queries until the deadline; return (calls, wrong answers)."""
        calls = wrong = 0
        while time.monotonic() < deadline:
            i = next(turns) % len(queries)
            wrong += not np.array_equal(adapted.predict_proba(queries[i]), expected[i])
            calls += 1
        return calls, wrong

    with ThreadPoolExecutor(N_THREADS) as pool:
        workers = [pool.submit(serve) for _ in range(N_THREADS)]
        time.sleep(WARM_UP_SECONDS)
        warm, calls_at_warm = _resident_bytes(), next(turns)
        counts = [worker.result() for worker in workers]  # re-raises any error
    growth = _resident_bytes() - warm

    calls = sum(c for c, _ in counts)
    assert sum(w for _, w in counts) == 0
    assert min(c for c, _ in counts) > 0  # every worker served
    assert calls - calls_at_warm >= MIN_CALLS
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB"


@pytest.mark.parametrize("adapted", [False, True], ids=["meta-trained", "adapted"])
def test_policies_act_the_same_from_many_threads(adapted):
    """Check that a policy shared by eight threads gives the serial actions."""
    from sklearn_meta.rl import BernoulliBanditTasks, MAMLPolicy, PointNavigationTasks

    bandits = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)
    policy = fast(MAMLPolicy).fit(bandits)
    navigation = fast(MAMLPolicy).fit(PointNavigationTasks(max_episode_steps=5))
    if adapted:
        policy = policy.adapt(bandits(3))
        navigation = navigation.adapt(PointNavigationTasks(max_episode_steps=5)(3))
    observations = [np.zeros((n, 1), dtype=np.float32) for n in (1, 4, 9)]
    _assert_concurrent_equals_serial(policy.predict_proba, observations)
    points = np.linspace(-1, 1, 18, dtype=np.float32).reshape(9, 2)
    _assert_concurrent_equals_serial(navigation.predict, [points[:1], points])
