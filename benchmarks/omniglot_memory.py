"""The model-based learners on Omniglot under a stated CPU budget.

Meta-trains :class:`~sklearn_meta.MetaLSTMClassifier` (one model, trained on
5-way 1-shot episodes and scored on 1-shot and 5-shot tasks; the paper trains
one per setting) and
:class:`~sklearn_meta.MANNClassifier` (episodes of 5 classes x 10 instances,
the shape of Santoro et al.'s Table 1), and beside them, in the same run and
under budgets of the same size, :class:`~sklearn_meta.PrototypicalClassifier`
and the transfer baseline :class:`~sklearn_meta.FineTuneClassifier`. Data:
the 1,200 meta-training and 423 test characters of the Vinyals et al.
protocol (rotations as classes, 28x28).

Budget (fixed numbers of episodes, so reruns are reproducible; one torch
thread unless ``--threads``):

- Meta-LSTM: ``--lstm-episodes`` episodes (5-way 1-shot, ``--lstm-queries``
  queries per class, meta-batches of ``--lstm-meta-batch``, by default 5 and
  4), ``--lstm-steps`` learned steps (5), learner the conv4 with 32 filters
  (the paper's learner has 32 filters), Adam at 1e-3, meta-gradient clipped
  at 0.25, truncated back-propagation off. The authors' code has an Omniglot
  5-way 1-shot configuration (15 steps, 15 queries, one episode per update,
  50,000 episodes): ``--lstm-steps 15 --lstm-queries 15 --lstm-meta-batch 1``;
- MANN: ``--mann-episodes`` sequences of 5 classes x 10 instances plus one
  query per class, meta-batches of 16, raw pixels into the controller (as in
  the paper; 28x28 here, 20x20 there), the paper's sizes (controller of 200,
  128 slots of 40, 4 read heads), Adam at 3e-3;
- Prototypical: ``--proto-episodes`` episodes of 20-way 1-shot 5-query,
  Adam at 1e-3;
- FineTune: ``--finetune-passes`` passes over the 96,000 training images,
  Adam at 1e-3;
- the non-learned baselines, nearest centroid and nearest neighbour on raw
  pixels at their defaults: no training.

Every learner uses its default backbone unless stated, and
``random_state=--seed``. Training seconds include what ``fit`` does after
meta-training for ``predict`` (Prototypical and FineTune embed the training
pool; the Meta-LSTM adapts to 2,048 pool images).

Evaluation: the same ``--eval-episodes`` episodes per setting for every
learner (5-way 1-shot and 5-way 5-shot, 15 queries per class, mean and 95%
confidence interval), and the MANN's accuracy by presentation number in
``--eval-episodes`` sequences of 5 classes x 10 instances.

Paper figures: Santoro et al. (2016), Table 1, MANN (LRUA) on Omniglot, five
classes per episode: 36.4 / 82.8 / 91.0 / 92.6 / 94.9 / 98.1 % at the 1st /
2nd / 3rd / 4th / 5th / 10th instance (100,000 training episodes). Ravi &
Larochelle (2017) report the Meta-Learner LSTM on Mini-ImageNet only
(43.44 ± 0.77 % 5-way 1-shot, 60.60 ± 0.71 % 5-shot), not on Omniglot;
Snell et al. (2017): Prototypical 98.8 / 99.7 % (5-way 1 / 5-shot).

Run ``python benchmarks/omniglot_memory.py`` (``--help`` for the options).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import (
    TimeBudget,
    argument_parser,
    load_vinyals,
    plus_minus,
    print_table,
    score_settings,
    time_call,
    timed,
    write_record,
)
from skorch.callbacks import Callback
from torch import nn

from sklearn_meta import (
    FineTuneClassifier,
    MANNClassifier,
    MetaLSTMClassifier,
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    PrototypicalClassifier,
)

SETTINGS = [(5, 1), (5, 5)]
N_QUERY = 15
INSTANCES = 10
#: Santoro et al. (2016), Table 1: MANN (LRUA), 5 classes, by instance.
PAPER_MANN = {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1}
#: A public TensorFlow reimplementation's figures for the same table: 200-unit
#: LSTM, 128x40 memory, 4 read heads, LRU access (gamma 0.95), 100,000
#: iterations of batches of 16 sequences, Adam at 1e-3.
REIMPL_MANN = {1: 35.4, 2: 89.2, 3: 95.2, 4: 96.3, 5: 96.9, 10: 97.8}
#: Paper figures for the 5-way 1-shot and 5-shot settings.
PAPER_5WAY = {
    "Prototypical": [98.8, 99.7],  # Snell et al. (2017), Omniglot
    "Meta-LSTM (Mini-ImageNet)": [43.44, 60.60],  # not reported on Omniglot
}


class InstanceCurve(Callback):
    """Score a MANN by presentation number every ``every`` training episodes.

    The curve of a run: at each point, the accuracy by instance on
    ``n_episodes`` sequences of 5 classes x 10 instances drawn (with the same
    seed each time) from ``(X, y)``, the training seconds so far (scoring
    excluded) and the training loss of the last meta-batch. Each point is
    printed as it is made, so an interrupted run leaves its curve in the log.
    """

    def __init__(self, X, y, every: int, n_episodes: int, random_state: int = 0):
        self.X = X
        self.y = y
        self.every = every
        self.n_episodes = n_episodes
        self.random_state = random_state

    def initialize(self):
        """Start with no points."""
        self.points_ = []
        self.episodes_ = 0
        self.scoring_seconds_ = 0.0
        self.start_ = time.perf_counter()
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        """Score once ``every`` more training episodes have passed."""
        if not training:
            return
        self.episodes_ += net.meta_batch_size
        if self.episodes_ % self.every:
            return
        start = time.perf_counter()
        accuracy = net.accuracy_by_instance(
            self.X,
            self.y,
            n_way=5,
            n_instances=INSTANCES,
            n_episodes=self.n_episodes,
            random_state=self.random_state,
        )
        net.module_.train()
        self.scoring_seconds_ += time.perf_counter() - start
        point = {
            "episodes": self.episodes_,
            "train_seconds": start - self.start_ - self.scoring_seconds_,
            "train_loss": net.history_[-1]["batches"][-1].get("train_loss"),
            "accuracy_by_instance": (100 * accuracy).round(1).tolist(),
        }
        self.points_.append(point)
        print(f"MANN curve: {point}", flush=True)


def mann_module(image_size: int) -> nn.Module:
    """Feed raw pixels to the controller, average-pooled to ``image_size`` first."""
    if image_size == 28:
        return nn.Flatten()
    return nn.Sequential(nn.AdaptiveAvgPool2d(image_size), nn.Flatten())


def learners(args, data) -> dict:
    """Build the learners and describe their budgets."""
    common = dict(lr=1e-3, device=args.device, random_state=args.seed)
    return {
        "Meta-LSTM": (
            MetaLSTMClassifier(
                n_way=5,
                k_shot=1,
                n_query=args.lstm_queries,
                inner_steps=args.lstm_steps,
                meta_batch_size=args.lstm_meta_batch,
                task_chunk_size=args.lstm_meta_batch,
                max_epochs=max(1, args.lstm_episodes // 100),
                episodes_per_epoch=min(100, args.lstm_episodes),
                module__hidden_channels=32,
                **common,
            ),
            f"{args.lstm_episodes} episodes 5-way 1-shot {args.lstm_queries}-query, "
            f"{args.lstm_steps} steps, meta-batches of {args.lstm_meta_batch}",
        ),
        "MANN": (
            MANNClassifier(
                mann_module(args.mann_image_size),
                n_way=5,
                k_shot=INSTANCES,
                n_query=1,
                meta_batch_size=16,
                max_epochs=max(1, args.mann_episodes // 320),
                episodes_per_epoch=min(320, args.mann_episodes),
                callbacks=mann_callbacks(args, data),
                **{**common, "lr": args.mann_lr},
            ),
            f"{args.mann_episodes} sequences of 5 classes x {INSTANCES} + 5 queries, "
            f"{args.mann_image_size}x{args.mann_image_size} pixels, Adam at "
            f"{args.mann_lr:g}"
            + (
                f", at most {args.mann_max_seconds:.0f} s"
                if args.mann_max_seconds
                else ""
            ),
        ),
        "Prototypical": (
            PrototypicalClassifier(
                n_way=5,
                k_shot=1,
                n_query=5,
                train_n_way=20,
                max_epochs=max(1, args.proto_episodes // 100),
                episodes_per_epoch=min(100, args.proto_episodes),
                **common,
            ),
            f"{args.proto_episodes} episodes 20-way 1-shot 5-query",
        ),
        "FineTune": (
            FineTuneClassifier(n_way=5, max_epochs=args.finetune_passes, **common),
            f"{args.finetune_passes} pass(es) over the training images",
        ),
        # The non-learned baselines on raw pixels, at their defaults.
        "NearestCentroid": (
            NearestCentroidClassifier(device=args.device),
            "no training (the training pixels' mean)",
        ),
        "NearestNeighbor": (
            NearestNeighborClassifier(device=args.device),
            "no training (the training pixels' mean)",
        ),
    }


def mann_callbacks(args, data) -> list | None:
    """Return the MANN's curve and time budget, where the options ask for them."""
    callbacks = []
    if args.mann_curve_every:
        # The curve reads the first 100 test characters (400 classes with
        # their rotations), a tenth of the test pool, with its own seed.
        _, _, X_test, y_test = data
        keep = np.isin(y_test, np.unique(y_test)[:400])
        curve = InstanceCurve(
            X_test[keep],
            y_test[keep],
            args.mann_curve_every,
            args.mann_curve_episodes,
            random_state=args.seed + 1,
        )
        callbacks.append(("curve", curve))
    if args.mann_max_seconds:
        callbacks.append(("budget", TimeBudget(args.mann_max_seconds)))
    return callbacks or None


def evaluate(name, clf, data, args) -> dict:
    """Score ``clf`` on the 5-way settings (and the MANN by instance)."""
    _, _, X_test, y_test = data
    results = score_settings(
        clf,
        X_test,
        y_test,
        SETTINGS,
        n_query=N_QUERY,
        n_episodes=args.eval_episodes,
        random_state=args.seed,
    )
    record = {"results": results}
    if name == "MANN":
        by_instance = clf.accuracy_by_instance(
            X_test,
            y_test,
            n_way=5,
            n_instances=INSTANCES,
            n_episodes=args.eval_episodes,
            random_state=args.seed,
        )
        record["accuracy_by_instance"] = (100 * by_instance).tolist()
        record["train_episodes"] = sum(
            len(h["batches"]) * clf.meta_batch_size for h in clf.history_
        )
        callbacks = dict(clf.callbacks or [])
        if "curve" in callbacks:
            record["curve"] = callbacks["curve"].points_
    return record


def print_tables(records: dict, args) -> None:
    """Print the 5-way accuracies and the MANN's accuracy by instance."""
    print_table(
        [{"learner": name, **record} for name, record in records.items()],
        [
            ("learner", "learner"),
            *(
                (
                    f"{n_way}-way {k_shot}-shot",
                    lambda r, i=i: plus_minus(
                        (r["results"][i]["accuracy"], r["results"][i]["ci95"])
                    ),
                )
                for i, (n_way, k_shot) in enumerate(SETTINGS)
            ),
            ("train (s)", "train_seconds", ".0f"),
            ("budget", "budget"),
        ],
        title=f"Omniglot (Vinyals et al. split), accuracy (%) on {args.eval_episodes} "
        f"test episodes per setting, {N_QUERY} queries per class",
    )
    print(
        "papers: Prototypical (Snell et al. 2017) 98.8 / 99.7; the Meta-Learner "
        "LSTM is reported on Mini-ImageNet only (43.44 / 60.60)"
    )
    if "MANN" in records:
        acc = records["MANN"]["accuracy_by_instance"]
        shown = [1, 2, 3, 4, 5, 10]
        print_table(
            [
                {"source": "sklearn_meta", **{k: acc[k - 1] for k in shown}},
                {"source": "Santoro et al.", **{k: PAPER_MANN[k] for k in shown}},
                {"source": "TF reimplementation", **{k: REIMPL_MANN[k] for k in shown}},
            ],
            [("", "source"), *((f"#{k}", k, ".1f") for k in shown)],
            title="MANN, accuracy (%) by instance, 5 classes x 10 instances per "
            "episode",
        )


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "seed", "json")
    parser.add_argument("--lstm-episodes", type=int, default=300)
    # The authors' Omniglot 5-way 1-shot configuration (twitter-research/
    # meta-learning-lstm, config/lstm/train-omniglot-1shot-5class.lua and
    # config/1-shot-5-class.lua): 15 steps on the whole support set, 15
    # queries per class, one episode per meta-update, 50,000 episodes.
    parser.add_argument(
        "--lstm-steps", type=int, default=5, help="Meta-LSTM: learned steps per task"
    )
    parser.add_argument(
        "--lstm-queries", type=int, default=5, help="Meta-LSTM: queries per class"
    )
    parser.add_argument(
        "--lstm-meta-batch", type=int, default=4, help="Meta-LSTM: tasks per update"
    )
    parser.add_argument("--mann-episodes", type=int, default=5120)
    parser.add_argument("--mann-lr", type=float, default=3e-3, help="MANN: Adam's rate")
    parser.add_argument(
        "--mann-image-size",
        type=int,
        default=28,
        help="MANN: side of the images fed to the controller (the paper's 20)",
    )
    parser.add_argument(
        "--mann-max-seconds",
        type=float,
        default=None,
        help="MANN: stop training after this many seconds",
    )
    parser.add_argument(
        "--mann-curve-every",
        type=int,
        default=0,
        help="MANN: score by instance every this many episodes (0: never)",
    )
    parser.add_argument(
        "--mann-curve-episodes",
        type=int,
        default=50,
        help="MANN: sequences per point of the curve",
    )
    parser.add_argument("--proto-episodes", type=int, default=500)
    parser.add_argument("--finetune-passes", type=int, default=1)
    parser.add_argument("--eval-episodes", type=int, default=150)
    parser.add_argument("--learners", default=None, help="comma-separated names")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = X_train, y_train, _, _ = load_vinyals(args.data_home)
    chosen = learners(args, data)
    if args.learners:
        wanted = [w.strip() for w in args.learners.split(",")]
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    records = {}
    for name, (clf, budget) in chosen.items():
        print(f"{name}: training on {budget}", flush=True)
        train_s = time_call(clf.fit, X_train, y_train)
        record, eval_s = timed(evaluate, name, clf, data, args)
        record.update(
            budget=budget,
            train_seconds=train_s,
            eval_seconds=eval_s,
            train_loss=[h.get("train_loss") for h in getattr(clf, "history_", [])],
        )
        records[name] = record
        print(
            f"{name}: trained in {train_s:.0f} s, evaluated in "
            f"{record['eval_seconds']:.0f} s: "
            + ", ".join(
                f"{r['setting']} {r['accuracy']:.1f}" for r in record["results"]
            ),
            flush=True,
        )
    print_tables(records, args)
    figures = {
        "paper_mann_by_instance": PAPER_MANN,
        "reimplementation_mann_by_instance": REIMPL_MANN,
        "paper_5way": PAPER_5WAY,
        "learners": records,
    }
    return write_record(
        args.json,
        figures,
        benchmark="omniglot_memory",
        args=args,
        device=args.device,
    )


if __name__ == "__main__":
    main()
