"""A hyper-parameter search warm-started by an algorithm recommender."""

from __future__ import annotations

import time
from numbers import Integral, Real
from typing import Any

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer_names
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_X_y

from .._sklearn import HasMethods, Interval, StrOptions
from ._recommender import AlgorithmRecommender


class MetaSearchCV(BaseSearchCV):
    """Search a portfolio in the order a recommender ranks it, within a budget.

    Where :class:`~sklearn.model_selection.GridSearchCV` cross-validates every
    candidate, ``MetaSearchCV`` asks a fitted :class:`AlgorithmRecommender`
    to rank its portfolio for the data passed to ``fit`` and cross-validates
    the candidates best-first, stopping after ``n_candidates`` of them or once
    ``time_budget`` seconds have passed, whichever comes first. The winner is
    refitted on the whole data, as sklearn's searches do.

    Each candidate is the search's one-step pipeline with its ``"model"``
    step set to a portfolio configuration, so ``best_estimator_`` is
    ``Pipeline([("model", <best configuration>)])`` and ``cv_results_`` has
    the columns of sklearn's searches plus ``"configuration"`` (the portfolio
    name) and ``"recommended_rank"``.

    Parameters
    ----------
    recommender : AlgorithmRecommender, default=None
        A fitted recommender (wrap it in
        :class:`~sklearn.frozen.FrozenEstimator` to keep it fitted when the
        search itself is cloned, for instance inside ``cross_val_score``).
    n_candidates : int, default=5
        The most candidates evaluated.
    time_budget : float, default=None
        Seconds after which no new candidates start; ``None`` sets no limit.
        At least one batch of candidates is always evaluated.
    scoring : str or callable, default=None
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    n_jobs : int, default=None
        Candidates and folds evaluated in parallel; candidates are taken in
        batches of ``n_jobs``. ``None`` means the active
        :func:`joblib.parallel_config`'s (all the worker threads of a dask
        cluster under ``parallel_config(backend="dask")``).
    refit : bool, default=True
        Refit the best candidate on the whole data.
    cv : int, cross-validation generator or iterable, default=None
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    verbose : int, default=0
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    pre_dispatch : int or str, default="2*n_jobs"
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    error_score : "raise" or float, default=np.nan
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    return_train_score : bool, default=False
        As in :class:`~sklearn.model_selection.GridSearchCV`.

    Attributes
    ----------
    recommendations_ : list of Recommendation
        The whole portfolio ranked for the data, best first.
    cv_results_ : dict of ndarray
        As in :class:`~sklearn.model_selection.GridSearchCV`, rows in the
        order evaluated (best recommended first).
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_,
    refit_time_, multimetric_
        As in :class:`~sklearn.model_selection.GridSearchCV`.
    search_time_ : float
        Seconds spent evaluating candidates (without the refit).

    References
    ----------
    .. [1] M. Feurer, J. T. Springenberg and F. Hutter, "Initializing Bayesian
       hyperparameter optimization via meta-learning", AAAI 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_meta.selection import (
    ...     AlgorithmRecommender, MetaFeatureExtractor, MetaSearchCV,
    ...     make_meta_datasets)
    >>> recommender = AlgorithmRecommender(
    ...     portfolio={"logreg": LogisticRegression(), "knn": KNeighborsClassifier()},
    ...     meta_features=MetaFeatureExtractor(features={"general": "all"}),
    ...     n_neighbors=2, cv=3, verbose=0,
    ... ).fit(make_meta_datasets(4, include_sklearn=False))
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> search = MetaSearchCV(recommender, n_candidates=1).fit(X, y)
    >>> print(search.cv_results_["configuration"])
    ['knn']
    """

    _parameter_constraints: dict = {
        "recommender": [HasMethods(["recommend"])],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "n_jobs": [int, None],
        "refit": ["boolean"],
        "cv": ["cv_object"],
        "verbose": ["verbose"],
        "pre_dispatch": [int, str],
        "error_score": [StrOptions({"raise"}), Real],
        "return_train_score": ["boolean"],
    }

    def __init__(
        self,
        recommender: AlgorithmRecommender | Any = None,
        *,
        n_candidates: int = 5,
        time_budget: float | None = None,
        scoring: Any = None,
        n_jobs: int | None = None,
        refit: bool = True,
        cv: Any = None,
        verbose: int = 0,
        pre_dispatch: int | str = "2*n_jobs",
        error_score: Any = np.nan,
        return_train_score: bool = False,
    ):
        self.recommender = recommender
        self.n_candidates = n_candidates
        self.time_budget = time_budget
        super().__init__(
            estimator=None,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )

    # BaseSearchCV reads ``self.estimator`` (to clone candidates, to tell a
    # classifier from a regressor); here it is derived from the recommender,
    # not a constructor parameter.
    @property
    def estimator(self) -> Pipeline:
        """The one-step pipeline whose ``"model"`` step the search varies."""
        recommender = self._checked_recommender()
        first = recommender.configuration_names_[0]
        return Pipeline([("model", recommender.portfolio_[first])])

    @estimator.setter
    def estimator(self, value: Any) -> None:
        """Ignore the value BaseSearchCV's constructor assigns."""
        # BaseSearchCV.__init__ assigns it; the property derives it instead.

    def _checked_recommender(self) -> AlgorithmRecommender:
        """Return the fitted recommender, or raise naming what was expected."""
        if self.recommender is None:
            raise ValueError(
                "MetaSearchCV needs a fitted AlgorithmRecommender as recommender; "
                "got None."
            )
        try:
            check_is_fitted(self.recommender, "scores_")
        except NotFittedError as exc:
            raise NotFittedError(
                "MetaSearchCV's recommender is not fitted. Fit it on past data sets "
                "first; to keep it fitted when the search is cloned (for instance "
                "by cross_val_score), wrap it in sklearn.frozen.FrozenEstimator."
            ) from exc
        return self.recommender

    def fit(self, X: Any, y: Any = None, **params: Any) -> MetaSearchCV:
        """Rank the portfolio for (X, y), then cross-validate best-first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        **params : dict
            Passed to the candidates' ``fit`` as in sklearn's searches.

        Returns
        -------
        self : MetaSearchCV
        """
        self._validate_params()
        recommender = self._checked_recommender()
        regression = recommender.portfolio_.task == "regression"
        # The recommender describes the data by meta-features, so it must be
        # a dense, finite table with one target column.
        X, y = check_X_y(X, y, ensure_min_samples=2, y_numeric=regression)
        if not regression:
            check_classification_targets(y)
        self.recommendations_ = recommender.recommend(X, y, k=None)
        self._started = time.perf_counter()
        self.search_time_ = 0.0
        super().fit(X, y, **params)
        return self

    def _run_search(self, evaluate_candidates: Any) -> None:
        """Evaluate recommended candidates, best first, within the budget."""
        ranked = self.recommendations_[: self.n_candidates]
        batch = max(1, effective_n_jobs(self.n_jobs))
        for start in range(0, len(ranked), batch):
            chunk = ranked[start : start + batch]
            evaluate_candidates(
                [{"model": clone(r.estimator)} for r in chunk],
                more_results={
                    "configuration": [r.name for r in chunk],
                    "recommended_rank": [r.rank for r in chunk],
                },
            )
            self.search_time_ = time.perf_counter() - self._started
            if self.time_budget is not None and self.search_time_ >= self.time_budget:
                break

    def __sklearn_tags__(self):
        """Declare the tags of the recommender's task."""
        try:
            tags = super().__sklearn_tags__()
        except (NotFittedError, ValueError):
            # Before the recommender is fitted there is no portfolio to read
            # the estimator type from.
            tags = BaseEstimator.__sklearn_tags__(self)
        tags.input_tags.sparse = False
        return tags
