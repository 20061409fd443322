"""Model selection for meta-learners: class-disjoint splits and episodic scores.

Few-shot evaluation judges a meta-learner on classes it never saw while it was
meta-trained. The splitters here make such folds from a labelled pool:
:class:`ClassKFold` and :class:`ClassShuffleSplit` put every class of ``y``
either in the training or in the test side of a split, never in both. Used as
``cv=`` in :class:`~sklearn.model_selection.GridSearchCV` they tune
meta-hyper-parameters on held-out classes, which is what a meta-learner's
``score`` (the mean accuracy over evaluation episodes) expects.

Results are reported with the field's convention, the mean over episodes and
the half-width of its 95% confidence interval (:func:`mean_confidence_interval`,
:func:`episodic_score`, :func:`make_episodic_scorer`).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterator
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm
from sklearn.model_selection import (
    BaseCrossValidator,
    BaseShuffleSplit,
    KFold,
    ShuffleSplit,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import column_or_1d, indexable
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "ClassKFold",
    "ClassShuffleSplit",
    "EpisodicScore",
    "episodic_score",
    "make_episodic_scorer",
    "mean_confidence_interval",
]


# --------------------------------------------------------------------------
# Class-disjoint splitters
# --------------------------------------------------------------------------


def _warn_groups_ignored(splitter: object, groups: ArrayLike | None) -> None:
    """Warn that a class splitter ignores ``groups``, as sklearn's KFold does."""
    if groups is not None:
        name = type(splitter).__name__
        warnings.warn(
            f"{name} ignores groups and splits by the classes in y. To hold out "
            "whole tasks given by groups, use sklearn.model_selection.GroupKFold "
            "or GroupShuffleSplit instead.",
            UserWarning,
            stacklevel=3,
        )


def _encode_classes(splitter: object, y: ArrayLike | None) -> np.ndarray:
    """Return the class code ``0..n_classes-1`` of every sample of ``y``.

    Parameters
    ----------
    splitter : object
        The splitter asking, named in error messages.
    y : array-like of shape (n_samples,) or None
        Class labels, any hashable values that NumPy can sort.

    Returns
    -------
    codes : ndarray of shape (n_samples,)
        Index of each sample's class in the sorted unique labels.
    """
    name = type(splitter).__name__
    if y is None:
        raise ValueError(
            f"{name} splits by the classes in y, so y is required; got y=None. "
            "Pass the class labels as y, or use sklearn.model_selection.GroupKFold "
            "to split by groups."
        )
    target_type = type_of_target(y, input_name="y")
    if target_type not in ("binary", "multiclass"):
        raise ValueError(
            f"{name} needs class labels in y; got a target of type "
            f"{target_type!r}. Pass one class label per sample, or use "
            "sklearn.model_selection.GroupKFold with task ids as groups for "
            "regression tasks."
        )
    _, codes = np.unique(column_or_1d(y), return_inverse=True)
    return codes


class ClassKFold(BaseCrossValidator):
    """K-fold cross-validator whose test folds hold classes unseen in training.

    The distinct values of ``y`` (the classes) are dealt into ``n_splits``
    folds; each class lands in exactly one test fold, and a split trains on the
    samples of all the other classes. This is the few-shot evaluation protocol
    (meta-train on some classes, evaluate episodes drawn from new ones) turned
    into a cross-validator for :func:`~sklearn.model_selection.cross_val_score`
    and :class:`~sklearn.model_selection.GridSearchCV`.

    Folds are balanced by **number of classes**, not number of samples: classes
    are dealt in contiguous blocks of the sorted labels (of a random
    permutation of them when ``shuffle=True``), so the first
    ``n_classes % n_splits`` folds get one class more, as
    :class:`~sklearn.model_selection.KFold` deals samples. Few-shot pools hold
    about equally many examples per class and an episode draws a fixed number
    per class anyway, so what a test fold must offer is enough classes for
    ``n_way``. To balance samples instead, use
    :class:`~sklearn.model_selection.GroupKFold` with ``groups=y``.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds. Must be at least 2 and at most the number of classes.

    shuffle : bool, default=False
        Whether to shuffle the classes before dealing them into folds. The
        samples within each split are not shuffled.

    random_state : int, RandomState instance or None, default=None
        When ``shuffle=True``, controls which classes go to which fold. Pass an
        int for the same assignment across calls. Must be None when
        ``shuffle=False``.

    See Also
    --------
    ClassShuffleSplit : Random class-disjoint train/test splits.
    sklearn.model_selection.GroupKFold : K-fold over groups; use it when
        ``groups`` are the tasks (ClassKFold ignores ``groups``).

    Notes
    -----
    An ordinary classifier scores zero on every test fold of this splitter,
    since it cannot predict classes it never saw. Only a learner whose
    ``score`` adapts to new classes, such as a meta-learner of this package,
    gives meaningful scores.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_meta.model_selection import ClassKFold
    >>> X = np.zeros((8, 2))
    >>> y = np.array(["cat", "cat", "dog", "dog", "emu", "emu", "fox", "fox"])
    >>> cv = ClassKFold(n_splits=2)
    >>> cv
    ClassKFold(n_splits=2, random_state=None, shuffle=False)
    >>> for train, test in cv.split(X, y):
    ...     print(np.unique(y[train]), np.unique(y[test]))
    ['emu' 'fox'] ['cat' 'dog']
    ['cat' 'dog'] ['emu' 'fox']
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        shuffle: bool = False,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        # Validate now, as sklearn's splitters do, with KFold's own messages.
        kfold = KFold(n_splits, shuffle=shuffle, random_state=random_state)
        self.n_splits = kfold.n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def split(
        self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its length is used.

        y : array-like of shape (n_samples,)
            Class labels, any hashable values. Required despite the default,
            which exists for API compatibility.

        groups : array-like of shape (n_samples,), default=None
            Ignored, with a warning when given.

        Yields
        ------
        train : ndarray
            The training set indices for that split.

        test : ndarray
            The testing set indices for that split: all samples of the classes
            held out in this fold.
        """
        _warn_groups_ignored(self, groups)
        X, y, groups = indexable(X, y, groups)
        codes = _encode_classes(self, y)
        n_classes = int(codes.max()) + 1 if codes.size else 0
        if self.n_splits > n_classes:
            raise ValueError(
                f"n_splits={self.n_splits} is larger than the number of classes "
                f"in y ({n_classes}). Lower n_splits or pass data with at least "
                f"{self.n_splits} classes."
            )
        kfold = KFold(
            self.n_splits, shuffle=self.shuffle, random_state=self.random_state
        )
        for _, test_classes in kfold.split(np.arange(n_classes)):
            test_mask = np.isin(codes, test_classes)
            yield np.flatnonzero(~test_mask), np.flatnonzero(test_mask)

    def get_n_splits(
        self,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> int:
        """Return the number of splitting iterations in the cross-validator.

        Parameters
        ----------
        X : object, default=None
            Always ignored, exists for API compatibility.

        y : object, default=None
            Always ignored, exists for API compatibility.

        groups : object, default=None
            Always ignored, exists for API compatibility.

        Returns
        -------
        n_splits : int
            Returns the number of splitting iterations in the cross-validator.
        """
        return self.n_splits


class ClassShuffleSplit(BaseShuffleSplit):
    """Random train/test splits that hold out whole classes.

    Each split draws a random set of classes (distinct values of ``y``) for
    the test side and trains on samples of other classes, like
    :class:`~sklearn.model_selection.GroupShuffleSplit` with ``groups=y``.
    Unlike :class:`ClassKFold`, a class may be in the test side of several
    splits, or of none.

    Parameters
    ----------
    n_splits : int, default=5
        Number of re-shuffling and splitting iterations.

    test_size : float or int, default=None
        If float, between 0.0 and 1.0: the proportion of the **classes** to
        hold out (rounded up). If int, the absolute number of test classes. If
        None, the complement of ``train_size``; if ``train_size`` is also None,
        0.2.

    train_size : float or int, default=None
        If float, between 0.0 and 1.0: the proportion of the classes to train
        on (rounded down). If int, the absolute number of training classes. If
        None, the complement of the test size.

    random_state : int, RandomState instance or None, default=None
        Controls which classes are drawn. Pass an int for reproducible output
        across multiple calls.

    See Also
    --------
    ClassKFold : Class-disjoint K-fold, each class tested exactly once.
    sklearn.model_selection.GroupShuffleSplit : The same over ``groups``; use
        it when ``groups`` are the tasks (ClassShuffleSplit ignores them).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_meta.model_selection import ClassShuffleSplit
    >>> X = np.zeros((20, 2))
    >>> y = np.repeat(np.arange(10), 2)
    >>> cv = ClassShuffleSplit(n_splits=3, test_size=3, random_state=0)
    >>> for train, test in cv.split(X, y):
    ...     print(len(np.unique(y[train])), len(np.unique(y[test])))
    7 3
    7 3
    7 3
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        test_size: float | int | None = None,
        train_size: float | int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(
            n_splits=n_splits,
            test_size=test_size,
            train_size=train_size,
            random_state=random_state,
        )
        self._default_test_size = 0.2

    def split(
        self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its length is used.

        y : array-like of shape (n_samples,)
            Class labels, any hashable values. Required despite the default,
            which exists for API compatibility.

        groups : array-like of shape (n_samples,), default=None
            Ignored, with a warning when given.

        Yields
        ------
        train : ndarray
            The training set indices for that split.

        test : ndarray
            The testing set indices for that split.

        Notes
        -----
        Randomized CV splitters may return different results for each call of
        split. You can make the results identical by setting ``random_state``
        to an integer.
        """
        _warn_groups_ignored(self, groups)
        X, y, groups = indexable(X, y, groups)
        codes = _encode_classes(self, y)
        n_classes = int(codes.max()) + 1 if codes.size else 0
        test_size = self.test_size
        if test_size is None and self.train_size is None:
            test_size = self._default_test_size
        # ShuffleSplit over the class codes draws the classes; its sizes are
        # validated on the first draw, so errors speak of "samples" there.
        class_splits = ShuffleSplit(
            self.n_splits,
            test_size=test_size,
            train_size=self.train_size,
            random_state=self.random_state,
        ).split(np.arange(n_classes))
        try:
            first = next(class_splits, None)
        except ValueError as exc:
            raise ValueError(
                f"ClassShuffleSplit counts test_size and train_size in classes, and "
                f"y has {n_classes}. {str(exc).replace('samples', 'classes')}"
            ) from exc
        if first is None:
            return
        for train_classes, test_classes in chain([first], class_splits):
            yield (
                np.flatnonzero(np.isin(codes, train_classes)),
                np.flatnonzero(np.isin(codes, test_classes)),
            )


# --------------------------------------------------------------------------
# Confidence intervals and episodic scores
# --------------------------------------------------------------------------


def _check_confidence(confidence: Any) -> None:
    """Raise a ValueError unless ``confidence`` is a real number in (0, 1)."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not 0 < confidence < 1
    ):
        raise ValueError(
            "confidence must be a float in the open interval (0, 1), such as "
            f"0.95 for a 95% interval; got {confidence!r}."
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
    _check_confidence(confidence)
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
        return self.format()

    def __repr__(self) -> str:
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
        X = estimator[:-1].transform(X)
    return final, X


def episodic_score(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike,
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

    X : array-like of shape (n_samples, ...)
        The pool to draw episodes from.

    y : array-like of shape (n_samples,)
        Class labels (classification) or targets (regression with ``groups``).

    groups : array-like of shape (n_samples,), default=None
        Task ids: each group is one task with its own labels. None draws
        episodes by class from ``y``.

    n_way : int, default=None
        Classes per episode; None uses the estimator's own setting. The same
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
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.model_selection import episodic_score
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = PrototypicalClassifier(n_way=2, k_shot=1, n_query=5, max_epochs=1,
    ...                              episodes_per_epoch=10, random_state=0)
    >>> result = episodic_score(clf.fit(X[y < 2], y[y < 2]), X, y, n_episodes=600)
    >>> result.n_episodes
    600
    >>> print(result.format(percent=True))  # doctest: +SKIP
    93.75 ± 1.02 %
    """
    _check_confidence(confidence)
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
        self, estimator: Any, X: ArrayLike, y: ArrayLike, **kwargs: Any
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
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, default in self._defaults.items()
            if getattr(self, name) is not default and getattr(self, name) != default
        ]
        return f"make_episodic_scorer({', '.join(changed)})"


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
        Classes per episode; None uses the estimator's own setting. The same
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
