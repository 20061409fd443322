"""Lake et al.'s official one-shot benchmark for the metric learners.

Each learner is meta-trained on the 30 background alphabets only (the
nearest-centroid and nearest-neighbour baselines only learn the pixels' mean
there), then scored
on the 20 official within-alphabet 20-way 1-shot runs of
``omniglot/all_runs.zip`` exactly as the runs define (each of the 400 test
images counts once). Reported by Lake et al.: people make about 4.5% errors;
Koch et al. report about 92% accuracy for Siamese networks.

Run ``python benchmarks/omniglot_runs.py`` (``--help`` for the options). Prints
a table and a JSON record.
"""

from __future__ import annotations

import numpy as np
from _common import argument_parser, print_table, time_call, write_record

from sklearn_meta import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)
from sklearn_meta.datasets import load_omniglot, load_omniglot_runs, score_omniglot_runs


def learners(episodes: int, seed: int) -> dict:
    """Build the learners, each trained on a comparable budget of images."""
    episodic = dict(
        n_way=20,
        k_shot=1,
        n_query=5,
        max_epochs=max(1, episodes // 100),
        episodes_per_epoch=100,
        random_state=seed,
    )
    return {
        "Prototypical": PrototypicalClassifier(**episodic, train_n_way=60),
        "Matching": MatchingNetworkClassifier(**episodic),
        "Siamese": SiameseClassifier(**episodic),
        # One epoch is a pass over the 19,280 background images: about as many
        # images as 1,000 episodes of 20-way 1-shot with 5 queries.
        "FineTune (linear head)": FineTuneClassifier(
            n_way=20, max_epochs=max(1, episodes // 160), random_state=seed
        ),
        # The non-learned baselines on raw pixels (their defaults: centred and
        # L2-normalised with the background images' mean).
        "NearestCentroid": NearestCentroidClassifier(),
        "NearestNeighbor": NearestNeighborClassifier(),
    }


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "seed", "json")
    parser.add_argument(
        "--episodes",
        type=int,
        default=1000,
        help="training episodes of the episodic learners",
    )
    parser.add_argument(
        "--learners", default=None, help="comma-separated names to run (default: all)"
    )
    args = parser.parse_args(argv)

    X, y = load_omniglot(
        "background", data_home=args.data_home, download=False, return_X_y=True
    )
    tasks = load_omniglot_runs(
        data_home=args.data_home, download=False, return_X_y=True
    )
    rows = []
    chosen = learners(args.episodes, args.seed)
    if args.learners:
        wanted = [w.strip() for w in args.learners.split(",")]
        chosen = {k: v for k, v in chosen.items() if k.split(" ")[0] in wanted}
    for name, clf in chosen.items():
        train_s = time_call(clf.fit, X, y)
        result = score_omniglot_runs(clf, tasks)
        rows.append(
            {
                "learner": name,
                "accuracy": 100 * result["accuracy"],
                "per_run_std": 100 * float(np.std(result["per_run"])),
                "train_seconds": train_s,
            }
        )
        print(
            f"{name:<24}{rows[-1]['accuracy']:>8.2f} %   ({train_s:.0f} s training)",
            flush=True,
        )
    print_table(
        rows,
        [
            ("learner", "learner"),
            ("accuracy (%)", "accuracy", ".2f"),
            ("std over runs", "per_run_std", ".2f"),
            ("train (s)", "train_seconds", ".0f"),
        ],
        title="Lake et al.'s 20 within-alphabet 20-way 1-shot runs",
    )
    print("reference: people 95.5 %, Siamese networks (Koch et al.) ~92 %")
    return write_record(
        args.json, {"results": rows}, benchmark="omniglot_runs", args=args
    )


if __name__ == "__main__":
    main()
