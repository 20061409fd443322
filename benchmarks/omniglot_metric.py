"""The four metric learners on Omniglot under the standard protocol.

Meta-trains :class:`~sklearn_meta.PrototypicalClassifier`,
:class:`~sklearn_meta.MatchingNetworkClassifier`,
:class:`~sklearn_meta.SiameseClassifier` and the transfer baseline
:class:`~sklearn_meta.FineTuneClassifier` on the 1,200 meta-training characters
of the Vinyals et al. protocol (rotations as extra classes, 28x28), and
evaluates each on the 423 held-out characters: 5-way and 20-way, 1-shot and
5-shot, 15 queries per class, mean accuracy with its 95% confidence interval
over ``--eval-episodes`` episodes per setting. Every learner is scored on the
same episodes (drawn with ``random_state=--seed``). The table puts each
learner beside the figures of its paper:

- Prototypical Networks: Snell et al. (2017), Table 1 (trained with 60-way
  episodes);
- Matching Networks: Vinyals et al. (2016), Table 1 (cosine attention, without
  full context embeddings, the setting of ``MatchingNetworkClassifier``'s
  default ``fce=False``);
- Siamese networks: as re-run by Vinyals et al. (2016), Table 1 (Koch et al.
  report no figures on this protocol);
- FineTune has no paper figure: it is the yardstick (the transfer baseline of
  Chen et al., 2019), and a second table gives every other learner's
  difference from it;
- the non-learned baselines, :class:`~sklearn_meta.NearestCentroidClassifier`
  and :class:`~sklearn_meta.NearestNeighborClassifier` on raw pixels at their
  defaults, are rows too (no training budget).

Budget
------
``--episodes N`` sets every learner's training budget, so the same script runs
a short CPU budget and a long GPU one:

- Prototypical: N episodes of 60-way 1-shot with 5 queries per class (as in
  the demo, ``benchmarks/omniglot_protonet.py``);
- Matching and Siamese: N episodes of 20-way 1-shot with 5 queries per class
  (as in ``benchmarks/omniglot_runs.py``);
- FineTune: as many passes over the 96,000 training images as make about as
  many images as N 20-way 1-shot 5-query episodes (120 images each), and at
  least one pass (so at least 800 episodes' worth of images).

Episodes come in epochs of 100 (fewer when N < 100). Every learner uses Adam
at 1e-3, halved at each third of its epochs (skorch's ``LRScheduler`` with
``StepLR``, as in the demo), the default ``Conv4`` and ``random_state=--seed``,
and trains on all meta-training classes (no held-out meta-validation).

Differences from the papers: each learner is one model, trained on 1-shot
episodes and evaluated in all four settings (the papers train a model per
setting); the 1,200 training characters are a fixed seeded
permutation (the official split files are not part of the Omniglot release);
``MatchingNetworkClassifier`` divides cosines by ``temperature=0.1`` (the
paper: 1.0; see its docstring); ``SiameseClassifier`` is trained on episodic
pairs without the affine distortions of Koch et al.

Recorded per learner: training seconds (the whole ``fit``, which ends by
embedding the 96,000 training images once, for ``predict``: over a minute on
one CPU thread, which dominates short runs), seconds per training episode and
images per second (from the epoch times that skorch's ``EpochTimer`` records,
so without that final embedding), evaluation seconds per setting and in all,
the budget and the training loss per epoch. The record ends with the machine
and versions, printed as JSON (and written to ``--json``).

Run ``python benchmarks/omniglot_metric.py`` (``--help`` for the options); on a
GPU machine, for instance ``--episodes 20000 --device cuda``.
"""

from __future__ import annotations

import numpy as np
import torch
from _common import (
    argument_parser,
    load_vinyals,
    plus_minus,
    print_table,
    score_settings,
    time_call,
    timed,
    write_record,
)
from skorch.callbacks import LRScheduler

from sklearn_meta import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)

SETTINGS = [(5, 1), (5, 5), (20, 1), (20, 5)]
N_QUERY = 15
#: Published accuracies (%) on this protocol, in the order of SETTINGS.
PAPERS = {
    "Prototypical": ("Snell et al. 2017", (98.8, 99.7, 96.0, 98.9)),
    "Matching": ("Vinyals et al. 2016", (98.1, 98.9, 93.8, 98.5)),
    "Siamese": ("Vinyals et al. 2016, re-run", (96.7, 98.4, 88.0, 96.5)),
}
YARDSTICK = "FineTune"
#: The episodes of Matching and Siamese (and the unit of FineTune's budget).
TRAIN_WAY, TRAIN_SHOT, TRAIN_QUERY = 20, 1, 5
PROTO_TRAIN_WAY = 60
EPISODES_PER_EPOCH = 100
#: The budget of the non-learned baselines.
NO_TRAINING = {"unit": "none", "epochs": 0, "images": 0}


def halving_schedule(epochs: int) -> list[tuple[str, LRScheduler]]:
    """Halve the learning rate at each third of ``epochs`` (as the demo does)."""
    return [("lr", LRScheduler("StepLR", step_size=max(1, epochs // 3), gamma=0.5))]


def learners(
    episodes: int, n_train_images: int, device: str, seed: int, verbose: int
) -> dict[str, tuple[object, dict]]:
    """Build the learners and their budgets, all scaled by ``episodes``.

    Parameters
    ----------
    episodes : int
        Training episodes asked for the episodic learners.
    n_train_images : int
        Size of the training pool, which sets FineTune's number of passes.
    device : str
        Where to train.
    seed : int
        ``random_state`` of every learner.
    verbose : int
        ``verbose`` of every learner.

    Returns
    -------
    learners : dict
        Name to ``(estimator, budget)``; the budget says what training runs.
    """
    per_epoch = min(EPISODES_PER_EPOCH, episodes)
    epochs = max(1, episodes // per_epoch)
    n_episodes = epochs * per_epoch
    common = dict(
        max_epochs=epochs,
        episodes_per_epoch=per_epoch,
        lr=1e-3,
        device=device,
        verbose=verbose,
        random_state=seed,
    )
    episodic = dict(common, n_way=TRAIN_WAY, k_shot=TRAIN_SHOT, n_query=TRAIN_QUERY)

    def budget(train_way: int) -> dict:
        images = n_episodes * train_way * (TRAIN_SHOT + TRAIN_QUERY)
        return {
            "unit": "episode",
            "episodes": n_episodes,
            "epochs": epochs,
            "episode": f"{train_way}-way {TRAIN_SHOT}-shot {TRAIN_QUERY}-query",
            "images": images,
        }

    images_per_episode = TRAIN_WAY * (TRAIN_SHOT + TRAIN_QUERY)
    passes = max(1, round(n_episodes * images_per_episode / n_train_images))
    return {
        "Prototypical": (
            PrototypicalClassifier(
                **episodic,
                train_n_way=PROTO_TRAIN_WAY,
                callbacks=halving_schedule(epochs),
            ),
            budget(PROTO_TRAIN_WAY),
        ),
        "Matching": (
            MatchingNetworkClassifier(**episodic, callbacks=halving_schedule(epochs)),
            budget(TRAIN_WAY),
        ),
        "Siamese": (
            SiameseClassifier(**episodic, callbacks=halving_schedule(epochs)),
            budget(TRAIN_WAY),
        ),
        YARDSTICK: (
            FineTuneClassifier(
                n_way=TRAIN_WAY,
                max_epochs=passes,
                lr=1e-3,
                device=device,
                verbose=verbose,
                random_state=seed,
                callbacks=halving_schedule(passes),
            ),
            {
                "unit": "pass over the training images",
                "epochs": passes,
                "batch_size": 64,
                "images": passes * n_train_images,
            },
        ),
        # The non-learned baselines (SimpleShot-style, on raw pixels, their
        # defaults): fit learns the training pixels' mean, nothing else.
        "NearestCentroid": (NearestCentroidClassifier(device=device), NO_TRAINING),
        "NearestNeighbor": (NearestNeighborClassifier(device=device), NO_TRAINING),
    }


def describe(budget: dict) -> str:
    """One line for a budget."""
    if budget["unit"] == "none":
        return "no training (the training pixels' mean)"
    if budget["unit"] == "episode":
        return (
            f"{budget['episodes']:,} episodes of {budget['episode']} "
            f"({budget['images']:,} images)"
        )
    return (
        f"{budget['epochs']} pass(es) over the training images, minibatches of "
        f"{budget['batch_size']} ({budget['images']:,} images)"
    )


def train_and_score(clf, budget: dict, data, eval_episodes: int, seed: int) -> dict:
    """Fit ``clf``, score it in every setting; return its record."""
    X_train, y_train, X_test, y_test = data
    train_s = time_call(clf.fit, X_train, y_train)
    history = getattr(clf, "history_", None)
    epoch_s = float(sum(history[:, "dur"])) if history else 0.0
    results = score_settings(
        clf,
        X_test,
        y_test,
        SETTINGS,
        n_query=N_QUERY,
        n_episodes=eval_episodes,
        random_state=seed,
    )
    return {
        "budget": budget,
        "train_seconds": train_s,
        "train_epoch_seconds": epoch_s,
        "train_seconds_per_episode": (
            epoch_s / budget["episodes"] if budget["unit"] == "episode" else None
        ),
        "train_images_per_second": budget["images"] / epoch_s if epoch_s else None,
        "eval_seconds": sum(r["eval_seconds"] for r in results),
        "results": results,
        "train_loss": [h.get("train_loss") for h in history] if history else [],
    }


def print_tables(records: dict, args, n_test_classes: int) -> None:
    """Print the accuracies (beside the papers'), differences and times."""
    names = list(records)
    settings = [
        {"setting": f"{n_way}-way {k_shot}-shot", "i": i}
        for i, (n_way, k_shot) in enumerate(SETTINGS)
    ]

    def result(name: str, row: dict) -> dict:
        return records[name]["results"][row["i"]]

    columns = [("setting", "setting")]
    for name in names:
        columns.append(
            (
                name,
                lambda r, name=name: plus_minus(
                    (result(name, r)["accuracy"], result(name, r)["ci95"])
                ),
            )
        )
        if name in PAPERS:
            columns.append(("paper", lambda r, name=name: PAPERS[name][1][r["i"]]))
    print_table(
        settings,
        columns,
        title=f"Omniglot, Vinyals et al. protocol: accuracy (%) on "
        f"{args.eval_episodes} episodes per setting, {N_QUERY} queries per class, "
        f"{n_test_classes:,} held-out classes",
    )
    sources = [f"{n}: {PAPERS[n][0]}" for n in names if n in PAPERS]
    if YARDSTICK in names:
        sources.append(f"{YARDSTICK}: the transfer baseline")
    print("papers: " + "; ".join(sources))

    others = [n for n in names if n != YARDSTICK]
    if YARDSTICK in records and others:
        print_table(
            settings,
            [
                ("setting", "setting"),
                *(
                    (
                        n,
                        lambda r, n=n: (
                            result(n, r)["accuracy"] - result(YARDSTICK, r)["accuracy"]
                        ),
                        "+.2f",
                    )
                    for n in others
                ),
            ],
            title=f"Difference from {YARDSTICK} (percentage points)",
        )

    print_table(
        [{"learner": name, **record} for name, record in records.items()],
        [
            ("learner", "learner"),
            ("train (s)", "train_seconds", ".1f"),
            ("s / episode", "train_seconds_per_episode", ".4f"),
            ("images / s", "train_images_per_second", ".0f"),
            ("eval (s)", "eval_seconds", ".1f"),
            ("budget", lambda r: describe(r["budget"])),
        ],
        title=f"Training budget and times (device {args.device})",
    )


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "seed", "json")
    parser.add_argument(
        "--episodes",
        type=int,
        default=2000,
        help="training episodes of the episodic learners (FineTune gets as many "
        "images as this many 20-way 1-shot 5-query episodes, at least one pass)",
    )
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument(
        "--learners",
        default=None,
        help="comma-separated names to run, of Prototypical, Matching, Siamese, "
        "FineTune, NearestCentroid, NearestNeighbor (default: all)",
    )
    parser.add_argument("--verbose", type=int, default=0, help="learners' verbose")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.eval_episodes < 2:
        parser.error("--episodes must be at least 1 and --eval-episodes at least 2")

    try:
        (X_train, y_train, X_test, y_test), load_s = timed(load_vinyals, args.data_home)
    except OSError as exc:
        raise SystemExit(
            f"Omniglot is not available ({exc}); pass --data-home, the folder "
            "holding omniglot/images_*.zip."
        ) from exc
    print(
        f"omniglot: {len(X_train)} training images of {len(np.unique(y_train))} "
        f"classes, {len(X_test)} test images of {len(np.unique(y_test))} classes "
        f"(loaded in {load_s:.1f} s); {torch.get_num_threads()} torch threads"
    )

    chosen = learners(args.episodes, len(X_train), args.device, args.seed, args.verbose)
    if args.learners:
        by_name = {name.lower(): name for name in chosen}
        wanted = [w.strip().lower() for w in args.learners.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(by_name))
        if unknown:
            parser.error(f"unknown learners {unknown}; choose from {list(chosen)}")
        chosen = {by_name[w]: chosen[by_name[w]] for w in dict.fromkeys(wanted)}

    records = {}
    data = (X_train, y_train, X_test, y_test)
    for name, (clf, budget) in chosen.items():
        print(f"{name}: training on {describe(budget)}", flush=True)
        records[name] = train_and_score(
            clf, budget, data, args.eval_episodes, args.seed
        )
        print(
            f"{name}: trained in {records[name]['train_seconds']:.0f} s, "
            f"evaluated in {records[name]['eval_seconds']:.0f} s",
            flush=True,
        )
    print_tables(records, args, len(np.unique(y_test)))

    figures = {
        "protocol": "Vinyals et al. split: 1,200 training / 423 test characters, "
        "rotations as classes, 28x28",
        "settings": [f"{n}-way {k}-shot" for n, k in SETTINGS],
        "n_query": N_QUERY,
        "papers": {
            name: {"source": source, "accuracy": list(accuracy)}
            for name, (source, accuracy) in PAPERS.items()
            if name in records
        },
        "learners": records,
        "load_seconds": load_s,
    }
    return write_record(
        args.json,
        figures,
        benchmark="omniglot_metric",
        args=args,
        device=args.device,
    )


if __name__ == "__main__":
    main()
