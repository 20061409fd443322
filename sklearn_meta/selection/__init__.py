"""Algorithm selection: recommend a pipeline for a new data set from past ones.

The oldest meaning of meta-learning: learn, across many data sets, which
configuration (preprocessing, model, hyper-parameters) works where, so that a
new data set gets a good choice without a full search.
"""

from ._datasets import Dataset, check_datasets, make_meta_datasets
from ._metafeatures import DEFAULT_FEATURES, MetaFeatureExtractor
from ._portfolio import Portfolio, default_portfolio
from ._recommender import (
    AlgorithmRecommender,
    Recommendation,
    leave_one_dataset_out,
)
from ._search import MetaSearchCV

__all__ = [
    "DEFAULT_FEATURES",
    "AlgorithmRecommender",
    "Dataset",
    "MetaFeatureExtractor",
    "MetaSearchCV",
    "Portfolio",
    "Recommendation",
    "check_datasets",
    "default_portfolio",
    "leave_one_dataset_out",
    "make_meta_datasets",
]
