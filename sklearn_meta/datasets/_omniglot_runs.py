"""Lake et al.'s 20 official one-shot classification runs on Omniglot."""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
from sklearn.utils import Bunch

from ..base import adapt
from ..tasks import Task
from ._omniglot import (
    _BASE_URL,
    ORIGINAL_SIZE,
    _Archive,
    _check_image_size,
    _decode_png,
    _fetch_archive,
    _resolve_data_home,
)

__all__ = ["load_omniglot_runs", "score_omniglot_runs"]

# The official file, byte for byte: python/one-shot-classification/all_runs.zip
# of github.com/brendenlake/omniglot (git blob 3c49ffe2485e..., sha256
# 437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325).
_RUNS_ARCHIVE = _Archive(
    "all_runs.zip",
    _BASE_URL + "one-shot-classification/all_runs.zip",
    "e8996daecdf12afeeb4a53a179f06b19",
    352_787,
)
_LABELS_FILE = "class_labels.txt"
_ENTRY = re.compile(r"^(run\d+)/(?:(training|test)/([^/]+)\.png|class_labels\.txt)$")

DESCR = """\
.. _omniglot_runs_dataset:

Omniglot one-shot classification runs
-------------------------------------

**Data Set Characteristics:**

:Number of Tasks: 20 runs of 20-way 1-shot classification
:Number of Instances: 800 images; per run 20 training images (one per class)
    and 20 test images (one per class)
:Image size: 105x105 binary images, returned with strokes = 1.0 and
    background = 0.0, optionally resized with PIL's Lanczos filter exactly as
    by ``load_omniglot``
:License: MIT License, Copyright (c) 2015 Brenden Lake
    (https://github.com/brendenlake/omniglot, file LICENSE)

The benchmark of Lake, Salakhutdinov and Tenenbaum (2015), read from the
official ``all_runs.zip``. Each run draws 20 characters from a single alphabet
of the evaluation set (10 alphabets, 2 runs each); its training images come
from one drawer and its test images from another. A test image is classified
correctly if it is assigned to the training image of its own character; the
error rate is the mean over the 20 runs, so each of the 400 test images counts
once. Models should be trained on the background set only
(``load_omniglot("background")``), which shares no alphabet with the runs.

Reported error rates: people 4.5%, Bayesian Program Learning 3.3%, Siamese
convolutional networks (Koch et al., 2015) 8.0% (92.0% accuracy), and the
modified Hausdorff distance of Lake's demo script 38.8%.

**References**

- B. M. Lake, R. Salakhutdinov and J. B. Tenenbaum, "Human-level concept
  learning through probabilistic program induction", Science 350(6266),
  1332-1338, 2015.
- G. Koch, R. Zemel and R. Salakhutdinov, "Siamese Neural Networks for
  One-shot Image Recognition", ICML Deep Learning Workshop, 2015.
"""


def load_omniglot_runs(
    *,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
    image_size: int | None = 28,
    return_X_y: bool = False,
) -> Bunch | list[Task]:
    """Load the 20 official 20-way 1-shot Omniglot runs of Lake et al. as tasks.

    Each run of ``all_runs.zip`` becomes one :class:`~sklearn_meta.tasks.Task`:
    its 20 training images (one per character, all of one alphabet) are the
    support set and its 20 test images, drawn by another person, the query set.
    Images get the same preprocessing as :func:`load_omniglot` (inverted so
    that strokes are 1.0, resized with PIL's Lanczos filter), so a model
    meta-trained on ``load_omniglot("background")`` at the same ``image_size``
    applies directly. Score one with :func:`score_omniglot_runs`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds (or will hold) ``omniglot/all_runs.zip``. By default
        the environment variable ``SKLEARN_META_DATA`` if set, else
        :func:`sklearn.datasets.get_data_home`, as for :func:`load_omniglot`.

    download : bool, default=True
        If the zip is missing, download it (0.35 MB) from the official
        repository (github.com/brendenlake/omniglot), check its md5 and move
        it into place. If False, a missing zip raises
        :class:`FileNotFoundError`. A zip already present is used as it is.

    image_size : int or None, default=28
        Side in pixels of the square images returned. None keeps the
        original 105x105 binary images (values exactly 0.0 and 1.0).

    return_X_y : bool, default=False
        If True, return the list of tasks instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        tasks : list of Task
            One task per run, in order ``run01`` to ``run20``, with

            - ``X_support``: float32 ndarray of shape
              (20, 1, image_size, image_size), the training images
              ``class01.png`` to ``class20.png``, in [0, 1], strokes = 1.0;
            - ``y_support``: ndarray of shape (20,), their labels
              ``"class01"`` to ``"class20"``;
            - ``X_query``: float32 ndarray of shape
              (20, 1, image_size, image_size), the test images
              ``item01.png`` to ``item20.png``;
            - ``y_query``: ndarray of shape (20,), the class of each test
              image as listed in the run's ``class_labels.txt``;
            - ``metadata``: ``{"run": "run01", "support_files": ...,
              "query_files": ...}``, the run and the zip entries of the
              images, in the order of the rows.

        DESCR : str
            Description of the dataset.

    tasks : list of Task
        If ``return_X_y`` is True, the list described above.

    Raises
    ------
    FileNotFoundError
        If the zip is missing and ``download=False``.
    PermissionError
        If the zip is missing and its folder is read-only.
    OSError
        If the download fails or has the wrong md5, or the zip is not laid out
        like the official ``all_runs.zip``.

    See Also
    --------
    score_omniglot_runs : Accuracy of a meta-learner on these runs.
    load_omniglot : The Omniglot images as a pool, for meta-training.

    References
    ----------
    .. [1] B. M. Lake, R. Salakhutdinov and J. B. Tenenbaum, "Human-level
       concept learning through probabilistic program induction", Science,
       2015.

    Examples
    --------
    >>> from sklearn_meta.datasets import load_omniglot_runs
    >>> runs = load_omniglot_runs()  # doctest: +SKIP
    >>> len(runs.tasks)  # doctest: +SKIP
    20
    >>> task = runs.tasks[0]  # doctest: +SKIP
    >>> task.X_support.shape, task.X_query.shape  # doctest: +SKIP
    ((20, 1, 28, 28), (20, 1, 28, 28))
    >>> task.y_query[0]  # doctest: +SKIP
    'class08'
    """
    _check_image_size(image_size)
    size = ORIGINAL_SIZE if image_size is None else int(image_size)
    zip_path = _fetch_archive(_RUNS_ARCHIVE, _resolve_data_home(data_home), download)
    tasks = _read_runs(zip_path, size)
    if return_X_y:
        return tasks
    return Bunch(tasks=tasks, DESCR=DESCR)


def score_omniglot_runs(
    estimator, tasks: Sequence[Task] | Bunch | None = None, **load_kwargs
) -> dict:
    """Accuracy of a meta-learner on Lake et al.'s 20 one-shot Omniglot runs.

    For each run the estimator is adapted to the 20 training images
    (``adapt(X_support, y_support)``), the adapted classifier predicts the 20
    test images, and the run's accuracy is the fraction it gets right. The
    score is the mean over runs, as in Lake's ``demo_classification.py``:
    every run has 20 test images, so each of the 400 counts once.

    For reference, people make about 4.5% errors on these runs (95.5%
    accuracy) and Koch et al. (2015) report 92.0% accuracy for Siamese
    convolutional networks. Meta-train on the background set only
    (``load_omniglot("background")``): the runs use evaluation alphabets.

    Parameters
    ----------
    estimator : meta-learner or Pipeline
        A fitted meta-learner with an ``adapt(X_support, y_support)`` method
        that returns a classifier with ``predict``, or a fitted
        :class:`~sklearn.pipeline.Pipeline` ending in one.
    tasks : list of Task or Bunch, default=None
        The runs, as returned by :func:`load_omniglot_runs` (the Bunch or its
        ``tasks``). None loads them with ``load_kwargs``.
    **load_kwargs : dict
        Passed to :func:`load_omniglot_runs` when ``tasks`` is None, for
        instance ``data_home`` or ``image_size`` (which must match the images
        the estimator was trained on).

    Returns
    -------
    scores : dict
        ``"accuracy"`` (float, mean over runs), ``"error_rate"``
        (``1 - accuracy``) and ``"per_run"`` (ndarray of shape (n_runs,),
        the accuracy of each run).

    Raises
    ------
    TypeError
        If ``estimator`` has no ``adapt`` method, or ``load_kwargs`` are given
        together with ``tasks``.
    ValueError
        If ``tasks`` is empty or an adapted classifier returns the wrong
        number of predictions.

    See Also
    --------
    load_omniglot_runs : The runs as tasks.

    References
    ----------
    .. [1] B. M. Lake, R. Salakhutdinov and J. B. Tenenbaum, "Human-level
       concept learning through probabilistic program induction", Science,
       2015.
    .. [2] G. Koch, R. Zemel and R. Salakhutdinov, "Siamese Neural Networks
       for One-shot Image Recognition", ICML Deep Learning Workshop, 2015.

    Examples
    --------
    A nearest-neighbour classifier on raw pixels: a prototypical network with
    a flattening embedding and no meta-training (its pool only fixes the image
    shape, 1x28x28). It gets about 21% right, against 5% for chance:

    >>> import numpy as np
    >>> import torch
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.datasets import score_omniglot_runs
    >>> pixels = PrototypicalClassifier(
    ...     module=torch.nn.Flatten(), max_epochs=0, n_way=2, k_shot=1, n_query=1
    ... ).fit(np.zeros((4, 1, 28, 28), dtype=np.float32), [0, 0, 1, 1])
    >>> scores = score_omniglot_runs(pixels)  # doctest: +SKIP
    >>> round(scores["accuracy"], 2)  # doctest: +SKIP
    0.21
    >>> scores["per_run"].shape  # doctest: +SKIP
    (20,)
    """
    if tasks is None:
        tasks = load_omniglot_runs(**load_kwargs, return_X_y=True)
    elif load_kwargs:
        raise TypeError(
            "score_omniglot_runs got tasks and also "
            f"{', '.join(sorted(load_kwargs))}, which are only used to load the "
            "runs when tasks is None. Pass them to load_omniglot_runs instead, "
            "or leave tasks out."
        )
    if isinstance(tasks, Bunch):
        tasks = tasks.tasks
    tasks = list(tasks)
    if not tasks:
        raise ValueError(
            "tasks is empty; pass the runs from load_omniglot_runs, or leave "
            "tasks out to load them."
        )
    per_run = np.empty(len(tasks))
    for i, task in enumerate(tasks):
        y_query = np.asarray(task.y_query)
        y_pred = np.asarray(
            adapt(estimator, task.X_support, task.y_support).predict(task.X_query)
        )
        if y_pred.shape != y_query.shape:
            raise ValueError(
                f"The classifier adapted to task {i} returned predictions of "
                f"shape {y_pred.shape} for {len(y_query)} query images; expected "
                f"shape {y_query.shape}. Its predict must return one label per "
                "sample."
            )
        per_run[i] = np.mean(y_pred == y_query)
    accuracy = float(per_run.mean())
    return {"accuracy": accuracy, "error_rate": 1.0 - accuracy, "per_run": per_run}


def _read_runs(zip_path, size: int) -> list[Task]:
    """Decode every run of ``all_runs.zip`` into a :class:`Task`."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            runs: dict[str, dict] = {}
            for name in archive.namelist():
                match = _ENTRY.match(name)
                if match is None:
                    continue
                run, part, _ = match.groups()
                entries = runs.setdefault(
                    run, {"training": [], "test": [], "labels": None}
                )
                if part is None:
                    entries["labels"] = name
                else:
                    entries[part].append(name)
            if not runs:
                raise OSError(
                    f"{zip_path} contains no 'runNN/training/*.png' entries, so it "
                    "is not the official all_runs.zip. Delete it and load again "
                    "with download=True, or replace it with the official file from "
                    f"{_RUNS_ARCHIVE.url}."
                )
            return [
                _read_run(archive, zip_path, run, runs[run], size)
                for run in sorted(runs)
            ]
    except zipfile.BadZipFile as exc:
        raise OSError(
            f"{zip_path} is not a valid zip file ({exc}). Delete it and load again "
            f"with download=True, or replace it with the official file from "
            f"{_RUNS_ARCHIVE.url}."
        ) from exc


def _read_run(
    archive: zipfile.ZipFile, zip_path, run: str, entries: dict, size: int
) -> Task:
    """One run: support = training images, query = test images, per its labels."""
    support_files = sorted(entries["training"])
    query_files = sorted(entries["test"])
    if entries["labels"] is None or not support_files or not query_files:
        raise OSError(
            f"{run} in {zip_path} lacks its {_LABELS_FILE}, training images or "
            "test images, so the file is not the official all_runs.zip. Replace "
            f"it with the official file from {_RUNS_ARCHIVE.url}."
        )
    answers = _parse_labels(archive.read(entries["labels"]), run, zip_path)
    if sorted(answers) != query_files or not set(answers.values()) <= set(
        support_files
    ):
        raise OSError(
            f"{run}/{_LABELS_FILE} in {zip_path} does not pair each of the run's "
            f"{len(query_files)} test images with one of its {len(support_files)} "
            "training images. Replace the zip with the official file from "
            f"{_RUNS_ARCHIVE.url}."
        )
    return Task(
        X_support=_decode_images(archive, zip_path, support_files, size),
        y_support=np.asarray([_class_of(name) for name in support_files]),
        X_query=_decode_images(archive, zip_path, query_files, size),
        y_query=np.asarray([_class_of(answers[name]) for name in query_files]),
        metadata={
            "run": run,
            "support_files": tuple(support_files),
            "query_files": tuple(query_files),
        },
    )


def _parse_labels(text: bytes, run: str, zip_path) -> dict[str, str]:
    """``class_labels.txt`` as ``{test entry: training entry}``.

    Each line reads ``runNN/test/itemMM.png runNN/training/classKK.png``.
    """
    answers = {}
    for number, line in enumerate(text.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if (
            len(fields) != 2
            or not fields[0].startswith(f"{run}/test/")
            or not fields[1].startswith(f"{run}/training/")
            or fields[0] in answers
        ):
            raise OSError(
                f"Line {number} of {run}/{_LABELS_FILE} in {zip_path} reads "
                f"{line!r}; expected a new '{run}/test/<item>.png "
                f"{run}/training/<class>.png' pair. Replace the zip with the "
                f"official file from {_RUNS_ARCHIVE.url}."
            )
        answers[fields[0]] = fields[1]
    return answers


def _decode_images(
    archive: zipfile.ZipFile, zip_path, names: list[str], size: int
) -> np.ndarray:
    """PNG entries as float32 ``(n, 1, size, size)``, as :func:`load_omniglot` does."""
    images = np.empty((len(names), size, size), dtype=np.uint8)
    for i, name in enumerate(names):
        try:
            images[i] = _decode_png(archive.read(name), size)
        except (OSError, ValueError, zlib.error) as exc:
            raise OSError(
                f"Could not decode {name} in {zip_path} ({exc}). The file is "
                "damaged: delete it and load again with download=True, or replace "
                f"it with the official file from {_RUNS_ARCHIVE.url}."
            ) from exc
    data = images.astype(np.float32)[:, None]
    data /= 255  # exact for 0 and 255, so 105x105 images stay binary
    return data


def _class_of(entry: str) -> str:
    """``"runNN/training/class17.png"`` -> ``"class17"``."""
    return PurePosixPath(entry).stem
