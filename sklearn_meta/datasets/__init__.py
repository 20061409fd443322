"""Datasets for meta-learning: Omniglot, image folders, sine-wave tasks, digits."""

from ._digits import load_digits_images
from ._image_folder import ImageFolderArray, load_image_folder
from ._omniglot import load_omniglot
from ._omniglot_runs import load_omniglot_runs, score_omniglot_runs
from ._sinusoid import make_sinusoid_tasks

__all__ = [
    "ImageFolderArray",
    "load_digits_images",
    "load_image_folder",
    "load_omniglot",
    "load_omniglot_runs",
    "make_sinusoid_tasks",
    "score_omniglot_runs",
]
