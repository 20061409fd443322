"""Learning, across data sets, which configuration to use on a new one."""

from __future__ import annotations

import copy
import os
from numbers import Integral
from typing import Any, NamedTuple

import joblib
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import get_scorer_names
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._sklearn import HasMethods, Interval, StrOptions, _fit_context
from ._datasets import Dataset, check_datasets
from ._evaluation import (
    _dataset_key,
    _DiskCache,
    _evaluate_portfolio,
    _parse_meta_features,
)
from ._metafeatures import MetaFeatureExtractor, _as_matrix, _feature_names
from ._portfolio import Portfolio, default_portfolio


class Recommendation(NamedTuple):
    """One recommended configuration.

    Attributes
    ----------
    rank : int
        1 for the configuration predicted best.
    name : str
        Its name in the portfolio.
    predicted_score : float
        The cross-validated score it is predicted to reach on the data set.
    estimator : estimator
        An unfitted copy of the configuration, ready to ``fit``.
    """

    rank: int
    name: str
    predicted_score: float
    estimator: Any


class AlgorithmRecommender(BaseEstimator):
    """Recommend a pipeline for a new data set from experience on past ones.

    ``fit`` evaluates every configuration of a portfolio by cross-validation
    on every training data set (in parallel, with a progress bar, each result
    cached on disk when ``cache_dir`` is set so that an interrupted run
    resumes where it stopped), describes each data set by meta-features, and
    learns to predict a configuration's score from the meta-features.
    ``recommend`` then ranks the portfolio for a new data set without training
    any of it there.

    Two strategies predict the scores:

    - ``"neighbors"`` (the default): the new data set's nearest training data
      sets in standardised meta-feature space vote, each configuration's
      predicted score being the distance-weighted mean of its scores there.
    - ``"model"``: a regression model (``ranker``, extra trees by default)
      learns a configuration's score *relative to the data set's mean score*
      from the meta-features and the configuration's identity, which ranks the
      configurations; the neighbours' mean score sets the level.

    Parameters
    ----------
    portfolio : Portfolio or dict of str to estimator, default=None
        The candidate configurations; ``None`` takes :func:`default_portfolio`
        for the task of the training data sets.
    meta_features : MetaFeatureExtractor, default=None
        How data sets are described; ``None`` uses the default fast set.
    strategy : {"neighbors", "model"}, default="neighbors"
        How scores on a new data set are predicted (see above).
    n_neighbors : int, default=5
        Training data sets that vote (both strategies use them).
    ranker : regressor, default=None
        The model of the ``"model"`` strategy; ``None`` is
        ``ExtraTreesRegressor(n_estimators=100, max_features=0.3,
        min_samples_leaf=2)``.
    cv : int, cross-validation generator or iterable, default=5
        How each configuration is scored on each training data set; an int
        gives stratified folds for classification.
    scoring : str or callable, default=None
        The score; ``None`` uses the estimators' ``score`` (accuracy, R²).
    n_jobs : int, default=None
        Evaluations run in parallel (joblib). ``None`` means the ``n_jobs``
        of the active :func:`joblib.parallel_config` (1 outside one); the
        backend is the active one, so under
        ``parallel_config(backend="dask")`` the evaluations run on a
        dask.distributed cluster. Each evaluation (one configuration on one
        data set, all its folds) is one task.
    cache_dir : str or path-like, default=None
        Where evaluations and meta-features are cached; ``None`` caches
        nothing. Each evaluation is written as soon as it finishes, by the
        worker that computed it, atomically; on a cluster, choose a directory
        the workers can reach as well (a shared file system).
    verbose : int, default=1
        0 is silent; 1 or more shows a progress bar while evaluating.
    random_state : int, RandomState instance or None, default=0
        Seeds the default portfolio's models, the meta-feature extractor's
        default and the ranker.

    Attributes
    ----------
    portfolio_ : Portfolio
        The portfolio used.
    configuration_names_ : list of str
        The configurations, the columns of ``scores_``.
    dataset_names_ : list of str
        The training data sets, the rows of ``scores_``.
    scores_ : ndarray of shape (n_datasets, n_configurations)
        Mean cross-validated scores; NaN where a configuration failed.
    fit_times_ : ndarray of shape (n_datasets, n_configurations)
        Seconds spent fitting each configuration, summed over folds.
    meta_features_ : ndarray of shape (n_datasets, n_meta_features)
        The training data sets' meta-features (NaN where undefined).
    meta_feature_names_ : ndarray of str
        Their names.
    n_evaluations_computed_ : int
        Evaluations this ``fit`` did not find in the cache when it started,
        and computed.

    See Also
    --------
    MetaSearchCV : Evaluate the recommended configurations first, within a
        budget.

    References
    ----------
    .. [1] P. Brazdil, C. Soares and J. Pinto da Costa, "Ranking learning
       algorithms: using IBL and meta-learning on accuracy and time results",
       Machine Learning 50, 2003.
    .. [2] M. Feurer, J. T. Springenberg and F. Hutter, "Initializing Bayesian
       hyperparameter optimization via meta-learning", AAAI 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_meta.selection import (
    ...     AlgorithmRecommender, MetaFeatureExtractor, make_meta_datasets)
    >>> recommender = AlgorithmRecommender(
    ...     portfolio={"logreg": LogisticRegression(), "knn": KNeighborsClassifier()},
    ...     meta_features=MetaFeatureExtractor(features={"general": "all"}),
    ...     n_neighbors=2, cv=3, verbose=0)
    >>> recommender.fit(make_meta_datasets(4, include_sklearn=False))
    AlgorithmRecommender(...)
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> [r.name for r in recommender.recommend(X, y, k=2)]
    ['knn', 'logreg']
    """

    _parameter_constraints: dict = {
        "portfolio": [Portfolio, dict, None],
        "meta_features": [MetaFeatureExtractor, None],
        "strategy": [StrOptions({"neighbors", "model"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "ranker": [HasMethods(["fit", "predict"]), None],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "n_jobs": [int, None],
        "cache_dir": [str, os.PathLike, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        portfolio: Portfolio | dict | None = None,
        meta_features: MetaFeatureExtractor | None = None,
        strategy: str = "neighbors",
        n_neighbors: int = 5,
        ranker: Any = None,
        cv: Any = 5,
        scoring: Any = None,
        n_jobs: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        verbose: int = 1,
        random_state: Any = 0,
    ):
        self.portfolio = portfolio
        self.meta_features = meta_features
        self.strategy = strategy
        self.n_neighbors = n_neighbors
        self.ranker = ranker
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, datasets: Any, y: None = None) -> AlgorithmRecommender:
        """Evaluate the portfolio on the data sets and learn to rank it.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            At least two training data sets, all classification or all
            regression.
        y : None
            Ignored.

        Returns
        -------
        self : AlgorithmRecommender
        """
        datasets = check_datasets(datasets, min_datasets=2)
        task = datasets[0].task
        # One seed for the portfolio, the extractor and the ranker, drawn once
        # so that a RandomState instance gives them all the same.
        self._seed = _int_seed(self.random_state)
        self._extractor = (
            MetaFeatureExtractor(random_state=self._seed)
            if self.meta_features is None
            else self.meta_features
        )
        self._extractor._check_features()
        self.portfolio_ = self._check_portfolio(task)
        self.configuration_names_ = list(self.portfolio_)
        self.dataset_names_ = [d.name for d in datasets]
        keys = [_dataset_key(d) for d in datasets]
        described = self._describe(datasets, keys)
        self.meta_feature_names_ = _feature_names(described)
        self.meta_features_ = _as_matrix(described, self.meta_feature_names_)
        self.scores_, self.fit_times_, self.n_evaluations_computed_ = (
            _evaluate_portfolio(
                datasets,
                self.portfolio_,
                dataset_keys=keys,
                cv=self.cv,
                scoring=self.scoring,
                n_jobs=self.n_jobs,
                cache_dir=self.cache_dir,
                verbose=self.verbose,
            )
        )
        failed = [
            name
            for name, row in zip(self.dataset_names_, self.scores_)
            if np.isnan(row).all()
        ]
        if failed:
            raise ValueError(
                f"Every portfolio configuration failed on data sets {failed}; "
                "check that they suit the portfolio's estimators."
            )
        self._fit_ranker(self.meta_features_, self.scores_)
        return self

    def _check_portfolio(self, task: str) -> Portfolio:
        """Return the portfolio to evaluate, checked."""
        if self.portfolio is None:
            return default_portfolio(task, random_state=self._seed)
        portfolio = (
            self.portfolio
            if isinstance(self.portfolio, Portfolio)
            else Portfolio(self.portfolio)
        )
        if portfolio.task != task:
            raise ValueError(
                f"The portfolio holds {portfolio.task} estimators but the data sets "
                f"are {task} tasks."
            )
        return portfolio

    def _describe(
        self, datasets: list[Dataset], keys: list[str] | None = None
    ) -> list[dict[str, float]]:
        """Meta-features of each data set by name, from the cache when there."""
        cache = _DiskCache(self.cache_dir, "meta_features")
        settings = joblib.hash(sorted(self._extractor.get_params().items()))[:16]
        keys = keys or [_dataset_key(d) for d in datasets]
        keys = [f"{key}_{settings}" for key in keys]
        described: list[Any] = [cache.get(key, _parse_meta_features) for key in keys]
        missing = [i for i, d in enumerate(described) if d is None]
        if missing:
            computed = self._extractor._describe([datasets[i] for i in missing])
            for i, values in zip(missing, computed):
                cache.put(keys[i], values)
                described[i] = values
        return described

    def _fit_ranker(self, meta: np.ndarray, scores: np.ndarray) -> None:
        """Learn to predict scores (n_datasets, n_configurations) from meta-features."""
        # Undefined measures take the column median, and measures undefined
        # for every training data set are dropped; standardising gives every
        # meta-feature the same say in distances.
        meta = _finite(meta)
        self._columns = ~np.isnan(meta).all(axis=0)
        self._encoder = make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler()
        )
        Z = self._encoder.fit_transform(meta[:, self._columns])
        # A configuration that failed on a data set counts as its worst there,
        # and loses ties to those that did not fail.
        worst = np.nanmin(scores, axis=1, keepdims=True)
        self._failed = np.isnan(scores)
        self._filled_scores = np.where(self._failed, worst, scores)
        k = min(self.n_neighbors, len(Z))
        self._neighbors = NearestNeighbors(n_neighbors=k).fit(Z)
        if self.strategy == "model":
            ranker = (
                ExtraTreesRegressor(
                    n_estimators=100,
                    max_features=0.3,
                    min_samples_leaf=2,
                    random_state=self._seed,
                )
                if self.ranker is None
                else clone(self.ranker)
            )
            relative = self._filled_scores - self._filled_scores.mean(
                axis=1, keepdims=True
            )
            self._ranker = ranker.fit(self._pair_features(Z), relative.ravel())

    def _predict_from_meta(self, meta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return predicted scores and the ranking they give, best first.

        Both have shape (n_datasets, n_configurations).
        """
        Z = self._encoder.transform(_finite(meta)[:, self._columns])
        distances, indices = self._neighbors.kneighbors(Z)
        # Inverse-distance weights; an exact match takes all the weight.
        weights = 1.0 / np.maximum(distances, 1e-12)
        weights /= weights.sum(axis=1, keepdims=True)
        predicted = np.einsum("nk,nkc->nc", weights, self._filled_scores[indices])
        failures = np.einsum("nk,nkc->nc", weights, self._failed[indices])
        if self.strategy == "model":
            relative = self._ranker.predict(self._pair_features(Z)).reshape(
                len(Z), len(self.configuration_names_)
            )
            predicted = predicted.mean(axis=1, keepdims=True) + relative
        order = np.stack([np.lexsort((f, -p)) for p, f in zip(predicted, failures)])
        return predicted, order

    def _pair_features(self, Z: np.ndarray) -> np.ndarray:
        """Rows of (meta-features, one-hot configuration) for every pair."""
        n_conf = len(self.configuration_names_)
        one_hot = np.tile(np.eye(n_conf), (len(Z), 1))
        return np.hstack([np.repeat(Z, n_conf, axis=0), one_hot])

    def predict_scores(self, datasets: Any) -> np.ndarray:
        """Predict every configuration's score on each data set.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            Data sets of the task seen in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_datasets, n_configurations)
            Columns follow ``configuration_names_``.
        """
        return self._rank(datasets)[0]

    def _rank(self, datasets: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return predicted scores of every configuration for meta-feature rows."""
        check_is_fitted(self, "scores_")
        datasets = check_datasets(datasets, task=self.portfolio_.task)
        meta = _as_matrix(self._describe(datasets), self.meta_feature_names_)
        return self._predict_from_meta(meta)

    def recommend(self, X: Any, y: Any, k: int | None = 5) -> list[Recommendation]:
        """Rank the portfolio for a new data set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The new data set's features.
        y : array-like of shape (n_samples,)
            Its targets.
        k : int or None, default=5
            How many configurations to return; ``None`` returns all, ranked.

        Returns
        -------
        recommendations : list of Recommendation
            Best first, each with its predicted score and an unfitted estimator.
        """
        check_is_fitted(self, "scores_")
        if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"k must be a positive int or None; got {k!r}.")
        predicted, order = self._rank([Dataset("new", X, y, self.portfolio_.task)])
        predicted, order = predicted[0], order[0, : k or None]
        return [
            Recommendation(
                rank=rank,
                name=self.configuration_names_[j],
                predicted_score=float(predicted[j]),
                estimator=self.portfolio_[self.configuration_names_[j]],
            )
            for rank, j in enumerate(order, start=1)
        ]

    def predict(self, datasets: Any) -> list[Any]:
        """Return the best configuration for each data set, unfitted.

        Parameters
        ----------
        datasets : list of Dataset or (X, y) pairs
            Data sets of the task seen in ``fit``.

        Returns
        -------
        estimators : list of estimator
            For each data set, an unfitted copy of the configuration predicted
            best, ready to ``fit`` on it.
        """
        _, order = self._rank(datasets)
        return [self.portfolio_[self.configuration_names_[j]] for j in order[:, 0]]


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


def _int_seed(random_state: Any) -> int | None:
    """Return an int seed for sub-estimators that must agree across calls."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return random_state
    return int(check_random_state(random_state).randint(2**31 - 1))


def leave_one_dataset_out(
    recommender: AlgorithmRecommender, *, default: str = "rf", k: int = 3
) -> dict[str, np.ndarray]:
    """Score a fitted recommender by leaving each training data set out in turn.

    For each training data set, the recommender's ranking model is refitted on
    the others (from the scores and meta-features ``fit`` stored, so nothing is
    evaluated again) and ranks the portfolio for the left-out one; its choices
    are then judged by their true cross-validated scores there.

    Parameters
    ----------
    recommender : AlgorithmRecommender
        A fitted recommender (three training data sets at least).
    default : str, default="rf"
        The portfolio configuration used as the fixed default to compare
        against (the random forest with default settings in the default
        portfolio).
    k : int, default=3
        The top-k recommendations whose best member is also reported.

    Returns
    -------
    results : dict of ndarray
        One entry per data set (like ``cv_results_``): ``"dataset"``,
        ``"recommended"`` (the top-1 name), ``"best_score"`` (of the best
        portfolio member), ``"top1_score"``, ``"topk_score"`` (the best of the
        top k), ``"default_score"``, and the regrets ``"top1_regret"``,
        ``"topk_regret"`` and ``"default_regret"`` (best score minus each).
    """
    check_is_fitted(recommender, "scores_")
    names = recommender.configuration_names_
    if default not in names:
        raise ValueError(
            f"default={default!r} is not a configuration of the portfolio; choose "
            f"one of {names}."
        )
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(names):
        raise ValueError(f"k must be an int in [1, {len(names)}]; got {k!r}.")
    n = len(recommender.dataset_names_)
    if n < 3:
        raise ValueError(
            f"Leaving one data set out needs a recommender fitted on at least 3 "
            f"data sets; this one saw {n}."
        )
    truth = recommender._filled_scores
    ranked = np.empty((n, len(names)), dtype=int)
    for i in range(n):
        keep = np.arange(n) != i
        held_out = copy.copy(recommender)
        held_out._fit_ranker(
            recommender.meta_features_[keep], recommender.scores_[keep]
        )
        _, order = held_out._predict_from_meta(recommender.meta_features_[i : i + 1])
        ranked[i] = order[0]
    rows = np.arange(n)
    best = truth.max(axis=1)
    top1 = truth[rows, ranked[:, 0]]
    topk = np.take_along_axis(truth, ranked[:, :k], axis=1).max(axis=1)
    fixed = truth[:, names.index(default)]
    return {
        "dataset": np.asarray(recommender.dataset_names_, dtype=object),
        "recommended": np.asarray([names[j] for j in ranked[:, 0]], dtype=object),
        "best_score": best,
        "top1_score": top1,
        "topk_score": topk,
        "default_score": fixed,
        "top1_regret": best - top1,
        "topk_regret": best - topk,
        "default_regret": best - fixed,
    }
