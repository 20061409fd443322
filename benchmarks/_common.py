"""What the benchmark scripts share: the machine description, the record, scoring.

The scripts run as ``python benchmarks/<name>.py``, so this folder is on
``sys.path`` and they import it as ``from _common import ...``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from skorch.callbacks import Callback

import sklearn_meta
from sklearn_meta.model_selection import episodic_score


def machine(device: str = "cpu") -> dict:
    """Describe the machine and library versions, for the record."""
    info = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "device": device,
        "versions": {
            "sklearn_meta": getattr(sklearn_meta, "__version__", None),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    if device != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def save_record(record: dict, path: str | None) -> dict:
    """Print the record as one JSON line and, with ``path``, write it there."""
    print(json.dumps(record))
    if path:
        Path(path).write_text(json.dumps(record, indent=2))
    return record


def time_call(fn, device: str = "cpu") -> float:
    """Seconds ``fn()`` takes, waiting for the device's queued work."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None
    if sync:
        sync()
    start = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - start


def score_settings(
    clf, X, y, settings, *, n_query: int, n_episodes: int, random_state
) -> list[dict]:
    """Episodic accuracy (%) of ``clf`` in each ``(n_way, k_shot)`` setting.

    Every learner scored with the same ``random_state`` sees the same episodes.
    """
    results = []
    for n_way, k_shot in settings:
        start = time.perf_counter()
        score = episodic_score(
            clf,
            X,
            y,
            n_way=n_way,
            k_shot=k_shot,
            n_query=n_query,
            n_episodes=n_episodes,
            random_state=random_state,
        )
        results.append(
            {
                "setting": f"{n_way}-way {k_shot}-shot",
                "accuracy": 100 * score.mean,
                "ci95": 100 * score.ci95,
                "eval_seconds": time.perf_counter() - start,
            }
        )
    return results


class TimeBudget(Callback):
    """Stop training (as EarlyStopping does) once ``seconds`` have passed.

    It lives here, not in a script, so that pickles of learners trained with
    it load wherever this folder is importable.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_train_begin(self, net, **kwargs):
        """Start the clock."""
        self.start_ = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        """Stop once the time is spent."""
        if training and time.perf_counter() - self.start_ > self.seconds:
            raise KeyboardInterrupt
