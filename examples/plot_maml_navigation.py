"""
Reinforcement learning in one step: MAML on 2D navigation
=========================================================

The reinforcement-learning task of Finn et al. (2017, section 5.3): a point
starts at the origin of the plane and must move to a goal it cannot see. Its
observation is its position, its action a velocity clipped to [-0.1, 0.1] in
each coordinate, its reward minus the distance to the goal; each task has its
own goal, uniform in [-0.5, 0.5]². The only way to find the goal is to try:
a policy collects a few episodes in the new task and takes a policy-gradient
step on them.

You will learn to meta-train a policy on a family of gymnasium environments
with ``MAMLPolicy.fit(task_sampler)``, to adapt it to one new environment with
``adapt``, to act with ``predict`` and to score a policy with ``score``, and
to compare it with a policy pre-trained on all goals jointly.

Run time: about 1.5 minutes on a 2-core machine (measured with the example
pinned to one core).
"""

# %%
# The task family
# ---------------
# A task sampler is a callable that returns a new environment for a random
# task. ``PointNavigationTasks`` draws the goals; its environments follow the
# gymnasium API and have a NumPy vector environment, so a meta-batch of 20
# tasks times 20 episodes is stepped as one array.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sklearn_meta.model_selection import mean_confidence_interval
from sklearn_meta.rl import MAMLPolicy, PointNavigationTasks

# Run as a script, the example saves its figures as PNG files in the folder
# that SKLEARN_META_FIGURES names (by default the current one).
figures = Path(os.environ.get("SKLEARN_META_FIGURES", "."))
figures.mkdir(parents=True, exist_ok=True)

tasks = PointNavigationTasks(max_episode_steps=100)

# %%
# Meta-training
# -------------
# The paper's settings, except the budget: a 100-100 ReLU Gaussian policy,
# 20 tasks of 20 episodes per meta-update, one inner policy-gradient step of
# 0.1 with a linear baseline fitted per task, Adam on the meta-objective.
# 80 meta-updates take about a minute on a CPU. The baseline is the same
# policy trained on every goal jointly (``inner_steps=0``), then adapted by the
# same step.
params = dict(max_iter=80, lr=3e-3, adapt_steps=1, random_state=0)
maml = MAMLPolicy(**params).fit(tasks)
joint = MAMLPolicy(**params, inner_steps=0).fit(tasks)

history = maml.history_
fig = plt.figure(figsize=(5, 3))
plt.plot(history[:, "return_before"], label="before the inner step")
plt.plot(history[:, "return_after"], label="after the inner step")
plt.xlabel("meta-update")
plt.ylabel("mean return")
plt.legend()
plt.tight_layout()
fig.savefig(figures / "plot_maml_navigation_training.png")

# %%
# Adapting to new goals
# ---------------------
# ``adapt`` collects 20 episodes in the new environment with the meta-learned
# policy, takes one policy-gradient step and returns a new, picklable policy.
# ``sample`` draws its actions as it acts when collecting episodes and when it
# is scored (``predict`` gives the mean action). We draw ten episodes of each
# policy for three new goals (thin lines) and average them step by step (thick
# lines). The policies explore with a wide Gaussian, so single episodes are
# random walks of clipped steps; their drift is the point. Before adaptation
# the meta-learned policy does not know the goal; after one step it drifts to
# it, while the pre-trained policy stays near the middle of the square.


def trajectory(policy, env, rng, n_steps=100):
    """Play one episode with actions drawn from the policy (padded to n_steps)."""
    obs, _ = env.reset(seed=0)
    points = [obs]
    for _ in range(n_steps):
        action = policy.sample(obs[None], random_state=rng)[0]
        obs, _, terminated, truncated, _ = env.step(action)
        points.append(obs)
        if terminated or truncated:
            break
    points += [obs] * (n_steps + 1 - len(points))
    return np.array(points)


rng = np.random.default_rng(1)
envs = [tasks(rng) for _ in range(3)]
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
for ax, env in zip(axes, envs):
    adapted = maml.adapt(env)
    for policy, label, color in [
        (maml, "MAML, before adaptation", "tab:gray"),
        (joint.adapt(env), "pre-trained, after 1 step", "tab:orange"),
        (adapted, "MAML, after 1 step", "tab:blue"),
    ]:
        paths = np.array([trajectory(policy, env, rng) for _ in range(10)])
        for path in paths:
            ax.plot(path[:, 0], path[:, 1], color=color, lw=0.5, alpha=0.3)
        mean = paths.mean(0)
        ax.plot(mean[:, 0], mean[:, 1], color=color, lw=2.5, label=label)
    ax.plot(*env.goal, "k*", markersize=14, label="goal")
    ax.plot(0, 0, "ko", markersize=4)
    ax.set_title(f"MAML's return after 1 step: {adapted.score(env):.1f}")
    ax.set_aspect("equal")
    ax.set_xlim(-0.75, 0.75)
    ax.set_ylim(-0.75, 0.75)
axes[0].legend(loc="lower left", fontsize=8)
fig.tight_layout()
fig.savefig(figures / "plot_maml_navigation_trajectories.png")

# %%
# Return against adaptation steps
# -------------------------------
# ``adaptation_returns`` adapts to many new tasks at once and reports the mean
# return after 0, 1, 2 and 3 steps (each step on fresh episodes): the curve of
# the MAML paper's figure. ``score`` is its last column after ``adapt_steps``.
steps = np.arange(4)
fig = plt.figure(figsize=(5, 3.5))
for policy, label in [(maml, "MAML"), (joint, "pre-trained")]:
    curve = policy.adaptation_returns(tasks, steps=3, n_tasks=40)
    mean, half = np.array([mean_confidence_interval(column) for column in curve.T]).T
    plt.errorbar(steps, mean, yerr=half, marker="o", capsize=3, label=label)
plt.xticks(steps)
plt.xlabel("policy-gradient steps")
plt.ylabel("mean return (40 new goals)")
plt.legend()
plt.tight_layout()
fig.savefig(figures / "plot_maml_navigation_steps.png")
plt.show()

# %%
# Takeaway
# --------
# The pre-trained policy learns to stay near the middle of the square, the
# best it can do without knowing the goal, and one step on 20 episodes moves
# it little. MAML's policy is worse before adaptation but is shaped so that
# the same single step on the same amount of experience sends it to the goal:
# it has learned how to learn from rewards, not a behaviour.
