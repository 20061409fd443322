"""One task per call or vectorised chunks: seconds per meta-iteration on the CPU.

The gradient-based learners adapt the tasks of a meta-batch
``task_chunk_size`` at a time: a chunk of several tasks runs under
:func:`torch.func.vmap`, whose convolutions and batch norm are grouped ones;
a chunk of one task runs the module's native kernels. Which is faster
depends on how much work a task holds. This measures both on Omniglot
(Vinyals et al. split, 28x28, the default conv4 with its task-wise batch
norm), for episodes of growing size (5-way, ``k_shot`` of 1 and 5 with one
query per class: 10 and 30 rows per task; ``--shots`` for others):

- ``MAML``: :class:`~sklearn_meta.MAMLClassifier`, meta-batch of 32, second
  order, one inner step and five (lr 0.4);
- ``Reptile``: :class:`~sklearn_meta.ReptileClassifier`, meta-batch of 5,
  five inner steps (first order by construction).

Each row fits ``--iterations`` meta-iterations after one of warm-up, with
``task_chunk_size`` 1 and 8, at ``--threads`` torch threads; the time per
meta-iteration is the training epoch's duration over its meta-iterations
(drawing the episodes included). Rows run one after another in this process.

Run ``python benchmarks/task_strategy.py`` (``--help`` for the options).
"""

from __future__ import annotations

import numpy as np
import torch
from _common import argument_parser, load_vinyals, print_table, write_record

from sklearn_meta import MAMLClassifier, ReptileClassifier

#: (learner, inner steps, meta-batch size).
WORKS = [("MAML", 1, 32), ("MAML", 5, 32), ("Reptile", 5, 5)]
SHOTS = (1, 5)
CHUNKS = (1, 8)


def seconds_per_iteration(
    name, steps, meta_batch, k_shot, chunk, iterations, X, y, seed
):
    """Fit one learner for ``iterations`` meta-iterations; return s/iteration."""
    cls = MAMLClassifier if name == "MAML" else ReptileClassifier
    params = dict(
        n_way=5,
        k_shot=k_shot,
        n_query=1,
        meta_batch_size=meta_batch,
        inner_steps=steps,
        task_chunk_size=chunk,
        random_state=seed,
        device="cpu",
    )
    if name == "MAML":
        params["inner_lr"] = 0.4
    # Warm-up: one meta-iteration (allocations, kernel selection).
    cls(**params, max_epochs=1, episodes_per_epoch=meta_batch).fit(X, y)
    clf = cls(**params, max_epochs=1, episodes_per_epoch=iterations * meta_batch)
    clf.fit(X, y)
    return clf.history_[-1]["dur"] / iterations


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "seed", "json")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument(
        "--threads", default="1,2", help="torch threads, comma-separated"
    )
    parser.add_argument("--shots", default=",".join(map(str, SHOTS)))
    args = parser.parse_args(argv)

    X, y, _, _ = load_vinyals(args.data_home, dtype=np.uint8)
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for name, steps, meta_batch in WORKS:
            for k_shot in (int(k) for k in args.shots.split(",")):
                row = {
                    "work": name,
                    "inner_steps": steps,
                    "meta_batch_size": meta_batch,
                    "k_shot": k_shot,
                    "rows_per_task": 5 * k_shot + 5,
                    "threads": threads,
                }
                for chunk in CHUNKS:
                    row[f"chunk {chunk}"] = seconds_per_iteration(
                        name,
                        steps,
                        meta_batch,
                        k_shot,
                        chunk,
                        args.iterations,
                        X,
                        y,
                        args.seed,
                    )
                row["chunk 1 / chunk 8"] = row["chunk 1"] / row["chunk 8"]
                rows.append(row)
                print(row, flush=True)
    print_table(
        rows,
        [
            ("work", lambda r: f"{r['work']} {r['inner_steps']} step(s)"),
            ("rows per task", "rows_per_task"),
            ("threads", "threads"),
            ("s/iter, 1 task per call", "chunk 1", ".3f"),
            ("s/iter, chunks of 8", "chunk 8", ".3f"),
            ("ratio", "chunk 1 / chunk 8", ".2f"),
        ],
        title="Seconds per meta-iteration on the CPU by task_chunk_size.",
    )
    return write_record(args.json, {"rows": rows}, benchmark="task_strategy", args=args)


if __name__ == "__main__":
    main()
