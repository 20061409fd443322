"""Datasets for meta-learning: Omniglot, sine-wave tasks and small image pools."""

from ._digits import load_digits_images
from ._omniglot import load_omniglot
from ._omniglot_runs import load_omniglot_runs, score_omniglot_runs
from ._sinusoid import make_sinusoid_tasks

__all__ = [
    "load_digits_images",
    "load_omniglot",
    "load_omniglot_runs",
    "make_sinusoid_tasks",
    "score_omniglot_runs",
]
