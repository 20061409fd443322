"""The gradient-based learners on Omniglot under a stated budget.

Meta-trains :class:`~sklearn_meta.MAMLClassifier` (second order), first-order
MAML, and optionally ANIL, Meta-SGD and Reptile on the 1,200 meta-training
characters of the Vinyals et al. protocol (rotations as classes, 28x28), with
the MAML paper's Omniglot settings: 5-way 1-shot episodes with one query per
class, meta-batch of 32 tasks, one inner step of size 0.4 in training and 3 at
test time, Adam at 1e-3, the standard conv4 (here with the head shared by all
classes). Training stops after ``--iterations`` meta-iterations or
``--max-seconds`` of training per learner, whichever comes first: the budget
is printed. Each learner is then scored on the 423 test characters, 5-way
1-shot and 20-way 1-shot, 15 queries per class, on the same
``--eval-episodes`` episodes, mean and 95% confidence interval, beside the
paper figures (Finn et al., 2017: MAML 98.7 / 95.8, first-order MAML 98.3 on
5-way 1-shot). The paper trains 60,000 meta-iterations and a separate 20-way
model (meta-batch 16, 5 inner steps of 0.1, in training and at test time):
``--n-way 20 --meta-batch-size 16 --inner-steps 5 --inner-lr 0.1
--adapt-steps 5`` trains that one. Whatever the training ways, the model is
scored on both settings (its head adapts to any number of ways).

Reptile (``--learners Reptile``) follows Nichol et al. (2018) on Omniglot:
5 inner Adam steps (beta1 = 0) at 1e-3 on training episodes of
``--train-shots`` (10) shots per class, meta-batch 5, outer step 1 annealed
linearly to 0 over the ``--iterations`` meta-iterations (keep
``--max-seconds`` a safety net: a budget that stops training early leaves the
annealing unfinished), inner minibatches of ``--reptile-inner-batch`` (10,
so the 5 steps make one pass over the 50 support images), and
``--reptile-adapt-steps`` (50) steps in minibatches of
``--reptile-adapt-batch`` (5) at test time (``0`` for either: whole-support
steps, as runs before these options took). Its paper figures (95.39 / 98.90 / 88.14 /
96.65, 5-way 1 / 5-shot, 20-way 1 / 5-shot, 100,000 meta-iterations) are
printed beside it with ``--settings 5x1,5x5,20x1,20x5``; a setting may carry
its own number of test episodes (``20x5:20``).

The non-learned baselines (:class:`~sklearn_meta.NearestCentroidClassifier`
and :class:`~sklearn_meta.NearestNeighborClassifier` on raw pixels, at their
defaults) are rows of the table by default, scored on the same episodes.

Run ``python benchmarks/omniglot_maml.py`` (``--help`` for the options); on a
GPU machine ``--device cuda``. ``--save-dir`` keeps each meta-trained learner
as a joblib file.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from _common import (
    TimeBudget,
    argument_parser,
    load_vinyals,
    plus_minus,
    print_table,
    score_settings,
    time_call,
    write_record,
)

from sklearn_meta import (
    ANILClassifier,
    MAMLClassifier,
    MetaSGDClassifier,
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    ReptileClassifier,
)

SETTINGS = [(5, 1), (20, 1)]
#: Finn et al. (2017), Table 1 (Omniglot, 1-shot); Nichol et al. (2018),
#: Table 1 (Omniglot, Reptile without transduction).
PAPER = {
    "MAML": {(5, 1): 98.7, (20, 1): 95.8},
    "first-order MAML": {(5, 1): 98.3},
    "Reptile": {(5, 1): 95.39, (5, 5): 98.90, (20, 1): 88.14, (20, 5): 96.65},
}


def parse_settings(text: str, n_episodes: int) -> list[tuple[int, int, int]]:
    """Parse ``"5x1,20x5:50"`` into ``[(5, 1, n_episodes), (20, 5, 50)]``.

    Each item is ways x shots, optionally ``:episodes`` (else ``n_episodes``).
    """
    settings = []
    for item in text.split(","):
        shape, _, episodes = item.strip().partition(":")
        n_way, k_shot = (int(n) for n in shape.split("x"))
        settings.append((n_way, k_shot, int(episodes) if episodes else n_episodes))
    return settings


def learners(args) -> dict:
    per_epoch = args.meta_batch_size * args.epoch_iterations
    common = dict(
        n_way=args.n_way,
        k_shot=1,
        n_query=1,
        meta_batch_size=args.meta_batch_size,
        max_epochs=max(1, args.iterations // args.epoch_iterations),
        episodes_per_epoch=per_epoch,
        device=args.device,
        random_state=args.seed,
        callbacks=[("budget", TimeBudget(args.max_seconds))],
    )
    gradient = dict(
        common,
        inner_lr=args.inner_lr,
        inner_steps=args.inner_steps,
        adapt_steps=args.adapt_steps,
        lr=1e-3,
    )
    if args.task_chunk_size:
        gradient["task_chunk_size"] = args.task_chunk_size
    all_learners = {
        "MAML": MAMLClassifier(**gradient),
        "first-order MAML": MAMLClassifier(**gradient, first_order=True),
        "ANIL": ANILClassifier(**gradient),
        "Meta-SGD": MetaSGDClassifier(**gradient),
        # Nichol et al.'s Omniglot settings: 5 inner Adam steps (beta1 = 0) at
        # 1e-3 on minibatches of 10 of --train-shots shots per class, outer
        # step 1 annealed to 0 over the run, meta-batch 5, 50 steps on
        # minibatches of 5 at test.
        "Reptile": ReptileClassifier(
            **{
                **common,
                "k_shot": args.train_shots,
                "meta_batch_size": 5,
                "episodes_per_epoch": 5 * args.epoch_iterations,
            },
            inner_steps=5,
            adapt_steps=args.reptile_adapt_steps,
            inner_batch_size=args.reptile_inner_batch or None,
            adapt_batch_size=args.reptile_adapt_batch or None,
        ),
    }
    # The non-learned baselines on raw pixels, at their defaults.
    all_learners["NearestCentroid"] = NearestCentroidClassifier(device=args.device)
    all_learners["NearestNeighbor"] = NearestNeighborClassifier(device=args.device)
    wanted = [w.strip() for w in args.learners.split(",")]
    return {k: v for k, v in all_learners.items() if k in wanted}


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "seed", "json")
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument(
        "--learners",
        default="MAML,first-order MAML,NearestCentroid,NearestNeighbor",
        help="of MAML, first-order MAML, ANIL, Meta-SGD, Reptile and the "
        "baselines NearestCentroid, NearestNeighbor",
    )
    # The paper's 20-way model: --n-way 20 --meta-batch-size 16
    # --inner-steps 5 --inner-lr 0.1 --adapt-steps 5.
    parser.add_argument("--n-way", type=int, default=5, help="ways in training")
    parser.add_argument("--meta-batch-size", type=int, default=32)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--adapt-steps", type=int, default=3)
    parser.add_argument(
        "--epoch-iterations", type=int, default=10, help="meta-iterations per epoch"
    )
    parser.add_argument("--task-chunk-size", type=int, default=None)
    parser.add_argument(
        "--train-shots",
        type=int,
        default=10,
        help="Reptile: shots per class in training episodes (the paper's 10)",
    )
    parser.add_argument(
        "--reptile-adapt-steps",
        type=int,
        default=50,
        help="Reptile: inner steps at test time (the paper's 50)",
    )
    parser.add_argument(
        "--reptile-inner-batch",
        type=int,
        default=10,
        help="Reptile: support images per inner step in training (the paper's "
        "10; 0: the whole support)",
    )
    parser.add_argument(
        "--reptile-adapt-batch",
        type=int,
        default=5,
        help="Reptile: support images per step at test time (the paper's 5; "
        "0: the whole support)",
    )
    parser.add_argument(
        "--settings",
        default=",".join(f"{n}x{k}" for n, k in SETTINGS),
        help="test settings, ways x shots, each optionally with its own number "
        "of episodes (else --eval-episodes): 5x1,5x5,20x1,20x5:50",
    )
    parser.add_argument(
        "--save-dir", default=None, help="joblib-dump each meta-trained learner here"
    )
    args = parser.parse_args(argv)

    settings = parse_settings(args.settings, args.eval_episodes)
    X_train, y_train, X_test, y_test = load_vinyals(args.data_home)
    rows = []
    for name, clf in learners(args).items():
        train_s = time_call(clf.fit, X_train, y_train)
        # The baselines have no training history (and no meta-batches).
        history = getattr(clf, "history_", [])
        iterations = sum(len(h["batches"]) for h in history)
        # The epoch a time budget interrupts has no duration: time whole epochs.
        timed = [(h["dur"], len(h["batches"])) for h in history if "dur" in h]
        per_iteration = (
            sum(d for d, _ in timed) / sum(n for _, n in timed) if timed else None
        )
        row = {
            "learner": name,
            "meta_iterations": iterations,
            "tasks": iterations * getattr(clf, "meta_batch_size", 0),
            "train_seconds": train_s,
            "seconds_per_meta_iteration": per_iteration,
            # The learning curve: per epoch, the mean training query loss and
            # accuracy (after the inner steps) and the epoch's seconds.
            "history": [
                {
                    "epoch": h["epoch"],
                    "meta_iterations": len(h["batches"]),
                    "train_loss": h.get("train_loss"),
                    "train_acc": h.get("train_acc"),
                    "dur": h.get("dur"),
                }
                for h in history
            ],
        }
        scores = [
            result
            for n_way, k_shot, n_episodes in settings
            for result in score_settings(
                clf,
                X_test,
                y_test,
                [(n_way, k_shot)],
                n_query=15,
                n_episodes=n_episodes,
                random_state=args.seed,
            )
        ]
        row["results"] = {r["setting"]: (r["accuracy"], r["ci95"]) for r in scores}
        row["eval_seconds"] = {r["setting"]: r["eval_seconds"] for r in scores}
        row["eval_episodes"] = {f"{n}-way {k}-shot": e for n, k, e in settings}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.save_dir:
            Path(args.save_dir).mkdir(parents=True, exist_ok=True)
            slug = name.replace(" ", "_").replace("-", "_")
            joblib.dump(clf, Path(args.save_dir) / f"{slug}_{args.n_way}way.joblib")

    print_table(
        rows,
        [
            ("learner", "learner"),
            ("meta-iters", "meta_iterations"),
            ("s/iter", "seconds_per_meta_iteration", ".3f"),
            *(
                column
                for n_way, k_shot, _ in settings
                for column in (
                    (
                        f"{n_way}-way {k_shot}-shot",
                        lambda r, s=f"{n_way}-way {k_shot}-shot": plus_minus(
                            r["results"][s]
                        ),
                    ),
                    (
                        "paper",
                        lambda r, key=(n_way, k_shot): PAPER.get(r["learner"], {}).get(
                            key
                        ),
                    ),
                )
            ),
        ],
    )
    return write_record(
        args.json,
        {"rows": rows},
        benchmark="omniglot_maml",
        args=args,
        device=args.device,
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
