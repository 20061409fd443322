"""MAML for reinforcement learning: a policy that adapts by policy-gradient steps."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from .._distributed import _data_parallel, _reporting_failures
from .._functional import _gradient_steps, _named_parameters
from .._random import SCORING_SEED, Stream, _as_generator, _stream
from .._sklearn import Interval, StrOptions, validate_params
from ._adapted import AdaptedPolicy
from ._base import (
    _RANDOM_STATE,
    _BaseMetaPolicy,
    _check_task_sampler,
    _collection_seeds,
)
from ._envs import make_vector_env
from ._rollout import _Rollouts

#: Tasks adapted in one vectorised call when evaluating.
_EVAL_CHUNK = 64


class MAMLPolicy(_BaseMetaPolicy):
    r"""Model-Agnostic Meta-Learning of a policy: fast adaptation by policy gradients.

    The meta-learned parameters are the starting point of ``inner_steps``
    policy-gradient steps, each on ``n_episodes`` episodes collected in a
    task with the current policy; they are trained so that the adapted
    policy earns a high return in that task (Finn et al., 2017, section
    5.3). The inner loss is the REINFORCE surrogate

    .. math:: L(\theta) = -\frac{1}{n} \sum_t \log \pi_\theta(a_t|s_t)
       \hat{A}_t

    over the ``n`` steps collected, with advantages from a linear baseline
    fitted to each task's returns. A meta-batch of tasks is collected from
    one vector environment and adapted in one vectorised call
    (:func:`torch.func.vmap` over :func:`torch.func.functional_call`, one
    :func:`torch.autograd.grad`). The outer update is Adam (``optimizer``)
    on the same surrogate evaluated on fresh episodes of the adapted
    policies, differentiated through the inner steps (second order) or,
    with ``first_order=True``, not.

    Discrete actions get a categorical policy (the network gives logits);
    1-D Box actions a Gaussian one (the network gives the mean; the log
    standard deviation is meta-learned and adapted too), clipped to the
    action bounds on the way to the environment.

    Parameters
    ----------
    module : torch.nn.Module, class or callable, default=None
        The policy network, mapping observations ``(n, obs_dim)`` to
        ``(n, n_actions)`` logits or ``(n, action_dim)`` means. A class or
        callable is called without arguments; an instance is copied, never
        trained in place. None: an MLP with ``hidden_layer_sizes``.
    hidden_layer_sizes : tuple of int, default=(100, 100)
        Hidden ReLU layers of the default network (the paper's).
    init_std : float, default=1.0
        Initial standard deviation of Gaussian policies.
    inner_lr : float, default=0.1
        Step size of the inner policy-gradient steps (the paper's).
    inner_steps : int, default=1
        Inner steps in meta-training, each on fresh episodes. 0 trains one
        policy on all tasks jointly (the paper's pre-training baseline).
    adapt_steps : int, default=None
        Steps taken by ``adapt`` and ``score``; None: ``inner_steps``.
    first_order : bool, default=False
        Ignore the second-order terms of the meta-gradient (first-order MAML).
    meta_batch_size : int, default=20
        Tasks per meta-update (the paper's 20).
    n_episodes : int, default=20
        Episodes per task and inner step (the paper's 20), and the default of
        ``adapt``.
    max_iter : int, default=100
        Meta-updates. 0 leaves the policy at its random initialisation.
    lr : float, default=1e-3
        Learning rate of the outer optimiser.
    optimizer : torch optimizer class, default=torch.optim.Adam
        The outer optimiser.
    discount : float, default=0.99
        Discount factor (gamma) of the returns.
    gae_lambda : float, default=1.0
        The lambda of generalised advantage estimation; 1 gives discounted
        returns-to-go minus the baseline, the paper's estimator.
    baseline : {"linear"} or None, default="linear"
        The linear feature baseline of Duan et al. (2016), fitted per task
        on the episodes of each step; None uses none.
    normalize_advantages : bool, default=True
        Standardise each task's advantages.
    max_episode_steps : int, default=None
        Longest episode collected; None uses each environment's
        ``spec.max_episode_steps`` (the shipped environments have one).
    n_eval_tasks : int, default=40
        Tasks ``score`` adapts to.
    device : str or torch.device, default="cpu"
        Where the policy runs; "auto" uses CUDA when present. Environments
        step on the CPU, so a small policy is fastest on the CPU too.
    distributed : "auto" or bool, default="auto"
        Data-parallel meta-training over processes started by ``torchrun``:
        each process collects and adapts a share of every meta-batch's tasks
        and the meta-gradients are summed, giving the one-process result
        (each task's episodes come from a random stream of its own). "auto"
        uses a torch.distributed process group when one is initialised or
        the launcher's environment is present (and initialises it then);
        False always trains in this process alone. ``score`` splits its
        tasks the same way.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the default ones (a timer, and with ``verbose`` a printed
        log); each meta-update is an epoch to them, so ``Checkpoint`` and
        ``LoadInitState`` save and resume training exactly (``max_iter`` then
        counts the meta-updates still to run).
    verbose : int, default=0
        Print a log line per meta-update when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the tasks drawn and the actions sampled.

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-learned policy (``module_.net`` and, Gaussian, ``log_std``).
    optimizer_ : torch.optim.Optimizer
        The outer optimiser.
    history_ : skorch.history.History
        Per meta-update: ``train_loss``, ``return_before`` and
        ``return_after`` (mean episode return before and after adaptation),
        ``dur``.
    observation_space_, action_space_ : gymnasium.spaces.Space
        The spaces of the task family.
    n_features_in_ : int
        Size of an observation.
    device_ : torch.device
        The device used.

    See Also
    --------
    AdaptedPolicy : What :meth:`adapt` returns.
    sklearn_meta.MAMLRegressor : MAML for supervised tasks.

    References
    ----------
    .. [1] C. Finn, P. Abbeel and S. Levine, "Model-Agnostic Meta-Learning for
       Fast Adaptation of Deep Networks", ICML 2017.
    .. [2] Y. Duan, X. Chen, R. Houthooft, J. Schulman and P. Abbeel,
       "Benchmarking Deep Reinforcement Learning for Continuous Control",
       ICML 2016 (the linear feature baseline).
    .. [3] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-Dimensional Continuous Control Using Generalized Advantage
       Estimation", ICLR 2016.

    Examples
    --------
    >>> from sklearn_meta.rl import BernoulliBanditTasks, MAMLPolicy
    >>> tasks = BernoulliBanditTasks(n_arms=3)
    >>> policy = MAMLPolicy(hidden_layer_sizes=(16,), meta_batch_size=5,
    ...                     n_episodes=5, max_iter=3, random_state=0)
    >>> policy = policy.fit(tasks)
    >>> adapted = policy.adapt(tasks(random_state=1))
    >>> adapted.predict_proba([[1.0]]).shape
    (1, 3)
    """

    _parameter_constraints: dict = {
        **_BaseMetaPolicy._parameter_constraints,
        "inner_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "inner_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "adapt_steps": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "first_order": ["boolean"],
        "meta_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_episodes": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "n_eval_tasks": [Interval(numbers.Integral, 1, None, closed="left")],
        "distributed": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(100, 100),
        init_std=1.0,
        inner_lr=0.1,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_batch_size=20,
        n_episodes=20,
        max_iter=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        discount=0.99,
        gae_lambda=1.0,
        baseline="linear",
        normalize_advantages=True,
        max_episode_steps=None,
        n_eval_tasks=40,
        device="cpu",
        distributed="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init_std = init_std
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.first_order = first_order
        self.meta_batch_size = meta_batch_size
        self.n_episodes = n_episodes
        self.max_iter = max_iter
        self.lr = lr
        self.optimizer = optimizer
        self.discount = discount
        self.gae_lambda = gae_lambda
        self.baseline = baseline
        self.normalize_advantages = normalize_advantages
        self.max_episode_steps = max_episode_steps
        self.n_eval_tasks = n_eval_tasks
        self.device = device
        self.distributed = distributed
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state

    # -- adaptation by policy gradients ---------------------------------------------

    @property
    def _adapt_steps(self) -> int:
        return self.inner_steps if self.adapt_steps is None else self.adapt_steps

    def _task_params(self, n_tasks: int, track: bool) -> dict:
        """Expand the meta-parameters to fast weights ``(n_tasks, ...)``."""
        meta = _named_parameters(self.module_, self.module_.net)
        if not track:
            meta = {k: v.detach() for k, v in meta.items()}
        return {k: v.expand(n_tasks, *v.shape) for k, v in meta.items()}

    def _inner_update(self, fast: dict, grads: dict, state: dict):
        return {k: fast[k] - self.inner_lr * grads[k] for k in fast}, state

    def _adapt_tasks(
        self,
        envs: list,
        n_episodes: int,
        steps: int,
        seeds: np.ndarray,
        *,
        track: bool,
        first_order: bool,
        evaluate: bool,
        first_task: int = 0,
    ) -> tuple[dict, list[_Rollouts]]:
        """Adapt to each environment of ``envs`` by ``steps`` policy-gradient steps.

        Each step collects ``n_episodes`` fresh episodes per task with the
        current fast weights; with ``evaluate``, episodes of the adapted
        policies are collected at the end too. Returns the fast weights
        ``(B, ...)`` and the episodes of each step. ``seeds`` (one per
        collection, from ``_collection_seeds``) are those of the meta-batch
        whose tasks from number ``first_task`` on ``envs`` are: each task's
        episodes depend on the seeds and its number, not on the other
        ``envs``.
        """
        n_tasks = len(envs)
        vector_env = make_vector_env(envs, n_episodes)
        horizon = self._horizon(envs)
        rollouts: list[_Rollouts] = []

        def collect(fast: dict, step: int) -> _Rollouts:
            return self._collect(
                vector_env, n_tasks, fast, int(seeds[step]), horizon, first_task
            )

        def task_losses(fast: dict, step: int) -> torch.Tensor:
            episodes = collect(fast, step)
            rollouts.append(episodes)
            return self._policy_losses(fast, episodes)

        fast = _gradient_steps(
            self._task_params(n_tasks, track),
            task_losses,
            steps,
            self._inner_update,
            track=track,
            first_order=first_order,
        )
        if evaluate:
            rollouts.append(collect(fast, steps))
        vector_env.close()
        return fast, rollouts

    # -- meta-training -------------------------------------------------------------

    def _fit(self, task_sampler) -> MAMLPolicy:
        """Meta-train: ``max_iter`` meta-updates."""
        self._initialize(task_sampler)
        dp = self._data_parallel
        if dp is not None:
            dp.check_size(self.meta_batch_size, "Each meta-batch")
        self.optimizer_ = self.optimizer(self.module_.parameters(), lr=self.lr)
        self.history_ = History()
        self.callbacks_ = self._initialize_callbacks(1)

        def meta_step(update: int) -> None:
            if dp is None:
                self._meta_step(task_sampler, update)
            else:
                dp.run_step(self._meta_step, task_sampler, update, owner="MAMLPolicy")

        # Each meta-update is an epoch to the callbacks, drawing its tasks and
        # actions from seeds keyed by its number (so a resumed run draws them).
        with _reporting_failures(dp):
            self._train_epochs(
                self.max_iter,
                meta_step,
                X=task_sampler,
                y=None,
                dataset_train=task_sampler,
            )
        self.module_.eval()
        return self

    def _meta_step(self, task_sampler, update: int) -> None:
        """Make meta-update number ``update`` (from 0) and record it.

        Every process draws the whole meta-batch's tasks and seeds; with
        several, each adapts its share and the meta-gradients are summed.
        """
        rng = _stream(self._seed_, Stream.EPOCH, update)
        envs = self._sample_envs(task_sampler, rng, self.meta_batch_size)
        seeds = _collection_seeds(rng, self.inner_steps)
        dp = self._data_parallel
        part = slice(0, len(envs)) if dp is None else dp.share(len(envs))
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        fast, rollouts = self._adapt_tasks(
            envs[part],
            self.n_episodes,
            self.inner_steps,
            seeds,
            track=True,
            first_order=self.first_order,
            evaluate=True,
            first_task=part.start,
        )
        # The surrogate of the adapted policies on their own episodes: its
        # gradient is the policy gradient of the post-adaptation return,
        # carried back through the inner steps to the meta-parameters. The
        # mean over the whole meta-batch: each process backpropagates its
        # share of the sum.
        losses = self._policy_losses(fast, rollouts[-1])
        (losses.sum() / len(envs)).backward()
        sums = [
            losses.detach().double().sum().item(),
            *(r.returns().double().mean(1).sum().item() for r in rollouts[::-1]),
        ]
        if dp is not None:
            dp.sync_status()
            sums = dp.reduce_gradients(self.module_.parameters(), *sums)
        self.optimizer_.step()
        loss, after, before = (s / len(envs) for s in (sums[0], sums[1], sums[-1]))
        # One batch per meta-update, as skorch's callbacks (Checkpoint) expect.
        self.history_.new_batch()
        self.history_.record_batch("train_loss", loss)
        self.history_.record("train_loss", loss)
        self.history_.record("return_before", before)
        self.history_.record("return_after", after)

    # -- adaptation and evaluation -----------------------------------------------

    # AdaptedPolicy's own checks: its fit, nested here, skips them.
    @validate_params(
        {
            name: AdaptedPolicy._parameter_constraints[name]
            for name in ("n_episodes", "random_state")
        },
        prefer_skip_nested_validation=True,
    )
    def adapt(self, env, n_episodes=None, random_state=None) -> AdaptedPolicy:
        """Adapt to one environment; return a new fitted policy.

        Collects ``n_episodes`` episodes per step and takes ``adapt_steps``
        policy-gradient steps. The meta-learner is not changed.

        Parameters
        ----------
        env : gymnasium.Env
            An environment of the family seen in ``fit``.
        n_episodes : int, default=None
            Episodes per step; None: ``n_episodes`` of the meta-learner.
        random_state : int, Generator or None, default=None
            Seeds the episodes; None: a seed derived from ``random_state``
            of the meta-learner, so adaptation is repeatable.

        Returns
        -------
        policy : AdaptedPolicy
            A fitted, picklable policy.
        """
        return AdaptedPolicy(
            self, n_episodes=n_episodes, random_state=random_state
        ).fit(env)

    @validate_params(
        {
            "steps": [None, Interval(numbers.Integral, 0, None, closed="left")],
            "n_tasks": [None, Interval(numbers.Integral, 1, None, closed="left")],
            "random_state": _RANDOM_STATE,
        },
        prefer_skip_nested_validation=True,
    )
    def adaptation_returns(
        self, task_sampler, *, steps=None, n_tasks=None, random_state=None
    ) -> np.ndarray:
        """Mean episode return of each task after 0, 1, ..., ``steps`` adaptation steps.

        Each step collects ``n_episodes`` episodes with the current policy;
        their mean return is the return after the steps taken so far, and
        they make the next step (the evaluation of the MAML paper's figure).

        Parameters
        ----------
        task_sampler : callable
            Returns an environment for a random task (see :meth:`fit`).
        steps : int, default=None
            Adaptation steps; None: ``adapt_steps``.
        n_tasks : int, default=None
            Tasks drawn; None: ``n_eval_tasks``.
        random_state : int, Generator or None, default=None
            Seeds the tasks and episodes; None: a fixed seed, so that models
            are compared on the same tasks.

        Returns
        -------
        returns : ndarray of shape (n_tasks, steps + 1)
            Column ``k`` is the mean return after ``k`` steps.
        """
        check_is_fitted(self)
        _check_task_sampler(task_sampler)
        steps = self._adapt_steps if steps is None else steps
        n_tasks = self.n_eval_tasks if n_tasks is None else n_tasks
        rng = _as_generator(SCORING_SEED if random_state is None else random_state)
        envs = self._sample_envs(task_sampler, rng, n_tasks)
        seeds = _collection_seeds(rng, steps)
        # Under torchrun each process adapts a share of the tasks.
        dp = _data_parallel(self.distributed, self.device_)
        part = slice(0, n_tasks) if dp is None else dp.share(n_tasks)
        self.module_.eval()
        out = np.empty((0, steps + 1))
        with torch.no_grad():
            for i in range(part.start, part.stop, _EVAL_CHUNK):
                _, rollouts = self._adapt_tasks(
                    envs[i : min(i + _EVAL_CHUNK, part.stop)],
                    self.n_episodes,
                    steps,
                    seeds,
                    track=False,
                    first_order=True,
                    evaluate=True,
                    first_task=i,
                )
                returns = torch.stack([r.returns().mean(1) for r in rollouts], 1)
                out = np.concatenate([out, returns.double().cpu().numpy()])
        return out if dp is None else dp.gather(out)

    def score(self, task_sampler) -> float:
        """Mean return after adaptation, over ``n_eval_tasks`` tasks.

        Each task adapts by ``adapt_steps`` steps on ``n_episodes`` episodes
        and is scored on ``n_episodes`` new episodes of the stochastic
        adapted policy. Tasks come from a fixed seed.

        Parameters
        ----------
        task_sampler : callable
            Returns an environment for a random task (see :meth:`fit`).

        Returns
        -------
        score : float
            Mean episode return after adaptation.
        """
        return float(self.adaptation_returns(task_sampler)[:, -1].mean())
