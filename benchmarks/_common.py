"""What the benchmark scripts share: timing, data, scoring, tables and the record.

The scripts run as ``python benchmarks/<name>.py``, so this folder is on
``sys.path`` and they import it as ``from _common import ...``. Each script
times with :func:`timed` (or :func:`time_call`, or :class:`MetaIterationTimer`
inside a ``fit``), prints its tables with :func:`print_table` and ends with
:func:`write_record`, which adds the command, the machine and the date to its
figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch
from skorch.callbacks import Callback
from torch import nn

import sklearn_meta
from sklearn_meta.datasets import load_omniglot
from sklearn_meta.model_selection import episodic_score

REPO = Path(__file__).resolve().parents[1]
#: Where the scripts look for ``omniglot/images_*.zip`` unless ``--data-home``.
DATA_HOME = str(REPO.parent / "shared" / "data")


# -- options -----------------------------------------------------------------------

#: The options several scripts take, by name: the flag and its ``add_argument``
#: keywords.
COMMON_OPTIONS = {
    "data_home": (
        "--data-home",
        {"default": DATA_HOME, "help": "folder holding omniglot/images_*.zip"},
    ),
    "device": ("--device", {"default": "cpu", "help": '"cpu", "cuda" or "auto"'}),
    "seed": ("--seed", {"type": int, "default": 0}),
    "json": ("--json", {"default": None, "help": "also write the record here"}),
}


def argument_parser(doc: str, *common: str) -> argparse.ArgumentParser:
    """Make a script's parser, described by ``doc``'s first line.

    ``common`` names the options of :data:`COMMON_OPTIONS` it takes.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name in common:
        flag, kwargs = COMMON_OPTIONS[name]
        parser.add_argument(flag, **kwargs)
    return parser


# -- the machine and the record ----------------------------------------------------


def machine(device: str = "cpu") -> dict:
    """Describe the machine and library versions, for the record."""
    info = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "device": str(device),
        "versions": {
            "sklearn_meta": getattr(sklearn_meta, "__version__", None),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    if str(device) != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def write_record(
    path: str | Path | None,
    figures: dict,
    *,
    benchmark: str | None = None,
    args=None,
    device: str = "cpu",
) -> dict:
    """Make the record of a run, print it as one JSON line and write it to ``path``.

    Parameters
    ----------
    path : str, Path or None
        Where to write the record (indented JSON); None only prints it.
    figures : dict
        What the run measured; its keys come first in the record.
    benchmark : str, default=None
        The script's name, recorded as ``"benchmark"``.
    args : argparse.Namespace, default=None
        The parsed options, recorded as ``"args"``.
    device : str, default="cpu"
        The device the run used, for :func:`machine`.

    Returns
    -------
    record : dict
        ``figures`` with the command, options, machine and date added.
    """
    record = {} if benchmark is None else {"benchmark": benchmark}
    record.update(figures)
    if args is not None:
        record["args"] = vars(args)
    record.update(
        command=shlex.join(["python", *sys.argv]),
        machine=machine(device),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    print(json.dumps(record, default=str))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=2, default=str))
    return record


# -- timing ------------------------------------------------------------------------


def _synchronize(device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[..., Any], *args, device: str = "cpu") -> tuple[Any, float]:
    """Run ``fn(*args)``; return its result and the seconds it took.

    The clock stops once the work ``fn`` queued on ``device`` is done.
    """
    _synchronize(device)
    start = time.perf_counter()
    result = fn(*args)
    _synchronize(device)
    return result, time.perf_counter() - start


def time_call(fn: Callable[..., Any], *args, device: str = "cpu") -> float:
    """Seconds ``fn(*args)`` takes, waiting for the device's queued work."""
    return timed(fn, *args, device=device)[1]


class MetaIterationTimer(Callback):
    """Record the seconds of every training meta-iteration of a learner's ``fit``.

    A meta-iteration runs from ``on_batch_begin`` to ``on_batch_end``: the
    learner's forward, backward and optimiser step on one meta-batch, not the
    drawing of the episodes. The clock waits for the learner's device.
    """

    def initialize(self):
        """Start with no times."""
        self.seconds_ = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        """Start the clock on a training meta-batch."""
        if training:
            _synchronize(net.device_)
            self.start_ = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        """Stop the clock."""
        if training:
            _synchronize(net.device_)
            self.seconds_.append(time.perf_counter() - self.start_)


class BatchEndClock(Callback):
    """Record the wall-clock time at the end of every training meta-iteration.

    Unlike :class:`MetaIterationTimer`, the time between two ends includes
    everything: drawing and reading the episodes, training, collectives.
    """

    def initialize(self):
        """Start with no times."""
        self.ends_ = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        """Note the time."""
        if training:
            self.ends_.append(time.perf_counter())

    def rate(self, warmup: int) -> float:
        """Meta-iterations per second after the first ``warmup`` ones."""
        ends = self.ends_
        return (len(ends) - warmup) / (ends[-1] - ends[warmup - 1])


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


# -- memory ------------------------------------------------------------------------


def status_gib(field: str) -> float:
    """Return a size field of /proc/self/status (``VmRSS``, ``VmHWM``...) in GiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def run_worker(script: str, spec: dict) -> dict:
    """Run ``script --worker SPEC`` in a fresh process; return its last JSON line.

    A fresh process's ``VmHWM`` is its own peak: a child's ``ru_maxrss``
    would start from its parent's resident size.
    """
    out = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"worker {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def paper_conv4(
    width: int = 64, n_out: int | None = 5, batch_norm: bool = True
) -> nn.Module:
    """Build the MAML paper's Omniglot network: the textbook NCHW conv4.

    Four blocks of a 3x3 convolution of ``width`` filters, batch norm with
    batch statistics everywhere (no running statistics), ReLU and 2x2 max
    pooling, then a linear layer of ``n_out`` outputs, for 28x28 inputs.
    ``n_out=None`` leaves the linear layer out (a body for our learners, which
    add their own head); ``batch_norm=False`` leaves the batch norm out.
    """
    layers: list[nn.Module] = []
    for c_in in (1, width, width, width):
        layers.append(nn.Conv2d(c_in, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width, track_running_stats=False))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    head = [] if n_out is None else [nn.Linear(width, n_out)]
    return nn.Sequential(*layers, nn.Flatten(), *head)


# -- data and scoring ----------------------------------------------------------------


def load_vinyals(
    data_home: str = DATA_HOME, dtype=np.float32
) -> tuple[np.ndarray, ...]:
    """Omniglot under the Vinyals et al. protocol: ``X_train, y_train, X_test, y_test``.

    ``dtype=np.uint8`` gives the images as 8-bit intensities (a quarter of the
    memory), which the learners read exactly as the float32 ones. Raises
    ``OSError`` (from :func:`~sklearn_meta.datasets.load_omniglot`) when the
    files are not in ``data_home``.
    """
    return tuple(
        array
        for split in ("vinyals-train", "vinyals-test")
        for array in load_omniglot(
            split, data_home=data_home, download=False, dtype=dtype, return_X_y=True
        )
    )


def timed_episodic_score(
    clf,
    X,
    y,
    n_way: int,
    k_shot: int,
    *,
    n_query: int,
    n_episodes: int,
    random_state,
    device: str = "cpu",
):
    """Return ``episodic_score`` of ``clf`` in one setting, and its seconds.

    Every learner scored with the same ``random_state`` sees the same
    episodes, so their per-episode scores (``result.scores``) pair up.
    """
    return timed(
        lambda: episodic_score(
            clf,
            X,
            y,
            n_way=n_way,
            k_shot=k_shot,
            n_query=n_query,
            n_episodes=n_episodes,
            random_state=random_state,
        ),
        device=device,
    )


def score_settings(
    clf, X, y, settings, *, n_query: int, n_episodes: int, random_state
) -> list[dict]:
    """Episodic accuracy (%) of ``clf`` in each ``(n_way, k_shot)`` setting.

    Every learner scored with the same ``random_state`` sees the same episodes.
    """
    results = []
    for n_way, k_shot in settings:
        score, seconds = timed_episodic_score(
            clf,
            X,
            y,
            n_way,
            k_shot,
            n_query=n_query,
            n_episodes=n_episodes,
            random_state=random_state,
        )
        results.append(
            {
                "setting": f"{n_way}-way {k_shot}-shot",
                "accuracy": 100 * score.mean,
                "ci95": 100 * score.ci95,
                "eval_seconds": seconds,
            }
        )
    return results


# -- tables --------------------------------------------------------------------------


def plus_minus(pair: Sequence[float] | None, digits: int = 2) -> str:
    """Format ``(mean, half_width)`` as ``"mean ± half_width"``."""
    if pair is None:
        return "-"
    mean, half = pair
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def print_table(
    rows: Sequence[dict],
    columns: Sequence[tuple],
    *,
    title: str | None = None,
) -> None:
    """Print ``rows`` as a Markdown table (the form ``docs/benchmarks.md`` quotes).

    Parameters
    ----------
    rows : sequence of dict
        One dict a row.
    columns : sequence of tuple
        ``(header, value)`` or ``(header, value, spec)``: ``value`` is a key of
        the row or a callable taking the row; ``spec`` formats the value (for
        instance ``".3f"``). A missing or None value prints as ``-``.
    title : str, default=None
        A line printed above the table, after a blank line.
    """

    def cell(row: dict, value, spec: str = "") -> str:
        v = value(row) if callable(value) else row.get(value)
        return "-" if v is None else format(v, spec)

    print()
    if title:
        print(title)
    print("| " + " | ".join(c[0] for c in columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(cell(row, *c[1:]) for c in columns) + " |")
