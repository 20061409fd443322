"""Tests of MAMLPolicy and its adapted policies.

The estimators of ``sklearn_meta/rl/``: ``_base.py``, ``_maml.py`` and
``_adapted.py``.
"""

import re

import joblib
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_meta.rl import (
    AdaptedPolicy,
    BernoulliBanditEnv,
    BernoulliBanditTasks,
    CartPoleTasks,
    MAMLPolicy,
    PointNavigationEnv,
    PointNavigationTasks,
    make_vector_env,
)
from sklearn_meta.rl._rollout import _advantages

from .._settings import FAST_PARAMS, fast
from ._helpers import Reach1D, reach_tasks


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_a_per_task_loop(first_order):
    """Check that the vectorised meta-gradient equals a per-task autograd loop."""
    policy = MAMLPolicy(
        hidden_layer_sizes=(6,), n_episodes=2, max_iter=0, random_state=0
    ).fit(PointNavigationTasks(max_episode_steps=4))
    envs = [PointNavigationTasks(max_episode_steps=4)(s) for s in range(3)]
    vector_env = make_vector_env(envs, copies=2)
    fixed = policy._task_params(3, False)
    support = policy._collect(vector_env, 3, fixed, 1, 4)
    query = policy._collect(vector_env, 3, fixed, 2, 4)

    from sklearn_meta._functional import _gradient_steps

    fast = _gradient_steps(
        policy._task_params(3, True),
        lambda fast, step: policy._policy_losses(fast, support),
        1,
        policy._inner_update,
        track=True,
        first_order=first_order,
    )
    meta = dict(policy.module_.named_parameters())
    got = torch.autograd.grad(
        policy._policy_losses(fast, query).mean(), list(meta.values())
    )

    def task_loss(params, rollouts, b):
        adv = _advantages(
            rollouts, discount=0.99, gae_lambda=1.0, baseline="linear", normalize=True
        )[b].reshape(-1)
        obs = rollouts.obs[b].reshape(-1, 2)
        actions = rollouts.actions[b].reshape(-1, 2)
        mask = rollouts.mask[b].reshape(-1)
        logp = policy.module_.log_prob(params, obs, actions)
        return -(logp * adv * mask).sum() / mask.sum()

    total = 0
    for b in range(3):
        inner = torch.autograd.grad(
            task_loss(meta, support, b),
            list(meta.values()),
            create_graph=not first_order,
        )
        adapted = {k: v - 0.1 * g for (k, v), g in zip(meta.items(), inner)}
        total = total + task_loss(adapted, query, b) / 3
    expected = torch.autograd.grad(total, list(meta.values()))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_each_step_collects_fresh_episodes_with_the_current_policy(
    monkeypatch, navigation_policy
):
    """Check that step k's episodes, and the evaluation's, use the adapted policy.

    Collection 0 acts with the meta-parameters; collection k + 1 with the
    fast weights after one more policy-gradient step on episodes k; the last
    collection (the post-adaptation episodes) with the returned weights.
    """
    policy = navigation_policy
    seen = []
    collect = policy._collect

    def recording(vector_env, n_tasks, fast, *args):
        seen.append({k: v.detach().clone() for k, v in fast.items()})
        return collect(vector_env, n_tasks, fast, *args)

    monkeypatch.setattr(policy, "_collect", recording)
    envs = [PointNavigationTasks(max_episode_steps=5)(s) for s in range(2)]
    fast, rollouts = policy._adapt_tasks(
        envs,
        3,
        2,
        np.array([1, 2, 3]),
        track=False,
        first_order=True,
        evaluate=True,
    )
    assert len(seen) == len(rollouts) == 3
    meta = policy._task_params(2, False)
    for k, v in meta.items():
        assert torch.equal(seen[0][k], v), k
    for step in range(2):
        params = {k: v.clone().requires_grad_() for k, v in seen[step].items()}
        loss = policy._policy_losses(params, rollouts[step]).sum()
        grads = torch.autograd.grad(loss, list(params.values()))
        for (k, v), g in zip(params.items(), grads):
            torch.testing.assert_close(seen[step + 1][k], v - policy.inner_lr * g)
        assert not torch.equal(seen[step + 1]["log_std"], seen[step]["log_std"])
    for k, v in fast.items():
        assert torch.equal(v, seen[2][k]), k
    assert not torch.equal(rollouts[0].actions, rollouts[1].actions)


# -- the learner -------------------------------------------------------------------


def test_maml_navigation_one_step_beats_pretraining_and_random_init():
    """Check that one MAML step on 2D navigation beats pre-training and random init.

    A shorter horizon (20 steps) and a smaller network than the paper's keep
    the budget to seconds; the goals, actions and rewards are the paper's.
    """
    tasks = PointNavigationTasks(max_episode_steps=20)
    params = dict(
        hidden_layer_sizes=(32, 32),
        meta_batch_size=10,
        n_episodes=10,
        max_iter=100,
        lr=3e-3,
        adapt_steps=1,
        random_state=0,
    )
    maml = MAMLPolicy(**params).fit(tasks)
    pretrained = MAMLPolicy(**params, inner_steps=0).fit(tasks)
    random_init = MAMLPolicy(**{**params, "max_iter": 0}).fit(tasks)
    curves = {
        name: model.adaptation_returns(tasks, n_tasks=40)
        for name, model in [
            ("maml", maml),
            ("pretrained", pretrained),
            ("random", random_init),
        ]
    }
    after = {name: curve[:, 1].mean() for name, curve in curves.items()}
    assert after["maml"] > after["pretrained"] + 1.5, after
    assert after["maml"] > after["random"] + 3.0, after
    # The step itself helps the meta-learned policy.
    assert after["maml"] > curves["maml"][:, 0].mean() + 1.5
    # The history records meta-training, and returns went up.
    history = maml.history_
    assert len(history) == 100
    assert np.mean(history[-10:, "return_after"]) > np.mean(
        history[:10, "return_after"]
    )
    assert maml.score(tasks) == pytest.approx(after["maml"])


def test_bandit_and_cartpole_end_to_end(bandit_policy):
    """Check that fit, adapt, predict, sample and score work on bandits and cartpole."""
    env = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)(5)
    adapted = bandit_policy.adapt(env)
    assert isinstance(adapted, AdaptedPolicy)
    proba = adapted.predict_proba(np.ones((2, 1)))
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(1), 1)
    assert adapted.predict([[1.0]]).tolist() == [proba[0].argmax()]
    # sample draws from predict_proba.
    draws = adapted.sample(np.ones((4000, 1)), random_state=0)
    freq = np.bincount(draws, minlength=3) / 4000
    np.testing.assert_allclose(freq, proba[0], atol=0.03)
    np.testing.assert_array_equal(
        bandit_policy.sample(np.ones((50, 1)), random_state=3),
        bandit_policy.sample(np.ones((50, 1)), random_state=3),
    )
    assert 0 <= adapted.score(env) <= 4
    assert adapted.adaptation_returns_.shape == (1,)

    cartpole = fast(MAMLPolicy, max_episode_steps=15).fit(CartPoleTasks())
    assert cartpole.history_[-1, "return_after"] <= 15
    policy = cartpole.adapt(CartPoleTasks()(1), n_episodes=2)
    assert set(policy.predict(np.zeros((4, 4))).tolist()) <= {0, 1}
    assert 1 <= policy.score(CartPoleTasks()(1)) <= 15
    assert 0 < cartpole.score(CartPoleTasks()) <= 15


def test_user_defined_family_runs_through_sync_vector_env():
    """Check that a user's gymnasium family (no spec, no vector env) works."""
    with pytest.raises(
        ValueError, match=r"no spec\.max_episode_steps\. Pass max_episode"
    ):
        fast(MAMLPolicy).fit(reach_tasks)
    policy = fast(MAMLPolicy, first_order=True, max_episode_steps=5).fit(reach_tasks)
    adapted = policy.adapt(Reach1D(0.3))
    assert adapted.predict([[0.0]]).shape == (1, 1)
    assert -5 * 1.3 <= adapted.score(Reach1D(0.3)) <= 0
    assert not hasattr(adapted, "predict_proba")
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as e:
        adapted.predict_proba([[0.0]])
    assert "only available for a Discrete action space" in str(e.value.__cause__)


def test_adapted_policy_round_trips_through_joblib(
    tmp_path, bandit_policy, navigation_policy
):
    """Check that adapted policies reload with identical actions and scores."""
    env = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)(7)
    adapted = bandit_policy.adapt(env)
    joblib.dump(adapted, tmp_path / "policy.joblib")
    loaded = joblib.load(tmp_path / "policy.joblib")
    obs = np.ones((3, 1))
    np.testing.assert_array_equal(loaded.predict_proba(obs), adapted.predict_proba(obs))
    assert loaded.score(env) == adapted.score(env)

    goal_env = PointNavigationEnv((0.3, -0.2), 5)
    policy = navigation_policy.adapt(goal_env)
    joblib.dump(policy, tmp_path / "nav.joblib")
    loaded = joblib.load(tmp_path / "nav.joblib")
    obs = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    np.testing.assert_array_equal(loaded.predict(obs), policy.predict(obs))
    assert np.abs(policy.predict(obs)).max() <= 0.1
    draws = policy.sample(obs, random_state=0)
    assert draws.shape == (10, 2) and np.abs(draws).max() <= 0.1
    np.testing.assert_array_equal(loaded.sample(obs, random_state=0), draws)
    assert not np.array_equal(policy.sample(obs, random_state=1), draws)
    assert loaded.score(goal_env) == policy.score(goal_env)
    # The meta-learner round-trips too and adapts identically.
    joblib.dump(navigation_policy, tmp_path / "meta.joblib")
    meta = joblib.load(tmp_path / "meta.joblib")
    np.testing.assert_array_equal(
        meta.adapt(goal_env).predict(obs), policy.predict(obs)
    )


def test_clone_get_params_and_random_state(navigation_policy):
    """Check that clone, get/set_params, seeds repeat fits, adapt leaves it alone."""
    params = navigation_policy.get_params()
    assert params["meta_batch_size"] == 3 and params["baseline"] == "linear"
    cloned = clone(navigation_policy)
    assert not hasattr(cloned, "module_")
    assert cloned.get_params() == params
    cloned.set_params(inner_lr=0.05, first_order=True)
    assert cloned.inner_lr == 0.05 and navigation_policy.inner_lr == 0.1
    again = clone(navigation_policy).fit(PointNavigationTasks(max_episode_steps=5))
    for (k, v), w in zip(
        navigation_policy.module_.state_dict().items(),
        again.module_.state_dict().values(),
    ):
        assert torch.equal(v, w), k
    env = PointNavigationEnv((0.1, 0.4), 5)
    before = {k: v.clone() for k, v in navigation_policy.module_.state_dict().items()}
    first = navigation_policy.adapt(env)
    second = navigation_policy.adapt(env)
    obs = np.array([[0.0, 0.0], [0.2, 0.1]])
    np.testing.assert_array_equal(first.predict(obs), second.predict(obs))
    for k, v in navigation_policy.module_.state_dict().items():
        assert torch.equal(v, before[k]), k
    # An adapted policy's clone keeps the meta-learner and adapts again.
    refit = clone(first)
    assert refit.meta_learner is navigation_policy
    np.testing.assert_array_equal(refit.fit(env).predict(obs), first.predict(obs))
    other = navigation_policy.adapt(env, random_state=1)
    assert not torch.equal(other.params_["net.0.bias"], first.params_["net.0.bias"])
    # The meta-learned policy itself is a policy too.
    assert navigation_policy.predict(obs).shape == (2, 2)


def test_inner_steps_zero_and_max_iter_zero():
    """Check that inner_steps=0 pre-trains jointly and max_iter=0 trains nothing."""
    tasks = PointNavigationTasks(max_episode_steps=5)
    joint = fast(MAMLPolicy, inner_steps=0).fit(tasks)
    assert joint.history_[-1, "return_before"] == joint.history_[-1, "return_after"]
    assert joint.adaptation_returns(tasks, n_tasks=2).shape == (2, 1)
    assert joint.adaptation_returns(tasks, steps=3, n_tasks=2).shape == (2, 4)
    untrained = fast(MAMLPolicy, max_iter=0).fit(tasks)
    assert len(untrained.history_) == 0
    # Two inner steps in meta-training, each on fresh episodes, second order.
    two = fast(MAMLPolicy, inner_steps=2).fit(tasks)
    assert len(two.history_) == 2 and two.adapt(tasks(0)).adaptation_returns_.shape == (
        2,
    )
    assert all(p.grad is not None for p in two.module_.parameters())


def test_first_order_drops_only_the_second_order_terms():
    """Check that first_order changes the meta-gradient, not the episodes."""
    tasks = PointNavigationTasks(max_episode_steps=5)
    fits = {
        first_order: fast(MAMLPolicy, max_iter=1, first_order=first_order).fit(tasks)
        for first_order in (False, True)
    }
    for column in ("return_before", "return_after"):
        assert fits[False].history_[-1, column] == fits[True].history_[-1, column]
    grads = [
        {k: p.grad for k, p in fits[fo].module_.named_parameters()}
        for fo in (False, True)
    ]
    assert any(not torch.allclose(grads[0][k], grads[1][k]) for k in grads[0])


# -- errors ------------------------------------------------------------------------


def test_errors_for_bad_task_samplers_and_environments(navigation_policy):
    """Check that samplers, spaces and envs a policy cannot use raise clear errors."""
    with pytest.raises(TypeError, match="task_sampler must be a callable"):
        fast(MAMLPolicy).fit([PointNavigationEnv()])
    with pytest.raises(TypeError, match="The task sampler returned int, not a"):
        fast(MAMLPolicy).fit(lambda rng: 3)

    def dict_obs(rng):
        env = Reach1D()
        env.observation_space = spaces.Discrete(4)
        return env

    with pytest.raises(ValueError, match="needs a 1-D Box observation space"):
        fast(MAMLPolicy, max_episode_steps=3).fit(dict_obs)

    def multi_discrete(rng):
        env = Reach1D()
        env.action_space = spaces.MultiDiscrete([2, 3])
        return env

    with pytest.raises(ValueError, match="needs a Discrete action space"):
        fast(MAMLPolicy, max_episode_steps=3).fit(multi_discrete)
    with pytest.raises(
        ValueError, match=re.escape("differs from the observation_space")
    ):
        navigation_policy.adapt(BernoulliBanditEnv())
    with pytest.raises(TypeError, match=r"env must be a gymnasium\.Env; got str"):
        navigation_policy.adapt("CartPole-v1")
    with pytest.raises(
        ValueError, match=r"'n_episodes' parameter of AdaptedPolicy must be None or"
    ):
        AdaptedPolicy(navigation_policy, n_episodes=0).fit(PointNavigationEnv())
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_episodes' parameter of MAMLPolicy.adapt must be None or an int "
            "in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adapt(PointNavigationEnv(), n_episodes=0)
    with pytest.raises(
        ValueError,
        match=r"The 'random_state' parameter of MAMLPolicy\.adapt must be None, an "
        r"instance of 'int', .* Got 'x' instead\.",
    ):
        navigation_policy.adapt(PointNavigationEnv(), random_state="x")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_episodes' parameter of AdaptedPolicy.score must be None or an "
            "int in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adapt(PointNavigationEnv(max_episode_steps=5)).score(
            PointNavigationEnv(), 0
        )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'steps' parameter of MAMLPolicy.adaptation_returns must be None or "
            "an int in the range [0, inf). Got -1 instead."
        ),
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), steps=-1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'n_tasks' parameter of MAMLPolicy.adaptation_returns must be None "
            "or an int in the range [1, inf). Got 0 instead."
        ),
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), n_tasks=0)
    with pytest.raises(
        ValueError,
        match=r"The 'random_state' parameter of MAMLPolicy\.adaptation_returns must "
        r"be None, an instance of 'int', .* Got 1\.5 instead\.",
    ):
        navigation_policy.adaptation_returns(PointNavigationTasks(), random_state=1.5)
    with pytest.raises(ValueError, match="X has 3 features"):
        navigation_policy.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="The 'inner_lr' parameter of MAMLPolicy"):
        MAMLPolicy(inner_lr=0).fit(PointNavigationTasks())
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        MAMLPolicy().predict([[0.0, 0.0]])
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        MAMLPolicy().adapt(PointNavigationEnv())
    with pytest.raises(TypeError, match="needs a MAMLPolicy as meta_learner"):
        AdaptedPolicy("nope").fit(PointNavigationEnv())
    with pytest.raises(NotFittedError, match="AdaptedPolicy instance is not fitted"):
        AdaptedPolicy(navigation_policy).predict([[0.0, 0.0]])


def test_failed_fit_leaves_the_policy_unfitted():
    """Check that a fit failing after some meta-updates leaves no fitted state."""
    tasks = PointNavigationTasks(max_episode_steps=3)
    calls = []

    def sampler_switching_family(rng):
        calls.append(1)
        # The first env and the first meta-batch are navigation; then a bandit.
        if len(calls) <= 1 + FAST_PARAMS[MAMLPolicy]["meta_batch_size"]:
            return tasks(rng)
        return BernoulliBanditEnv()

    policy = fast(MAMLPolicy, max_iter=3)
    with pytest.raises(ValueError, match="differs from the observation_space"):
        policy.fit(sampler_switching_family)
    assert (
        len(calls) > 1 + FAST_PARAMS[MAMLPolicy]["meta_batch_size"]
    )  # failed after one update
    assert not [k for k in vars(policy) if k.endswith("_") and k[0] != "_"]
    with pytest.raises(NotFittedError, match="MAMLPolicy instance is not fitted"):
        policy.predict([[0.0, 0.0]])


def test_errors_for_modules_of_the_wrong_shape():
    """Check that a user module with wrong output size fails early and clearly."""
    tasks = PointNavigationTasks(max_episode_steps=3)
    with pytest.raises(ValueError, match=r"to \(n, 2\) action means; it returned"):
        fast(MAMLPolicy, torch.nn.Linear(2, 5)).fit(tasks)
    with pytest.raises(ValueError, match="could not process observations"):
        fast(MAMLPolicy, torch.nn.Linear(7, 2)).fit(tasks)
    with pytest.raises(TypeError, match="callable returning one; got int"):
        fast(MAMLPolicy, lambda: 3).fit(tasks)
    module = torch.nn.Linear(2, 2)
    before = module.weight.detach().clone()
    fast(MAMLPolicy, module).fit(tasks)
    assert torch.equal(module.weight, before)  # never trained in place
    # Random layers run under vmap too (dropout in meta-training only).
    dropout = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
    )
    policy = fast(MAMLPolicy, dropout).fit(tasks)
    obs = np.zeros((3, 2))
    adapted = policy.adapt(PointNavigationEnv(max_episode_steps=3))
    np.testing.assert_array_equal(adapted.predict(obs), adapted.predict(obs))
    assert not policy.module_.training  # fit leaves the policy in eval mode


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_policy_adapts_and_loads_on_cpu(tmp_path):
    """Check that a policy meta-trained on CUDA acts the same on the CPU."""
    import os
    import subprocess
    import sys

    tasks = PointNavigationTasks(max_episode_steps=5)
    policy = fast(MAMLPolicy, device="cuda").fit(tasks)
    assert next(policy.module_.parameters()).is_cuda
    adapted = policy.adapt(PointNavigationEnv((0.3, 0.1), 5))
    obs = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 2))
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    np.save(tmp_path / "obs.npy", obs)
    script = (
        "import joblib, numpy as np, torch, warnings;"
        "assert not torch.cuda.is_available();"
        "warnings.simplefilter('ignore');"
        f"d = {str(tmp_path)!r};"
        "a = joblib.load(d + '/adapted.joblib');"
        "np.save(d + '/a.npy', a.predict(np.load(d + '/obs.npy')))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_allclose(
        np.load(tmp_path / "a.npy"), adapted.predict(obs), atol=1e-5
    )


@pytest.mark.parametrize(
    "tasks",
    [PointNavigationTasks(max_episode_steps=6), CartPoleTasks(max_episode_steps=6)],
    ids=["gaussian", "categorical"],
)
def test_a_tasks_episodes_do_not_depend_on_the_tasks_collected_with_it(tasks):
    """Check adapting tasks 2-4 of a meta-batch alone gives what all five give.

    Each task's environment seeds and actions come from its own stream (the
    collection's seed and its number), which is what lets processes adapt
    shares of a meta-batch and still sum the one-process meta-gradient.
    """
    policy = MAMLPolicy(
        hidden_layer_sizes=(6,), n_episodes=3, max_iter=0, random_state=0
    ).fit(tasks)
    envs = [tasks(s) for s in range(5)]
    seeds = np.array([5, 6, 7])

    def adapt(part):
        return policy._adapt_tasks(
            envs[part],
            3,
            2,
            seeds,
            track=False,
            first_order=True,
            evaluate=True,
            first_task=part.start,
        )

    fast_all, rollouts_all = adapt(slice(0, 5))
    fast_part, rollouts_part = adapt(slice(2, 5))
    for whole, part in zip(rollouts_all, rollouts_part, strict=True):
        steps = part.mask.shape[-1]
        for name in ("obs", "actions", "rewards", "mask"):
            got = getattr(part, name)
            want = getattr(whole, name)[2:, :, :steps]
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=name)
    for k in fast_part:
        torch.testing.assert_close(fast_part[k], fast_all[k][2:], rtol=1e-5, atol=1e-7)
    # Another place in the meta-batch is another stream: other episodes.
    _, shifted = policy._adapt_tasks(
        envs[2:5],
        3,
        2,
        seeds,
        track=False,
        first_order=True,
        evaluate=True,
        first_task=0,
    )
    assert not torch.equal(shifted[0].actions, rollouts_part[0].actions)
