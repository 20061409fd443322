"""Metric-based meta-learners: adapt by embedding the support set and comparing.

Also the transfer baseline they are judged against, :class:`FineTuneClassifier`
(a pre-trained embedding with a new head fitted per support set).
"""

from ._finetune import FineTuneClassifier
from ._matching import MatchingNetworkClassifier
from ._prototypical import PrototypicalClassifier
from ._siamese import SiameseClassifier

__all__ = [
    "FineTuneClassifier",
    "MatchingNetworkClassifier",
    "PrototypicalClassifier",
    "SiameseClassifier",
]
