"""Lake et al.'s official one-shot benchmark for the metric learners.

Each learner is meta-trained on the 30 background alphabets only, then scored
on the 20 official within-alphabet 20-way 1-shot runs of
``omniglot/all_runs.zip`` exactly as the runs define (each of the 400 test
images counts once). Reported by Lake et al.: people make about 4.5% errors;
Koch et al. report about 92% accuracy for Siamese networks.

Run ``python benchmarks/omniglot_runs.py`` (``--help`` for the options). Prints
a table and a JSON record.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_meta import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)
from sklearn_meta.datasets import load_omniglot, load_omniglot_runs, score_omniglot_runs

REPO = Path(__file__).resolve().parents[1]


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
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--episodes",
        type=int,
        default=1000,
        help="training episodes of the episodic learners",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learners", default=None, help="comma-separated names to run (default: all)"
    )
    parser.add_argument("--json", default=None)
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
        start = time.perf_counter()
        clf.fit(X, y)
        train_s = time.perf_counter() - start
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
    print("\nreference: people 95.5 %, Siamese networks (Koch et al.) ~92 %")
    record = {
        "benchmark": "omniglot_runs",
        "args": vars(args),
        "results": rows,
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
    }
    print(json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
