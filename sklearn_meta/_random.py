"""Random streams: every random number a learner draws, named in one place.

A fitted learner draws one integer seed, ``_seed_``, from its
``random_state``. Each use of randomness then takes its own stream,
``np.random.default_rng([_seed_, stream, ...])``, so adding a draw in one
place never shifts the numbers drawn in another, and a run resumed from a
checkpoint (which restores the history) draws what the original run drew.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__: list[str] = []

#: Seed of the episodes ``score`` draws: fixed, so that the scores of different
#: models are computed on the same episodes (common random numbers).
SCORING_SEED = 0


class Stream(IntEnum):
    """The numbered random streams derived from a learner's ``_seed_``."""

    #: Episodes (or environments) of one training epoch, keyed by the epoch.
    EPOCH = 0
    #: Which classes, groups or tasks the meta-validation split holds out.
    VALIDATION_SPLIT = 1
    #: The fixed meta-validation episodes.
    VALIDATION_EPISODES = 2
    #: The sample of the training pool that ``predict`` adapts to.
    POOL_SAMPLE = 3
    #: The MANN's sequence orders and label maps of training episodes.
    TRAIN_ORDER = 4
    #: The MANN's sequence orders at adaptation and in scoring.
    ADAPT_ORDER = 5
    #: Meta-RL: the environment that fixes the spaces before training.
    FIRST_ENV = 6
    #: Meta-RL: the episodes of an adaptation given no ``random_state``.
    ADAPT_EPISODES = 7
    #: Torch's global generator during one training epoch (dropout in the
    #: module), keyed by the epoch.
    EPOCH_TORCH = 8
    #: Meta-RL: one task's episodes in one collection (the seeds of its
    #: sub-environments and its actions), keyed by the collection's seed and
    #: the task's place in the meta-batch, so that they do not depend on the
    #: other tasks collected with it.
    TASK_EPISODES = 9


def _as_generator(random_state) -> np.random.Generator:
    """Turn ``random_state`` into a :class:`numpy.random.Generator`."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)


def _draw_seed(random_state) -> int:
    """Draw the integer seed a fit derives all its streams from."""
    return int(_as_generator(random_state).integers(2**31 - 1))


def _stream(seed: int, stream: Stream, *key: int) -> np.random.Generator:
    """Return the generator of ``stream`` (further keyed by ``key``) of ``seed``."""
    return np.random.default_rng([seed, int(stream), *key])


def _torch_generator(rng: np.random.Generator, device) -> torch.Generator:
    """Return a torch generator on ``device`` seeded from ``rng``."""
    return torch.Generator(device=device).manual_seed(int(rng.integers(2**63 - 1)))


@contextmanager
def _torch_seeded(seed: int | np.random.Generator, device="cpu") -> Iterator[None]:
    """Seed torch's global generators for a block, then restore them.

    Module initialisation and random layers (dropout) draw from the global
    generator of the CPU, or of ``device`` when it is a GPU; this seeds those
    two from ``seed`` (or from a draw of a generator) and gives the caller
    back its own states afterwards. Other GPUs' generators are not touched.
    """
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**63 - 1))
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        index = device.index
        devices = [torch.cuda.current_device() if index is None else index]
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
