"""What the optimisation-based learners share: one stateless, vectorised inner loop.

The meta-learned model is the user's module (the *body*) followed by a head
this package adds. Fast weights are a dict of tensors passed to
:func:`torch.func.functional_call`, so the user's module is never copied per
task or changed, and :func:`torch.func.vmap` adapts a whole chunk of tasks in
one call. A learner's own file says only what is special about it: which
parameters adapt (ANIL: the head), with which step sizes (Meta-SGD: learned
ones), and how the outer update is made (Reptile).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.func import vmap
from torch.nn import functional as F

from .._classifier import MetaClassifierMixin
from .._data import _samples
from .._episodes import _SCORING_CHUNK, _n_total
from .._functional import (
    _ClassHead,
    _functional_call,
    _gradient_steps,
    _map_tasks,
    _MetaModel,
    _named_parameters,
    _replace_batch_norm,
)
from .._random import Stream, _stream
from .._regressor import MetaRegressorMixin, _r2_score
from .._sklearn import Interval, StrOptions
from .._validation import _Pool
from ..base import BaseMetaLearner
from ..nn import MLP, TabularEmbedding, _default_backbone
from ..tasks import _EpisodeBatch, _stratified_sample

#: Largest number of pool samples ``fit(X, y)`` adapts to for ``predict``.
_POOL_ADAPT_MAX = 2048
#: Samples (support and query, over all tasks) one evaluation call adapts at
#: once: bounds the memory of scoring many or large episodes.
_EVAL_ROWS = 2048


def _minibatches(X_s, y_s, z_s, batch_size: int | None, n_classes: int | None):
    """Return ``step -> (X, y, z)``: the support rows of each inner step.

    With ``batch_size`` None or at least the support's size, every step takes
    the whole support. Otherwise step ``t`` takes rows ``t * batch_size`` to
    ``(t + 1) * batch_size - 1`` of a fixed order, cycling through it (the
    same rows for every task of the batch). For a classifier the order takes
    one row of each class in turn (support sets come class by class), so
    each minibatch holds every class as evenly as it can; a regressor's rows
    keep their order. ``z_s`` (ANIL's support features) may be None.
    """
    n_s = X_s.shape[1]
    if batch_size is None or batch_size >= n_s:
        return lambda step: (X_s, y_s, z_s)
    if n_classes is not None:
        one_hot = F.one_hot(y_s, n_classes)
        rank = (one_hot.cumsum(1) * one_hot).sum(-1) - 1  # place within its class
        order = (rank * n_classes + y_s).argsort(dim=1, stable=True)
        tasks = torch.arange(len(X_s), device=X_s.device)[:, None]
        X_s, y_s = X_s[tasks, order], y_s[tasks, order]
        z_s = None if z_s is None else z_s[tasks, order]
    offsets = torch.arange(batch_size, device=X_s.device)

    def rows(step: int):
        index = (step * batch_size + offsets) % n_s
        return (
            X_s[:, index],
            y_s[:, index],
            None if z_s is None else z_s[:, index],
        )

    return rows


def _eval_chunk(rows_per_task: int) -> int:
    """Tasks per vectorised call in evaluation, with at most ``_EVAL_ROWS`` rows."""
    return max(1, min(_SCORING_CHUNK, _EVAL_ROWS // max(1, rows_per_task)))


def _lr_key(name: str) -> str:
    """Parameter name as a key of an ``nn.ParameterDict`` (no dots)."""
    return name.replace(".", "/")


class BaseGradientLearner(BaseMetaLearner):
    """Base class of the learners that adapt by gradient steps.

    Not meant to be used directly; see :class:`~sklearn_meta.MAMLClassifier`
    and its siblings.
    """

    _parameter_constraints: dict = {
        **BaseMetaLearner._parameter_constraints,
        "inner_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "inner_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "adapt_steps": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "first_order": ["boolean"],
        "task_chunk_size": [
            None,
            StrOptions({"auto"}),
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "max_grad_norm": [None, Interval(numbers.Real, 0, None, closed="neither")],
    }

    #: Whether the body adapts in the inner loop (False: ANIL).
    _adapt_body = True
    #: Support rows per inner step in training and at adaptation (None: all
    #: of them); parameters of the learners that offer minibatches (Reptile).
    inner_batch_size = None
    adapt_batch_size = None

    #: Tasks per vectorised call with ``task_chunk_size="auto"`` on the CPU.
    _CPU_TASK_CHUNK = 8
    #: Rows per task (support and query) from which ``task_chunk_size="auto"``
    #: adapts images one task per call on the CPU (native kernels) with one
    #: torch thread, measured for second-order MAML by
    #: ``benchmarks/task_strategy.py`` (docs/design.md, "One task per call
    #: runs native kernels").
    _CPU_PER_TASK_ROWS = 30
    #: The same with several threads, where vmap's grouped convolutions
    #: parallelise better: chunks of 8 were as fast or faster up to 30 rows
    #: for MAML and Reptile alike (``task-strategy-2t.json``).
    _CPU_PER_TASK_ROWS_THREADS = 31

    # -- the model -------------------------------------------------------------

    def _build_module(self, sample_shape, input_mean=None, **kwargs) -> nn.Module:
        """Build the default body.

        Classifiers on tabular data get a :class:`TabularEmbedding`, regressors
        the MAML paper's MLP, images conv4.
        """
        if self._embeds_tabular(sample_shape):
            return super()._build_module(sample_shape, input_mean, **kwargs)
        if len(sample_shape) == 1:
            # The body of the MAML paper's regression network: 2 hidden
            # layers of 40 ReLU units (the head adds the output layer).
            sizes = tuple(kwargs.pop("hidden_layer_sizes", (40, 40)))
            n_in = kwargs.pop("in_features", sample_shape[0])
            return nn.Sequential(
                MLP(n_in, sizes[:-1], out_features=sizes[-1], **kwargs), nn.ReLU()
            )
        return _default_backbone(sample_shape, **kwargs)

    def _wrap_module(self, module: nn.Module, dim: int) -> nn.Module:
        """Make batch norm task-wise and add the head (and Meta-SGD's step sizes)."""
        _replace_batch_norm(module)
        if isinstance(self, MetaClassifierMixin):
            # Its shared start cannot change a prediction (see _ClassHead).
            head = _ClassHead(dim, learnable=False)
        else:
            head = nn.Linear(dim, self.n_outputs_)
        model = _MetaModel(module, head)
        model.lrs = self._make_lrs(model)
        # A body that starts as nearest centroid's space gets the head that
        # makes the start nearest centroid itself (docs/design.md).
        model.prototype_head = isinstance(module, TabularEmbedding) and isinstance(
            self, MetaClassifierMixin
        )
        return model

    def _make_lrs(self, model: _MetaModel) -> nn.ParameterDict | None:
        """Meta-learned step sizes (Meta-SGD); None for a fixed ``inner_lr``."""
        return None

    def _meta_params(self) -> dict[str, torch.Tensor]:
        """Return the meta-learned initialisation: every parameter but step sizes."""
        params = _named_parameters(self.module_, self.module_.body)
        return {name: p for name, p in params.items() if not name.startswith("lrs.")}

    def _lrs(self) -> dict[str, torch.Tensor] | None:
        """Return the meta-learned step sizes by parameter key (None: fixed)."""
        lrs = self.module_.lrs
        return None if lrs is None else dict(lrs.items())

    def _step_size_of(self, name: str, lrs) -> torch.Tensor | float:
        """Return the inner step size of parameter ``name``."""
        return self.inner_lr if lrs is None else lrs[_lr_key(name)]

    def _task_params(self, meta: dict, n_classes: int) -> dict:
        """Return a task's starting fast weights: the head copied once per class."""
        fast = dict(meta)
        if n_classes:
            fast["head.weight"] = meta["head.weight"].expand(n_classes, -1)
            fast["head.bias"] = meta["head.bias"].expand(n_classes)
        return fast

    def _adapted_names(self, fast: dict) -> list[str]:
        """Return the names of the fast weights the inner loop adapts."""
        if self._adapt_body:
            return list(fast)
        return [k for k in fast if k.startswith("head.")]

    def _features(self, fast: dict, X: torch.Tensor, rows: int | None):
        """Compute body features ``(n, D)`` of ``X`` under fast weights ``fast``."""
        body = {k[5:]: v for k, v in fast.items() if k.startswith("body.")}
        with self.module_.norm_calls(rows=rows):
            return _functional_call(self.module_.body, body, (X,)).flatten(1)

    def _head(self, fast: dict, z: torch.Tensor) -> torch.Tensor:
        """Compute outputs of features ``z`` under fast weights ``fast``."""
        out = F.linear(z, fast["head.weight"], fast["head.bias"])
        if isinstance(self, MetaClassifierMixin):
            return out
        return out.reshape(*out.shape[:-1], *self._y_shape_)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return one task's loss: cross-entropy or mean squared error."""
        if isinstance(self, MetaClassifierMixin):
            return F.cross_entropy(out, y)
        return F.mse_loss(out, y)

    def _score(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return one task's score: accuracy or R²."""
        if isinstance(self, MetaClassifierMixin):
            return (out.argmax(-1) == y).float().mean()
        return _r2_score(y, out)

    # -- the inner loop ------------------------------------------------------------

    def _adapt_tasks(
        self,
        X_s: torch.Tensor,
        y_s: torch.Tensor,
        X_q: torch.Tensor | None,
        n_classes: int,
        steps: int,
        first_order: bool,
        batch_size: int | None = None,
        inner: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[dict, torch.Tensor | None]:
        """Adapt to a batch of support sets; return fast weights and query outputs.

        ``X_s`` is ``(B, n_support, ...)``, ``X_q`` ``(B, n_query, ...)`` or
        None for no query outputs (the second result is then None). Each
        inner step takes ``batch_size`` support rows (None: all of them), see
        :func:`_minibatches`. ``inner``, rows ``(X, y)`` of each task, makes
        the inner steps train on those rows instead of the support, which
        then only starts the prototype head and normalises the queries. Fast
        weights carry a leading task dimension; forward passes run under
        :func:`torch.func.vmap` and the inner gradients come from one
        :func:`torch.autograd.grad` of the summed support losses (each task's
        loss depends on its own weights only). When gradients are enabled the
        result is differentiable with respect to the meta-parameters: through
        the inner gradients (second order) unless ``first_order``.
        """
        track = torch.is_grad_enabled()
        meta, lrs = self._meta_params(), self._lrs()
        if not track:
            meta = {k: v.detach() for k, v in meta.items()}
        n_tasks = len(X_s)
        start = self._task_params(meta, n_classes)
        names = self._adapted_names(start)
        fixed = {k: v for k, v in start.items() if k not in names}
        fast = {k: start[k].expand(n_tasks, *start[k].shape) for k in names}
        n_s = X_s.shape[1]
        z_s = z_q = None
        if not self._adapt_body:
            # The body does not adapt: embed support and query once.
            z = _map_tasks(lambda X: self._features(fixed, X, n_s), n_tasks)(
                X_s if X_q is None else torch.cat([X_s, X_q], 1)
            )
            z_s, z_q = z[:, :n_s], z[:, n_s:]
        if getattr(self.module_, "prototype_head", False):
            fast.update(self._prototype_head(start, X_s, y_s, z_s, n_classes))
        # The rows the steps train on; other rows than the support are
        # embedded at each step.
        X_i, y_i, z_i = (X_s, y_s, z_s) if inner is None else (*inner, None)

        def support_loss(adapted, X, y, z):
            params = {**fixed, **adapted}
            z = self._features(params, X, None) if z is None else z
            return self._loss(self._head(params, z), y)

        batched_loss = _map_tasks(
            support_loss, n_tasks, in_dims=(0, 0, 0, None if z_i is None else 0)
        )
        step_rows = _minibatches(
            X_i, y_i, z_i, batch_size, n_classes if n_classes else None
        )
        # Without a second-order graph, a task's own batch norm may be fused.
        with self.module_.norm_calls(fused=first_order or not track):
            fast = _gradient_steps(
                fast,
                lambda fast, step: batched_loss(fast, *step_rows(step)),
                steps,
                lambda fast, grads, state: self._inner_update(fast, grads, lrs, state),
                track=track,
                first_order=first_order,
            )
        out = None
        if X_q is not None:
            out = _map_tasks(
                lambda adapted, X_s, X_q, z_q: self._query_outputs(
                    {**fixed, **adapted}, X_s, X_q, z_q
                ),
                n_tasks,
                in_dims=(0, 0, 0, None if z_q is None else 0),
            )(fast, X_s, X_q, z_q)
        fixed = {k: v.expand(n_tasks, *v.shape) for k, v in fixed.items()}
        return {**fixed, **fast}, out

    def _prototype_head(self, start, X_s, y_s, z_s, n_classes: int) -> dict:
        """Return head weights ``(B, C, D)`` and biases ``(B, C)`` from prototypes.

        Row ``2 mu_c`` and bias ``-|mu_c|^2`` for the mean ``mu_c`` of class
        ``c``'s support features under the starting weights: the logits are
        the negative squared distances to the prototypes, up to a term the
        same for every class (Triantafillou et al., 2020, "Proto-MAML"). The
        prototypes stay in the graph, so the body learns through them too.
        """
        if z_s is None:
            n_s = X_s.shape[1]
            z_s = _map_tasks(lambda X: self._features(start, X, n_s), len(X_s))(X_s)
        one_hot = F.one_hot(y_s, n_classes).to(z_s.dtype)
        counts = one_hot.sum(1).clamp(min=1)[..., None]
        mu = one_hot.transpose(1, 2) @ z_s / counts
        return {"head.weight": 2 * mu, "head.bias": -mu.square().sum(-1)}

    def _inner_update(self, fast: dict, grads: dict, lrs, state: dict):
        """One inner step: plain gradient descent (Reptile may use Adam)."""
        return {k: fast[k] - self._step_size_of(k, lrs) * grads[k] for k in fast}, state

    def _query_outputs(self, fast, X_s, X_q, z_q=None) -> torch.Tensor:
        """Compute query outputs under ``fast``, normalised by the support."""
        if z_q is not None:
            return self._head(fast, z_q)
        stats = None
        if self.module_._norms and X_s is not None:
            # A pass of the support records its statistics (differentiably),
            # then the queries run alone.
            stats = self._support_norm_stats(fast, X_s)
            if stats is None:
                return self._carried_outputs(fast, X_s, X_q)
        return self._normalised_outputs(fast, X_q, stats)

    def _support_norm_stats(self, fast, X_s) -> list | None:
        """Each norm layer's statistics of ``X_s`` under ``fast``.

        None when a norm layer runs twice in the body: its statistics cannot
        be replayed, and queries must carry the support rows instead.
        """
        return self.module_.record_norm_stats(lambda: self._features(fast, X_s, None))

    def _normalised_outputs(self, fast, X, stats: list | None) -> torch.Tensor:
        """Compute outputs of ``X``, each norm layer using ``(var, mean)`` of ``stats``.

        ``stats`` None: every norm layer uses the batch's own statistics.
        """
        with self.module_.norm_calls(fixed=stats):
            return self._head(fast, self._features(fast, X, None))

    def _carried_outputs(self, fast, X_s, X) -> torch.Tensor:
        """Compute outputs of ``X`` run together with the support rows ``X_s``.

        Every norm layer normalises by the support's rows: the fallback for a
        body that runs a norm layer twice.
        """
        n_s = len(X_s)
        return self._head(fast, self._features(fast, torch.cat([X_s, X]), n_s)[n_s:])

    # -- a meta-batch -------------------------------------------------------------

    def _episode_losses(self, batch: _EpisodeBatch):
        """Return per-task query losses and scores of a meta-batch."""
        if not torch.is_grad_enabled():
            # Evaluation (meta-validation): chunks bounded in samples.
            size = _eval_chunk(batch.X_support.shape[1] + batch.X_query.shape[1])
            if len(batch.X_support) > size:
                parts = [self._task_losses(c) for c in self._chunks(batch, size)]
                return tuple(torch.cat(p) for p in zip(*parts, strict=True))
        return self._task_losses(batch)

    def _task_losses(self, batch: _EpisodeBatch):
        """Adapt to a batch of tasks; return their query losses and scores."""
        _, out = self._adapt_tasks(
            batch.X_support,
            batch.y_support,
            batch.X_query,
            batch.n_classes,
            self.inner_steps,
            self.first_order,
            self.inner_batch_size,
        )
        return self._losses_and_scores(out, batch.y_query)

    def _losses_and_scores(self, out: torch.Tensor, y_query: torch.Tensor):
        """Per-task query losses and scores ``(B,)`` of query outputs."""
        return vmap(self._loss)(out, y_query), vmap(self._score)(out, y_query)

    def _task_chunk_size(self, rows: int) -> int | None:
        """Tasks per call in meta-training (None: the whole batch).

        ``rows`` is the number of samples of a task (support and query).
        """
        if self.task_chunk_size != "auto":
            return self.task_chunk_size
        # On a GPU one call per meta-batch is 4-6x faster than chunks of 8
        # (launch-bound; docs/benchmarks.md) and its memory is small there.
        if self.device_.type == "cuda":
            return None
        # On the CPU, vmap's grouped convolutions lose to native ones from
        # tasks of a few tens of images, later with more threads
        # (docs/design.md, "One task per call runs native kernels").
        per_task_rows = (
            self._CPU_PER_TASK_ROWS
            if torch.get_num_threads() == 1
            else self._CPU_PER_TASK_ROWS_THREADS
        )
        if len(self.sample_shape_) == 3 and rows >= per_task_rows:
            return 1
        return self._CPU_TASK_CHUNK

    def _chunks(
        self, batch: _EpisodeBatch, size: int | None = None
    ) -> Iterator[_EpisodeBatch]:
        """Yield ``batch`` in chunks of ``size`` tasks (``task_chunk_size``)."""
        rows = batch.X_support.shape[1] + batch.X_query.shape[1]
        size = size or self._task_chunk_size(rows) or len(batch.X_support)
        for i in range(0, len(batch.X_support), size):
            yield _EpisodeBatch(
                *(t[i : i + size] for t in batch[:4]), n_classes=batch.n_classes
            )

    def _train_step(self, batches: list[_EpisodeBatch]) -> dict:
        """One meta-update, a chunk of tasks at a time (memory bounded by it)."""
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        # The whole meta-batch's size: with several processes, each sums its
        # share of the tasks, and the processes' sums are added.
        total = _n_total(batches)
        losses, scores = [], []
        for batch in batches:
            # Each chunk's graph is freed by its backward pass, so memory grows
            # with task_chunk_size, not with the meta-batch.
            for chunk in self._chunks(batch):
                chunk_losses, chunk_scores = self._episode_losses(chunk)
                (chunk_losses.sum() / total).backward()
                losses.append(chunk_losses.detach())
                scores.append(chunk_scores.detach())
        return self._meta_update(batches, losses, scores, total)

    # -- adaptation and prediction -------------------------------------------------

    @property
    def _adapt_steps(self) -> int:
        """Inner steps at adaptation: ``adapt_steps``, else ``inner_steps``."""
        return self.inner_steps if self.adapt_steps is None else self.adapt_steps

    @property
    def _adapt_batch_size(self) -> int | None:
        """Support rows per step at adaptation (else ``inner_batch_size``)."""
        if self.adapt_batch_size is None:
            return self.inner_batch_size
        return self.adapt_batch_size

    def _adapt(self, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict:
        """Adapt to one support set; keep the fast weights and norm statistics."""
        X = _samples(X).tensor(self.device_)
        y = y.to(self.device_)
        with torch.no_grad():
            fast, _ = self._adapt_tasks(
                X[None],
                y[None],
                None,
                n_classes,
                self._adapt_steps,
                True,
                self._adapt_batch_size,
            )
        params = {k: v[0] for k, v in fast.items()}
        state = {"params": params, "support": None, "norm_stats": None}
        if self.module_._norms:
            # The support's statistics under the adapted weights, computed once:
            # queries are normalised with them without carrying the support.
            with torch.no_grad():
                stats = self._support_norm_stats(params, X)
            if stats is None:
                state["support"] = X  # a norm layer used twice: carry the rows
            else:
                state["norm_stats"] = stats
        return state

    def _predict_logits(self, state: dict, X: np.ndarray) -> torch.Tensor:
        """Compute an adapted state's outputs for ``X``, a chunk at a time."""
        with torch.no_grad():
            return self._map_chunks(lambda x: self._state_outputs(state, x), X)

    def _state_outputs(self, state: dict, X: torch.Tensor) -> torch.Tensor:
        """Compute an adapted state's (from ``_adapt``) outputs for ``X``."""
        if state.get("support") is not None:
            return self._carried_outputs(state["params"], state["support"], X)
        return self._normalised_outputs(state["params"], X, state.get("norm_stats"))

    def _episode_logits_from_pool(self, X, support, y_support, query, n_way):
        """Query outputs of many episodes, adapted a chunk at a time by vmap."""
        y_support = np.asarray(y_support)
        per_episode = y_support.ndim > 1 or not isinstance(self, MetaClassifierMixin)
        outs = []
        X = _samples(X)
        size = _eval_chunk(support.shape[1] + query.shape[1])
        with torch.no_grad():
            for i in range(0, len(support), size):
                rows = slice(i, i + size)
                if per_episode:
                    y_s = torch.as_tensor(y_support[rows])
                else:
                    y_s = torch.as_tensor(y_support).expand(len(support[rows]), -1)
                outs.append(
                    self._adapt_tasks(
                        X.gather(support[rows], self.device_),
                        y_s.to(self.device_),
                        X.gather(query[rows], self.device_),
                        n_way,
                        self._adapt_steps,
                        True,
                        self._adapt_batch_size,
                    )[1]
                )
        return torch.cat(outs)

    def _pool_to_adapt(self, pool: _Pool) -> _Pool:
        """Return at most ``_POOL_ADAPT_MAX`` pool rows, spread over classes."""
        if len(pool.X) <= _POOL_ADAPT_MAX:
            return pool
        # A sample spread over the classes: the inner loop takes full-batch
        # gradient steps on what it is given.
        rng = _stream(self._seed_, Stream.POOL_SAMPLE)
        spread = pool.codes if pool.classes is not None else pool.targets
        return pool.subset(_stratified_sample(spread, _POOL_ADAPT_MAX, rng))


class _GradientClassifier(MetaClassifierMixin, BaseGradientLearner):
    """The parameters of the gradient-based classifiers (documented on each)."""

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        inner_lr=0.4,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_batch_size=8,
        task_chunk_size="auto",
        max_epochs=10,
        episodes_per_epoch=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        max_grad_norm=None,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
        eval_n_way=None,
        eval_k_shot=None,
        eval_n_query=None,
        augment=None,
        num_workers=0,
        distributed="auto",
        device="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.module = module
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.first_order = first_order
        self.meta_batch_size = meta_batch_size
        self.task_chunk_size = task_chunk_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
        self.eval_n_way = eval_n_way
        self.eval_k_shot = eval_k_shot
        self.eval_n_query = eval_n_query
        self.augment = augment
        self.num_workers = num_workers
        self.distributed = distributed
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed_kwargs(kwargs)


class _GradientRegressor(MetaRegressorMixin, BaseGradientLearner):
    """The parameters of the gradient-based regressors (documented on each)."""

    def __init__(
        self,
        module=None,
        *,
        k_shot=10,
        n_query=10,
        inner_lr=0.01,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_batch_size=25,
        task_chunk_size=None,
        max_epochs=10,
        episodes_per_epoch=1000,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        max_grad_norm=None,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
        eval_k_shot=None,
        eval_n_query=None,
        augment=None,
        num_workers=0,
        distributed="auto",
        device="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.module = module
        self.k_shot = k_shot
        self.n_query = n_query
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.first_order = first_order
        self.meta_batch_size = meta_batch_size
        self.task_chunk_size = task_chunk_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
        self.eval_k_shot = eval_k_shot
        self.eval_n_query = eval_n_query
        self.augment = augment
        self.num_workers = num_workers
        self.distributed = distributed
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed_kwargs(kwargs)
