"""MAML with policy gradients on 2D navigation and bandits (Finn et al., 2017).

Returns versus adaptation steps, the shape of the MAML paper's figure 4 (left):
for each family, four policies are adapted to ``--test-tasks`` new tasks by 0,
1, 2 and 3 policy-gradient steps of ``n_episodes`` episodes each, and the mean
return of the episodes after each step is reported, mean and 95% confidence
interval over tasks (every method sees the same tasks and seeds):

- MAML: meta-trained with one inner step, second order;
- first-order MAML: the same without second-order terms;
- pre-trained: one policy trained on all tasks jointly (no inner step), then
  adapted by the same steps (the paper's "pretrained" baseline);
- random initialisation: the untrained policy, adapted by the same steps.

2D navigation is the paper's task (goals uniform in [-0.5, 0.5]², velocities
clipped to [-0.1, 0.1], reward minus the distance, horizon 100, a 100-100 ReLU
network, 20 tasks of 20 episodes per meta-update, inner step 0.1). The paper
meta-trains with TRPO for 100s of updates; here Adam (lr 1e-3) makes
``--iterations`` updates. The bandits have 5 arms with probabilities uniform
in [0, 1] and 10 pulls per episode (10 episodes per step, inner step 0.5).

Speed: environment steps per second (steps taken, not padding) while
collecting a meta-batch of 20 tasks x 20 episodes (400 sub-environments) with
a 100-100 policy, from the families' NumPy vector environments and from
gymnasium's ``SyncVectorEnv`` over the same environments, with and without
the policy.

Run ``python benchmarks/meta_rl.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_meta.model_selection import mean_confidence_interval
from sklearn_meta.rl import (
    BernoulliBanditTasks,
    CartPoleTasks,
    MAMLPolicy,
    PointNavigationTasks,
    make_vector_env,
)

FAMILIES = {
    "2D navigation": dict(
        tasks=PointNavigationTasks(),
        params=dict(hidden_layer_sizes=(100, 100), inner_lr=0.1, n_episodes=20),
    ),
    "bandit (5 arms)": dict(
        tasks=BernoulliBanditTasks(n_arms=5, max_episode_steps=10),
        params=dict(hidden_layer_sizes=(32,), inner_lr=0.5, n_episodes=10),
    ),
}

METHODS = {
    "MAML": dict(),
    "first-order MAML": dict(first_order=True),
    "pre-trained": dict(inner_steps=0),
    "random init": dict(max_iter=0),
}


def adaptation_curves(args) -> list[dict]:
    rows = []
    for family, spec in FAMILIES.items():
        for method, extra in METHODS.items():
            policy = MAMLPolicy(
                **spec["params"],
                meta_batch_size=args.meta_batch_size,
                max_iter=args.iterations,
                random_state=args.seed,
            ).set_params(**extra)
            start = time.perf_counter()
            policy.fit(spec["tasks"])
            fit_s = time.perf_counter() - start
            returns = policy.adaptation_returns(
                spec["tasks"], steps=args.steps, n_tasks=args.test_tasks
            )
            stats = [
                mean_confidence_interval(returns[:, k]) for k in range(args.steps + 1)
            ]
            row = {
                "family": family,
                "method": method,
                "iterations": policy.max_iter,
                "fit_s": round(fit_s, 1),
                "mean": [round(m, 3) for m, _ in stats],
                "ci95": [round(h, 3) for _, h in stats],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def collection_speed(args) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for family, tasks, hidden in [
        ("2D navigation", PointNavigationTasks(), (100, 100)),
        ("CartPole", CartPoleTasks(), (100, 100)),
    ]:
        policy = MAMLPolicy(hidden_layer_sizes=hidden, max_iter=0, random_state=0).fit(
            tasks
        )
        envs = [tasks(rng) for _ in range(20)]
        fast = policy._task_params(len(envs), track=False)
        generator = torch.Generator().manual_seed(0)
        horizon = policy._horizon(envs)
        for batched in (True, False):
            vector_env = make_vector_env(envs, 20, batched=batched)
            kind = type(vector_env).__name__
            # With the policy (what meta-training does).
            timings, steps = [], 0
            for rep in range(args.speed_repeats):
                start = time.perf_counter()
                rollouts = policy._collect(
                    vector_env, len(envs), fast, generator, rep, horizon
                )
                timings.append(time.perf_counter() - start)
                steps = int(rollouts.mask.sum())  # steps taken, not padding
            with_policy = steps / min(timings)
            # Environments alone, random actions.
            actions = [
                np.stack(
                    [
                        vector_env.single_action_space.sample()
                        for _ in range(vector_env.num_envs)
                    ]
                )
                for _ in range(horizon)
            ]
            timings = []
            for rep in range(args.speed_repeats):
                vector_env.reset(seed=rep)
                start = time.perf_counter()
                for a in actions:
                    vector_env.step(a)
                timings.append(time.perf_counter() - start)
            alone = horizon * vector_env.num_envs / min(timings)
            row = {
                "family": family,
                "vector_env": kind,
                "sub_envs": vector_env.num_envs,
                "steps_per_s_with_policy": round(with_policy),
                "steps_per_s_env_only": round(alone),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--meta-batch-size", type=int, default=20)
    parser.add_argument("--test-tasks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    speed = collection_speed(args)
    curves = adaptation_curves(args)

    print()
    header = " | ".join(f"{k} step{'s' * (k != 1)}" for k in range(args.steps + 1))
    print(f"| family | method | {header} | fit (s) |")
    print("| --- | --- |" + " --- |" * (args.steps + 2))
    for row in curves:
        cells = " | ".join(
            f"{m:.2f} ± {h:.2f}" for m, h in zip(row["mean"], row["ci95"])
        )
        print(f"| {row['family']} | {row['method']} | {cells} | {row['fit_s']} |")
    print()
    print("| family | vector env | sub-envs | steps/s with policy | steps/s env only |")
    print("| --- | --- | --- | --- | --- |")
    for row in speed:
        print(
            f"| {row['family']} | {row['vector_env']} | {row['sub_envs']} | "
            f"{row['steps_per_s_with_policy']:,} | {row['steps_per_s_env_only']:,} |"
        )
    record = {
        "benchmark": "meta_rl",
        "args": vars(args),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "curves": curves,
        "speed": speed,
    }
    print(json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
