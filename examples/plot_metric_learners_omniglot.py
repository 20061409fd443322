"""
Four metric learners on one new Omniglot task
=============================================

Prototypical Networks, Matching Networks, Siamese Networks and the transfer
baseline all adapt by embedding a support set. Here each is meta-trained for the
same short budget on the background alphabets, adapted to one 5-way 1-shot task
from an unseen alphabet, and shown with the support image each query lands
nearest to in its embedding.

You will learn that all four share one estimator interface (``fit``, ``adapt``,
``predict``), how to score them on the same episodes, and how to look inside an
adapted model's embedding.
"""

# %%
# Data and learners
# -----------------
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_meta import (
    FineTuneClassifier,
    MatchingNetworkClassifier,
    PrototypicalClassifier,
    SiameseClassifier,
)
from sklearn_meta.datasets import load_omniglot
from sklearn_meta.model_selection import episodic_score

here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
data_home = os.environ.get("SKLEARN_META_DATA", here.parents[1] / "shared" / "data")
X, y = load_omniglot("background", data_home=data_home, download=False, return_X_y=True)
X_new, y_new = load_omniglot(
    "evaluation", data_home=data_home, download=False, return_X_y=True
)

episodic = dict(
    n_way=5,
    k_shot=1,
    n_query=5,
    train_n_way=20,
    max_epochs=2,
    episodes_per_epoch=100,
    random_state=0,
)
learners = {
    "Prototypical": PrototypicalClassifier(**episodic),
    "Matching": MatchingNetworkClassifier(**episodic),
    "Siamese": SiameseClassifier(**episodic),
    "FineTune": FineTuneClassifier(n_way=5, k_shot=1, max_epochs=1, random_state=0),
}
for name, clf in learners.items():
    clf.fit(X, y)
    score = episodic_score(clf, X_new, y_new, n_episodes=300, random_state=0)
    print(f"{name:<14} 5-way 1-shot on new alphabets: {score.format(percent=True)}")

# %%
# One task: which support image is each query nearest to?
# -------------------------------------------------------
# The embedding of an adapted model is its ``learner_.module_``; a query's
# nearest support image (cosine similarity of embeddings) shows what the
# learner has learned to compare.
rng = np.random.default_rng(3)
classes = rng.choice(np.unique(y_new), size=5, replace=False)
support = np.array([np.flatnonzero(y_new == c)[0] for c in classes])
queries = np.array([rng.choice(np.flatnonzero(y_new == c)[1:]) for c in classes])

fig, axes = plt.subplots(len(learners) + 1, 5, figsize=(7, 8.5))
for j in range(5):
    axes[0, j].imshow(X_new[support[j], 0], cmap="gray_r")
axes[0, 0].set_ylabel("support", fontsize=8)
for i, (name, clf) in enumerate(learners.items(), start=1):
    model = clf.adapt(X_new[support], y_new[support])
    predicted = model.predict(X_new[queries])
    embedding = model.learner_.module_  # the meta-learned embedding (eval mode)
    with torch.no_grad():
        zs = embedding(torch.from_numpy(X_new[support])).flatten(1)
        zq = embedding(torch.from_numpy(X_new[queries])).flatten(1)
    zs, zq = (torch.nn.functional.normalize(z, dim=1) for z in (zs, zq))
    nearest = (zq @ zs.T).argmax(1).numpy()
    for j in range(5):
        ax = axes[i, j]
        ax.imshow(
            np.concatenate([X_new[queries[j], 0], X_new[support[nearest[j]], 0]], 1),
            cmap="gray_r",
        )
        ok = predicted[j] == y_new[queries[j]]
        for side in ax.spines.values():
            side.set_color("green" if ok else "red")
            side.set_linewidth(2)
    axes[i, 0].set_ylabel(name, fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(
    "Each query (left) beside its nearest support image (right);\n"
    "green: predicted correctly",
    fontsize=9,
)
fig.tight_layout()
plt.show()

# %%
# Takeaway
# --------
# Every learner is an sklearn estimator with the same ``fit``/``adapt``/``predict``
# interface, so they are compared on the same episodes with one function, and an
# adapted model is an ordinary classifier whose embedding can be inspected.
