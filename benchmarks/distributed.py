"""Throughput of data-parallel meta-training: 1 process or 2, 1 thread or 2.

Meta-trains on Omniglot (the Vinyals et al. split, uint8) in three set-ups
of the same machine, each for the same meta-iterations from the same
``random_state``:

- ``1 process x 1 thread``;
- ``1 process x 2 threads``;
- ``2 processes x 1 thread``: ``torchrun --standalone --nproc-per-node=2``,
  each process adapting half of every meta-batch (gloo on the CPU).

Two workloads: :class:`~sklearn_meta.MAMLClassifier` (conv4, 5-way 1-shot
with 1 query per class, meta-batch 32, second order, 1 inner step) and
:class:`~sklearn_meta.PrototypicalClassifier` (conv4, 5-way 1-shot with 15
queries per class, meta-batch 8). Meta-iterations per second are timed from
the end of the ``--warmup``-th meta-iteration to the end of the last, wall
clock (drawing, reading, adapting, the all-reduce and the step). The
accuracy after training is the 5-way 1-shot episodic accuracy on the test
characters, with its 95% interval; the set-ups train the same model, so it
must agree within the interval. Scaling efficiency is the throughput over
``1 process x 1 thread``'s, divided by the cores used.

Run ``python benchmarks/distributed.py`` (``--help`` for the options).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from _common import (
    BatchEndClock,
    argument_parser,
    load_vinyals,
    print_table,
    write_record,
)

from sklearn_meta import MAMLClassifier, PrototypicalClassifier
from sklearn_meta.model_selection import episodic_score

SETUPS = {
    "1 process x 1 thread": (1, 1),
    "1 process x 2 threads": (1, 2),
    "2 processes x 1 thread": (2, 1),
}


def learner(work: str, iterations: int, callbacks):
    """Build a workload's learner, meta-training for ``iterations`` updates."""
    if work == "maml":
        batch = 32
        params = dict(n_query=1, inner_steps=1, meta_batch_size=batch)
        cls = MAMLClassifier
    else:
        batch = 8
        params = dict(n_query=15, meta_batch_size=batch)
        cls = PrototypicalClassifier
    return cls(
        n_way=5,
        k_shot=1,
        max_epochs=1,
        episodes_per_epoch=iterations * batch,
        device="cpu",
        callbacks=callbacks,
        random_state=0,
        **params,
    )


def worker(spec: dict) -> None:
    """Meta-train and score in this process (one of torchrun's, or alone)."""
    torch.set_num_threads(spec["threads"])
    X, y, X_test, y_test = load_vinyals(spec["data_home"], dtype="uint8")
    clock = BatchEndClock()
    clf = learner(spec["work"], spec["iterations"], [clock])
    clf.fit(X, y)
    rate = clock.rate(spec["warmup"])
    result = episodic_score(
        clf, X_test, y_test, n_episodes=spec["episodes"], random_state=0
    )
    if int(os.environ.get("RANK", 0)) == 0:
        Path(spec["out"]).write_text(
            json.dumps(
                {
                    "iterations_per_s": rate,
                    "accuracy": result.mean,
                    "accuracy_ci": result.ci95,
                    "weights_sum": sum(
                        float(p.double().sum()) for p in clf.module_.parameters()
                    ),
                }
            )
        )


def run(spec: dict, processes: int) -> dict:
    """Run one set-up; return what its first process measured."""
    script = str(Path(__file__).resolve())
    args = ["--worker", json.dumps(spec)]
    if processes == 1:
        command = [sys.executable, script, *args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            script,
            *args,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{command} failed:\n{out.stderr[-3000:]}")
    return json.loads(Path(spec["out"]).read_text())


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "json")
    parser.add_argument("--works", default="maml,protonet")
    parser.add_argument("--maml-iterations", type=int, default=30)
    parser.add_argument("--protonet-iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=600, help="scored episodes")
    parser.add_argument("--worker", default=None, help="(internal)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return {}

    rows = []
    out = Path("/tmp") / f"sklearn_meta_distributed_{os.getpid()}.json"
    for work in args.works.split(","):
        iterations = getattr(args, f"{work}_iterations")
        for name, (processes, threads) in SETUPS.items():
            spec = {
                "work": work,
                "iterations": iterations,
                "warmup": args.warmup,
                "threads": threads,
                "episodes": args.episodes,
                "data_home": args.data_home,
                "out": str(out),
            }
            row = {"work": work, "setup": name, "processes": processes, **spec}
            row.update(run(spec, processes))
            rows.append(row)
            print(row["work"], name, f"{row['iterations_per_s']:.3f}/s", flush=True)
    for row in rows:
        base = next(
            r
            for r in rows
            if r["work"] == row["work"] and r["processes"] == 1 and r["threads"] == 1
        )
        cores = row["processes"] * row["threads"]
        row["speedup"] = row["iterations_per_s"] / base["iterations_per_s"]
        row["efficiency"] = row["speedup"] / cores
    print_table(
        rows,
        [
            ("work", "work"),
            ("set-up", "setup"),
            ("meta-iterations / s", "iterations_per_s", ".3f"),
            ("speed-up", "speedup", ".2f"),
            ("efficiency", "efficiency", ".2f"),
            (
                "5-way 1-shot accuracy",
                lambda r: f"{100 * r['accuracy']:.1f} ± {100 * r['accuracy_ci']:.1f}",
            ),
        ],
        title=f"Data-parallel meta-training on {os.cpu_count()} cores",
    )
    return write_record(args.json, {"rows": rows}, benchmark="distributed", args=args)


if __name__ == "__main__":
    main(sys.argv[1:])
