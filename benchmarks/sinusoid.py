"""The gradient-based regressors on the sinusoid benchmark of Finn et al. (2017).

Each learner is meta-trained for ``--iterations`` meta-iterations of
``--meta-batch-size`` tasks (K=10 support and 10 query points, amplitude 0.1-5,
phase 0-pi, x in [-5, 5]) with the paper's network (an MLP 1-40-40-1) and
inner step 0.01, one inner step in training (Reptile: 5 SGD steps of 0.02,
outer step 0.1 annealed, as usual for it); then adapted to each of
``--test-tasks`` fresh tasks with 1 and with 10 steps and scored by the mean
squared error on 100 query points spread over [-5, 5], mean and 95% confidence
interval over tasks. Also the time per meta-iteration (epoch durations that
skorch records, so drawing and checking the tasks is included).

Reference points (issue tracker): learn2learn's MAML after 2,000
meta-iterations reaches a query MSE of about 1.0 after 1 step and 0.43-0.53
after 10; Li et al. report Meta-SGD below MAML at K=10.

Run ``python benchmarks/sinusoid.py`` (``--help`` for the options).
"""

from __future__ import annotations

import json

import numpy as np
from _common import argument_parser, plus_minus, print_table, time_call, write_record

from sklearn_meta import (
    ANILRegressor,
    MAMLRegressor,
    MetaSGDRegressor,
    ReptileRegressor,
)
from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.model_selection import mean_confidence_interval


def learners(args) -> dict:
    common = dict(
        meta_batch_size=args.meta_batch_size,
        max_epochs=max(1, args.iterations // 100),
        episodes_per_epoch=100 * args.meta_batch_size,
        random_state=args.seed,
    )
    return {
        "MAML": MAMLRegressor(**common, inner_lr=0.01),
        "first-order MAML": MAMLRegressor(**common, inner_lr=0.01, first_order=True),
        "Meta-SGD": MetaSGDRegressor(**common, inner_lr=0.01),
        "ANIL": ANILRegressor(**common, inner_lr=0.01),
        "Reptile": ReptileRegressor(**common),
    }


def query_mse(reg, tasks, steps: int) -> tuple[float, float]:
    reg.set_params(adapt_steps=steps)
    errors = [
        np.mean(
            (reg.adapt(t.X_support, t.y_support).predict(t.X_query) - t.y_query) ** 2
        )
        for t in tasks
    ]
    return mean_confidence_interval(errors)


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "seed", "json")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--meta-batch-size", type=int, default=25)
    parser.add_argument("--test-tasks", type=int, default=1000)
    parser.add_argument("--learners", default=None)
    args = parser.parse_args(argv)

    n_train = args.iterations * args.meta_batch_size
    train = make_sinusoid_tasks(n_tasks=n_train, random_state=args.seed)
    test = make_sinusoid_tasks(
        n_tasks=args.test_tasks, k_support=10, k_query=100, random_state=args.seed + 1
    )
    chosen = learners(args)
    if args.learners:
        wanted = [w.strip() for w in args.learners.split(",")]
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    rows = []
    for name, reg in chosen.items():
        train_s = time_call(reg.fit, train)
        n_iter = sum(len(h["batches"]) for h in reg.history_)
        row = {
            "learner": name,
            "meta_iterations": n_iter,
            "seconds_per_meta_iteration": float(sum(reg.history_[:, "dur"])) / n_iter,
            "train_seconds": train_s,
            "mse_1_step": query_mse(reg, test, 1),
            "mse_10_steps": query_mse(reg, test, 10),
            "mse_0_steps": query_mse(reg, test, 0),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print_table(
        rows,
        [
            ("learner", "learner"),
            ("0 steps", lambda r: plus_minus(r["mse_0_steps"], 3)),
            ("1 step", lambda r: plus_minus(r["mse_1_step"], 3)),
            ("10 steps", lambda r: plus_minus(r["mse_10_steps"], 3)),
            ("ms / meta-iter", lambda r: 1000 * r["seconds_per_meta_iteration"], ".2f"),
        ],
        title=f"sinusoid K=10, {args.iterations} meta-iterations of "
        f"{args.meta_batch_size} tasks, {args.test_tasks} test tasks",
    )
    return write_record(args.json, {"rows": rows}, benchmark="sinusoid", args=args)


if __name__ == "__main__":
    main()
