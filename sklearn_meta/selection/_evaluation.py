"""Cross-validated scores of portfolio members on data sets, cached on disk.

Each (data set, configuration) evaluation is stored as its own small JSON file
named by a hash of everything that determines its result: the data, the
configuration's parameters, the splitter and the scorer. A run that is
interrupted keeps every evaluation it finished, and a later run with the same
inputs reads them back instead of computing them again.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import check_cv, cross_validate

from ._datasets import Dataset
from ._portfolio import Portfolio


@dataclass
class _Evaluation:
    scores: list[float]
    fit_time: float
    score_time: float

    @property
    def mean(self) -> float:
        """Mean cross-validated score of the evaluation."""
        finite = [s for s in self.scores if np.isfinite(s)]
        return float(np.mean(finite)) if len(finite) == len(self.scores) else np.nan


class _DiskCache:
    """One JSON file per key under ``directory``; ``None`` keeps nothing."""

    def __init__(self, directory: str | os.PathLike | None, namespace: str):
        self.directory = None if directory is None else Path(directory) / namespace
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """Return the file of one evaluation, named by its key."""
        return self.directory / f"{key}.json"

    def get(self, key: str) -> Any:
        """Return the cached evaluation of ``key``, or None."""
        if self.directory is None:
            return None
        try:
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: Any) -> None:
        """Write one evaluation to its own file (atomically)."""
        if self.directory is None:
            return
        # Write then rename, so an interruption never leaves half a file.
        tmp = self._path(key).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, allow_nan=True))
        os.replace(tmp, self._path(key))


def _dataset_key(dataset: Dataset) -> str:
    return joblib.hash((dataset.X, dataset.y))


def _configuration_key(estimator: Any) -> str:
    return joblib.hash((repr(type(estimator)), clone(estimator).get_params(deep=True)))


def _evaluation_key(dataset_key: str, config_key: str, cv: Any, scoring: Any) -> str:
    return joblib.hash(
        (
            dataset_key,
            config_key,
            repr(cv),
            repr(scoring),
        )
    )


def _score_one(
    index: int, estimator: Any, X: np.ndarray, y: np.ndarray, cv: Any, scoring: Any
) -> tuple[int, _Evaluation]:
    with warnings.catch_warnings():
        # A configuration that fails on a data set scores NaN and ranks last;
        # sklearn's warning for it would repeat once per fold and data set.
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        result = cross_validate(
            clone(estimator), X, y, cv=cv, scoring=scoring, error_score=np.nan
        )
    return index, _Evaluation(
        scores=[float(s) for s in result["test_score"]],
        fit_time=float(np.sum(result["fit_time"])),
        score_time=float(np.sum(result["score_time"])),
    )


def _evaluate_portfolio(
    datasets: list[Dataset],
    portfolio: Portfolio,
    *,
    dataset_keys: list[str],
    cv: Any,
    scoring: Any,
    n_jobs: int | None,
    cache_dir: str | os.PathLike | None,
    verbose: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Score every configuration on every data set.

    ``dataset_keys`` are the data sets' :func:`_dataset_key`, computed once by
    the caller (who also keys the meta-features by them).

    Returns
    -------
    scores : ndarray of shape (n_datasets, n_configurations)
        Mean cross-validated score; NaN where the configuration failed.
    fit_times : ndarray of shape (n_datasets, n_configurations)
        Seconds spent fitting, summed over folds.
    n_computed : int
        Evaluations computed in this call (the others came from the cache).
    """
    cache = _DiskCache(cache_dir, "evaluations")
    names = list(portfolio)
    config_keys = [_configuration_key(portfolio[name]) for name in names]
    scores = np.full((len(datasets), len(names)), np.nan)
    fit_times = np.full_like(scores, np.nan)
    todo = []
    for i, (dataset, data_key) in enumerate(zip(datasets, dataset_keys)):
        classifier = dataset.task == "classification"
        folds = check_cv(cv, dataset.y, classifier=classifier)
        for j, config_key in enumerate(config_keys):
            key = _evaluation_key(data_key, config_key, folds, scoring)
            cached = cache.get(key)
            if cached is not None:
                evaluation = _Evaluation(**cached)
                scores[i, j], fit_times[i, j] = evaluation.mean, evaluation.fit_time
            else:
                todo.append((i, j, key, folds))
    if todo:
        jobs = (
            delayed(_score_one)(
                k, portfolio[names[j]], datasets[i].X, datasets[i].y, folds, scoring
            )
            for k, (i, j, _, folds) in enumerate(todo)
        )
        # Unordered, so each finished evaluation is cached the moment it
        # arrives: an interruption loses only the ones still running.
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)
        for k, evaluation in _progress(results, len(todo), verbose):
            i, j, key, _ = todo[k]
            cache.put(key, evaluation.__dict__)
            scores[i, j], fit_times[i, j] = evaluation.mean, evaluation.fit_time
    return scores, fit_times, len(todo)


def _progress(iterable: Any, total: int, verbose: int) -> Any:
    if verbose <= 0:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the extra
        return iterable
    return tqdm(iterable, total=total, desc="Evaluating portfolio", unit="fit")
