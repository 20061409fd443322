"""Choosing the tabular body's capacity by cross-validation over classes.

For each problem of ``benchmarks/tabular.py`` with enough training classes
(digits has five, too few for a fold to hold ``n_way`` of them), a
:class:`~sklearn.model_selection.GridSearchCV` with
:class:`~sklearn_meta.model_selection.ClassKFold` (3 folds: every fold scores
classes its fit never saw) chooses ``module__hidden_features`` of
:class:`~sklearn_meta.PrototypicalClassifier` among ``--hidden`` (default 0
and 64), each fit at the learner's defaults. The refitted best learner is
then scored on the held-out test classes, as in ``benchmarks/tabular.py``:
5-way 1-shot and 5-shot, 15 queries per class, ``--episodes`` episodes,
mean paired difference from :class:`~sklearn_meta.NearestCentroidClassifier`
with its 95% interval.

Run ``python benchmarks/tabular_selection.py`` (``--help`` for the options).
"""

from __future__ import annotations

import torch
from _common import (
    argument_parser,
    plus_minus,
    print_table,
    time_call,
    timed_episodic_score,
    write_record,
)
from sklearn.model_selection import GridSearchCV
from tabular import load_problem

import sklearn_meta
from sklearn_meta.model_selection import ClassKFold, mean_confidence_interval

SHOTS = (1, 5)


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "seed", "json")
    parser.add_argument("--problems", default="omniglot,synthetic")
    parser.add_argument("--hidden", default="0,64")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = {"module__hidden_features": [int(h) for h in args.hidden.split(",")]}

    rows = []
    for problem in args.problems.split(","):
        X_train, y_train, X_test, y_test = load_problem(problem, args.data_home)
        search = GridSearchCV(
            sklearn_meta.PrototypicalClassifier(random_state=args.seed),
            grid,
            cv=ClassKFold(args.folds),
        )
        seconds = time_call(search.fit, X_train, y_train)
        baseline = sklearn_meta.NearestCentroidClassifier().fit(X_train, y_train)
        row = {
            "problem": problem,
            "search_seconds": seconds,
            "cv_scores": {
                str(h): 100 * float(s)
                for h, s in zip(
                    search.cv_results_["param_module__hidden_features"],
                    search.cv_results_["mean_test_score"],
                    strict=True,
                )
            },
            "chosen": search.best_params_["module__hidden_features"],
        }
        for k in SHOTS:
            results = [
                timed_episodic_score(
                    clf,
                    X_test,
                    y_test,
                    5,
                    k,
                    n_query=15,
                    n_episodes=args.episodes,
                    random_state=args.seed,
                )[0]
                for clf in (search.best_estimator_, baseline)
            ]
            mean, half = mean_confidence_interval(results[0].scores - results[1].scores)
            row[f"{k}-shot"] = (100 * results[0].mean, 100 * results[0].ci95)
            row[f"{k}-shot vs nearest centroid"] = (100 * mean, 100 * half)
        rows.append(row)
        print(row, flush=True)

    columns = [
        ("problem", "problem"),
        (
            "class-CV score by hidden_features (%)",
            lambda r: ", ".join(f"{h}: {s:.1f}" for h, s in r["cv_scores"].items()),
        ),
        ("chosen", "chosen"),
        ("search s", "search_seconds", ".0f"),
    ]
    for k in SHOTS:
        columns += [
            (f"{k}-shot (%)", lambda r, k=k: plus_minus(r[f"{k}-shot"], 1)),
            (
                "vs nearest centroid",
                lambda r, k=k: plus_minus(r[f"{k}-shot vs nearest centroid"], 1),
            ),
        ]
    print_table(
        rows, columns, title="Prototypical Networks, capacity chosen by class CV"
    )
    return write_record(
        args.json, {"rows": rows}, benchmark="tabular_selection", args=args
    )


if __name__ == "__main__":
    main()
