"""The non-learned baselines on held-out digits: every feature transform.

:class:`~sklearn_meta.NearestCentroidClassifier` and
:class:`~sklearn_meta.NearestNeighborClassifier` are fitted on scikit-learn's
digits 0-4 as 64 features (which learns the transform's statistics and
nothing else) and scored on 5-way episodes of the digits 5-9 they never saw,
1-shot and 5-shot with 15 queries per class, ``--episodes`` episodes each,
for every ``standardize`` x ``l2_normalize`` combination: SimpleShot's UN
(``"none"``), L2N (``"none"`` + L2), CL2N (``"center"`` + L2), and
standardisation with and without L2. ``"center"`` without L2 is listed too:
it must equal ``"none"`` (Euclidean distances ignore a shift). Every row is
scored on the same episodes (``random_state=--seed``), so rows differ by the
transform alone; the table gives mean accuracy and its 95% confidence
interval over episodes, and the mean paired difference from the default
transform with its 95% interval.

``--data omniglot`` runs the same on Omniglot's raw 28x28 pixels under the
Vinyals et al. protocol (fitted on the 1,200 training characters with their
rotations, scored on the 423 test characters, read from ``--data-home``).

Run ``python benchmarks/baselines.py`` (``--help`` for the options); it takes
a few seconds on the CPU (Omniglot: about half a minute).
"""

from __future__ import annotations

from _common import (
    argument_parser,
    load_vinyals,
    plus_minus,
    print_table,
    timed_episodic_score,
    write_record,
)

from sklearn_meta import NearestCentroidClassifier, NearestNeighborClassifier
from sklearn_meta.datasets import load_digits_images
from sklearn_meta.model_selection import mean_confidence_interval

#: (standardize, l2_normalize), in the order of the table.
TRANSFORMS = [
    ("none", False),
    ("none", True),
    ("center", False),
    ("center", True),
    ("standardize", False),
    ("standardize", True),
]

SHOTS = (1, 5)


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "seed", "json")
    parser.add_argument("--data", choices=["digits", "omniglot"], default="digits")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--n-query", type=int, default=15)
    args = parser.parse_args(argv)

    if args.data == "digits":
        X, y = load_digits_images(return_X_y=True)
        X = X.reshape(len(X), -1)  # 64 features
        X_train, y_train, X_test, y_test = X[y < 5], y[y < 5], X[y >= 5], y[y >= 5]
        data = "Digits 5-9 (fitted on 0-4)"
    else:
        X_train, y_train, X_test, y_test = load_vinyals(args.data_home)
        data = "Omniglot's 423 test characters (fitted on the 1,200 training ones)"
    rows = []
    for cls in (NearestCentroidClassifier, NearestNeighborClassifier):
        default = cls()
        scores = {}
        for standardize, l2_normalize in TRANSFORMS:
            clf = cls(
                standardize=standardize, l2_normalize=l2_normalize, device=args.device
            )
            clf.fit(X_train, y_train)
            row = {
                "estimator": cls.__name__,
                "standardize": standardize,
                "l2_normalize": l2_normalize,
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
                scores[standardize, l2_normalize, k_shot] = result.scores
                row[f"{k_shot}-shot"] = (100 * result.mean, 100 * result.ci95)
                row[f"{k_shot}-shot seconds"] = seconds
            rows.append(row)
        for row in rows[-len(TRANSFORMS) :]:
            for k_shot in SHOTS:
                key = (default.standardize, default.l2_normalize, k_shot)
                paired = scores[row["standardize"], row["l2_normalize"], k_shot]
                mean, half = mean_confidence_interval(paired - scores[key])
                row[f"{k_shot}-shot vs default"] = (100 * mean, 100 * half)

    columns = [
        ("estimator", "estimator"),
        ("standardize", "standardize"),
        ("l2_normalize", "l2_normalize"),
    ]
    for k_shot in SHOTS:
        columns += [
            (
                f"5-way {k_shot}-shot (%)",
                lambda r, k=k_shot: plus_minus(r[f"{k}-shot"]),
            ),
            (
                "vs default (points)",
                lambda r, k=k_shot: plus_minus(r[f"{k}-shot vs default"]),
            ),
        ]
    print_table(
        rows,
        columns,
        title=(
            f"{data}, 5-way, {args.n_query} queries per class, "
            f"{args.episodes} episodes; mean ± 95% CI. Default: "
            f'standardize="{default.standardize}", '
            f"l2_normalize={default.l2_normalize}."
        ),
    )
    return write_record(args.json, {"rows": rows}, benchmark="baselines", args=args)


if __name__ == "__main__":
    main()
