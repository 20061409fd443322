"""Tests for the on-disk cache of AlgorithmRecommender.

Corrupt entries, atomic writes, concurrent writers, and the tasks that read and
write it themselves.
"""

import json
import multiprocessing
import os
import re
import shutil
import threading
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaFeatureExtractor,
    _evaluation,
    make_meta_datasets,
)
from sklearn_meta.selection._evaluation import (
    _DiskCache,
    _parse_evaluation,
    _score_one,
)

GENERAL = {"general": ["nr_inst", "nr_attr", "nr_class", "attr_to_inst", "freq_class"]}


def _recommender(cache_dir):
    return AlgorithmRecommender(
        # "bad" cannot fit, so its evaluations store NaN scores.
        portfolio={
            "bad": KNeighborsClassifier(10_000),
            "gnb": GaussianNB(),
            "knn": KNeighborsClassifier(3),
        },
        meta_features=MetaFeatureExtractor(features=GENERAL),
        n_neighbors=1,
        cv=2,
        n_jobs=1,
        cache_dir=cache_dir,
        verbose=0,
    )


@pytest.fixture(scope="module")
def datasets():
    return make_meta_datasets(2, include_sklearn=False, n_samples=(60, 100))


@pytest.fixture(scope="module")
def clean(datasets, tmp_path_factory):
    """A recommender fitted without a cache, and a cache written by a clean run."""
    cache = tmp_path_factory.mktemp("clean_cache")
    _recommender(cache).fit(datasets)
    return _recommender(None).fit(datasets), cache


def _json(text):
    return json.dumps(text).encode()


def _without(entry, name):
    return {k: v for k, v in entry.items() if k != name}


# Each turns a well-formed entry (its bytes and its decoded JSON) into a
# corrupt one.
COMMON = {
    "truncated": lambda raw, entry: raw[: len(raw) // 2],
    "empty": lambda raw, entry: b"",
    "not_utf8": lambda raw, entry: b"\xff\xfe" + raw,
    "list": lambda raw, entry: _json(list(entry.values())),
    "string": lambda raw, entry: _json("foreign"),
    "number": lambda raw, entry: b"1.5",
}
EVALUATION = {
    "missing_key": lambda raw, entry: _json(_without(entry, "fit_time")),
    "extra_key": lambda raw, entry: _json({**entry, "n_jobs": 1}),
    "scores_not_list": lambda raw, entry: _json({**entry, "scores": 0.9}),
    "scores_of_strings": lambda raw, entry: _json(
        {**entry, "scores": [str(s) for s in entry["scores"]]}
    ),
    "scores_of_bools": lambda raw, entry: _json(
        {**entry, "scores": [True] * len(entry["scores"])}
    ),
    "scores_too_short": lambda raw, entry: _json(
        {**entry, "scores": entry["scores"][:1]}
    ),
    "fit_time_null": lambda raw, entry: _json({**entry, "fit_time": None}),
    "score_time_infinite": lambda raw, entry: _json(
        {**entry, "score_time": float("inf")}
    ),
}
META_FEATURES = {
    "value_string": lambda raw, entry: _json({k: "1.0" for k in entry}),
    "value_null": lambda raw, entry: _json({k: None for k in entry}),
    "value_list": lambda raw, entry: _json({k: [v] for k, v in entry.items()}),
    "value_infinite": lambda raw, entry: _json(
        {**entry, next(iter(entry)): float("inf")}
    ),
}
CASES = [
    ("evaluations", name, corrupt) for name, corrupt in {**COMMON, **EVALUATION}.items()
] + [
    ("meta_features", name, corrupt)
    for name, corrupt in {**COMMON, **META_FEATURES}.items()
]


@pytest.mark.parametrize(
    "namespace, corrupt",
    [(ns, corrupt) for ns, _, corrupt in CASES],
    ids=[f"{ns}-{name}" for ns, name, _ in CASES],
)
def test_corrupt_cache_entry_is_recomputed_with_a_warning(
    clean, datasets, tmp_path, namespace, corrupt
):
    """Check that a corrupt cache entry warns, is recomputed and is rewritten."""
    reference, clean_cache = clean
    cache = tmp_path / "cache"
    shutil.copytree(clean_cache, cache)
    path = sorted((cache / namespace).glob("*.json"))[0]
    raw = path.read_bytes()
    path.write_bytes(corrupt(raw, json.loads(raw)))

    with pytest.warns(UserWarning, match=re.escape(path.name)):
        recommender = _recommender(cache).fit(datasets)

    # Only the corrupt evaluation is computed again (meta-features are not
    # counted as evaluations).
    assert recommender.n_evaluations_computed_ == (namespace == "evaluations")
    np.testing.assert_array_equal(recommender.scores_, reference.scores_)
    np.testing.assert_array_equal(
        recommender.meta_feature_names_, reference.meta_feature_names_
    )
    np.testing.assert_array_equal(recommender.meta_features_, reference.meta_features_)
    # The file is well-formed again: its clean content, up to timings, and a
    # further run reads everything back without a warning.
    rewritten = json.loads(path.read_text(encoding="utf-8"))
    expected = json.loads(raw)
    if namespace == "evaluations":
        assert set(rewritten) == set(expected)
        np.testing.assert_array_equal(rewritten["scores"], expected["scores"])
    else:
        np.testing.assert_equal(rewritten, expected)
    assert not list(cache.rglob("*.tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = _recommender(cache).fit(datasets)
    assert again.n_evaluations_computed_ == 0
    np.testing.assert_array_equal(again.scores_, reference.scores_)


def test_clean_cache_is_read_back_without_warning(clean, datasets):
    """Check that well-formed entries, NaN included, are read back silently."""
    reference, cache = clean
    assert np.isnan(reference.scores_[:, 0]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        recommender = _recommender(cache).fit(datasets)
    assert recommender.n_evaluations_computed_ == 0
    np.testing.assert_array_equal(recommender.scores_, reference.scores_)
    np.testing.assert_array_equal(recommender.meta_features_, reference.meta_features_)


# ------------------------------------------------------------- atomic writes
def _parse_entry(value):
    if not isinstance(value, dict) or set(value) != {"writer", "n", "payload"}:
        raise ValueError("not an entry of the writers below")
    return value


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_write_interrupted_before_rename_leaves_the_old_entry(
    tmp_path, monkeypatch, error
):
    """Check that a write stopped before its rename leaves no trace behind."""
    cache = _DiskCache(tmp_path, "entries")
    old = {"writer": 0, "n": 0, "payload": "old"}

    def fail(src, dst):
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(type(error)):
            cache.put("key", old)
    # No entry a reader trusts, and no temporary file.
    assert list(cache.directory.iterdir()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get("key", _parse_entry) is None

    cache.put("key", old)
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(type(error)):
            cache.put("key", {**old, "payload": "new"})
    assert [p.name for p in cache.directory.iterdir()] == ["key.json"]
    assert cache.get("key", _parse_entry) == old


def test_temporary_file_of_a_killed_writer_is_never_read(tmp_path):
    """Check that a writer's temporary file is not an entry, whatever it holds."""
    cache = _DiskCache(tmp_path, "entries")
    (cache.directory / f"key.{os.getpid()}.0123.tmp").write_text('{"writer": ')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get("key", _parse_entry) is None


def _write_many(directory, writer, n_writes, barrier, errors=None):
    cache = _DiskCache(directory, "entries")
    barrier.wait()
    try:
        for n in range(n_writes):
            cache.put("key", {"writer": writer, "n": n, "payload": "x" * 200_000})
    except OSError as exc:
        if errors is None:
            raise
        errors.append(exc)  # a thread's exception would go unseen


@pytest.mark.parametrize("workers", ["processes", "threads"])
def test_concurrent_writers_of_one_key_leave_one_valid_entry(tmp_path, workers):
    """Check that readers only ever see whole entries while two writers race."""
    n_writes, errors = 60, []
    if workers == "processes":
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(3)
        writers = [
            context.Process(target=_write_many, args=(tmp_path, w, n_writes, barrier))
            for w in (1, 2)
        ]
    else:
        barrier = threading.Barrier(3)
        writers = [
            threading.Thread(
                target=_write_many, args=(tmp_path, w, n_writes, barrier, errors)
            )
            for w in (1, 2)
        ]
    for writer in writers:
        writer.start()
    cache = _DiskCache(tmp_path, "entries")
    seen = set()
    barrier.wait()
    with warnings.catch_warnings():
        # An entry read half-written would warn as unreadable.
        warnings.simplefilter("error")
        while any(writer.is_alive() for writer in writers):
            entry = cache.get("key", _parse_entry)
            if entry is not None:
                assert entry["payload"] == "x" * 200_000
                seen.add(entry["writer"])
    for writer in writers:
        writer.join()
        assert getattr(writer, "exitcode", 0) == 0
    assert errors == []
    assert [p.name for p in cache.directory.iterdir()] == ["key.json"]
    final = cache.get("key", _parse_entry)
    assert final["n"] == n_writes - 1 and final["writer"] in (1, 2)
    assert seen


# ------------------------------------------------- tasks that use the cache
class _CountingClassifier(ClassifierMixin, BaseEstimator):
    """Gaussian naive Bayes counting its fits in this process."""

    fits = 0

    def fit(self, X, y):
        type(self).fits += 1
        self.model_ = GaussianNB().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_task_run_again_reads_its_entry_instead_of_fitting(datasets, tmp_path):
    """Check that a task run twice (its worker died) fits the first time only."""
    data = (datasets[0].X, datasets[0].y)
    cache = _DiskCache(tmp_path, "evaluations")
    folds = StratifiedKFold(2)
    _CountingClassifier.fits = 0
    task = dict(cache=cache, key="k", n_splits=2)
    index, first = _score_one(3, _CountingClassifier(), data, folds, None, **task)
    assert index == 3 and _CountingClassifier.fits == 2
    # The entry was written by the task, before its result was returned.
    assert cache.get("k", lambda v: _parse_evaluation(v, 2)) == first
    index, again = _score_one(3, _CountingClassifier(), data, folds, None, **task)
    assert index == 3 and _CountingClassifier.fits == 2
    assert again == first


def test_caller_writes_what_workers_could_not(datasets, tmp_path, monkeypatch):
    """Check that evaluations reach the cache when workers cannot write it."""
    original = _evaluation._score_one
    elsewhere = tmp_path / "worker"

    def on_a_worker_without_shared_files(*args, cache, **kwargs):
        # A worker's file system without the caller's directory.
        unreachable = _DiskCache(elsewhere, "evaluations")
        shutil.rmtree(elsewhere)
        return original(*args, cache=unreachable, **kwargs)

    monkeypatch.setattr(_evaluation, "_score_one", on_a_worker_without_shared_files)
    cache = tmp_path / "cache"
    recommender = _recommender(cache).fit(datasets)
    assert recommender.n_evaluations_computed_ == 6
    assert not elsewhere.exists()
    entries = sorted((cache / "evaluations").iterdir())
    assert [p.suffix for p in entries] == [".json"] * 6
    monkeypatch.undo()
    again = _recommender(cache).fit(datasets)
    assert again.n_evaluations_computed_ == 0
    np.testing.assert_array_equal(again.scores_, recommender.scores_)
