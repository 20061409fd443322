"""The classifier side of the meta-learners, and the classifier ``adapt`` returns.

:class:`MetaClassifierMixin` makes a meta-learner a scikit-learn classifier:
after ``fit(X, y)`` it predicts over the classes of the pool (adapting to the
pool when first asked), its ``score`` is the episodic accuracy, and ``adapt``
returns an :class:`AdaptedClassifier` for a new support set.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._adapt import _AdaptedEstimator
from ._validation import _check_finite_outputs, _Pool

__all__ = ["AdaptedClassifier", "MetaClassifierMixin"]


def _softmax_numpy(logits: torch.Tensor) -> np.ndarray:
    """Class probabilities of ``logits`` ``(n, n_classes)`` as float64 NumPy."""
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


class MetaClassifierMixin(ClassifierMixin):
    """Classification behaviour of a meta-learner.

    After ``fit(X, y)`` the learner predicts over the classes of the pool (it
    adapts to the whole pool); ``score`` is the *episodic* accuracy;
    ``adapt`` returns an :class:`AdaptedClassifier` for a new support set.
    """

    _score_name = "acc"
    _classification = True
    #: Largest number of classes ``adapt`` accepts (None: no limit).
    _max_adapt_classes: int | None = None

    def _fit_pool(self, pool: _Pool | None) -> None:
        """Keep the pool's classes and defer the adaptation ``predict`` uses."""
        if pool is None:
            self.pool_state_ = None
            return
        pool = self._pool_to_adapt(pool)
        self.classes_ = pool.classes
        self._check_adapt_classes(len(pool.classes), "y")
        self._defer_pool_state(pool.X, torch.as_tensor(pool.codes), len(pool.classes))

    def _check_adapt_classes(self, n_classes: int, name: str = "y_support") -> None:
        """Raise unless a support set of ``n_classes`` classes can be adapted to."""
        if n_classes < 2:
            raise ValueError(
                f"{name} has {n_classes} class; a classifier needs at least 2 classes."
            )
        limit = self._max_adapt_classes
        if limit is not None and n_classes > limit:
            raise ValueError(
                f"{name} has {n_classes} classes but {type(self).__name__} can take at "
                f"most {limit}. Pass a support set with at most {limit} classes."
            )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities over the classes seen in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = self._check_X(X)
        if self.pool_state_ is None:
            raise NotFittedError(
                f"This {type(self).__name__} has no prediction over training classes: "
                "it was meta-trained on tasks rather than a labelled pool, or its "
                "parameters were reloaded with load_params. Call "
                "adapt(X_support, y_support) to get a classifier for a task."
            )
        logits = self._predict_logits(self.pool_state_, X)
        return _softmax_numpy(_check_finite_outputs(logits, self))

    def predict(self, X) -> np.ndarray:
        """Predict the class of each sample among the classes seen in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def adapt(self, X_support, y_support) -> AdaptedClassifier:
        """Adapt to a support set; return a new fitted classifier.

        The meta-learner is not changed, so it can serve many tasks.

        Parameters
        ----------
        X_support : array-like of shape (n_support, ...)
            Support samples, of the same sample shape as in ``fit``.
        y_support : array-like of shape (n_support,)
            Their labels (numbers or strings).

        Returns
        -------
        classifier : AdaptedClassifier
            A fitted, picklable classifier whose ``classes_`` are the support's
            labels.
        """
        return AdaptedClassifier(self).fit(X_support, y_support)

    def score(self, X, y=None, groups=None) -> float:
        """Mean accuracy over ``n_eval_episodes`` episodes drawn from ``(X, y)``.

        This is the few-shot evaluation: each episode adapts to its own support
        set and is scored on its query set, so ``(X, y)`` should hold classes
        never seen in ``fit``. Episodes come from a fixed seed, so different
        models are scored on the same episodes. For the mean with its 95%
        confidence interval use :func:`sklearn_meta.model_selection.episodic_score`.
        Given tasks instead of a pool, it adapts to each task's support set and
        scores its query set.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or sequence of Task
            A labelled pool, or tasks (then ``y`` and ``groups`` must be None).
        y : array-like of shape (n_samples,), default=None
            Labels of the pool.
        groups : array-like of shape (n_samples,), default=None
            Draw each episode within a group.

        Returns
        -------
        score : float
            Mean episodic accuracy.
        """
        return float(np.mean(self._episodic_scores(X, y, groups=groups)))

    def _episode_targets(self, pool: _Pool, sampler, support, query):
        """Support labels shared by every episode, and the query labels."""
        return sampler.support_labels(), torch.as_tensor(sampler.query_labels())

    def _episode_scores(self, outputs: torch.Tensor, y_query: torch.Tensor):
        """Accuracy ``(E,)`` of each episode's query logits ``(E, n_query, C)``."""
        y_query = y_query.to(outputs.device)
        return (outputs.argmax(-1) == y_query).double().mean(-1)

    def __sklearn_tags__(self):
        """Declare no NaN support and deterministic predictions."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class AdaptedClassifier(ClassifierMixin, _AdaptedEstimator):
    """A meta-learner adapted to one support set: an ordinary classifier.

    ``AdaptedClassifier(meta_learner).fit(X_support, y_support)`` is what
    ``meta_learner.adapt(X_support, y_support)`` returns. It keeps its own
    frozen view of the meta-learner, so refitting the meta-learner later does
    not change it; it pickles, sits in a Pipeline, and its ``score`` is the
    ordinary accuracy on its own classes. ``clone`` keeps the (fitted)
    meta-learner, so cloning and refitting adapts again, to a new support set.

    Parameters
    ----------
    meta_learner : meta-learner estimator, default=None
        A fitted meta-learning classifier (for instance a
        :class:`~sklearn_meta.PrototypicalClassifier`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of the support set.
    n_features_in_ : int
        Number of features (channels for images) seen in ``fit``.
    learner_ : meta-learner estimator
        The frozen view of the meta-learner used to predict.
    state_ : dict
        What adaptation produced (prototypes, adapted weights...).
    """

    _meta_mixin = MetaClassifierMixin
    _kind = "classifier"

    def fit(self, X, y):
        """Adapt the meta-learner to the support set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_support, ...)
            Support samples.
        y : array-like of shape (n_support,)
            Support labels.

        Returns
        -------
        self : AdaptedClassifier
            The adapted classifier.
        """
        learner = self._check_learner()
        X, y = self._check_support(learner, X, y)
        check_classification_targets(y)
        self.classes_, y_encoded = np.unique(y, return_inverse=True)
        learner._check_adapt_classes(len(self.classes_))
        self._adapt_to(learner, X, y_encoded, len(self.classes_))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return _softmax_numpy(self._outputs(X))

    def predict(self, X) -> np.ndarray:
        """Predict labels of the query samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
