"""Portfolios: the named candidate pipelines algorithm selection chooses among."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import (
    SelectPercentile,
    f_classif,
    f_regression,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor


class Portfolio(Mapping):
    """Named candidate configurations: unfitted scikit-learn estimators.

    A portfolio maps a name to an unfitted estimator, usually a pipeline of
    preprocessing and a model with set hyper-parameters. It is a read-only
    mapping; :meth:`extend` and :meth:`from_product` build new ones.

    Parameters
    ----------
    configurations : mapping of str to estimator, or iterable of (str, estimator)
        The candidates. Every value must be a scikit-learn estimator with
        ``fit``, ``predict`` and ``get_params``; all must be classifiers or all
        regressors.

    Attributes
    ----------
    task : {"classification", "regression"}
        What the portfolio's estimators do.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_meta.selection import Portfolio
    >>> p = Portfolio({"logreg": LogisticRegression(), "1nn": KNeighborsClassifier(1)})
    >>> list(p), p.task
    (['logreg', '1nn'], 'classification')
    """

    def __init__(self, configurations: Any):
        items = (
            list(configurations.items())
            if isinstance(configurations, Mapping)
            else list(configurations)
        )
        checked: dict[str, BaseEstimator] = {}
        for i, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(
                    f"Portfolio entry {i} must be a (name, estimator) pair; got "
                    f"{item!r}."
                )
            name, estimator = item
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"Portfolio entry {i} needs a non-empty str name; got {name!r}."
                )
            if name in checked:
                raise ValueError(f"Portfolio name {name!r} appears more than once.")
            _check_estimator(name, estimator)
            checked[name] = estimator
        if not checked:
            raise ValueError("A portfolio needs at least one configuration.")
        kinds = {name: _task_of(est) for name, est in checked.items()}
        task = next(iter(kinds.values()))
        mismatched = [name for name, kind in kinds.items() if kind != task]
        if mismatched:
            raise ValueError(
                f"All portfolio entries must be {task} estimators like "
                f"{next(iter(kinds))!r}; {mismatched} are not."
            )
        self._configurations = checked
        self.task = task

    @classmethod
    def from_product(
        cls,
        preprocessors: Mapping[str, Any],
        models: Mapping[str, Any],
    ) -> Portfolio:
        """Build a portfolio of every preprocessing choice in front of every model.

        Parameters
        ----------
        preprocessors : mapping of str to transformer, list of steps or None
            Preprocessing choices. ``None`` (or ``"passthrough"``) means no
            preprocessing; a list of ``(name, transformer)`` steps chains them.
        models : mapping of str to estimator
            The models with their hyper-parameters.

        Returns
        -------
        portfolio : Portfolio
            Entries named ``"<preprocessor>+<model>"`` (only ``"<model>"`` for
            the ``None`` choice), each a :class:`~sklearn.pipeline.Pipeline`.
        """
        entries = {}
        for model_name, model in models.items():
            for prep_name, prep in preprocessors.items():
                if prep is None or prep == "passthrough":
                    steps, name = [], model_name
                else:
                    steps = (
                        list(prep) if isinstance(prep, list) else [(prep_name, prep)]
                    )
                    steps = [(step, clone(t)) for step, t in steps]
                    name = f"{prep_name}+{model_name}"
                entries[name] = Pipeline([*steps, ("model", clone(model))])
        return cls(entries)

    def extend(self, configurations: Any) -> Portfolio:
        """Return a new portfolio with more configurations appended.

        Parameters
        ----------
        configurations : mapping of str to estimator, or iterable of pairs
            The entries to add; their names must be new.

        Returns
        -------
        portfolio : Portfolio
        """
        extra = (
            list(configurations.items())
            if isinstance(configurations, Mapping)
            else list(configurations)
        )
        return Portfolio([*self._configurations.items(), *extra])

    def __getitem__(self, name: str) -> BaseEstimator:
        """Return an unfitted copy of the configuration called ``name``."""
        return clone(self._configurations[name])

    def __iter__(self) -> Iterator[str]:
        """Iterate over the configurations."""
        return iter(self._configurations)

    def __len__(self) -> int:
        """Return the number of configurations."""
        return len(self._configurations)

    def __repr__(self) -> str:
        """Return the portfolio's size and names."""
        names = list(self._configurations)
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        return f"Portfolio({len(names)} {self.task} configurations: {shown})"


def _check_estimator(name: str, estimator: Any) -> None:
    missing = [m for m in ("fit", "predict", "get_params") if not hasattr(estimator, m)]
    if isinstance(estimator, type) or missing:
        what = "a class" if isinstance(estimator, type) else type(estimator).__name__
        raise TypeError(
            f"Portfolio entry {name!r} is not a scikit-learn estimator instance "
            f"(got {what}"
            + (
                f", missing {missing}"
                if missing and not isinstance(estimator, type)
                else ""
            )
            + "). Pass an unfitted estimator such as LogisticRegression()."
        )


def _task_of(estimator: Any) -> str:
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise TypeError(
        f"Portfolio entries must be classifiers or regressors; "
        f"{type(estimator).__name__} is neither."
    )


def default_portfolio(
    task: str = "classification", *, random_state: int | None = 0
) -> Portfolio:
    """Return the default portfolio: preprocessing choices times tuned models.

    Classification has 28 configurations: standardisation, or standardisation
    then keeping the best half of the features (``SelectPercentile``), in
    front of logistic regression (C in 0.1, 1, 10), k-NN (k in 1, 5, 15), an
    RBF SVM (C in 1, 10), linear discriminant analysis and Gaussian naive
    Bayes; and no preprocessing or feature selection in front of a random
    forest (the default model), extra trees, histogram gradient boosting
    and a depth-5 decision tree. Regression has the analogues (ridge, k-NN,
    SVR, forests, boosting, a tree).

    Parameters
    ----------
    task : {"classification", "regression"}, default="classification"
        Which portfolio.
    random_state : int or None, default=0
        Seeds the randomised models so that scores are reproducible.

    Returns
    -------
    portfolio : Portfolio

    Examples
    --------
    >>> from sklearn_meta.selection import default_portfolio
    >>> portfolio = default_portfolio()
    >>> len(portfolio), portfolio["rf"]
    (28, Pipeline(steps=[('model', RandomForestClassifier(random_state=0))]))
    """
    if task == "classification":
        select = SelectPercentile(f_classif, percentile=50)
        scaled = {
            **{
                f"logreg_C{c:g}": LogisticRegression(C=c, max_iter=2000)
                for c in (0.1, 1, 10)
            },
            **{f"knn{k}": KNeighborsClassifier(k) for k in (1, 5, 15)},
            **{f"svc_C{c:g}": SVC(C=c) for c in (1, 10)},
            "lda": LinearDiscriminantAnalysis(),
            "gnb": GaussianNB(),
        }
        trees = {
            "rf": RandomForestClassifier(random_state=random_state),
            "extra_trees": ExtraTreesClassifier(random_state=random_state),
            "hgb": HistGradientBoostingClassifier(random_state=random_state),
            "tree_d5": DecisionTreeClassifier(max_depth=5, random_state=random_state),
        }
    elif task == "regression":
        select = SelectPercentile(f_regression, percentile=50)
        scaled = {
            **{f"ridge_a{a:g}": Ridge(alpha=a) for a in (0.1, 1, 10)},
            **{f"knn{k}": KNeighborsRegressor(k) for k in (1, 5, 15)},
            **{f"svr_C{c:g}": SVR(C=c) for c in (1, 10)},
        }
        trees = {
            "rf": RandomForestRegressor(random_state=random_state),
            "extra_trees": ExtraTreesRegressor(random_state=random_state),
            "hgb": HistGradientBoostingRegressor(random_state=random_state),
            "tree_d5": DecisionTreeRegressor(max_depth=5, random_state=random_state),
        }
    else:
        raise ValueError(
            f"task must be 'classification' or 'regression'; got {task!r}."
        )
    scaling = {
        "scale": StandardScaler(),
        "scale_select": [("scale", StandardScaler()), ("select", select)],
    }
    selection = {"none": None, "select": select}
    return Portfolio.from_product(scaling, scaled).extend(
        Portfolio.from_product(selection, trees)
    )
