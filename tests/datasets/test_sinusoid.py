"""Tests of make_sinusoid_tasks: the MAML regression benchmark."""

import numpy as np
import pytest

from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.tasks import Task


def test_make_sinusoid_tasks_shapes_dtypes_and_ranges():
    """Check that tasks have the asked shapes, float32 arrays and in-range draws."""
    tasks = make_sinusoid_tasks(50, 5, 7, random_state=0)
    assert len(tasks) == 50
    for task in tasks:
        assert isinstance(task, Task)
        assert task.X_support.shape == (5, 1) and task.X_query.shape == (7, 1)
        assert task.y_support.shape == (5,) and task.y_query.shape == (7,)
        for array in (task.X_support, task.y_support, task.X_query, task.y_query):
            assert array.dtype == np.float32
        assert 0.1 <= task.metadata["amplitude"] <= 5.0
        assert 0.0 <= task.metadata["phase"] <= np.pi
        X = np.concatenate([task.X_support, task.X_query])
        assert (X >= -5.0).all() and (X <= 5.0).all()


def test_make_sinusoid_tasks_targets_follow_the_formula():
    """Check that y = amplitude * sin(x - phase) from each task's metadata."""
    tasks = make_sinusoid_tasks(
        20, 10, 10, amplitude_range=(1.0, 2.0), x_range=(0.0, 1.0), random_state=3
    )
    for task in tasks:
        amplitude, phase = task.metadata["amplitude"], task.metadata["phase"]
        assert 1.0 <= amplitude <= 2.0
        for X, y in ((task.X_support, task.y_support), (task.X_query, task.y_query)):
            np.testing.assert_allclose(
                y,
                amplitude * np.sin(X[:, 0].astype(np.float64) - phase),
                rtol=1e-6,
                atol=1e-6,
            )


def test_make_sinusoid_tasks_is_reproducible():
    """Check that the same random_state gives identical tasks, another differs."""
    first = make_sinusoid_tasks(5, random_state=42)
    second = make_sinusoid_tasks(5, random_state=np.random.RandomState(42))
    third = make_sinusoid_tasks(5, random_state=42)
    other = make_sinusoid_tasks(5, random_state=43)
    for a, b in zip(first, third):
        np.testing.assert_array_equal(a.X_support, b.X_support)
        np.testing.assert_array_equal(a.y_query, b.y_query)
        assert a.metadata == b.metadata
    assert first[0].metadata != other[0].metadata
    assert len(second) == 5
    generator = make_sinusoid_tasks(2, random_state=np.random.default_rng(0))
    assert generator[0].metadata == make_sinusoid_tasks(2, random_state=0)[0].metadata


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_tasks": 0}, "n_tasks must be a positive int; got 0"),
        ({"k_support": 2.5}, "k_support must be a positive int; got 2.5"),
        ({"k_query": True}, "k_query must be a positive int; got True"),
        (
            {"amplitude_range": (5.0, 0.1)},
            r"amplitude_range must be a pair \(low, high\)",
        ),
        ({"phase_range": (0.0, np.inf)}, "phase_range must be a pair"),
        ({"x_range": "ab"}, r"x_range must be a pair .* Pass for example x_range="),
        ({"x_range": (1.0, 2.0, 3.0)}, "x_range must be a pair"),
    ],
)
def test_make_sinusoid_tasks_rejects_bad_arguments(kwargs, match):
    """Check that invalid counts and ranges raise with the parameter named."""
    with pytest.raises(ValueError, match=match):
        make_sinusoid_tasks(**kwargs)
