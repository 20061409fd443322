"""
Recommending a pipeline for a new data set
==========================================

Which model, with which preprocessing, should a new data set get? Algorithm
selection answers from experience: evaluate a portfolio of configurations on
many past data sets, describe each data set by meta-features, and recommend,
for a new one, what worked on the data sets that resemble it.

This example meta-trains an :class:`~sklearn_meta.selection.AlgorithmRecommender`
on a generated family of data sets, asks it to rank the portfolio for the
breast-cancer data set (which it never saw), and compares the ranking with the
true cross-validated ranking. :class:`~sklearn_meta.selection.MetaSearchCV`
then evaluates only the top three recommendations.

Run time: about a minute on a 2-core machine (measured with the example pinned
to one core).
"""

# %%
# Meta-training
# -------------
# Eight configurations of the default portfolio, scored by 3-fold
# cross-validation on 30 generated data sets. Set ``cache_dir`` to keep the
# scores on disk: a second run (or one resumed after an interruption) reads
# them back instead of refitting.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score, train_test_split

from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaSearchCV,
    Portfolio,
    default_portfolio,
    make_meta_datasets,
)

# Run as a script, the example saves its figures as PNG files in the folder
# that SKLEARN_META_FIGURES names (by default the current one).
figures = Path(os.environ.get("SKLEARN_META_FIGURES", "."))
figures.mkdir(parents=True, exist_ok=True)

full = default_portfolio()
portfolio = Portfolio(
    {
        name: full[name]
        for name in (
            "scale+logreg_C0.1",
            "scale+logreg_C10",
            "scale+knn1",
            "scale+knn15",
            "scale+svc_C1",
            "scale+gnb",
            "rf",
            "tree_d5",
        )
    }
)
family = make_meta_datasets(30, include_sklearn=False, n_samples=(80, 300))
recommender = AlgorithmRecommender(portfolio=portfolio, cv=3, n_jobs=2, verbose=0)
recommender.fit(family)
print(f"Scored {len(portfolio)} configurations on {len(family)} data sets.")

# %%
# Recommending for a held-out data set
# ------------------------------------
X, y = load_breast_cancer(return_X_y=True)
recommendations = recommender.recommend(X, y, k=None)
for r in recommendations[:3]:
    print(f"{r.rank}. {r.name:22s} predicted accuracy {r.predicted_score:.3f}")

# %%
# How good is the ranking? Cross-validate every configuration on the data set
# (what a full search would do) and compare the ranks.
actual = {
    name: cross_val_score(portfolio[name], X, y, cv=3).mean() for name in portfolio
}
names = [r.name for r in recommendations]
predicted_rank = np.arange(1, len(names) + 1)
actual_order = sorted(actual, key=actual.get, reverse=True)
actual_rank = np.array([actual_order.index(n) + 1 for n in names])
rho = spearmanr(predicted_rank, actual_rank).statistic
best = max(actual.values())
print(f"Spearman correlation of the ranks: {rho:.2f}")
print(
    f"top-1 {actual[names[0]]:.4f}, best of top-3 "
    f"{max(actual[n] for n in names[:3]):.4f}, random forest {actual['rf']:.4f}, "
    f"best of all {best:.4f}"
)

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.plot([1, len(names)], [1, len(names)], color="0.8", zorder=0)
ax.scatter(predicted_rank, actual_rank)
for p, a, n in zip(predicted_rank, actual_rank, names):
    ax.annotate(n, (p, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.set_xlabel("recommended rank")
ax.set_ylabel("actual rank (3-fold CV accuracy)")
ax.set_title(f"breast_cancer: recommended vs actual ranks (Spearman {rho:.2f})")
ax.invert_xaxis()
ax.invert_yaxis()
fig.tight_layout()
fig.savefig(figures / "plot_algorithm_selection.png")
plt.show()

# %%
# With 30 small training data sets the ranking of the whole portfolio is
# noisy (configurations in the middle of the list differ by a point or less),
# but the top of the list is what a search uses: the best of the top three is
# within a fraction of a point of the best of all. ``docs/benchmarks.md``
# measures this over 124 data sets, leaving each out in turn.

# %%
# A warm-started search
# ---------------------
# ``MetaSearchCV`` cross-validates the three best recommendations only, and
# refits the winner, like a ``GridSearchCV`` over three candidates.
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
search = MetaSearchCV(recommender, n_candidates=3, cv=3).fit(X_train, y_train)
print(search.cv_results_["configuration"].tolist())
print(f"test accuracy {search.score(X_test, y_test):.4f}")

# %%
# The recommendation needs no fit on the new data set beyond its
# meta-features: a handful of evaluations replaces the whole portfolio's,
# which matters more the larger the portfolio and the data set.
