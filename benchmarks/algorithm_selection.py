"""Algorithm selection: regret of recommendations, and search time saved.

Meta-trains an ``AlgorithmRecommender`` on scikit-learn's data sets and a
generated family (``make_meta_datasets``), with the default portfolio, then:

1. leave-one-data-set-out over every data set: the cross-validated score of
   the top-1 and the best of the top-3 recommendations against the best
   portfolio member (regret) and against the fixed default (a random forest
   with default settings), for the "neighbors" and "model" strategies;
2. on held-out data sets split 75/25: the test score and wall-clock time of
   ``MetaSearchCV`` (top 3 recommended), of the top-1 recommendation alone, of
   the default model, and of a full ``GridSearchCV`` over the whole portfolio.

Evaluations are cached (``--cache-dir``), so a second run, or one resumed
after an interruption, skips them. Prints JSON, then a table.

Usage::

    python benchmarks/algorithm_selection.py                 # ~25 min, 2 cores
    python benchmarks/algorithm_selection.py --n-generated 30 --holdout 3
"""

from __future__ import annotations

import json

import numpy as np
from _common import argument_parser, plus_minus, print_table, time_call, write_record
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from sklearn_meta.model_selection import mean_confidence_interval
from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaSearchCV,
    leave_one_dataset_out,
    make_meta_datasets,
)


def _loo_summary(results: dict) -> dict:
    summary = {}
    for what in ("top1", "topk", "default"):
        mean, half = mean_confidence_interval(results[f"{what}_regret"])
        summary[f"{what}_regret"] = [float(mean), float(half)]
        summary[f"{what}_score"] = float(np.mean(results[f"{what}_score"]))
    summary["best_score"] = float(np.mean(results["best_score"]))
    diff = results["top1_score"] - results["default_score"]
    summary["top1_beats_default"] = int((diff > 1e-9).sum())
    summary["top1_ties_default"] = int((np.abs(diff) <= 1e-9).sum())
    summary["n_datasets"] = len(diff)
    return summary


def _holdout_comparison(recommender, datasets, held_out, args) -> list[dict]:
    # Start joblib's worker processes before any timing, so that neither
    # search pays for them.
    Parallel(n_jobs=args.n_jobs)(delayed(abs)(i) for i in range(4 * args.n_jobs))
    rows = []
    for index in held_out:
        dataset = datasets[index]
        others = [d for i, d in enumerate(datasets) if i != index]
        rec = clone(recommender).set_params(verbose=0).fit(others)
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, dataset.y, test_size=0.25, stratify=dataset.y, random_state=0
        )
        search = MetaSearchCV(rec, n_candidates=3, cv=args.cv, n_jobs=args.n_jobs)
        search_time = time_call(search.fit, X_train, y_train)
        top1 = rec.recommend(X_train, y_train, k=1)[0].estimator.fit(X_train, y_train)
        default = rec.portfolio_["rf"].fit(X_train, y_train)
        grid = GridSearchCV(
            Pipeline([("model", rec.portfolio_["rf"])]),
            {"model": [rec.portfolio_[n] for n in rec.configuration_names_]},
            cv=args.cv,
            n_jobs=args.n_jobs,
        )
        grid_time = time_call(grid.fit, X_train, y_train)
        rows.append(
            {
                "dataset": dataset.name,
                "n_samples": len(dataset.y),
                "meta_search": search.score(X_test, y_test),
                "meta_search_choice": str(
                    search.cv_results_["configuration"][search.best_index_]
                ),
                "meta_search_seconds": search_time,
                "top1": top1.score(X_test, y_test),
                "top1_choice": search.recommendations_[0].name,
                "default": default.score(X_test, y_test),
                "grid_search": grid.score(X_test, y_test),
                "grid_choice": rec.configuration_names_[grid.best_index_],
                "grid_search_seconds": grid_time,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--n-generated", type=int, default=120)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--holdout",
        type=int,
        default=8,
        help="held-out data sets for the search comparison",
    )
    parser.add_argument("--cache-dir", default="build/selection_cache")
    args = parser.parse_args()

    datasets = make_meta_datasets(args.n_generated, random_state=0)
    recommender = AlgorithmRecommender(
        cv=args.cv, n_jobs=args.n_jobs, cache_dir=args.cache_dir, verbose=1
    )
    fit_seconds = time_call(recommender.fit, datasets)

    loo = {}
    for strategy in ("neighbors", "model"):
        recommender.set_params(strategy=strategy)
        loo[strategy] = _loo_summary(leave_one_dataset_out(recommender, k=3))
    recommender.set_params(strategy="neighbors")
    # The best single configuration chosen in hindsight, on all data sets
    # (an optimistic fixed default).
    scores = recommender.scores_
    regrets = np.nanmax(scores, axis=1, keepdims=True) - np.nan_to_num(scores)
    best_fixed = int(np.argmin(regrets.mean(axis=0)))
    hindsight = {
        "configuration": recommender.configuration_names_[best_fixed],
        "regret": [float(v) for v in mean_confidence_interval(regrets[:, best_fixed])],
    }

    # The data sets that ship with scikit-learn, then generated ones spread
    # over the family.
    n_sklearn = len(datasets) - args.n_generated
    spread = np.linspace(n_sklearn, len(datasets) - 1, max(args.holdout - 4, 0))
    held_out = sorted({*range(min(n_sklearn, args.holdout)), *spread.astype(int)})
    holdout = _holdout_comparison(recommender, datasets, held_out, args)

    report = {
        "n_datasets": len(datasets),
        "n_configurations": len(recommender.configuration_names_),
        "cv": args.cv,
        "n_jobs": args.n_jobs,
        "fit_seconds": fit_seconds,
        "evaluations_computed": recommender.n_evaluations_computed_,
        "portfolio_cpu_seconds": float(np.nansum(recommender.fit_times_)),
        "leave_one_out": loo,
        "best_fixed_in_hindsight": hindsight,
        "holdout": holdout,
    }
    write_record(args.json, report, benchmark="algorithm_selection", args=args)

    print_table(
        [{"strategy": strategy, **s} for strategy, s in loo.items()],
        [
            ("strategy", "strategy"),
            ("top-1", "top1_score", ".4f"),
            ("best of top-3", "topk_score", ".4f"),
            ("default (rf)", "default_score", ".4f"),
            ("best member", "best_score", ".4f"),
            ("top-1 regret", lambda s: plus_minus(s["top1_regret"], 4)),
            ("top-3 regret", lambda s: plus_minus(s["topk_regret"], 4)),
            ("default regret", lambda s: plus_minus(s["default_regret"], 4)),
            (
                "top-1 beats default",
                lambda s: (
                    f"{s['top1_beats_default']} of {s['n_datasets']} "
                    f"({s['top1_ties_default']} ties)"
                ),
            ),
        ],
        title="Leave-one-data-set-out, mean CV score and regret (mean ± 95% CI)",
    )
    print(
        f"Best single configuration in hindsight: {hindsight['configuration']}, "
        f"regret {plus_minus(hindsight['regret'], 4)}"
    )
    means = {
        key: float(np.mean([r[key] for r in holdout]))
        for key in (
            "meta_search",
            "top1",
            "default",
            "grid_search",
            "meta_search_seconds",
            "grid_search_seconds",
        )
    }
    print_table(
        [*holdout, {"dataset": "mean", **means}],
        [
            ("data set", "dataset"),
            ("MetaSearchCV (top 3)", "meta_search", ".4f"),
            ("top-1", "top1", ".4f"),
            ("default rf", "default", ".4f"),
            ("full grid", "grid_search", ".4f"),
            ("MetaSearchCV s", "meta_search_seconds", ".1f"),
            ("grid s", "grid_search_seconds", ".1f"),
            (
                "time saved",
                lambda r: f"{r['grid_search_seconds'] / r['meta_search_seconds']:.1f}x",
            ),
        ],
        title="Held-out data sets (test accuracy; search seconds)",
    )


if __name__ == "__main__":
    main()
