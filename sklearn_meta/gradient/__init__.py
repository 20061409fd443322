"""Optimisation-based meta-learners: an initialisation adapted by gradient steps.

MAML (and first-order MAML), Reptile, ANIL and Meta-SGD, each a classifier
and a regressor, over one stateless inner loop that adapts a whole chunk of
tasks in one vectorised call.
"""

from ._anil import ANILClassifier, ANILRegressor
from ._base import BaseGradientLearner
from ._maml import MAMLClassifier, MAMLRegressor
from ._metasgd import MetaSGDClassifier, MetaSGDRegressor
from ._reptile import ReptileClassifier, ReptileRegressor

__all__ = [
    "ANILClassifier",
    "ANILRegressor",
    "BaseGradientLearner",
    "MAMLClassifier",
    "MAMLRegressor",
    "MetaSGDClassifier",
    "MetaSGDRegressor",
    "ReptileClassifier",
    "ReptileRegressor",
]
