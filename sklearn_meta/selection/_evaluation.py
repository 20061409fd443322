"""Cross-validated scores of portfolio members on data sets, cached on disk.

Each (data set, configuration) evaluation is stored as its own small JSON file
named by a hash of everything that determines its result: the data, the
configuration's parameters, the splitter and the scorer. A run that is
interrupted keeps every evaluation it finished, and a later run with the same
inputs reads them back instead of computing them again. An entry that cannot
be read back as the structure it was written with (a truncated or foreign
file) is reported by a warning and computed again.

An evaluation is one joblib task on whatever backend is active (loky,
threads, dask.distributed, ...). The task itself reads and writes the cache,
so a finished evaluation is on disk before its result travels back, and a
task run again after its worker died (dask resubmits the tasks of a lost
worker) reads what it had finished instead of computing it twice. Entries are
written to a temporary file and renamed, so concurrent writers on a shared
file system never leave half an entry.
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv

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
    """One JSON file per key under ``directory``; ``None`` keeps nothing.

    Instances are sent to joblib's workers with the tasks that read and write
    them, so the directory is made absolute here, where the caller's working
    directory is the one meant.
    """

    def __init__(self, directory: str | os.PathLike | None, namespace: str):
        self.directory = (
            None if directory is None else Path(directory).absolute() / namespace
        )
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """Return the file of one entry, named by its key."""
        return self.directory / f"{key}.json"

    def get(self, key: str, parse: Callable[[Any], Any], *, warn: bool = True) -> Any:
        """Return the cached entry of ``key``, or None when there is none.

        Parameters
        ----------
        key : str
            The entry's key.
        parse : callable
            Turns the decoded JSON into the entry, raising ``ValueError`` when
            it does not have the structure that was written.
        warn : bool, default=True
            Warn when the entry exists but cannot be read back. Workers read
            quietly: the caller has warned about that entry already.

        Returns
        -------
        entry : object or None
            ``parse``'s result; None when the entry is missing or unreadable,
            so that the caller computes and writes it again.
        """
        if self.directory is None:
            return None
        path = self._path(key)
        try:
            return parse(json.loads(path.read_bytes().decode("utf-8")))
        except FileNotFoundError:
            return None
        # ValueError covers bytes that are not UTF-8, text that is not JSON
        # and JSON of another structure alike.
        except (OSError, ValueError) as exc:
            if warn:
                warnings.warn(
                    f"Ignoring the unreadable cache entry {path} ({exc}); it is "
                    "computed again and overwritten.",
                    UserWarning,
                    stacklevel=2,
                )
            return None

    def put(self, key: str, value: Any) -> None:
        """Write one entry to its own file, atomically.

        The entry is written to a temporary file in the same directory, then
        renamed over the entry's file: a reader sees the old entry or the new
        one, never part of one, and of concurrent writers of one key the last
        rename wins. The temporary name is the writer's own (process id and a
        random part, so threads of one process differ too), and it is removed
        when writing or renaming fails.
        """
        if self.directory is None:
            return
        path = self._path(key)
        text = json.dumps(value, allow_nan=True)
        tmp = path.with_name(f"{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            # An interrupt (KeyboardInterrupt) as much as a failed write; only
            # a process killed between the two steps leaves its temporary
            # file, which no reader opens.
            tmp.unlink(missing_ok=True)
            raise


def _as_number(value: Any, what: str, *, finite: bool = False) -> float:
    """Return ``value`` as a float, or raise ValueError if it is not a number."""
    # bool is an int to Python but never a number that was written here.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too long for a float
        raise ValueError(f"{what} is not a float") from None
    if finite and not np.isfinite(number):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    return number


def _parse_evaluation(value: Any, n_splits: int) -> _Evaluation:
    """Return the evaluation written as ``value``, checked against ``n_splits``."""
    fields = {"scores", "fit_time", "score_time"}
    if not isinstance(value, dict) or set(value) != fields:
        raise ValueError(f"expected a mapping with keys {sorted(fields)}")
    scores = value["scores"]
    if not isinstance(scores, list) or len(scores) != n_splits:
        raise ValueError(f"'scores' is not a list of {n_splits} scores")
    # Scores are stored as the scorer gave them, NaN for a failed fit; times
    # are sums of durations.
    return _Evaluation(
        scores=[_as_number(s, "a score") for s in scores],
        fit_time=_as_number(value["fit_time"], "'fit_time'", finite=True),
        score_time=_as_number(value["score_time"], "'score_time'", finite=True),
    )


def _parse_meta_features(value: Any) -> dict[str, float]:
    """Return the meta-features written as ``value``: names to finite or NaN."""
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of meta-feature names to values")
    parsed = {name: _as_number(v, repr(name)) for name, v in value.items()}
    # Undefined measures are stored as NaN, never as infinities.
    infinite = [name for name, v in parsed.items() if np.isinf(v)]
    if infinite:
        raise ValueError(f"meta-features {infinite} are infinite")
    return parsed


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


def _cross_validate(
    estimator: Any, X: np.ndarray, y: np.ndarray, folds: Any, scoring: Any
) -> _Evaluation:
    """Cross-validate one configuration on one data set, a fold at a time.

    The folds run here, one after another, rather than through
    ``cross_validate``'s own ``Parallel``: under joblib's dask backend a
    nested ``Parallel`` goes back to the cluster whatever its ``n_jobs``, which
    would split one evaluation into tasks on several workers. The estimator's
    own parallelism (a forest's ``n_jobs``) is left to joblib's nesting rules.
    A fold whose fit or scoring raises scores NaN (``error_score=np.nan``), so
    a configuration that cannot fit a data set ranks last there instead of
    stopping the run, as ``cross_validate`` does when every fit fails.
    """
    scorer = check_scoring(estimator, scoring=scoring)
    scores, fit_time, score_time = [], 0.0, 0.0
    with warnings.catch_warnings():
        # A configuration that fails on a data set scores NaN and ranks last;
        # its warnings would repeat once per fold and data set.
        warnings.simplefilter("ignore", UserWarning)
        for train, test in folds.split(X, y):
            model = clone(estimator)
            start = time.perf_counter()
            try:
                model.fit(X[train], y[train])
            except Exception:
                scores.append(np.nan)
                fit_time += time.perf_counter() - start
                continue
            fit_time += time.perf_counter() - start
            start = time.perf_counter()
            try:
                scores.append(float(scorer(model, X[test], y[test])))
            except Exception:
                scores.append(np.nan)
            score_time += time.perf_counter() - start
    return _Evaluation(scores=scores, fit_time=fit_time, score_time=score_time)


def _score_one(
    index: int,
    estimator: Any,
    data: tuple[np.ndarray, np.ndarray],
    folds: Any,
    scoring: Any,
    *,
    cache: _DiskCache,
    key: str,
    n_splits: int,
) -> tuple[int, _Evaluation]:
    """Return the evaluation of one configuration on one data set, via the cache.

    The task joblib runs, in the caller's process or on a worker. An entry
    already in the cache (written by an earlier attempt of this task whose
    worker died before the result reached the caller) is returned without
    fitting anything; a computed one is written the moment it is computed,
    before it travels back. ``data`` is the data set's ``(X, y)``.
    """
    parse = functools.partial(_parse_evaluation, n_splits=n_splits)
    evaluation = cache.get(key, parse, warn=False)
    if evaluation is not None:
        return index, evaluation
    evaluation = _cross_validate(estimator, *data, folds, scoring)
    try:
        cache.put(key, evaluation.__dict__)
    except OSError:
        # A worker that cannot write there (no shared file system with the
        # caller) leaves the entry to the caller, which writes every result
        # it receives that it does not find in its cache.
        pass
    return index, evaluation


def _unordered_parallel(n_jobs: int | None) -> Parallel:
    """Return a ``Parallel`` yielding results as they finish, if the backend can.

    ``n_jobs`` goes to joblib as given, so that None defers to the active
    ``parallel_config`` (a dask cluster's workers, say) as joblib documents.
    """
    try:
        return Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:
        # The multiprocessing backend and those built on it (ray's) return a
        # list at the end only. Nothing is lost by waiting: each task has
        # written its entry to the cache when it finished.
        return Parallel(n_jobs=n_jobs)


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
    the caller (who also keys the meta-features by them). Each evaluation is
    one task of ``Parallel(n_jobs=n_jobs)`` on the active joblib backend, and
    it carries its data set: the arrays go as one tuple, which joblib's dask
    backend sends inside the task instead of scattering it. Scattered data
    lives on one worker and has no recipe dask could rebuild it from, so the
    death of that worker would cancel every task that needs it, where a task
    that holds its data is simply run again elsewhere. (loky still
    memory-maps large arrays, inside a tuple as anywhere.)

    Returns
    -------
    scores : ndarray of shape (n_datasets, n_configurations)
        Mean cross-validated score; NaN where the configuration failed.
    fit_times : ndarray of shape (n_datasets, n_configurations)
        Seconds spent fitting, summed over folds.
    n_computed : int
        Evaluations not in the cache when the call started, computed by it.
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
        n_splits = folds.get_n_splits(dataset.X, dataset.y)
        parse = functools.partial(_parse_evaluation, n_splits=n_splits)
        for j, config_key in enumerate(config_keys):
            key = _evaluation_key(data_key, config_key, folds, scoring)
            evaluation = cache.get(key, parse)
            if evaluation is not None:
                scores[i, j], fit_times[i, j] = evaluation.mean, evaluation.fit_time
            else:
                todo.append((i, j, key, folds, n_splits))
    if todo:
        jobs = (
            delayed(_score_one)(
                k,
                portfolio[names[j]],
                (datasets[i].X, datasets[i].y),
                folds,
                scoring,
                cache=cache,
                key=key,
                n_splits=n_splits,
            )
            for k, (i, j, key, folds, n_splits) in enumerate(todo)
        )
        results = _unordered_parallel(n_jobs)(jobs)
        for k, evaluation in _progress(results, len(todo), verbose):
            i, j, key, _, n_splits = todo[k]
            # The task wrote its entry where it ran; a worker that does not
            # share this file system wrote none here.
            parse = functools.partial(_parse_evaluation, n_splits=n_splits)
            if cache.get(key, parse, warn=False) is None:
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
