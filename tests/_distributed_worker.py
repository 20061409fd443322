"""One process of a data-parallel fit, as torchrun would start it.

``python -m tests._distributed_worker SPEC`` reads the rank and world from
the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torchrun
sets them), fits the learner the JSON ``SPEC`` names on the data it names,
and writes what it ended with to ``<out>/rank<r>.pt``.
"""

import json
import os
import sys
from pathlib import Path

import torch
from skorch.callbacks import Callback, Checkpoint

from tests._distributed_cases import RECORDED, build, score_data


class _FailOn(Callback):
    """Raise on one rank at the start of a given batch."""

    def __init__(self, rank, batch):
        self.rank, self.batch = rank, batch

    def on_batch_begin(self, net, training=False, **kwargs):
        batches = len(net.history_[-1]["batches"]) if len(net.history_) else 0
        if int(os.environ["RANK"]) == self.rank and batches == self.batch:
            raise ValueError(f"planted failure on rank {self.rank}")


def main(spec: dict) -> None:
    rank = int(os.environ["RANK"])
    out = Path(spec["out"])
    callbacks = []
    if spec.get("fail_on") is not None:
        callbacks.append(_FailOn(*spec["fail_on"]))
    if spec.get("checkpoint"):
        callbacks.append(
            Checkpoint(monitor=None, dirname=str(out / f"checkpoint-rank{rank}"))
        )
    learner, args = build(spec["case"], callbacks=callbacks or None)
    learner.fit(*args)
    result = {
        "state": learner.module_.state_dict(),
        "history": [
            {k: v for k, v in epoch.items() if k in RECORDED}
            for epoch in learner.history_
        ],
    }
    if spec.get("score"):
        result["score"] = learner.score(*score_data(spec["case"]))
    if spec.get("score_alone") and rank == 0:
        # Scoring on one process only: switched off, it makes no collective.
        learner.set_params(distributed=False)
        result["score"] = learner.score(*score_data(spec["case"]))
    torch.save(result, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
