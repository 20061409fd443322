"""Class-disjoint splitters: folds whose test side holds classes never trained on.

:class:`ClassKFold` and :class:`ClassShuffleSplit` put every class of ``y``
either in the training or in the test side of a split, never in both. Used as
``cv=`` in :class:`~sklearn.model_selection.GridSearchCV` they tune
meta-hyper-parameters on held-out classes, which is what a meta-learner's
``score`` (the mean accuracy over evaluation episodes) expects.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from itertools import chain

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import (
    BaseCrossValidator,
    BaseShuffleSplit,
    KFold,
    ShuffleSplit,
)
from sklearn.utils import column_or_1d, indexable
from sklearn.utils.multiclass import type_of_target

__all__ = ["ClassKFold", "ClassShuffleSplit"]


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


class _ClassSplitMixin:
    """``split`` of the class splitters: encode ``y``, then split its classes."""

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
            it holds out.
        """
        _warn_groups_ignored(self, groups)
        X, y, groups = indexable(X, y, groups)
        codes = _encode_classes(self, y)
        n_classes = int(codes.max()) + 1 if codes.size else 0
        yield from self._class_splits(codes, n_classes)


class ClassKFold(_ClassSplitMixin, BaseCrossValidator):
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

    def _class_splits(self, codes: np.ndarray, n_classes: int):
        """Yield train and test indices, each fold's classes held out in turn."""
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


class ClassShuffleSplit(_ClassSplitMixin, BaseShuffleSplit):
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

    Notes
    -----
    Each call of ``split`` may draw other classes unless ``random_state`` is
    an integer.

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

    def _class_splits(self, codes: np.ndarray, n_classes: int):
        """Yield train and test indices, random classes held out each time."""
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
