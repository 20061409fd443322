"""Meta-features: describing a whole data set by a vector of numbers."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._sklearn import Interval, StrOptions, _fit_context
from ._datasets import Dataset, check_datasets

#: The small, fast default set: pymfe group -> features. Each family of the
#: field is represented (simple, statistical, information-theoretic,
#: model-based, landmarking) by the measures that cost little on data sets of a
#: few thousand rows and that algorithm-selection studies find informative.
DEFAULT_FEATURES = {
    "general": [
        "nr_inst",
        "nr_attr",
        "nr_class",
        "attr_to_inst",
        "freq_class",
    ],
    "statistical": [
        "cor",
        "skewness",
        "kurtosis",
        "sd_ratio",
        "iq_range",
        "nr_outliers",
        "eigenvalues",
    ],
    "info-theory": ["class_ent", "attr_ent", "mut_inf", "ns_ratio"],
    "model-based": ["leaves", "tree_depth", "nodes_per_attr", "var_importance"],
    "landmarking": [
        "one_nn",
        "naive_bayes",
        "linear_discr",
        "best_node",
        "elite_nn",
    ],
}

#: Groups pymfe computes without a target: the regression meta-features take
#: these from pymfe and add target and landmarking measures of their own.
_UNSUPERVISED_GROUPS = ("general", "statistical", "info-theory")

#: Rows above which the extractor works on a stratified subsample (landmarkers
#: and model-based measures cost more than linear time).
_MAX_ROWS = 5000


def _pymfe():
    try:
        from pymfe.mfe import MFE
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "Meta-features need pymfe: pip install 'sklearn-meta[selection]'."
        ) from exc
    return MFE


class MetaFeatureExtractor(TransformerMixin, BaseEstimator):
    """Describe data sets by meta-features, as a scikit-learn transformer.

    Each *sample* this transformer sees is a whole data set, and each output
    row is that data set's meta-feature vector: simple measures (numbers of
    instances, attributes, classes), statistical ones (correlation, skewness,
    kurtosis of the attributes), information-theoretic ones (class entropy,
    mutual information), model-based ones (the shape of a decision tree fitted
    to it) and landmarks (the accuracy of fast learners). They are computed by
    `pymfe <https://pymfe.readthedocs.io>`_; measures with one value per
    attribute or class are summarised (mean and standard deviation by
    default).

    For regression data sets pymfe's supervised measures do not apply; the
    extractor then takes pymfe's unsupervised groups of ``X`` and adds target
    measures of its own: the skewness and kurtosis of ``y``, its absolute
    correlations with the attributes, and landmarks (the cross-validated R² of
    ridge regression, 1-nearest-neighbour and a decision stump).

    Parameters
    ----------
    features : "default", "all" or dict of str to list of str, default="default"
        Which meta-features. ``"default"`` is a small fast set covering every
        family (:data:`DEFAULT_FEATURES`); ``"all"`` is every measure of the
        five families; a dict maps pymfe groups to feature names.
    summary : tuple of str, default=("mean", "sd")
        pymfe summary functions for multi-valued measures.
    landmarking_folds : int, default=10
        Cross-validation folds of the landmarking measures (pymfe's
        ``num_cv_folds``).
    max_rows : int, default=5000
        Larger data sets are described from a random subsample of this many
        rows (stratified for classification).
    n_jobs : int, default=None
        Data sets described in parallel (joblib).
    random_state : int, RandomState instance or None, default=0
        Seeds pymfe's randomised measures and the subsample.

    Attributes
    ----------
    feature_names_out_ : ndarray of str
        The meta-feature names, the columns of :meth:`transform`'s output.
    task_ : {"classification", "regression"}
        The task of the data sets seen in ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris, load_wine
    >>> from sklearn_meta.selection import Dataset, MetaFeatureExtractor
    >>> data = [Dataset("iris", *load_iris(return_X_y=True)),
    ...         Dataset("wine", *load_wine(return_X_y=True))]
    >>> mfe = MetaFeatureExtractor(features={"general": ["nr_inst", "nr_class"]})
    >>> mfe.fit_transform(data)
    array([[  3., 150.],
           [  3., 178.]])
    >>> mfe.get_feature_names_out()
    array(['nr_class', 'nr_inst'], dtype=object)
    """

    _parameter_constraints: dict = {
        "features": [StrOptions({"default", "all"}), dict],
        "summary": [tuple, list],
        "landmarking_folds": [Interval(Integral, 2, None, closed="left")],
        "max_rows": [Interval(Integral, 20, None, closed="left")],
        "n_jobs": [int, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        features: str | dict = "default",
        summary: tuple[str, ...] = ("mean", "sd"),
        landmarking_folds: int = 10,
        max_rows: int = _MAX_ROWS,
        n_jobs: int | None = None,
        random_state: Any = 0,
    ):
        self.features = features
        self.summary = summary
        self.landmarking_folds = landmarking_folds
        self.max_rows = max_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, datasets: Any, y: None = None) -> MetaFeatureExtractor:
        """Fix the meta-feature names from the data sets.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            The data sets; all of one task.
        y : None
            Ignored.

        Returns
        -------
        self : MetaFeatureExtractor
        """
        self.fit_transform(datasets)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, datasets: Any, y: None = None) -> np.ndarray:
        """Fix the meta-feature names and describe the data sets.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            The data sets; all of one task.
        y : None
            Ignored.

        Returns
        -------
        meta_features : ndarray of shape (n_datasets, n_meta_features)
            NaN where a measure is undefined for a data set (for instance
            the correlation of a single attribute).
        """
        datasets = check_datasets(datasets)
        self._check_features()
        described = self._describe(datasets)
        self.task_ = datasets[0].task
        self.feature_names_out_ = _feature_names(described)
        self.n_features_in_ = len(self.feature_names_out_)
        return _as_matrix(described, self.feature_names_out_)

    def transform(self, datasets: Any) -> np.ndarray:
        """Describe data sets by the meta-features fixed in ``fit``.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            Data sets of the task seen in ``fit``.

        Returns
        -------
        meta_features : ndarray of shape (n_datasets, n_meta_features)
            Columns follow ``feature_names_out_``; NaN where a measure is
            undefined for a data set.
        """
        check_is_fitted(self, "feature_names_out_")
        datasets = check_datasets(datasets, task=self.task_)
        return _as_matrix(self._describe(datasets), self.feature_names_out_)

    def get_feature_names_out(self, input_features: None = None) -> np.ndarray:
        """Return the meta-feature names.

        Parameters
        ----------
        input_features : None
            Ignored: the inputs are data sets, not named columns.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def describe(self, dataset: Dataset) -> dict[str, float]:
        """Return one data set's meta-features by name.

        Parameters
        ----------
        dataset : Dataset or (X, y) pair
            The data set.

        Returns
        -------
        meta_features : dict of str to float
            Every measure computed for it (not only those fixed in ``fit``).
        """
        self._check_features()
        (checked,) = check_datasets([dataset])
        return self._describe([checked])[0]

    def _check_features(self) -> None:
        """Validate ``features``; return the groups and features to compute."""
        if isinstance(self.features, dict):
            valid = set(_pymfe().valid_groups())
            unknown = sorted(set(self.features) - valid)
            if unknown:
                raise ValueError(
                    f"features names unknown pymfe groups {unknown}; valid groups "
                    f"are {sorted(valid)}."
                )

    def _describe(self, datasets: list[Dataset]) -> list[dict[str, float]]:
        """Return the meta-feature rows of data sets."""
        # One seed for every data set, so that a data set's meta-features do
        # not depend on its position in the list (and can be cached alone).
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        return Parallel(n_jobs=self.n_jobs)(
            delayed(self._describe_one)(d, seed) for d in datasets
        )

    def _groups(self) -> dict[str, Any]:
        """Return the pymfe groups the chosen features need."""
        if self.features == "default":
            return DEFAULT_FEATURES
        if self.features == "all":
            return {g: "all" for g in DEFAULT_FEATURES}
        return self.features

    def _describe_one(self, dataset: Dataset, seed: int) -> dict[str, float]:
        """Return the meta-features of one data set."""
        X, y = _subsample(dataset, self.max_rows, seed)
        groups = self._groups()
        regression = dataset.task == "regression"
        if regression:
            groups = {g: f for g, f in groups.items() if g in _UNSUPERVISED_GROUPS}
        values = _extract(
            X,
            None if regression else y,
            groups,
            summary=self.summary,
            folds=self.landmarking_folds,
            seed=seed,
        )
        if regression:
            values.update(_regression_features(X, y, seed))
        return values


def _feature_names(described: list[dict[str, float]]) -> np.ndarray:
    """Sorted names of every measure computed for any of the data sets."""
    return np.asarray(sorted(set().union(*described)), dtype=object)


def _as_matrix(described: list[dict[str, float]], names: np.ndarray) -> np.ndarray:
    """Rows of measures in the order of ``names``; NaN where one is missing."""
    return np.array(
        [[d.get(n, np.nan) for n in names] for d in described], dtype=np.float64
    ).reshape(len(described), len(names))


def _subsample(dataset: Dataset, max_rows: int, seed: int) -> tuple[np.ndarray, ...]:
    X, y = dataset.X, dataset.y
    if len(X) <= max_rows:
        return X, y
    rng = np.random.RandomState(seed)
    if dataset.task == "classification":
        from sklearn.model_selection import train_test_split

        X, _, y, _ = train_test_split(
            X, y, train_size=max_rows, stratify=y, random_state=rng
        )
        return X, y
    rows = np.sort(rng.choice(len(X), max_rows, replace=False))
    return X[rows], y[rows]


def _extract(
    X: np.ndarray,
    y: np.ndarray | None,
    groups: dict[str, Any],
    *,
    summary: Any,
    folds: int,
    seed: int,
) -> dict[str, float]:
    if not groups:
        return {}
    names = [g for g in groups]
    wanted = [f for g in names for f in _as_list(groups[g])]
    all_features = "all" in [groups[g] for g in names]
    mfe = _pymfe()(
        groups=names,
        features="all" if all_features else wanted,
        summary=list(summary),
        num_cv_folds=folds,
        random_state=seed,
    )
    # pymfe warns for every measure it cannot compute (and leaves it NaN); the
    # NaN is the answer, so the warnings would only bury the user's console.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        # Precompute for the requested groups only: pymfe's default prepares
        # every group, which costs more than a small feature set itself.
        mfe.fit(X, y, precomp_groups=names, suppress_warnings=True, verbose=0)
        names_out, values = mfe.extract(suppress_warnings=True)
    return {n: _as_float(v) for n, v in zip(names_out, values)}


def _as_list(features: Any) -> list[str]:
    return [] if features == "all" else list(features)


def _as_float(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return np.nan
    return value if np.isfinite(value) else np.nan


def _regression_features(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Target measures and landmarks for a regression data set.

    The landmarks are the 3-fold cross-validated R² of learners that are
    cheap and differ in bias: a ridge regression (linear), 1-nearest-neighbour
    (local) and a decision stump (one axis-aligned split).
    """
    y = y.astype(np.float64)
    with np.errstate(all="ignore"):
        spread = X.std(axis=0) * y.std()
        cov = ((X - X.mean(axis=0)) * (y - y.mean())[:, None]).mean(axis=0)
        corr = np.abs(np.where(spread > 0, cov / np.where(spread > 0, spread, 1), 0))
    values = {
        "target_skewness": _as_float(stats.skew(y)),
        "target_kurtosis": _as_float(stats.kurtosis(y)),
        "target_cor.mean": _as_float(corr.mean()),
        "target_cor.max": _as_float(corr.max()),
    }
    cv = KFold(3, shuffle=True, random_state=seed)
    landmarks = {
        "landmark_ridge": make_pipeline(StandardScaler(), Ridge(1.0)),
        "landmark_one_nn": make_pipeline(StandardScaler(), KNeighborsRegressor(1)),
        "landmark_stump": DecisionTreeRegressor(max_depth=1, random_state=seed),
    }
    for name, model in landmarks.items():
        scores = cross_val_score(model, X, y, cv=cv, scoring="r2")
        values[name] = _as_float(np.clip(scores.mean(), -1.0, 1.0))
    return values
