"""Data-parallel meta-training: two gloo processes on this machine.

Each test starts two processes as torchrun would (RANK, WORLD_SIZE,
MASTER_ADDR=127.0.0.1 and a free MASTER_PORT in their environment), with a
timeout, and checks them against the same fit in this one process.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import distributed as dist

from sklearn_meta import PrototypicalClassifier
from sklearn_meta._distributed import _DataParallel

from ._distributed_cases import RECORDED, build, score_data

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(spec: dict, tmp_path: Path, world_size: int = 2, timeout: float = 180):
    """Run ``world_size`` worker processes; return their completed processes."""
    spec = {**spec, "out": str(tmp_path)}
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": str(world_size),
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests._distributed_worker", json.dumps(spec)],
            cwd=REPO,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(world_size)
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            p.kill()
    return results


def _max_relative_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for k in a:
        x, y = a[k].double(), b[k].double()
        if not x.is_floating_point():
            assert torch.equal(x, y), k
            continue
        scale = y.abs().max().clamp_min(1e-12)
        worst = max(worst, float((x - y).abs().max() / scale))
    return worst


@pytest.mark.parametrize(
    "case",
    ["prototypical", "maml", "maml_odd", "reptile", "meta_lstm", "maml_policy"],
)
def test_two_processes_fit_what_one_process_fits(case, tmp_path):
    """Check the 2-process fit equals the 1-process one, on every rank.

    The one-process fit sums the tasks in the order the two processes do
    (``task_chunk_size``), so the weights agree to rounding; with another
    order they differ as much as two chunk sizes of one process do, which
    training dynamics can amplify far beyond rounding. ``MAMLPolicy`` adapts
    the meta-batch in one vectorised call, so its weights agree to float32
    rounding (each task's episodes are its own in both runs).
    """
    scored = case in ("prototypical", "maml_policy")
    results = _launch({"case": case, "score": scored}, tmp_path)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    learner, args = build(case)
    learner.fit(*args)
    reference = learner.module_.state_dict()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    # Every rank ends with the same weights, bit for bit.
    for k in reference:
        assert torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]), k
    if "task_chunk_size" in learner.get_params():
        # Tasks summed in the processes' order: the same weights, bit for bit.
        for k in reference:
            assert torch.equal(ranks[0]["state"][k], reference[k]), k
    else:
        assert _max_relative_difference(ranks[0]["state"], reference) < 1e-5
    # The recorded losses are those of the whole meta-batch.
    expected = [
        {k: v for k, v in epoch.items() if k in RECORDED} for epoch in learner.history_
    ]
    for got, want in zip(ranks[0]["history"], expected, strict=True):
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-5), k
    if scored:
        # score splits its episodes (or tasks) over the processes and
        # gathers them.
        assert ranks[0]["score"] == ranks[1]["score"]
        assert ranks[0]["score"] == pytest.approx(
            learner.score(*score_data(case)), rel=1e-5
        )


def test_one_process_scores_alone_with_distributed_off(tmp_path):
    """Check rank 0 can score by itself once distributed=False, without waiting."""
    results = _launch({"case": "prototypical", "score_alone": True}, tmp_path)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    alone = torch.load(tmp_path / "rank0.pt", weights_only=False)["score"]
    learner, data = build("prototypical")
    learner.fit(*data)
    assert alone == pytest.approx(learner.score(*score_data("prototypical")))


def test_only_the_first_process_writes_checkpoints(tmp_path):
    """Check a Checkpoint callback writes on rank 0 alone."""
    results = _launch({"case": "maml", "checkpoint": True}, tmp_path)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert any((tmp_path / "checkpoint-rank0").glob("*.pt"))
    assert not (tmp_path / "checkpoint-rank1").exists()


def test_a_failure_on_one_process_ends_both_with_its_error(tmp_path):
    """Check an error raised on rank 1 stops both processes, quickly, with it."""
    results = _launch({"case": "maml", "fail_on": [1, 2]}, tmp_path, timeout=90)
    (code0, _, err0), (code1, _, err1) = results
    assert code0 != 0 and code1 != 0
    assert "planted failure on rank 1" in err1
    assert "Process 1 of the data-parallel fit failed" in err0
    assert "planted failure on rank 1" in err0


def test_shares_cover_a_meta_batch_once_in_order():
    """Check the processes' shares of n tasks are contiguous and differ by <= 1."""
    for world in (1, 2, 3, 4):
        for n in range(world, 12):
            parts = []
            for rank in range(world):
                dp = _DataParallel.__new__(_DataParallel)
                dp.rank, dp.world_size = rank, world
                parts.append(np.arange(n)[dp.share(n)])
            assert np.array_equal(np.concatenate(parts), np.arange(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_distributed_true_without_processes_is_refused():
    """Check distributed=True outside torchrun says how to launch."""
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    with pytest.raises(ValueError, match="launch the script with torchrun"):
        PrototypicalClassifier(distributed=True, max_epochs=1).fit(X, y)
