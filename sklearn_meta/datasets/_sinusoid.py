"""Sine-wave regression tasks, the few-shot regression benchmark of MAML."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._random import _as_generator
from ..tasks import Task

__all__ = ["make_sinusoid_tasks"]


def make_sinusoid_tasks(
    n_tasks: int = 1000,
    k_support: int = 10,
    k_query: int = 10,
    *,
    amplitude_range: tuple[float, float] = (0.1, 5.0),
    phase_range: tuple[float, float] = (0.0, np.pi),
    x_range: tuple[float, float] = (-5.0, 5.0),
    random_state=None,
) -> list[Task]:
    """Generate sine-wave regression tasks ``y = A sin(x - phase)``.

    Each task draws an amplitude ``A`` and a phase uniformly from their
    ranges, then ``k_support + k_query`` inputs ``x`` uniformly from
    ``x_range``. This is the regression benchmark of Finn et al. (2017).

    Parameters
    ----------
    n_tasks : int, default=1000
        Number of tasks.
    k_support : int, default=10
        Number of support points per task.
    k_query : int, default=10
        Number of query points per task.
    amplitude_range : tuple of (float, float), default=(0.1, 5.0)
        Range ``(low, high)`` of the amplitude ``A``.
    phase_range : tuple of (float, float), default=(0.0, np.pi)
        Range ``(low, high)`` of the phase, in radians.
    x_range : tuple of (float, float), default=(-5.0, 5.0)
        Range ``(low, high)`` of the inputs.
    random_state : int, RandomState instance, Generator or None, default=None
        Source of randomness. Pass an int for reproducible tasks.

    Returns
    -------
    tasks : list of Task
        ``n_tasks`` tasks. ``X_support`` is float32 of shape ``(k_support, 1)``,
        ``y_support`` float32 of shape ``(k_support,)``, likewise for the query
        set; ``metadata`` is ``{"amplitude": A, "phase": phase}``.

    References
    ----------
    .. [1] C. Finn, P. Abbeel and S. Levine, "Model-Agnostic Meta-Learning for
       Fast Adaptation of Deep Networks", ICML 2017.

    Examples
    --------
    >>> from sklearn_meta.datasets import make_sinusoid_tasks
    >>> tasks = make_sinusoid_tasks(n_tasks=3, k_support=5, k_query=8, random_state=0)
    >>> len(tasks), tasks[0].X_support.shape, tasks[0].y_query.shape
    (3, (5, 1), (8,))
    >>> sorted(tasks[0].metadata)
    ['amplitude', 'phase']
    """
    for name, value in (
        ("n_tasks", n_tasks),
        ("k_support", k_support),
        ("k_query", k_query),
    ):
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or value < 1
        ):
            raise ValueError(
                f"{name} must be a positive int; got {value!r}. Pass for example "
                f"{name}=10."
            )
    ranges = {}
    for name, value, example in (
        ("amplitude_range", amplitude_range, "(0.1, 5.0)"),
        ("phase_range", phase_range, "(0.0, np.pi)"),
        ("x_range", x_range, "(-5.0, 5.0)"),
    ):
        ranges[name] = _check_range(name, value, example)

    rng = _as_generator(random_state)
    n_points = k_support + k_query
    amplitudes = rng.uniform(*ranges["amplitude_range"], size=n_tasks)
    phases = rng.uniform(*ranges["phase_range"], size=n_tasks)
    X = rng.uniform(*ranges["x_range"], size=(n_tasks, n_points, 1)).astype(np.float32)
    # From the float32 inputs, so y matches the formula on the returned X.
    y = amplitudes[:, None] * np.sin(X[..., 0].astype(np.float64) - phases[:, None])
    y = y.astype(np.float32)
    return [
        Task(
            X[i, :k_support],
            y[i, :k_support],
            X[i, k_support:],
            y[i, k_support:],
            metadata={"amplitude": float(amplitudes[i]), "phase": float(phases[i])},
        )
        for i in range(n_tasks)
    ]


def _check_range(name: str, value, example: str) -> tuple[float, float]:
    """Validate a ``(low, high)`` pair of finite numbers with ``low <= high``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(
            f"{name} must be a pair (low, high) of finite numbers with low <= high; "
            f"got {value!r}. Pass for example {name}={example}."
        )
    return low, high
