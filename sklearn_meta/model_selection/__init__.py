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

from .._episodes import FewClassesWarning
from .._evaluation import SeenClassesWarning
from ._scoring import (
    EpisodicScore,
    episodic_score,
    make_episodic_scorer,
    mean_confidence_interval,
)
from ._split import ClassKFold, ClassShuffleSplit

__all__ = [
    "ClassKFold",
    "ClassShuffleSplit",
    "EpisodicScore",
    "FewClassesWarning",
    "SeenClassesWarning",
    "episodic_score",
    "make_episodic_scorer",
    "mean_confidence_interval",
]
