"""Data sets as the samples of algorithm selection, and a family to learn from."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import datasets as skdatasets
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

#: What ``type_of_target`` says -> the learning task it belongs to.
_TASKS = {"binary": "classification", "multiclass": "classification"}
_TASKS["continuous"] = "regression"


@dataclass(frozen=True, eq=False)
class Dataset:
    """One supervised data set: the unit that algorithm selection learns from.

    Parameters
    ----------
    name : str
        A name unique among the data sets of one meta-training run; it labels
        rows of the recommender's performance table.
    X : ndarray of shape (n_samples, n_features)
        The features, numeric and without missing values.
    y : ndarray of shape (n_samples,)
        The targets: class labels (classification) or real values (regression).
    task : {"classification", "regression"}, default=None
        What the targets ask for; ``None`` reads it from ``y`` with
        :func:`~sklearn.utils.multiclass.type_of_target`. Say
        ``"regression"`` for integer-valued regression targets (counts,
        scores), which would otherwise read as class labels.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_meta.selection import Dataset
    >>> iris = Dataset("iris", *load_iris(return_X_y=True))
    >>> iris.task, iris.X.shape
    ('classification', (150, 4))
    """

    name: str
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    task: str | None = None

    def __post_init__(self) -> None:
        """Validate the data set once, when it is made."""
        object.__setattr__(self, "X", np.asarray(self.X))
        object.__setattr__(self, "y", np.asarray(self.y))
        object.__setattr__(self, "task", _target_task(self.y, self.name, self.task))

    def __repr__(self) -> str:
        """Return the name, shape and task, not the data."""
        n, d = self.X.shape if self.X.ndim == 2 else (len(self.X), "?")
        return f"Dataset({self.name!r}, n_samples={n}, n_features={d})"


def _target_task(y: np.ndarray, name: str, declared: str | None = None) -> str:
    if declared not in (None, "classification", "regression"):
        raise ValueError(
            f"Data set {name!r}: task must be 'classification', 'regression' or "
            f"None; got {declared!r}."
        )
    if declared == "regression":
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"Data set {name!r} is declared a regression task but its targets "
                f"are not numeric (dtype {y.dtype})."
            )
        return declared
    kind = type_of_target(y)
    if declared == "classification" and kind == "continuous":
        raise ValueError(
            f"Data set {name!r} is expected to be a classification task, but its "
            "targets are continuous values."
        )
    if kind not in _TASKS:
        raise ValueError(
            f"Data set {name!r} has targets of type {kind!r}; algorithm selection "
            "handles single-output classification (binary or multiclass labels) "
            "and regression (continuous values; declare integer-valued targets "
            "with task='regression')."
        )
    return _TASKS[kind]


def check_datasets(
    datasets: Any, *, task: str | None = None, min_datasets: int = 1
) -> list[Dataset]:
    """Validate a collection of data sets and return them as :class:`Dataset`.

    Parameters
    ----------
    datasets : iterable of Dataset or (X, y) pairs
        The data sets. Pairs are named ``"dataset_<i>"``.
    task : {"classification", "regression"}, default=None
        The task every data set must have; ``None`` asks only that they agree.
    min_datasets : int, default=1
        The fewest data sets accepted.

    Returns
    -------
    datasets : list of Dataset
        The validated data sets, ``X`` as float64 arrays.

    Raises
    ------
    ValueError
        For an empty collection, duplicate names, an empty or single-class data
        set, non-finite values, or data sets of different tasks.
    TypeError
        For an entry that is neither a :class:`Dataset` nor an ``(X, y)`` pair.
    """
    if isinstance(datasets, (Dataset, np.ndarray)) or not isinstance(
        datasets, Iterable
    ):
        raise TypeError(
            "datasets must be a list of Dataset objects or (X, y) pairs; got "
            f"{type(datasets).__name__}. Wrap a single data set in a list."
        )
    checked = [_check_dataset(entry, i, task) for i, entry in enumerate(datasets)]
    if len(checked) < min_datasets:
        raise ValueError(
            f"datasets holds {len(checked)} data set(s); at least {min_datasets} "
            "are needed."
        )
    names = [d.name for d in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"Data set names must be unique; {duplicates} appear more than once."
        )
    tasks = {d.name: d.task for d in checked}
    expected = task or next(iter(tasks.values()), None)
    mismatched = [n for n, t in tasks.items() if t != expected]
    if mismatched:
        raise ValueError(
            f"Every data set must be a {expected} task, but {mismatched} "
            f"{'is' if len(mismatched) == 1 else 'are'} not."
        )
    return checked


def _check_dataset(entry: Any, index: int, task: str | None = None) -> Dataset:
    if isinstance(entry, Dataset):
        name, X, y, declared = entry.name, entry.X, entry.y, entry.task
    elif isinstance(entry, tuple) and len(entry) == 2:
        name, (X, y), declared = f"dataset_{index}", entry, None
    else:
        raise TypeError(
            f"datasets[{index}] must be a Dataset or an (X, y) pair; got "
            f"{type(entry).__name__}."
        )
    if not isinstance(name, str) or not name:
        raise TypeError(f"datasets[{index}] needs a non-empty str name; got {name!r}.")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Data set {name!r}: X must be numeric ({exc}). Encode categorical "
            "columns first, for instance with OneHotEncoder."
        ) from exc
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(
            f"Data set {name!r}: X must be 2-d (n_samples, n_features); got shape "
            f"{X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"Data set {name!r} is empty: X has shape {X.shape}.")
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"Data set {name!r}: y must have shape ({X.shape[0]},) to match X; got "
            f"{y.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError(
            f"Data set {name!r} has missing or infinite values in X. Impute them "
            "before algorithm selection, for instance with "
            "sklearn.impute.SimpleImputer, and put the same imputer in front of "
            "the recommended pipeline."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"Data set {name!r} has missing or infinite values in y.")
    # A pair takes the expected task (integer-valued regression targets would
    # otherwise read as classes); a Dataset keeps the one it has.
    if declared is None and task is not None:
        declared = task if task == "regression" else None
    task = _target_task(y, name, declared)
    if task == "classification":
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"Data set {name!r} has a single class ({classes[0]!r}); a "
                "classification data set needs at least 2."
            )
    return Dataset(name, X, y, task)


def _sklearn_datasets(task: str) -> list[Dataset]:
    if task == "classification":
        loaders = {
            "iris": skdatasets.load_iris,
            "wine": skdatasets.load_wine,
            "breast_cancer": skdatasets.load_breast_cancer,
            "digits": skdatasets.load_digits,
        }
    else:
        loaders = {"diabetes": skdatasets.load_diabetes}
    return [
        Dataset(name, *load(return_X_y=True), task=task)
        for name, load in loaders.items()
    ]


def _log_uniform_int(rng: np.random.RandomState, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _add_noise_features(
    X: np.ndarray, rng: np.random.RandomState, max_noise: int
) -> np.ndarray:
    n_noise = rng.randint(0, max_noise + 1)
    if n_noise == 0:
        return X
    return np.hstack([X, rng.normal(size=(len(X), n_noise)) * X.std()])


def _generated_classification(
    rng: np.random.RandomState, n_samples: int, seed: int
) -> tuple[str, np.ndarray, np.ndarray]:
    kind = rng.choice(["linear", "clusters", "moons", "circles", "quantiles", "xor"])
    if kind in ("linear", "clusters"):
        n_features = _log_uniform_int(rng, 2, 60)
        n_informative = max(1, int(n_features * rng.uniform(0.1, 1.0)))
        n_redundant = min(n_features - n_informative, rng.randint(0, 6))
        n_classes = rng.randint(2, 6)
        clusters = 1 if kind == "linear" else rng.randint(2, 4)
        while n_classes * clusters > 2**n_informative:
            n_classes -= 1 if n_classes > 2 else 0
            clusters = max(1, clusters - 1)
        imbalance = rng.uniform(0.0, 0.8)
        weights = np.exp(-imbalance * np.arange(n_classes) * 1.5)
        X, y = skdatasets.make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_informative,
            n_redundant=n_redundant,
            n_classes=n_classes,
            n_clusters_per_class=clusters,
            weights=list(weights / weights.sum()),
            flip_y=rng.uniform(0.0, 0.15),
            class_sep=rng.uniform(0.5, 2.0),
            random_state=seed,
        )
        return kind, X, y
    noise_scale = rng.uniform(0.05, 0.35)
    if kind == "moons":
        X, y = skdatasets.make_moons(n_samples, noise=noise_scale, random_state=seed)
    elif kind == "circles":
        X, y = skdatasets.make_circles(
            n_samples,
            noise=noise_scale / 2,
            factor=rng.uniform(0.3, 0.8),
            random_state=seed,
        )
    elif kind == "quantiles":
        X, y = skdatasets.make_gaussian_quantiles(
            n_samples=n_samples,
            n_features=rng.randint(2, 8),
            n_classes=rng.randint(2, 5),
            random_state=seed,
        )
    else:
        n_features = rng.randint(2, 5)
        X = rng.uniform(-1, 1, size=(n_samples, n_features))
        y = (np.prod(np.sign(X[:, :2]), axis=1) > 0).astype(int)
        flip = rng.uniform(size=n_samples) < noise_scale / 3
        y[flip] = 1 - y[flip]
    return kind, _add_noise_features(X, rng, 20), y


def _generated_regression(
    rng: np.random.RandomState, n_samples: int, seed: int
) -> tuple[str, np.ndarray, np.ndarray]:
    kind = rng.choice(["linear", "sparse", "friedman1", "friedman2", "friedman3"])
    if kind in ("linear", "sparse"):
        n_features = _log_uniform_int(rng, 2, 60)
        fraction = rng.uniform(0.5, 1.0) if kind == "linear" else rng.uniform(0.05, 0.3)
        X, y = skdatasets.make_regression(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=max(1, int(n_features * fraction)),
            effective_rank=None if rng.uniform() < 0.5 else max(1, n_features // 3),
            noise=rng.uniform(0.0, 30.0),
            random_state=seed,
        )
        return kind, X, y
    noise = rng.uniform(0.0, 2.0)
    if kind == "friedman1":
        X, y = skdatasets.make_friedman1(
            n_samples, n_features=rng.randint(5, 20), noise=noise, random_state=seed
        )
    elif kind == "friedman2":
        X, y = skdatasets.make_friedman2(n_samples, noise=noise * 50, random_state=seed)
    else:
        X, y = skdatasets.make_friedman3(n_samples, noise=noise / 10, random_state=seed)
    return kind, _add_noise_features(X, rng, 10), y


def make_meta_datasets(
    n_generated: int = 100,
    *,
    task: str = "classification",
    include_sklearn: bool = True,
    n_samples: tuple[int, int] = (100, 1000),
    random_state: int | np.random.RandomState | None = 0,
) -> list[Dataset]:
    """Build a reproducible, varied family of data sets to meta-train on.

    Generated data sets vary in size, dimension, share of informative and
    redundant features, number of classes, class balance, label noise and the
    shape of the decision function (linear, multi-cluster, moons, circles,
    Gaussian quantiles, XOR; linear, sparse and Friedman regression), so that
    different portfolio members win on different data sets.

    Parameters
    ----------
    n_generated : int, default=100
        How many data sets to generate.
    task : {"classification", "regression"}, default="classification"
        The learning task of the family.
    include_sklearn : bool, default=True
        Put the data sets that ship with scikit-learn first (iris, wine,
        breast_cancer and digits; diabetes for regression).
    n_samples : (int, int), default=(100, 1000)
        Bounds of the log-uniform number of samples of a generated data set.
    random_state : int, RandomState instance or None, default=0
        Seeds the family: the same value gives the same data sets.

    Returns
    -------
    datasets : list of Dataset
        Named ``"<kind>_<i>"`` for generated ones.

    Examples
    --------
    >>> from sklearn_meta.selection import make_meta_datasets
    >>> family = make_meta_datasets(3, include_sklearn=False, random_state=0)
    >>> [d.task for d in family]
    ['classification', 'classification', 'classification']
    """
    if task not in ("classification", "regression"):
        raise ValueError(
            f"task must be 'classification' or 'regression'; got {task!r}."
        )
    if not isinstance(n_generated, (int, np.integer)) or n_generated < 0:
        raise ValueError(f"n_generated must be an int >= 0; got {n_generated!r}.")
    low, high = n_samples
    if not 20 <= low <= high:
        raise ValueError(
            f"n_samples must be a pair (low, high) with 20 <= low <= high; got "
            f"{n_samples!r}."
        )
    rng = check_random_state(random_state)
    family = _sklearn_datasets(task) if include_sklearn else []
    generate = (
        _generated_classification if task == "classification" else _generated_regression
    )
    for i in range(n_generated):
        size = _log_uniform_int(rng, low, high)
        kind, X, y = generate(rng, size, int(rng.randint(2**31 - 1)))
        family.append(Dataset(f"{kind}_{i}", X, y, task=task))
    return family
