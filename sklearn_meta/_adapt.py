"""Adaptation: the estimators ``adapt`` returns, and ``adapt`` for pipelines.

An adapted estimator is an ordinary fitted scikit-learn estimator: a frozen
view of the meta-learner plus the state adaptation produced (prototypes,
adapted weights...). The classifier and regressor sides subclass
:class:`_AdaptedEstimator`; :func:`adapt` adapts a meta-learner or a
:class:`~sklearn.pipeline.Pipeline` ending in one.
"""

from __future__ import annotations

import torch
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._data import _samples
from ._persistence import _TorchStateMixin
from ._validation import _check_finite_outputs, _check_X

__all__ = ["adapt"]


class _AdaptedEstimator(_TorchStateMixin, BaseEstimator):
    """What adapted classifiers and regressors share: a frozen meta-learner view."""

    #: The mixin a meta-learner must have to be adapted by this class.
    _meta_mixin: type
    #: "classifier" or "regressor", for messages.
    _kind: str

    def __init__(self, meta_learner=None):
        self.meta_learner = meta_learner

    def __sklearn_clone__(self):
        """Clone keeping the same fitted meta-learner (sklearn would copy it)."""
        return type(self)(self.meta_learner)

    def _check_learner(self):
        """Return the fitted meta-learner, or raise naming what was expected."""
        learner = self.meta_learner
        if not isinstance(learner, self._meta_mixin):
            raise TypeError(
                f"{type(self).__name__} needs a meta-learning {self._kind} of "
                f"sklearn_meta as meta_learner; got {type(learner).__name__}."
            )
        check_is_fitted(learner)
        return learner

    def _check_support(self, learner, X, y, y_kwargs: dict | None = None):
        """Validate the support set once, against the meta-learner's samples."""
        return _check_X(
            self,
            X,
            reset=True,
            sample_shape=learner.sample_shape_,
            y=y,
            y_kwargs=y_kwargs,
        )

    def _adapt_to(self, learner, X, targets, n_classes: int) -> None:
        """Adapt a frozen copy of ``learner`` to the support set ``(X, targets)``."""
        self.learner_ = learner._inference_copy()
        self.learner_.module_.eval()
        self.state_ = self.learner_._adapt(
            _samples(X).tensor(learner.device_),
            torch.as_tensor(targets, device=learner.device_),
            n_classes,
        )

    def _outputs(self, X) -> torch.Tensor:
        """Compute the adapted outputs for query samples ``X`` (validated once)."""
        check_is_fitted(self)
        X = _check_X(self, X, reset=False, sample_shape=self.learner_.sample_shape_)
        self.learner_.module_.eval()
        return _check_finite_outputs(
            self.learner_._predict_logits(self.state_, X), self
        )


def adapt(estimator, X_support, y_support):
    """Adapt a fitted meta-learner, or a Pipeline ending in one, to a support set.

    Parameters
    ----------
    estimator : meta-learner or Pipeline
        A fitted meta-learner, or a fitted :class:`~sklearn.pipeline.Pipeline`
        whose last step is one.
    X_support : array-like of shape (n_support, ...)
        Support samples, as the pipeline's first step takes them.
    y_support : array-like of shape (n_support,)
        Support labels.

    Returns
    -------
    adapted : estimator or Pipeline
        The adapted estimator; for a Pipeline, a new Pipeline with the same
        fitted preprocessing steps and the adapted estimator as its last step.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_meta import PrototypicalClassifier, adapt
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), PrototypicalClassifier(
    ...     n_way=2, k_shot=2, n_query=3, max_epochs=1, episodes_per_epoch=5,
    ...     random_state=0)).fit(X[y < 2], y[y < 2])
    >>> labels = ["virginica", "virginica", "setosa", "setosa"]
    >>> adapted = adapt(pipe, X[[100, 101, 0, 1]], labels)
    >>> adapted.predict(X[[102, 2]]).tolist()
    ['virginica', 'setosa']
    """
    if isinstance(estimator, Pipeline):
        check_is_fitted(estimator)
        head = estimator[:-1]
        X_support = head.transform(X_support) if len(head) else X_support
        name, last = estimator.steps[-1]
        adapted_last = adapt(last, X_support, y_support)
        return Pipeline([*estimator.steps[:-1], (name, adapted_last)])
    if not hasattr(estimator, "adapt"):
        raise TypeError(
            f"adapt needs a meta-learner or a Pipeline ending in one; got "
            f"{type(estimator).__name__}, which has no adapt method."
        )
    return estimator.adapt(X_support, y_support)
