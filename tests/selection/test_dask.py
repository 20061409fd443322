"""Tests for algorithm selection on a dask.distributed cluster.

One local cluster of two single-threaded worker processes serves the module.
Its workers import sklearn_meta (and torch) the first time they run a task,
which takes most of the time here.
"""

import collections
import json
import os
import signal
import time
import uuid
from pathlib import Path

import joblib
import numpy as np
import pytest
from joblib import parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaFeatureExtractor,
    MetaSearchCV,
    make_meta_datasets,
)
from sklearn_meta.selection._evaluation import _parse_evaluation

distributed = pytest.importorskip("distributed")

GENERAL = {"general": ["nr_inst", "nr_attr", "nr_class", "attr_to_inst"]}
N_SPLITS = 2


class _Stop(BaseException):
    """Stops a run from inside a fit, as an interrupt would (never scored NaN)."""


class _LoggedClassifier(ClassifierMixin, BaseEstimator):
    """Gaussian naive Bayes that leaves a file for every fit it runs.

    The file names the configuration (``tag``), the training data and the
    process. With ``marker``, the first fit anywhere to create that file
    fails, on a dask worker only: ``failure="kill"`` kills the worker's
    process, ``"raise"`` raises ``_Stop``.
    """

    def __init__(self, tag="gnb", log_dir=None, marker=None, failure="kill"):
        self.tag = tag
        self.log_dir = log_dir
        self.marker = marker
        self.failure = failure

    def fit(self, X, y):
        if self.marker is not None and _claim(self.marker):
            distributed.get_worker()  # raises in the test's own process
            if self.failure == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise _Stop(f"{self.tag} stopped the run")
        if self.log_dir is not None:
            name = f"{self.tag}-{joblib.hash((X, y))}-{os.getpid()}-{uuid.uuid4().hex}"
            (Path(self.log_dir) / name).touch()
        self.model_ = GaussianNB().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def _claim(marker):
    """Create ``marker``, returning False if another process did first."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    Path(marker).write_text(str(os.getpid()))
    return True


def _is_dead(pid):
    """Return whether process ``pid`` has ended (a zombie not yet reaped has)."""
    psutil = pytest.importorskip("psutil")  # a dependency of distributed
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _fits(log_dir):
    """Fits logged in ``log_dir``: how many times each (tag, data), and the pids."""
    names = [p.name.split("-") for p in Path(log_dir).iterdir()]
    counts = collections.Counter((tag, data) for tag, data, _, _ in names)
    return counts, {int(pid) for _, _, pid, _ in names}


@pytest.fixture(scope="module")
def cluster_client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def client(cluster_client):
    # A worker killed by an earlier test may still be restarting; with one
    # worker thread in the cluster, joblib would run the tasks here.
    cluster_client.wait_for_workers(2, timeout=60)
    return cluster_client


@pytest.fixture(scope="module")
def datasets():
    return make_meta_datasets(4, include_sklearn=False, n_samples=(60, 100))


def _recommender(portfolio, cache_dir=None, n_jobs=None):
    return AlgorithmRecommender(
        portfolio=portfolio,
        meta_features=MetaFeatureExtractor(features=GENERAL),
        n_neighbors=1,
        cv=N_SPLITS,
        n_jobs=n_jobs,
        cache_dir=cache_dir,
        verbose=0,
    )


PORTFOLIO = {
    "bad": KNeighborsClassifier(10_000),
    "gnb": GaussianNB(),
    "knn": KNeighborsClassifier(3),
}


@pytest.fixture(scope="module")
def sequential(datasets):
    return _recommender(PORTFOLIO, n_jobs=1).fit(datasets)


def _check_cache(cache_dir, n_entries):
    """Check that the cache holds ``n_entries`` well-formed evaluations only."""
    directory = Path(cache_dir) / "evaluations"
    entries = sorted(directory.iterdir())
    assert [p.suffix for p in entries] == [".json"] * n_entries
    for path in entries:
        _parse_evaluation(json.loads(path.read_text(encoding="utf-8")), N_SPLITS)


def test_dask_fit_equals_sequential_fit(client, datasets, sequential, tmp_path):
    """Check that a recommender fitted on dask equals one fitted with n_jobs=1."""
    with parallel_config(backend="dask"):
        recommender = _recommender(PORTFOLIO, tmp_path).fit(datasets)
    np.testing.assert_array_equal(recommender.scores_, sequential.scores_)
    np.testing.assert_array_equal(recommender.meta_features_, sequential.meta_features_)
    assert recommender.n_evaluations_computed_ == len(datasets) * len(PORTFOLIO)
    _check_cache(tmp_path, len(datasets) * len(PORTFOLIO))
    target = datasets[0]
    ranked = recommender.recommend(target.X, target.y, k=None)
    expected = sequential.recommend(target.X, target.y, k=None)
    assert [(r.name, r.predicted_score) for r in ranked] == [
        (r.name, r.predicted_score) for r in expected
    ]


def test_dask_runs_the_evaluations_on_the_workers(client, datasets, tmp_path):
    """Check that n_jobs=None defers to parallel_config: fits run on the workers."""
    workers = set(client.run(os.getpid).values())
    with parallel_config(backend="dask"):
        _recommender({"gnb": _LoggedClassifier(log_dir=str(tmp_path))}).fit(datasets)
    counts, pids = _fits(tmp_path)
    assert pids <= workers and os.getpid() not in pids
    assert sum(counts.values()) == len(datasets) * N_SPLITS


def test_dask_meta_search_equals_sequential_search(client, datasets, sequential):
    """Check that MetaSearchCV on dask evaluates and refits as with n_jobs=1."""
    target = datasets[1]
    expected = MetaSearchCV(sequential, n_candidates=2, cv=3, n_jobs=1)
    expected.fit(target.X, target.y)
    with parallel_config(backend="dask"):
        search = MetaSearchCV(sequential, n_candidates=2, cv=3)
        search.fit(target.X, target.y)
    for column in ("configuration", "recommended_rank", "mean_test_score"):
        np.testing.assert_array_equal(
            search.cv_results_[column], expected.cv_results_[column]
        )
    for fold in range(3):
        column = f"split{fold}_test_score"
        np.testing.assert_array_equal(
            search.cv_results_[column], expected.cv_results_[column]
        )
    assert search.best_index_ == expected.best_index_
    np.testing.assert_array_equal(search.predict(target.X), expected.predict(target.X))


def _failing_portfolio(log_dir, marker, failure):
    return {
        "gnb": _LoggedClassifier("gnb", log_dir),
        "failing": _LoggedClassifier("failing", log_dir, str(marker), failure),
        "more": _LoggedClassifier("more", log_dir),
    }


def _wait_until_idle(client, timeout=30):
    """Wait until no task of a stopped call is left on the cluster."""

    def executing(dask_worker):
        return len(dask_worker.state.executing)

    def pending(dask_scheduler):
        states = {"waiting", "queued", "no-worker", "processing"}
        return sum(task.state in states for task in dask_scheduler.tasks.values())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.run_on_scheduler(pending) == 0 and not any(
            client.run(executing).values()
        ):
            return
        time.sleep(0.05)
    raise TimeoutError("the cluster is still busy")


def test_dask_rerun_after_a_failed_run_computes_only_the_rest(
    client, datasets, sequential, tmp_path
):
    """Check that a dask run stopped by an error resumes from what it finished."""
    logs, cache, marker = tmp_path / "fits", tmp_path / "cache", tmp_path / "failed"
    logs.mkdir()
    portfolio = _failing_portfolio(str(logs), marker, "raise")
    with pytest.raises(_Stop, match="failing stopped the run"):
        with parallel_config(backend="dask"):
            _recommender(portfolio, cache).fit(datasets)
    # Tasks already running when the call stopped finish and cache their
    # evaluations.
    _wait_until_idle(client)
    n = len(datasets) * len(portfolio)
    finished = len(list((cache / "evaluations").iterdir()))
    assert finished < n
    _check_cache(cache, finished)

    with parallel_config(backend="dask"):
        resumed = _recommender(portfolio, cache).fit(datasets)
    assert resumed.n_evaluations_computed_ == n - finished
    # Over both runs every fit ran exactly once.
    counts, _ = _fits(logs)
    assert len(counts) == n * N_SPLITS
    assert set(counts.values()) == {1}
    gnb = sequential.configuration_names_.index("gnb")
    for j in range(len(portfolio)):
        np.testing.assert_array_equal(resumed.scores_[:, j], sequential.scores_[:, gnb])
    _check_cache(cache, n)


def test_dask_retries_the_evaluation_of_a_killed_worker(
    client, datasets, sequential, tmp_path
):
    """Check that a killed worker's evaluation is recomputed and nothing else."""
    logs, cache, marker = tmp_path / "fits", tmp_path / "cache", tmp_path / "died"
    logs.mkdir()
    portfolio = _failing_portfolio(str(logs), marker, "kill")
    with parallel_config(backend="dask"):
        recommender = _recommender(portfolio, cache).fit(datasets)

    # The worker that ran the first fit of "failing" died...
    assert _is_dead(int(marker.read_text()))
    # ... dask ran its task again on a live worker, and every fit of every
    # evaluation ran exactly once (the killed one died before fitting).
    n = len(datasets) * len(portfolio)
    counts, _ = _fits(logs)
    assert len(counts) == n * N_SPLITS
    assert set(counts.values()) == {1}
    gnb = sequential.configuration_names_.index("gnb")
    for j in range(len(portfolio)):
        np.testing.assert_array_equal(
            recommender.scores_[:, j], sequential.scores_[:, gnb]
        )
    _check_cache(cache, n)
    # A new run reads every evaluation back.
    with parallel_config(backend="dask"):
        again = _recommender(portfolio, cache).fit(datasets)
    assert again.n_evaluations_computed_ == 0
    assert _fits(logs)[0] == counts
