"""Tests for the on-disk cache of AlgorithmRecommender: corrupt entries."""

import json
import re
import shutil
import warnings

import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaFeatureExtractor,
    make_meta_datasets,
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
