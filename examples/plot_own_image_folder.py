"""
Your own images: meta-training from a folder of image files
===========================================================

Few-shot data usually arrive as image files, one folder per class. This
example writes such a folder, loads it with ``load_image_folder`` (which reads
nothing but the files' headers until an image is needed), meta-trains a
Prototypical Network on some classes, and classifies new classes from five
examples each.

You will learn to point a learner at a folder of images, to keep them as uint8
(decoded once into an on-disk cache), to read ahead with ``num_workers`` and to
augment the training episodes with ``augment``.

Run time: about 30 seconds on a 2-core machine (measured with the example
pinned to one core).
"""

# %%
# A folder of images, one sub-folder per class
# --------------------------------------------
# We write sklearn's handwritten digits as 24x24 colour PNG files, tinted at
# random, under ``<folder>/<parity>/<digit>/``. Nested folders are allowed: a
# class is the leaf folder's path, here "even/0", "odd/1", and so on.
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from sklearn_meta import PrototypicalClassifier
from sklearn_meta.augment import ColorJitter, RandomCrop
from sklearn_meta.datasets import load_image_folder
from sklearn_meta.model_selection import episodic_score

# Run as a script, the example saves its figures as PNG files in the folder
# that SKLEARN_META_FIGURES names (by default the current one).
figures = Path(os.environ.get("SKLEARN_META_FIGURES", "."))
figures.mkdir(parents=True, exist_ok=True)

workdir = Path(tempfile.mkdtemp(prefix="sklearn_meta_images_"))
folder = workdir / "my_images"
digits = load_digits()
rng = np.random.default_rng(0)
for i, (image, digit) in enumerate(zip(digits.images, digits.target)):
    grey = Image.fromarray(np.uint8(image * 255 / 16)).resize((24, 24))
    tint = rng.uniform(0.4, 1.0, size=3)
    rgb = np.uint8(np.asarray(grey)[..., None] * tint)
    path = folder / ("even" if digit % 2 == 0 else "odd") / str(digit) / f"{i}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)

# %%
# Loading: headers now, pixels when needed
# ----------------------------------------
# ``load_image_folder`` lists the files and reads their headers. The images
# come back as a lazy uint8 array of shape ``(n, 3, 24, 24)``: each is decoded
# the first time a meta-batch asks for it and kept in a cache on disk, so
# later epochs (and later runs) read it at memory speed.
X, y = load_image_folder(folder, cache_dir=workdir / "cache", return_X_y=True)
print(type(X).__name__, X.shape, X.dtype, "classes:", np.unique(y))

# Meta-train on six digits; keep four for new tasks.
train = np.isin(y, ["even/0", "odd/1", "even/2", "odd/3", "even/4", "odd/5"])
train_rows, new_rows = np.flatnonzero(train), np.flatnonzero(~train)

# %%
# Meta-training on the folder
# ---------------------------
# The learner reads only each meta-batch's images. ``num_workers=1`` decodes
# the next meta-batch while one trains; ``augment`` shifts and re-colours the
# training images (drawn from ``random_state``, so the fit repeats exactly).
clf = PrototypicalClassifier(
    n_way=4,
    k_shot=5,
    n_query=5,
    max_epochs=4,
    episodes_per_epoch=50,
    num_workers=1,
    augment=[RandomCrop(padding=2), ColorJitter(0.3, 0.3, 0.3)],
    random_state=0,
)
clf.fit(X[train_rows], y[train_rows])

# %%
# New classes from five examples each
# -----------------------------------
# ``episodic_score`` draws 4-way 5-shot episodes of the four digits never seen
# in training, straight from the lazy array.
print(
    "4-way 5-shot on new digits:",
    episodic_score(clf, X[new_rows], y[new_rows], k_shot=5, n_episodes=200).format(
        percent=True
    ),
)

# %%
# One task, up close
# ------------------
# ``adapt`` takes five examples of each new digit and returns an ordinary
# classifier for them.
new_classes = np.unique(y[new_rows])
support = np.concatenate(
    [rng.choice(np.flatnonzero(y == c), 5, replace=False) for c in new_classes]
)
query = np.concatenate(
    [
        rng.choice(np.setdiff1d(np.flatnonzero(y == c), support), 4, replace=False)
        for c in new_classes
    ]
)
model = clf.adapt(X[support], y[support])
predicted = model.predict(X[query])
print(f"accuracy on this task: {np.mean(predicted == y[query]):.2f}")

fig, axes = plt.subplots(2, 1, figsize=(8, 2.8))
support_row = np.concatenate(list(X[support].transpose(0, 2, 3, 1)), axis=1)
query_row = np.concatenate(list(X[query].transpose(0, 2, 3, 1)), axis=1)
axes[0].imshow(support_row)
axes[0].set_title("support: five examples of each new digit")
axes[1].imshow(query_row)
axes[1].set_title("queries, with the predicted class (red: wrong)")
for k, (label, truth) in enumerate(zip(predicted, y[query])):
    axes[1].text(
        24 * k + 12,
        30,
        label.split("/")[1],
        ha="center",
        va="top",
        color="black" if label == truth else "red",
    )
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
fig.savefig(figures / "plot_own_image_folder.png")
plt.show()

# %%
# Takeaway
# --------
# A folder of image files is a pool like any other: ``load_image_folder`` keeps
# it on disk as uint8, the learner reads a meta-batch at a time, and ``adapt``
# serves new classes from a handful of examples.
