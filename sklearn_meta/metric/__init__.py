"""Metric-based meta-learners: adapt by embedding the support set and comparing."""

from ._matching import MatchingNetworkClassifier
from ._prototypical import PrototypicalClassifier

__all__ = ["MatchingNetworkClassifier", "PrototypicalClassifier"]
