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
the policy. With the policy, the collection is the learner's own:
``adaptation_returns(steps=0)`` on the 20 tasks, which collects their
episodes once with the meta-learned policy, as each inner step of
meta-training does; the time of building the vector environment (timed
alone with ``make_vector_env``) is taken off. The learner runs
``SyncVectorEnv`` for environments of other classes, so that row's tasks
come wrapped in a ``gymnasium.Wrapper`` that counts the steps of running
episodes (its call per step is in that row's time). The NumPy row takes
the same count: the same policy on the same tasks with the same seeds (on
2D navigation every episode starts at the origin, so the episodes are the
same; CartPole's vector environment draws its start states otherwise, so
there the count is the other row's, within a few per cent).

Run ``python benchmarks/meta_rl.py`` (``--help`` for the options).
"""

from __future__ import annotations

import json
import platform

import gymnasium
import numpy as np
import torch
from _common import argument_parser, plus_minus, print_table, time_call, write_record

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
            fit_s = time_call(policy.fit, spec["tasks"])
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


class StepTally:
    """Steps counted by :class:`CountSteps`; copies of a wrapper share it."""

    def __init__(self):
        self.steps = 0

    def __deepcopy__(self, memo):
        return self


class CountSteps(gymnasium.Wrapper):
    """Count the steps of the episode a seeded reset starts.

    A collection resets every sub-environment with a seed and keeps one
    episode of each: the steps after that episode ends (those of the episode
    an automatic reset starts) are padding, not counted.
    """

    def __init__(self, env, tally: StepTally):
        super().__init__(env)
        self.tally = tally
        self.running = False

    def reset(self, *, seed=None, options=None):
        """Reset; count the steps that follow when ``seed`` is given."""
        self.running = seed is not None
        return super().reset(seed=seed, options=options)

    def step(self, action):
        """Step, counting a step of the kept episode."""
        obs, reward, terminated, truncated, info = super().step(action)
        if self.running:
            self.tally.steps += 1
            self.running = not (terminated or truncated)
        return obs, reward, terminated, truncated, info


class FixedTasks:
    """A task sampler that returns the given environments in turn."""

    def __init__(self, envs):
        self.envs = envs
        self.calls = 0

    def __call__(self, random_state=None):
        """Return the next environment."""
        env = self.envs[self.calls % len(self.envs)]
        self.calls += 1
        return env


def collection_seconds(policy, envs, repeats: int) -> float:
    """Best seconds of the learner's collection of 20 episodes in each of ``envs``.

    The vector environment's construction (timed alone) is taken off.
    """
    tasks = FixedTasks(envs)
    batched = not isinstance(envs[0], gymnasium.Wrapper)

    def build():
        make_vector_env(envs, policy.n_episodes, batched=batched).close()

    def collect():
        policy.adaptation_returns(tasks, steps=0, n_tasks=len(envs))

    collect()  # warm-up
    build_s = min(time_call(build) for _ in range(repeats))
    return min(time_call(collect) for _ in range(repeats)) - build_s


def collection_speed(args) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for family, tasks, hidden in [
        ("2D navigation", PointNavigationTasks(), (100, 100)),
        ("CartPole", CartPoleTasks(), (100, 100)),
    ]:
        policy = MAMLPolicy(
            hidden_layer_sizes=hidden, n_episodes=20, max_iter=0, random_state=0
        ).fit(tasks)
        envs = [tasks(rng) for _ in range(20)]
        horizon = max(env.spec.max_episode_steps for env in envs)
        tally = StepTally()
        counted = [CountSteps(env, tally) for env in envs]
        # The SyncVectorEnv row first: it counts the steps both rows take.
        for batched, tasks_of_row in ((False, counted), (True, envs)):
            vector_env = make_vector_env(envs, 20, batched=batched)
            kind = type(vector_env).__name__
            tally.steps = 0
            seconds = collection_seconds(policy, tasks_of_row, args.speed_repeats)
            if not batched:
                steps = round(tally.steps / (args.speed_repeats + 1))
            with_policy = steps / seconds
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

            def run(actions=actions, vector_env=vector_env):
                for a in actions:
                    vector_env.step(a)

            timings = []
            for rep in range(args.speed_repeats):
                vector_env.reset(seed=rep)
                timings.append(time_call(run))
            alone = horizon * vector_env.num_envs / min(timings)
            row = {
                "family": family,
                "vector_env": kind,
                "sub_envs": vector_env.num_envs,
                "steps_per_s_with_policy": round(with_policy),
                "steps_per_s_env_only": round(alone),
                "steps_taken": steps,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    # The NumPy rows first, as the docs list them.
    return sorted(rows, key=lambda r: (r["family"], r["vector_env"] == "SyncVectorEnv"))


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "seed", "json")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--meta-batch-size", type=int, default=20)
    parser.add_argument("--test-tasks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    speed = collection_speed(args)
    curves = adaptation_curves(args)

    print_table(
        curves,
        [
            ("family", "family"),
            ("method", "method"),
            *(
                (
                    f"{k} step{'s' * (k != 1)}",
                    lambda r, k=k: plus_minus((r["mean"][k], r["ci95"][k])),
                )
                for k in range(args.steps + 1)
            ),
            ("fit (s)", "fit_s"),
        ],
    )
    print_table(
        speed,
        [
            ("family", "family"),
            ("vector env", "vector_env"),
            ("sub-envs", "sub_envs"),
            ("steps/s with policy", "steps_per_s_with_policy", ","),
            ("steps/s env only", "steps_per_s_env_only", ","),
        ],
    )
    figures = {
        "processor": platform.processor(),
        "torch": torch.__version__,
        "curves": curves,
        "speed": speed,
    }
    return write_record(args.json, figures, benchmark="meta_rl", args=args)


if __name__ == "__main__":
    main()
