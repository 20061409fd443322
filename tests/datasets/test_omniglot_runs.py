"""Tests for sklearn_meta.datasets.load_omniglot_runs and score_omniglot_runs."""

import io
import re
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.utils import Bunch

from sklearn_meta import PrototypicalClassifier
from sklearn_meta.datasets import (
    _omniglot,
    load_omniglot,
    load_omniglot_runs,
    score_omniglot_runs,
)
from sklearn_meta.tasks import Task


@pytest.fixture(scope="module")
def runs(data_home):
    return load_omniglot_runs(data_home=data_home, download=False)


@pytest.fixture(scope="module")
def runs_zip(data_home):
    return data_home / "omniglot" / "all_runs.zip"


class _Oracle:
    """A stand-in meta-learner whose adapted classifier knows every answer."""

    def __init__(self, answers):
        self.answers = answers

    def adapt(self, X_support, y_support):
        return _Lookup(self.answers)


class _Lookup:
    def __init__(self, answers):
        self.answers = answers

    def predict(self, X):
        return np.asarray([self.answers[np.asarray(x).tobytes()] for x in X])


class _Constant:
    """A stand-in meta-learner that always predicts its first support label."""

    def adapt(self, X_support, y_support):
        return _Always(y_support[0])


class _Always:
    def __init__(self, label, n=None):
        self.label, self.n = label, n

    def predict(self, X):
        return np.full(len(X) if self.n is None else self.n, self.label)


# --------------------------------------------------------------------------- #
# The official runs
# --------------------------------------------------------------------------- #


def test_load_omniglot_runs_returns_20_tasks_in_a_bunch(runs):
    """Check that the Bunch holds 20 tasks, run01 to run20, and a description."""
    assert isinstance(runs, Bunch)
    assert "one-shot" in runs.DESCR
    assert len(runs.tasks) == 20
    assert all(isinstance(task, Task) for task in runs.tasks)
    assert [t.metadata["run"] for t in runs.tasks] == [
        f"run{i:02d}" for i in range(1, 21)
    ]


def test_load_omniglot_runs_images_are_float32_strokes_on_zero(runs):
    """Check that every support and query set is float32 strokes on zero."""
    for task in runs.tasks:
        for X in (task.X_support, task.X_query):
            assert X.shape == (20, 1, 28, 28)
            assert X.dtype == np.float32
            assert X.min() == 0.0 and X.max() == 1.0
            # Strokes are thin: most of each image is background.
            assert (X.reshape(20, -1) > 0.5).mean(axis=1).max() < 0.3


def test_load_omniglot_runs_labels_are_20_classes_covering_the_queries(runs):
    """Check that each run's support has 20 distinct classes, one per query."""
    classes = [f"class{i:02d}" for i in range(1, 21)]
    for task in runs.tasks:
        assert task.y_support.tolist() == classes
        assert len(task.y_query) == 20
        assert set(task.y_query) <= set(task.y_support)
        # Lake's runs use each character exactly once as a test item.
        assert sorted(task.y_query) == classes


def test_load_omniglot_runs_matches_class_labels_txt(runs, runs_zip):
    """Check that labels follow class_labels.txt, checked by hand for one line."""
    with zipfile.ZipFile(runs_zip) as archive:
        lines = archive.read("run01/class_labels.txt").decode().splitlines()
    assert lines[0] == "run01/test/item01.png run01/training/class08.png"
    task = runs.tasks[0]
    assert task.metadata["query_files"][0] == "run01/test/item01.png"
    assert task.y_query[0] == "class08"
    # And every other line of run07 the same way.
    with zipfile.ZipFile(runs_zip) as archive:
        lines = archive.read("run07/class_labels.txt").decode().splitlines()
    task = runs.tasks[6]
    for line in lines:
        test, train = line.split()
        i = int(re.search(r"item(\d+)\.png$", test).group(1)) - 1
        assert task.metadata["query_files"][i] == test
        assert task.y_query[i] == train.split("/")[-1][: -len(".png")]


def test_load_omniglot_runs_are_the_pngs_pixel_for_pixel(data_home, runs_zip):
    """Check that image_size=None gives each PNG inverted, 0.0 and 1.0 exactly."""
    tasks = load_omniglot_runs(data_home=data_home, image_size=None, return_X_y=True)
    assert isinstance(tasks, list) and len(tasks) == 20
    task = tasks[4]
    with zipfile.ZipFile(runs_zip) as archive:
        for X, name in [
            (task.X_support[16, 0], "run05/training/class17.png"),
            (task.X_query[2, 0], "run05/test/item03.png"),
        ]:
            png = Image.open(io.BytesIO(archive.read(name)))
            assert png.mode == "1" and png.size == (105, 105)
            ink = ~np.asarray(png)  # white (True) is background
            assert X.shape == (105, 105)
            np.testing.assert_array_equal(X, ink.astype(np.float32))


def test_load_omniglot_runs_preprocess_like_load_omniglot(
    data_home, runs, runs_zip, tmp_path
):
    """Check that a run image equals load_omniglot's image of the same PNG."""
    with zipfile.ZipFile(runs_zip) as archive:
        png = archive.read("run01/test/item01.png")
    fake = tmp_path / "omniglot" / "images_evaluation.zip"
    fake.parent.mkdir()
    with zipfile.ZipFile(fake, "w") as archive:
        for drawer in (1, 2):
            name = f"images_evaluation/Alpha/character01/0001_{drawer:02d}.png"
            archive.writestr(name, png)
    X, _ = load_omniglot(
        "evaluation", data_home=tmp_path, download=False, return_X_y=True
    )
    np.testing.assert_array_equal(runs.tasks[0].X_query[0], X[0])


def test_load_omniglot_runs_image_size(data_home):
    """Check that image_size sets the side of every image."""
    task = load_omniglot_runs(data_home=data_home, image_size=14, return_X_y=True)[0]
    assert task.X_support.shape == task.X_query.shape == (20, 1, 14, 14)


# --------------------------------------------------------------------------- #
# Scoring
# --------------------------------------------------------------------------- #


def test_score_omniglot_runs_is_1_for_a_perfect_classifier(runs):
    """Check that predicting every true label scores accuracy 1.0."""
    answers = {
        x.tobytes(): label
        for task in runs.tasks
        for x, label in zip(task.X_query, task.y_query)
    }
    scores = score_omniglot_runs(_Oracle(answers), runs)
    assert scores["accuracy"] == 1.0 and scores["error_rate"] == 0.0
    np.testing.assert_array_equal(scores["per_run"], np.ones(20))


def test_score_omniglot_runs_is_chance_for_a_constant(runs):
    """Check that a constant prediction gets 1 of 20 per run, accuracy 0.05."""
    scores = score_omniglot_runs(_Constant(), runs.tasks)
    np.testing.assert_allclose(scores["per_run"], np.full(20, 0.05))
    assert scores["accuracy"] == pytest.approx(0.05)
    assert scores["error_rate"] == pytest.approx(0.95)


def test_score_omniglot_runs_pixel_nearest_neighbour_beats_chance(data_home):
    """Check that nearest neighbour on raw pixels is well above chance (0.05)."""
    pixels = PrototypicalClassifier(
        module=torch.nn.Flatten(), max_epochs=0, n_way=2, k_shot=1, n_query=1
    ).fit(np.random.default_rng(0).random((4, 1, 28, 28), np.float32), [0, 0, 1, 1])
    scores = score_omniglot_runs(pixels, data_home=data_home, download=False)
    assert scores["per_run"].shape == (20,)
    # 84 of 400 (0.21) at 28x28; Koch et al. (2015) report 21.7% for 1-NN.
    assert 0.15 < scores["accuracy"] < 0.3


# --------------------------------------------------------------------------- #
# Errors and download
# --------------------------------------------------------------------------- #


def test_load_omniglot_runs_raises_when_zip_missing_and_download_false(tmp_path):
    """Check that a missing all_runs.zip without download says how to fix it."""
    expected = re.escape(str(tmp_path / "omniglot" / "all_runs.zip"))
    with pytest.raises(
        FileNotFoundError,
        match=f"all_runs.zip was not found at {expected}.*download=True",
    ):
        load_omniglot_runs(data_home=tmp_path, download=False)


@pytest.mark.parametrize("image_size", [0, -3, 2.5, "28", True])
def test_load_omniglot_runs_raises_for_bad_image_size(image_size, tmp_path):
    """Check that image_size must be a positive int or None."""
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        load_omniglot_runs(image_size=image_size, data_home=tmp_path, download=False)


def test_load_omniglot_runs_raises_for_a_zip_of_something_else(tmp_path):
    """Check that a zip without runs is reported as not the official file."""
    path = tmp_path / "omniglot" / "all_runs.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(OSError, match=r"not the official all_runs\.zip"):
        load_omniglot_runs(data_home=tmp_path, download=False)
    path.write_bytes(b"not a zip")
    with pytest.raises(OSError, match="is not a valid zip file"):
        load_omniglot_runs(data_home=tmp_path, download=False)


def test_load_omniglot_runs_downloads_the_official_zip(runs_zip, tmp_path, monkeypatch):
    """Check that download=True fetches the official URL and checks its md5."""
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(runs_zip.read_bytes())

    monkeypatch.setattr(_omniglot, "urlopen", fake_urlopen)
    tasks = load_omniglot_runs(data_home=tmp_path, return_X_y=True)
    assert calls == [
        "https://github.com/brendenlake/omniglot/raw/master/python/"
        "one-shot-classification/all_runs.zip"
    ]
    assert (tmp_path / "omniglot" / "all_runs.zip").read_bytes() == (
        runs_zip.read_bytes()
    )
    assert len(tasks) == 20

    monkeypatch.setattr(
        _omniglot, "urlopen", lambda url, timeout=None: io.BytesIO(b"x")
    )
    with pytest.raises(OSError, match=r"has md5 .*expected e8996daecdf12afe"):
        load_omniglot_runs(data_home=tmp_path / "other")
    assert not (tmp_path / "other" / "omniglot" / "all_runs.zip").exists()


def test_score_omniglot_runs_raises_for_tasks_and_load_kwargs(runs):
    """Check that loading arguments are refused when tasks are given."""
    with pytest.raises(TypeError, match="got tasks and also image_size"):
        score_omniglot_runs(_Constant(), runs, image_size=28)


def test_score_omniglot_runs_raises_for_no_tasks():
    """Check that an empty list of tasks is refused."""
    with pytest.raises(ValueError, match="tasks is empty"):
        score_omniglot_runs(_Constant(), [])


def test_score_omniglot_runs_raises_for_estimator_without_adapt(runs):
    """Check that an estimator without adapt is refused."""
    with pytest.raises(TypeError, match="has no adapt method"):
        score_omniglot_runs(object(), runs)


def test_score_omniglot_runs_raises_for_wrong_number_of_predictions(runs):
    """Check that a classifier returning the wrong number of labels is caught."""

    class Short:
        def adapt(self, X_support, y_support):
            return _Always("class01", n=3)

    with pytest.raises(ValueError, match=r"shape \(3,\) for 20 query images"):
        score_omniglot_runs(Short(), runs)
