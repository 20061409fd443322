"""Why meta-training loses to nearest centroid on tabular few-shot problems.

The problems are those of ``benchmarks/tabular.py`` (digits 0-4 / 5-9,
Omniglot as 14x14 features, and the synthetic 100-class problem). Each is
scored on the same ``--episodes`` 5-way episodes of its test classes, 1-shot
and 5-shot, 15 queries per class, as the mean paired difference from
:class:`~sklearn_meta.NearestCentroidClassifier` (at its defaults: centred
on the pool mean, L2-normalised) with its 95% interval.

What varies is the ``module`` given to :class:`~sklearn_meta.PrototypicalClassifier`
and :class:`~sklearn_meta.MAMLClassifier` (each otherwise at its defaults:
10 epochs of 100 episodes):

- ``default``: the learner's own default body (an MLP);
- ``mlp-l2``: inputs centred on the training pool's mean, an MLP (64, 64)
  to 64 features, L2-normalised, times a learned scale (starting at e);
- ``diagonal-l2``: centred inputs times a learned per-feature weight
  (starting at 1), L2-normalised, times the learned scale: at the start,
  Prototypical *is* nearest centroid;
- ``residual-l2``: as ``diagonal-l2``, plus a residual MLP (64 hidden units)
  whose output layer starts at zero;
- ``hidden-N`` (with ``--bodies``): the learner's default body with
  ``module__hidden_features=N``, for the classifiers whose default is
  :class:`~sklearn_meta.nn.TabularEmbedding` (the same as ``residual-l2``
  for N = 64 and ``diagonal-l2`` for N = 0, with the gradient classifiers'
  head starting at the support's prototypes).

Also printed per problem, as evidence of what can transfer from the training
classes to the test classes: the correlation, over features, of the Fisher
ratio (variance of the class means over the mean within-class variance)
computed on the training classes with the same computed on the test classes.

Run ``python benchmarks/tabular_bodies.py`` (``--help`` for the options).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from _common import (
    argument_parser,
    plus_minus,
    print_table,
    time_call,
    timed_episodic_score,
    write_record,
)
from tabular import load_problem
from torch import nn
from torch.nn import functional as F

import sklearn_meta
from sklearn_meta.model_selection import mean_confidence_interval

SHOTS = (1, 5)
VARIANTS = ("default", "mlp-l2", "diagonal-l2", "residual-l2")


class Body(nn.Module):
    """Centre on the pool mean, transform, L2-normalise, scale (a learned scalar)."""

    def __init__(self, mean: np.ndarray, variant: str, hidden: int = 64):
        super().__init__()
        n = len(mean)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.variant = variant
        self.weight = None
        self.mlp = None
        if variant == "mlp-l2":
            self.mlp = nn.Sequential(
                nn.Linear(n, 64),
                nn.ReLU(),
                nn.Linear(64, 64),
                nn.ReLU(),
                nn.Linear(64, 64),
            )
        else:
            self.weight = nn.Parameter(torch.ones(n))
            if variant == "residual-l2":
                self.mlp = nn.Sequential(
                    nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, n)
                )
                nn.init.zeros_(self.mlp[-1].weight)
                nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Embed ``X`` ``(n, n_features)``."""
        X = X - self.mean
        if self.variant == "mlp-l2":
            X = self.mlp(X)
        else:
            X = X * self.weight
            if self.mlp is not None:
                X = X + self.mlp(X)
        return F.normalize(X, dim=-1) * self.log_scale.exp()


def fisher_ratios(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per feature: variance of the class means over the mean within-class variance."""
    classes = np.unique(y)
    means = np.stack([X[y == c].mean(0) for c in classes])
    within = np.stack([X[y == c].var(0) for c in classes]).mean(0)
    return means.var(0) / (within + 1e-3)


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "seed", "json")
    parser.add_argument("--problems", default="digits,omniglot,synthetic")
    parser.add_argument("--learners", default="PrototypicalClassifier,MAMLClassifier")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--bodies", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows, transfer = [], {}
    for problem in args.problems.split(","):
        X_train, y_train, X_test, y_test = load_problem(problem, args.data_home)
        correlation = np.corrcoef(
            fisher_ratios(X_train, y_train), fisher_ratios(X_test, y_test)
        )[0, 1]
        transfer[problem] = float(correlation)
        print(f"{problem}: Fisher-ratio correlation {correlation:.2f}", flush=True)

        def score(clf, k_shot, X_test=X_test, y_test=y_test):
            return timed_episodic_score(
                clf,
                X_test,
                y_test,
                5,
                k_shot,
                n_query=15,
                n_episodes=args.episodes,
                random_state=args.seed,
            )[0]

        baseline = sklearn_meta.NearestCentroidClassifier().fit(X_train, y_train)
        base = {k: score(baseline, k).scores for k in SHOTS}
        for name in args.learners.split(","):
            for variant in args.bodies.split(","):
                params = {}
                if variant.startswith("hidden-"):
                    params["module__hidden_features"] = int(variant[7:])
                elif variant != "default":
                    params["module"] = Body(X_train.mean(0), variant)
                clf = getattr(sklearn_meta, name)(random_state=args.seed, **params)
                row = {
                    "problem": problem,
                    "learner": name,
                    "body": variant,
                    "fit_seconds": time_call(clf.fit, X_train, y_train),
                }
                for k in SHOTS:
                    result = score(clf, k)
                    mean, half = mean_confidence_interval(result.scores - base[k])
                    row[f"{k}-shot"] = (100 * result.mean, 100 * result.ci95)
                    row[f"{k}-shot vs nearest centroid"] = (100 * mean, 100 * half)
                rows.append(row)
                print(row, flush=True)

    columns = [
        ("problem", "problem"),
        ("learner", "learner"),
        ("body", "body"),
        ("fit s", "fit_seconds", ".1f"),
    ]
    for k in SHOTS:
        columns += [
            (f"{k}-shot (%)", lambda r, k=k: plus_minus(r[f"{k}-shot"], 1)),
            (
                "vs nearest centroid (points)",
                lambda r, k=k: plus_minus(r[f"{k}-shot vs nearest centroid"], 1),
            ),
        ]
    print_table(
        rows,
        columns,
        title=(
            f"5-way episodes of held-out classes, {args.episodes} episodes; "
            f"the learned scale starts at e = {math.e:.3f}."
        ),
    )
    print(f"Fisher-ratio correlation, training vs test classes: {transfer}")
    return write_record(
        args.json,
        {"rows": rows, "fisher_ratio_correlation": transfer},
        benchmark="tabular_bodies",
        args=args,
    )


if __name__ == "__main__":
    main()
