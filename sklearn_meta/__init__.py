"""Meta-learning ("learning to learn") with scikit-learn estimators over PyTorch."""

from .base import AdaptedClassifier, AdaptedRegressor, adapt
from .gradient import (
    ANILClassifier,
    ANILRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaSGDClassifier,
    MetaSGDRegressor,
    ReptileClassifier,
    ReptileRegressor,
)
from .memory import MANNClassifier, MetaLSTMClassifier
from .metric import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)
from .tasks import Task

#: The version of the package, a PEP 440 string.
__version__ = "0.1.0.dev0"

__all__ = [
    "ANILClassifier",
    "ANILRegressor",
    "AdaptedClassifier",
    "AdaptedRegressor",
    "FineTuneClassifier",
    "MAMLClassifier",
    "MAMLRegressor",
    "MANNClassifier",
    "MatchingNetworkClassifier",
    "MetaLSTMClassifier",
    "MetaSGDClassifier",
    "MetaSGDRegressor",
    "NearestCentroidClassifier",
    "NearestNeighborClassifier",
    "PrototypicalClassifier",
    "ReptileClassifier",
    "ReptileRegressor",
    "SiameseClassifier",
    "Task",
    "__version__",
    "adapt",
]
