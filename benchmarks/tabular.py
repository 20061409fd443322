"""Tabular few-shot classification: every classifier at its defaults, and baselines.

The suite (each pool split by class, so the test classes are never seen in
``fit``):

- ``digits``: scikit-learn's 8x8 digits as 64 features in [0, 1]; fitted on
  the digits 0-4 (901 samples), scored on 5-9 (896 samples). Five training
  classes: every 5-way training episode holds all of them.
- ``omniglot``: Omniglot's 28x28 characters averaged down to 14x14, as 196
  features in [0, 1], under the Vinyals et al. protocol: fitted on the 1,200
  training characters with their four rotations (4,800 classes of 20),
  scored on the 423 test characters (1,692 classes with rotations).
- ``synthetic``: :func:`sklearn.datasets.make_classification` with 100
  classes of 40 samples, 40 features of which 10 informative (one Gaussian
  cluster per class on the vertices of a hypercube, ``class_sep=1.5``) and
  30 pure noise, ``random_state=0``; fitted on classes 0-63, scored on 64-99.
  Nearest centroid weighs the noise features as much as the informative
  ones, so a learned embedding has something to find here.

Every classifier of the package is fitted at its default settings (the
stated budget is its defaults: 10 epochs of 100 episodes for the episodic
learners, 10 passes for FineTune) with ``random_state=--seed``, then scored on
the same ``--episodes`` 5-way episodes of the test classes, 1-shot and
5-shot with 15 queries per class: mean accuracy and 95% confidence interval,
and the mean paired difference from :class:`NearestCentroidClassifier` (at its
defaults) with its 95% interval, on the same episodes.

Run ``python benchmarks/tabular.py`` (``--help`` for the options;
``--problems`` and ``--learners`` select; ``--set`` changes a learner's
parameters away from its defaults, as in ``--set
MANNClassifier:episodes_per_epoch=1600,lr=3e-3``). One CPU thread unless
``--threads``; about ten minutes on one core.
"""

from __future__ import annotations

import ast

import numpy as np
import torch
from _common import (
    argument_parser,
    load_vinyals,
    plus_minus,
    print_table,
    time_call,
    timed_episodic_score,
    write_record,
)
from sklearn.datasets import load_digits, make_classification

import sklearn_meta
from sklearn_meta.model_selection import mean_confidence_interval

SHOTS = (1, 5)
BASELINE = "NearestCentroidClassifier"
#: Every classifier the package exports, the baselines first.
LEARNERS = [
    BASELINE,
    "NearestNeighborClassifier",
    *sorted(
        name
        for name in sklearn_meta.__all__
        if name.endswith("Classifier")
        and name not in (BASELINE, "NearestNeighborClassifier", "AdaptedClassifier")
    ),
]


def load_problem(name: str, data_home: str) -> tuple[np.ndarray, ...]:
    """Return ``X_train, y_train, X_test, y_test`` of one problem of the suite."""
    if name == "digits":
        digits = load_digits()
        X, y = (digits.data / 16).astype(np.float32), digits.target
        return X[y < 5], y[y < 5], X[y >= 5], y[y >= 5]
    if name == "omniglot":
        X_train, y_train, X_test, y_test = load_vinyals(data_home)

        def pooled(X):
            return X.reshape(len(X), 14, 2, 14, 2).mean((2, 4)).reshape(len(X), -1)

        return pooled(X_train), y_train, pooled(X_test), y_test
    if name == "synthetic":
        X, y = make_classification(
            n_samples=4000,
            n_features=40,
            n_informative=10,
            n_redundant=0,
            n_classes=100,
            n_clusters_per_class=1,
            class_sep=1.5,
            random_state=0,
        )
        X = X.astype(np.float32)
        return X[y < 64], y[y < 64], X[y >= 64], y[y >= 64]
    raise ValueError(f"Unknown problem {name!r}.")


def parse_settings(settings: list[str]) -> dict[str, dict]:
    """Parse ``--set`` values ``"Learner:name=value,..."``: parameters by learner."""
    changed: dict[str, dict] = {}
    for setting in settings:
        name, _, pairs = setting.partition(":")
        for pair in filter(None, pairs.split(",")):
            key, _, value = pair.partition("=")
            changed.setdefault(name.strip(), {})[key.strip()] = ast.literal_eval(value)
    return changed


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "seed", "json")
    parser.add_argument("--problems", default="digits,omniglot,synthetic")
    parser.add_argument("--learners", default=",".join(LEARNERS))
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--n-query", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LEARNER:NAME=VALUE,...",
        help="parameters of a learner other than its defaults (repeatable)",
    )
    args = parser.parse_args(argv)
    changed = parse_settings(args.set)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.learners.split(",")]
    if BASELINE not in names:
        names.insert(0, BASELINE)

    rows = []
    for problem in args.problems.split(","):
        X_train, y_train, X_test, y_test = load_problem(problem, args.data_home)
        baseline_scores = {}
        for name in names:
            params = {"device": args.device}
            if not name.startswith("Nearest"):
                params["random_state"] = args.seed
            params.update(changed.get(name, {}))
            clf = getattr(sklearn_meta, name)(**params)
            fit_seconds = time_call(clf.fit, X_train, y_train, device=args.device)
            row = {
                "problem": problem,
                "learner": name,
                "params": changed.get(name, {}),
                "fit_seconds": fit_seconds,
            }
            for k_shot in SHOTS:
                result, seconds = timed_episodic_score(
                    clf,
                    X_test,
                    y_test,
                    5,
                    k_shot,
                    n_query=args.n_query,
                    n_episodes=args.episodes,
                    random_state=args.seed,
                    device=args.device,
                )
                if name == BASELINE:
                    baseline_scores[k_shot] = result.scores
                mean, half = mean_confidence_interval(
                    result.scores - baseline_scores[k_shot]
                )
                row[f"{k_shot}-shot"] = (100 * result.mean, 100 * result.ci95)
                row[f"{k_shot}-shot vs nearest centroid"] = (100 * mean, 100 * half)
                row[f"{k_shot}-shot beats nearest centroid"] = bool(mean - half > 0)
                row[f"{k_shot}-shot score seconds"] = seconds
            rows.append(row)
            print(row, flush=True)

    columns = [
        ("problem", "problem"),
        ("learner", "learner"),
        ("fit s", "fit_seconds", ".1f"),
    ]
    for k_shot in SHOTS:
        columns += [
            (
                f"5-way {k_shot}-shot (%)",
                lambda r, k=k_shot: plus_minus(r[f"{k}-shot"], 1),
            ),
            (
                "vs nearest centroid (points)",
                lambda r, k=k_shot: plus_minus(r[f"{k}-shot vs nearest centroid"], 1),
            ),
        ]
    print_table(
        rows,
        columns,
        title=(
            f"5-way episodes of held-out classes, {args.n_query} queries per class, "
            f"{args.episodes} episodes (the same for every learner); mean ± 95% CI; "
            "every learner at its defaults."
        ),
    )
    return write_record(args.json, {"rows": rows}, benchmark="tabular", args=args)


if __name__ == "__main__":
    main()
