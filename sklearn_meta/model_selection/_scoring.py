"""Episodic scores: the mean over episodes and its confidence interval.

Results are reported with the field's convention, the mean over episodes and
the half-width of its 95% confidence interval (:func:`mean_confidence_interval`,
:func:`episodic_score`, :func:`make_episodic_scorer`).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_is_fitted

from .._episodes import _is_task_collection
from .._sklearn import Interval, validate_params
from ..tasks import Task

__all__ = [
    "EpisodicScore",
    "episodic_score",
    "make_episodic_scorer",
    "mean_confidence_interval",
]


# --------------------------------------------------------------------------
# Confidence intervals and episodic scores
# --------------------------------------------------------------------------


#: Constraints of the episode-shape arguments, as on the learners.
_EPISODE_ARGS = {
    "n_way": [Interval(numbers.Integral, 2, None, closed="left"), None],
    "k_shot": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "n_query": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "n_episodes": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
}
_CONFIDENCE = [Interval(numbers.Real, 0, 1, closed="neither")]


@validate_params(
    {"scores": ["array-like"], "confidence": _CONFIDENCE},
    prefer_skip_nested_validation=True,
)
def mean_confidence_interval(
    scores: ArrayLike, confidence: float = 0.95
) -> tuple[float, float]:
    """Mean of per-episode scores and the half-width of its confidence interval.

    The interval is the normal approximation the few-shot literature reports,
    ``mean ± z * s / sqrt(n)``, with ``s`` the sample standard deviation
    (``ddof=1``) of the ``n`` scores and ``z = norm.ppf((1 + confidence) / 2)``
    (1.95996 for 95%).

    Parameters
    ----------
    scores : array-like of shape (n_episodes,)
        One score per episode, for instance the query accuracy of each.

    confidence : float, default=0.95
        Confidence level of the interval, in the open interval (0, 1).

    Returns
    -------
    mean : float
        Mean of ``scores``.

    half_width : float
        Half-width of the interval, so that it reads ``mean ± half_width``.
        NaN when there is a single score, whose spread is unknown.

    Notes
    -----
    Snell et al. (2017) report ``1.96 * s / sqrt(n)`` with the sample standard
    deviation (torchnet's ``AverageValueMeter``, ``ddof=1``) over 1,000 test
    episodes; the code of Finn et al. (2017) and of Chen et al. (2019) computes
    the same with ``np.std`` (``ddof=0``) over 600 episodes. Here ``ddof=1``
    gives the usual standard error of the mean; the two differ by a factor
    ``sqrt(n / (n - 1))``, 1.0008 for 600 episodes, and ``z`` differs from 1.96
    by 2e-5, both far below the two decimals reported. The normal
    approximation is too narrow for a few dozen episodes or fewer, where a
    Student t interval would be wider; the field uses hundreds.

    References
    ----------
    .. [1] J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for
       Few-shot Learning", NeurIPS 2017.
    .. [2] C. Finn, P. Abbeel and S. Levine, "Model-Agnostic Meta-Learning for
       Fast Adaptation of Deep Networks", ICML 2017.
    .. [3] W.-Y. Chen, Y.-C. Liu, Z. Kira, Y.-C. F. Wang and J.-B. Huang, "A
       Closer Look at Few-shot Classification", ICLR 2019.

    Examples
    --------
    >>> from sklearn_meta.model_selection import mean_confidence_interval
    >>> mean, half_width = mean_confidence_interval([0.9, 1.0, 0.8, 1.0])
    >>> print(f"{mean:.3f} ± {half_width:.3f}")
    0.925 ± 0.094
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(
            "scores must be a 1-D array with one score per episode; got an array "
            f"of shape {scores.shape}."
        )
    if scores.size == 0:
        raise ValueError(
            "scores is empty; a mean and a confidence interval need at least one score."
        )
    mean = float(np.mean(scores))
    if scores.size == 1:
        return mean, float("nan")
    z = norm.ppf(0.5 + confidence / 2)
    half_width = z * np.std(scores, ddof=1) / np.sqrt(scores.size)
    return mean, float(half_width)


class EpisodicScore(NamedTuple):
    """Result of an episodic evaluation: mean, confidence interval, all scores.

    Returned by :func:`episodic_score`. It is a named tuple, so it unpacks as
    ``mean, ci95, scores, confidence = result``.

    Parameters
    ----------
    mean : float
        Mean score over the episodes (accuracy for classifiers, R² for
        regressors).

    ci95 : float
        Half-width of the confidence interval of the mean at level
        ``confidence`` (named after the usual 95%), so the result reads
        ``mean ± ci95``. See :func:`mean_confidence_interval`.

    scores : ndarray of shape (n_episodes,)
        The score of every episode, read-only.

    confidence : float, default=0.95
        The confidence level of ``ci95``.

    See Also
    --------
    episodic_score : Evaluate a fitted meta-learner on episodes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_meta.model_selection import EpisodicScore
    >>> result = EpisodicScore(0.9731, 0.0042, np.full(600, 0.9731))
    >>> print(result)
    0.9731 ± 0.0042
    >>> print(result.format(percent=True))
    97.31 ± 0.42 %
    >>> result
    EpisodicScore(mean=0.9731, ci95=0.0042, n_episodes=600, confidence=0.95)
    """

    mean: float
    ci95: float
    scores: np.ndarray
    confidence: float = 0.95

    @property
    def n_episodes(self) -> int:
        """Number of episodes scored."""
        return len(self.scores)

    def format(self, *, percent: bool = False, digits: int | None = None) -> str:
        """Format the result as ``"mean ± half-width"``.

        Parameters
        ----------
        percent : bool, default=False
            Whether to write both numbers as percentages, the way few-shot
            accuracies are reported (``"97.31 ± 0.42 %"``).

        digits : int, default=None
            Number of decimals; None means 2 with ``percent=True`` and 4
            otherwise.

        Returns
        -------
        text : str
            The formatted result.
        """
        scale = 100.0 if percent else 1.0
        if digits is None:
            digits = 2 if percent else 4
        text = f"{scale * self.mean:.{digits}f} ± {scale * self.ci95:.{digits}f}"
        return f"{text} %" if percent else text

    def __str__(self) -> str:
        """Return ``mean ± half-width`` with 4 decimals."""
        return self.format()

    def __repr__(self) -> str:
        """Return the summary with the number of episodes, not every score."""
        return (
            f"EpisodicScore(mean={self.mean:.4g}, ci95={self.ci95:.4g}, "
            f"n_episodes={self.n_episodes}, confidence={self.confidence:g})"
        )


def _meta_learner_and_data(estimator: Any, X: ArrayLike) -> tuple[Any, ArrayLike]:
    """Return the meta-learner that scores episodes and the data it takes.

    For a :class:`~sklearn.pipeline.Pipeline` ending in a meta-learner, ``X``
    goes through the fitted transformers first, as in ``Pipeline.score``.
    """
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not callable(getattr(final, "_episodic_scores", None)):
        raise TypeError(
            f"{type(estimator).__name__} is not a meta-learner: it has no "
            "_episodic_scores method, so it cannot be scored on episodes. Pass a "
            "fitted sklearn_meta meta-learner (or a Pipeline ending in one), or "
            "score ordinary estimators with sklearn.model_selection.cross_val_score."
        )
    check_is_fitted(estimator)
    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        transform = estimator[:-1].transform
        if _is_task_collection(X):
            X = [_transform_task(task, transform) for task in X]
        else:
            X = transform(X)
    return final, X


def _transform_task(task: Task, transform) -> Task:
    """Return ``task`` with both sample sets passed through ``transform``."""
    X_support, X_query = transform(task.X_support), transform(task.X_query)
    return Task(X_support, task.y_support, X_query, task.y_query)


@validate_params(
    {
        "estimator": "no_validation",
        "X": "no_validation",
        "y": "no_validation",
        "groups": "no_validation",
        **_EPISODE_ARGS,
        "confidence": _CONFIDENCE,
    },
    prefer_skip_nested_validation=True,
)
def episodic_score(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    groups: ArrayLike | None = None,
    n_way: int | None = None,
    k_shot: int | None = None,
    n_query: int | None = None,
    n_episodes: int | None = None,
    confidence: float = 0.95,
    random_state: int | np.random.RandomState | None = None,
) -> EpisodicScore:
    """Score a fitted meta-learner on episodes drawn from ``(X, y)``.

    Draws ``n_episodes`` tasks from the pool, adapts the meta-learner to each
    support set and scores it on the query set (accuracy for classifiers, R²
    for regressors), then reports the mean and its confidence interval. Pass
    classes the learner never saw in ``fit`` to measure few-shot performance.

    Parameters
    ----------
    estimator : estimator instance
        A fitted meta-learner of this package, or a fitted
        :class:`~sklearn.pipeline.Pipeline` ending in one (``X`` then goes
        through the pipeline's transformers first).

    X : array-like of shape (n_samples, ...) or sequence of Task
        The pool to draw episodes from, or the tasks to score (each adapted to
        its support set and scored on its query set; ``y``, ``groups`` and
        the episode settings must then be None).

    y : array-like of shape (n_samples,), default=None
        Class labels (classification) or targets (regression with ``groups``)
        of the pool.

    groups : array-like of shape (n_samples,), default=None
        Task ids: each group is one task with its own labels. None draws
        episodes by class from ``y``.

    n_way : int, default=None
        Classes per episode; None uses the estimator's evaluation setting
        (``eval_n_way``, which defaults to ``n_way``). The same
        holds for ``k_shot``, ``n_query`` and ``n_episodes``.

    k_shot : int, default=None
        Support examples per class.

    n_query : int, default=None
        Query examples per class.

    n_episodes : int, default=None
        Number of episodes to score.

    confidence : float, default=0.95
        Confidence level of the interval, in the open interval (0, 1).

    random_state : int, RandomState instance or None, default=None
        Controls which episodes are drawn; None uses the estimator's own
        setting. Pass an int to score several learners on the same episodes.

    Returns
    -------
    result : EpisodicScore
        The mean score, the half-width of its confidence interval and the
        score of every episode.

    Raises
    ------
    TypeError
        If ``estimator`` is not a meta-learner (it has no ``_episodic_scores``).
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    make_episodic_scorer : The same as a scorer for ``scoring=``.
    mean_confidence_interval : How the interval is computed.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.model_selection import episodic_score
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = PrototypicalClassifier(n_way=2, k_shot=1, n_query=5, max_epochs=1,
    ...                              episodes_per_epoch=10, random_state=0)
    >>> clf = clf.fit(X[y < 5], y[y < 5])  # scored below on the digits 5-9
    >>> result = episodic_score(clf, X[y >= 5], y[y >= 5], n_episodes=600)
    >>> result.n_episodes
    600
    >>> print(result.format(percent=True))  # doctest: +SKIP
    80.87 ± 1.41 %
    """
    learner, X = _meta_learner_and_data(estimator, X)
    scores = learner._episodic_scores(
        X,
        y,
        groups=groups,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
    )
    mean, half_width = mean_confidence_interval(scores, confidence)
    scores = np.array(scores, dtype=float)
    scores.flags.writeable = False
    return EpisodicScore(mean, half_width, scores, float(confidence))


class _EpisodicScorer:
    """Callable ``scorer(estimator, X, y)`` made by :func:`make_episodic_scorer`.

    A class rather than a closure so that it pickles, for ``n_jobs > 1``.
    """

    _defaults = {
        "n_way": None,
        "k_shot": None,
        "n_query": None,
        "n_episodes": None,
        "random_state": 0,
        "return_ci": False,
    }

    def __init__(
        self,
        *,
        n_way: int | None,
        k_shot: int | None,
        n_query: int | None,
        n_episodes: int | None,
        random_state: int | np.random.RandomState | None,
        return_ci: bool,
    ) -> None:
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_episodes = n_episodes
        self.random_state = random_state
        self.return_ci = return_ci

    def __call__(
        self, estimator: Any, X: ArrayLike, y: ArrayLike | None = None, **kwargs: Any
    ) -> float | dict[str, float]:
        """Return the mean episodic score, or a dict with its interval."""
        groups = kwargs.pop("groups", None)
        if kwargs:
            raise TypeError(
                "The episodic scorer accepts groups as its only metadata; got "
                f"{', '.join(sorted(kwargs))}."
            )
        result = episodic_score(
            estimator,
            X,
            y,
            groups=groups,
            n_way=self.n_way,
            k_shot=self.k_shot,
            n_query=self.n_query,
            n_episodes=self.n_episodes,
            random_state=self.random_state,
        )
        if self.return_ci:
            return {"mean": result.mean, "ci95": result.ci95}
        return result.mean

    def get_metadata_routing(self) -> MetadataRequest:
        """Request ``groups`` when sklearn's metadata routing is enabled.

        Returns
        -------
        routing : MetadataRequest
            The scorer's request: ``groups`` (the task ids) for ``score``.
        """
        request = MetadataRequest(owner=self)
        request.score.add_request(param="groups", alias=True)
        return request

    def __repr__(self) -> str:
        """Return the call to make_episodic_scorer that makes this scorer."""
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, default in self._defaults.items()
            if getattr(self, name) is not default and getattr(self, name) != default
        ]
        return f"make_episodic_scorer({', '.join(changed)})"


@validate_params(
    {**_EPISODE_ARGS, "return_ci": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def make_episodic_scorer(
    *,
    n_way: int | None = None,
    k_shot: int | None = None,
    n_query: int | None = None,
    n_episodes: int | None = None,
    random_state: int | np.random.RandomState | None = 0,
    return_ci: bool = False,
) -> _EpisodicScorer:
    """Make a scorer that judges a meta-learner by its mean episodic score.

    The scorer is called as ``scorer(estimator, X, y)`` and fits sklearn's
    ``scoring=`` parameter of :func:`~sklearn.model_selection.cross_val_score`,
    :func:`~sklearn.model_selection.cross_validate` and
    :class:`~sklearn.model_selection.GridSearchCV`. It calls
    :func:`episodic_score` on the test fold; with :class:`ClassKFold` as ``cv``
    the test fold holds classes the learner never saw. Higher is better.

    Parameters
    ----------
    n_way : int, default=None
        Classes per episode; None uses the estimator's evaluation setting
        (``eval_n_way``, which defaults to ``n_way``). The same
        holds for ``k_shot``, ``n_query`` and ``n_episodes``.

    k_shot : int, default=None
        Support examples per class.

    n_query : int, default=None
        Query examples per class.

    n_episodes : int, default=None
        Number of episodes per test fold.

    random_state : int, RandomState instance or None, default=0
        Controls which episodes are drawn. The default int draws the same
        episodes for every candidate of a search, so their scores differ by
        the learners alone, not by the luck of the draw.

    return_ci : bool, default=False
        If False, the scorer returns the mean score (a float). If True, it
        returns ``{"mean": mean, "ci95": half_width}`` with the half-width of
        the 95% confidence interval; sklearn then treats it as two metrics,
        and :class:`~sklearn.model_selection.GridSearchCV` needs
        ``refit="mean"`` to choose by the mean.

    Returns
    -------
    scorer : callable
        A picklable callable ``scorer(estimator, X, y, groups=None)``. When
        sklearn's metadata routing is enabled, it requests ``groups`` (the task
        ids) and passes them on to the estimator.

    See Also
    --------
    episodic_score : Score once and keep every episode's score.
    ClassKFold : Class-disjoint folds for ``cv=``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.model_selection import ClassKFold, make_episodic_scorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scorer = make_episodic_scorer(n_way=2, k_shot=1, return_ci=True)
    >>> scorer
    make_episodic_scorer(n_way=2, k_shot=1, return_ci=True)
    >>> search = GridSearchCV(
    ...     PrototypicalClassifier(n_way=2, k_shot=1, n_query=3, max_epochs=1,
    ...                            episodes_per_epoch=10, random_state=0),
    ...     {"lr": [1e-3, 1e-2]}, scoring=scorer, refit="mean",
    ...     cv=ClassKFold(n_splits=2),
    ... ).fit(X, y)
    >>> "mean_test_ci95" in search.cv_results_
    True
    """
    return _EpisodicScorer(
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        n_episodes=n_episodes,
        random_state=random_state,
        return_ci=return_ci,
    )
