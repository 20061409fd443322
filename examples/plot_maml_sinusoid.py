"""
Regression from ten points: MAML on sine waves
==============================================

The regression benchmark of Finn et al. (2017): each task is a sine wave
``y = A sin(x - phase)`` with its own amplitude and phase, seen through ten
points. MAML meta-learns an initialisation of a small network (two hidden
layers of 40 units) from which a few gradient steps on those ten points fit the
whole wave.

You will learn to meta-train a regressor on tasks, to adapt it to a new task
with ``adapt``, and to compare it with the same network trained on all tasks
jointly (a model that has to predict the average wave).

Run time: about a minute on a 2-core machine (measured with the example pinned
to one core).
"""

# %%
# Tasks
# -----
# ``make_sinusoid_tasks`` draws the tasks: amplitude in [0.1, 5], phase in
# [0, pi], inputs in [-5, 5], 10 support and 10 query points each.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sklearn_meta import MAMLRegressor
from sklearn_meta.datasets import make_sinusoid_tasks

# Run as a script, the example saves its figures as PNG files in the folder
# that SKLEARN_META_FIGURES names (by default the current one).
figures = Path(os.environ.get("SKLEARN_META_FIGURES", "."))
figures.mkdir(parents=True, exist_ok=True)

train = make_sinusoid_tasks(n_tasks=25_000, random_state=0)

# %%
# Meta-training
# -------------
# 1,000 meta-iterations of 25 tasks, one inner step of 0.01 (the paper's
# settings; it trains 70,000 iterations). Each meta-iteration adapts the 25 tasks
# in one vectorised call: training this model and the baseline below takes about
# 20 seconds on one CPU core.
maml = MAMLRegressor(
    inner_lr=0.01,
    inner_steps=1,
    adapt_steps=10,
    meta_batch_size=25,
    max_epochs=10,
    episodes_per_epoch=2500,
    random_state=0,
).fit(train)

# The baseline: the same network trained on every task's points jointly, which
# is MAML with a vanishing inner step, then fine-tuned with the same 10 steps.
joint = MAMLRegressor(
    inner_lr=1e-12,
    meta_batch_size=25,
    max_epochs=10,
    episodes_per_epoch=2500,
    random_state=0,
).fit(train)
joint.set_params(inner_lr=0.01, adapt_steps=10)

# %%
# Adapting to new waves
# ---------------------
# Each panel is a new task: its ten support points, the true wave, MAML's
# prediction before adaptation and after 1 and 10 steps, and the joint model
# after 10 steps.
test = make_sinusoid_tasks(n_tasks=3, k_support=10, k_query=100, random_state=1)
grid = np.linspace(-5, 5, 200, dtype=np.float32)[:, None]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, task in zip(axes, test):
    amplitude, phase = task.metadata["amplitude"], task.metadata["phase"]
    ax.plot(grid, amplitude * np.sin(grid - phase), "k", lw=1, label="true wave")
    for steps, style in ((0, ":"), (1, "--"), (10, "-")):
        adapted = maml.set_params(adapt_steps=steps).adapt(
            task.X_support, task.y_support
        )
        ax.plot(
            grid,
            adapted.predict(grid),
            style,
            color="C0",
            label=f"MAML, {steps} step{'s' if steps != 1 else ''}",
        )
    ax.plot(
        grid,
        joint.adapt(task.X_support, task.y_support).predict(grid),
        "-",
        color="C1",
        label="joint training, 10 steps",
    )
    ax.plot(task.X_support, task.y_support, "^", color="C3", label="support points")
    ax.set(xlabel="x", title=f"A={amplitude:.1f}, phase={phase:.1f}")
axes[0].set_ylabel("y")
axes[0].legend(fontsize=7, loc="lower left")
fig.tight_layout()
fig.savefig(figures / "plot_maml_sinusoid.png")
plt.show()

# %%
# Query error on 200 new tasks
# ----------------------------
# The mean squared error on 100 query points per task.
test = make_sinusoid_tasks(n_tasks=200, k_support=10, k_query=100, random_state=2)


def query_mse(model, steps):
    model.set_params(adapt_steps=steps)
    return np.mean(
        [
            np.mean(
                (model.adapt(t.X_support, t.y_support).predict(t.X_query) - t.y_query)
                ** 2
            )
            for t in test
        ]
    )


for steps in (0, 1, 10):
    print(
        f"{steps:>2} steps: MAML {query_mse(maml, steps):.2f}   "
        f"joint training {query_mse(joint, steps):.2f}"
    )
