"""Meta-learning ("learning to learn") with scikit-learn estimators over PyTorch."""

from .base import AdaptedClassifier, adapt
from .metric import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)
from .tasks import Task

__version__ = "0.1.0.dev0"

__all__ = [
    "AdaptedClassifier",
    "FineTuneClassifier",
    "MatchingNetworkClassifier",
    "PrototypicalClassifier",
    "SiameseClassifier",
    "Task",
    "__version__",
    "adapt",
]
