"""Metric-based meta-learners: adapt by embedding the support set and comparing.

Also the baselines they are judged against: the transfer baseline
:class:`FineTuneClassifier` (a pre-trained embedding with a new head fitted per
support set), and the non-learned :class:`NearestCentroidClassifier` and
:class:`NearestNeighborClassifier` (raw features, nothing trained).
"""

from ._baselines import NearestCentroidClassifier, NearestNeighborClassifier
from ._finetune import FineTuneClassifier
from ._matching import MatchingNetworkClassifier
from ._prototypical import PrototypicalClassifier
from ._siamese import SiameseClassifier

__all__ = [
    "FineTuneClassifier",
    "MatchingNetworkClassifier",
    "NearestCentroidClassifier",
    "NearestNeighborClassifier",
    "PrototypicalClassifier",
    "SiameseClassifier",
]
