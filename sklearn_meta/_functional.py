"""Functional machinery shared by the learner families.

Stateless building blocks over :func:`torch.func.functional_call` and
:func:`torch.func.vmap`: the typed inner loop of gradient steps (used by the
gradient-based learners, the Meta-Learner LSTM and meta-RL), batch
normalisation with each task's own support statistics, the class head that
adapts to any number of ways, and the container of everything meta-learned.
No family owns them, so every family imports them from here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

__all__: list[str] = []


def _map_tasks(fn, n_tasks: int, in_dims=0):
    """Map ``fn`` over the leading task dimension of its arguments.

    Like ``vmap(fn, in_dims, randomness="different")``, whose batching
    rules turn convolutions and batch norm into grouped ones; for a single
    task, ``fn`` runs on the task itself instead (its arguments indexed at
    0, its outputs given a task dimension of 1), with PyTorch's native
    kernels: the same result, faster on the CPU for tasks of a few tens of
    samples (``benchmarks/task_strategy.py``; docs/design.md). Each
    argument is a tensor, a dict of tensors or (with ``in_dims`` None for
    it) anything passed unchanged; outputs are tensors or dicts of them.
    """
    if n_tasks != 1:
        return vmap(fn, in_dims=in_dims, randomness="different")
    dims = in_dims if isinstance(in_dims, tuple) else None

    def one(*args):
        args = [
            arg if (dims is not None and dims[i] is None) else _index(arg, 0)
            for i, arg in enumerate(args)
        ]
        return _unsqueeze(fn(*args))

    return one


def _index(value, i: int):
    if isinstance(value, dict):
        return {k: v[i] for k, v in value.items()}
    return value[i]


def _unsqueeze(value):
    if isinstance(value, dict):
        return {k: v.unsqueeze(0) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_unsqueeze(v) for v in value)
    return value.unsqueeze(0)


#: One lock per module that ``_functional_call`` runs (weakly held).
_MODULE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MODULE_LOCKS_GUARD = threading.Lock()


def _functional_call(module: nn.Module, params: dict, args: tuple):
    """Call ``module`` with ``params`` in place of its own, safely from threads.

    :func:`torch.func.functional_call` swaps the parameters into the module
    object for the duration of the call, and a fitted learner shares its
    module with every estimator adapted from it: two threads predicting at
    once would run with each other's weights. The module's own lock makes the
    swaps of one module take turns; other modules run in parallel.
    """
    with _module_lock(module):
        return functional_call(module, params, args)


def _module_lock(module: nn.Module) -> threading.RLock:
    """Return the lock that ``module``'s parameter swaps hold."""
    with _MODULE_LOCKS_GUARD:
        return _MODULE_LOCKS.setdefault(module, threading.RLock())


def _named_parameters(module: nn.Module, swapped: nn.Module) -> dict:
    """Return ``module``'s own parameters by name, never another call's.

    ``swapped`` is the part of ``module`` that :func:`_functional_call` runs:
    while another thread's call is running, its attributes hold that call's
    weights, so they are read when no call is.
    """
    with _module_lock(swapped):
        return dict(module.named_parameters())


@dataclass(frozen=True)
class _NormCall:
    """How a task-wise batch-norm layer normalises the calls of one context.

    ``rows=None`` normalises a batch by its own statistics; ``rows=n`` by
    those of its first ``n`` rows (the support set). ``fixed`` is a
    ``(var, mean)`` pair to normalise with instead of computing them (the
    support statistics an adapted state keeps). While ``recorded`` is a
    list, each call appends the ``(var, mean)`` it computed. ``fused`` allows
    PyTorch's fused batch norm for a batch normalised by its own statistics
    outside vmap: faster forward and backward, but a slower backward of the
    backward, so it is for passes no second-order gradient goes through.
    """

    rows: int | None = None
    fixed: tuple[torch.Tensor, torch.Tensor] | None = None
    recorded: list | None = None
    fused: bool = False


#: The settings of the batch-norm layers in the current thread (and context),
#: by layer. They are per call, not per module: a meta-learner and all its
#: adapted estimators share one module object, and threads that predict with
#: them at once must not see each other's settings.
_NORM_CALLS: ContextVar[dict[int, _NormCall] | None] = ContextVar(
    "norm_calls", default=None
)
_DEFAULT_CALL = _NormCall()


class _SupportBatchNorm(nn.Module):
    """Batch normalisation with the statistics of the support rows of a task.

    By default a batch is normalised by its own statistics (the inner loop, as
    in the MAML paper); a :class:`_MetaModel` context can make every row
    normalised by the statistics of the first ``n`` rows (the support set), so
    a query's output does not depend on the other queries it comes with, or by
    statistics kept from adaptation. Written with plain tensor operations, it
    gives each task its own statistics under :func:`torch.func.vmap` (which
    ``nn.BatchNorm2d`` with running statistics does not).
    """

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps = norm.eps
        if norm.affine:
            self.weight = nn.Parameter(norm.weight.detach().clone())
            self.bias = nn.Parameter(norm.bias.detach().clone())
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(n, C, ...)`` by the chosen statistics; scale, shift."""
        call = (_NORM_CALLS.get() or {}).get(id(self), _DEFAULT_CALL)
        own = call.rows is None and call.fixed is None and call.recorded is None
        if call.fused and own and not _is_batched(x):
            # One task, normalised by its own statistics, in a pass that is
            # differentiated once at most: PyTorch's fused kernel, faster on
            # the CPU than the operations below (its double backward is
            # slower than theirs: docs/design.md). Not under vmap: on CUDA its
            # batching rule queries memory formats, which vmap does not
            # support, and on the CPU it was no faster there.
            return F.batch_norm(
                x, None, None, self.weight, self.bias, training=True, eps=self.eps
            )
        if call.fixed is not None:
            var, mean = call.fixed
        else:
            ref = x if call.rows is None else x[: call.rows]
            var, mean = _var_mean(ref)
            if call.recorded is not None:
                call.recorded.append((var, mean))
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        # One fused multiply-add over the large tensor; gradients reach the
        # support statistics through the small per-channel scale and shift.
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.addcmul(shift.view(shape), x, scale.view(shape))


def _var_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel biased variance and mean of ``x`` ``(n, C, ...)``.

    Two passes, the mean then the mean square of the centred values: on the
    CPU, over the four layers of conv4 for a 5-image task, forward and
    backward take 0.69x the time of ``torch.var_mean`` over the batch and
    spatial dimensions (``benchmarks/norm_statistics.py``), and centring
    first keeps the variance as accurate (float64: within 5e-15).
    """
    dims = (0, *range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    return (x - mean).square().mean(dims), mean.flatten()


def _is_batched(x: torch.Tensor) -> bool:
    """Whether ``x`` is a tensor that :func:`torch.func.vmap` batches."""
    return torch._C._functorch.is_batchedtensor(x)


def _replace_batch_norm(module: nn.Module) -> None:
    """Swap every batch-norm layer of ``module`` (in place) for the task-wise one."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, _SupportBatchNorm(child))
        else:
            _replace_batch_norm(child)


class _ClassHead(nn.Module):
    """A linear head whose rows start equal for every class.

    The starting weight is one vector (and one bias); a task with ``n``
    classes starts from ``n`` copies of it, so one model adapts to any number
    of ways and any label order (Ye & Chao, 2022). Both start at zero.

    With ``learnable=False`` they stay zero and are not meta-parameters (their
    ``requires_grad`` is off): when the inner loop is gradient descent (or
    Adam), rows that start equal move by amounts that do not depend on the
    shared start, so the start only adds the same number to every class's
    logit, which the softmax ignores; its meta-gradient is zero to any order.
    A learned update rule (the Meta-Learner LSTM's gates scale each row by its
    own gradient) breaks that symmetry, and there it is learned.
    """

    def __init__(self, dim: int, learnable: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim), requires_grad=learnable)
        self.bias = nn.Parameter(torch.zeros(1), requires_grad=learnable)


class _MetaModel(nn.Module):
    """Everything meta-learned: body, head and (Meta-SGD) step sizes."""

    def __init__(self, body: nn.Module, head: nn.Module, lrs=None):
        super().__init__()
        self.body = body
        self.head = head
        self.lrs = lrs
        self._norms = [m for m in body.modules() if isinstance(m, _SupportBatchNorm)]

    @contextmanager
    def norm_calls(self, **changes) -> Iterator[None]:
        """Within the ``with`` block, in this thread, change how norms normalise.

        ``changes`` are fields of :class:`_NormCall` for every norm layer:
        ``rows``, or ``fixed`` as a list with one ``(var, mean)`` per layer.
        Settings of other layers, and outer blocks' other fields, stay.
        """
        calls = dict(_NORM_CALLS.get() or {})
        for i, norm in enumerate(self._norms):
            mine = dict(changes)
            if "fixed" in changes and changes["fixed"] is not None:
                mine["fixed"] = changes["fixed"][i]
            calls[id(norm)] = replace(calls.get(id(norm), _DEFAULT_CALL), **mine)
        token = _NORM_CALLS.set(calls)
        try:
            yield
        finally:
            _NORM_CALLS.reset(token)

    def record_norm_stats(self, forward) -> list | None:
        """Run ``forward()`` and return the statistics each norm computed.

        None when a norm layer ran other than once (a layer used twice), whose
        statistics cannot be replayed in order.
        """
        recorded: list[list] = [[] for _ in self._norms]
        calls = dict(_NORM_CALLS.get() or {})
        for norm, mine in zip(self._norms, recorded, strict=True):
            calls[id(norm)] = replace(calls.get(id(norm), _DEFAULT_CALL), recorded=mine)
        token = _NORM_CALLS.set(calls)
        try:
            forward()
        finally:
            _NORM_CALLS.reset(token)
        if any(len(r) != 1 for r in recorded):
            return None
        return [r[0] for r in recorded]


def _gradient_steps(
    fast: dict[str, torch.Tensor],
    task_losses,
    steps: int,
    update,
    *,
    track: bool,
    first_order: bool,
) -> dict[str, torch.Tensor]:
    """Take ``steps`` inner gradient steps from fast weights with a task dimension.

    ``fast`` maps names to tensors ``(B, ...)``, one slice per task.
    ``task_losses(fast, step)`` returns the tasks' losses ``(B,)`` at inner
    step ``step`` (its data may change with the step, as fresh episodes do in
    reinforcement learning); each depends on its own slice only, so one
    :func:`torch.autograd.grad` of their sum gives every task's own gradient.
    ``update(fast, grads, state)`` returns the new fast weights and the
    optimiser state (``{}`` at first). With ``track`` the result stays
    differentiable with respect to what ``fast`` was computed from, through
    the inner gradients unless ``first_order``; without, it is detached.
    """
    state: dict = {}
    with torch.enable_grad():
        if not track:
            fast = {k: v.detach().requires_grad_() for k, v in fast.items()}
        else:
            # Weights that are adapted but not meta-learned (a fixed start).
            fast = {
                k: v if v.requires_grad else v.detach().requires_grad_()
                for k, v in fast.items()
            }
        for step in range(steps):
            loss = task_losses(fast, step).sum()
            grads = torch.autograd.grad(
                loss, list(fast.values()), create_graph=track and not first_order
            )
            fast, state = update(fast, dict(zip(fast, grads, strict=True)), state)
            if not track:
                fast = {k: v.detach().requires_grad_() for k, v in fast.items()}
    if not track:
        fast = {k: v.detach() for k, v in fast.items()}
    return fast


def _embed_episodes(
    embed, X_support: torch.Tensor, X_query: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed a meta-batch's support and query sets in one forward pass.

    ``X_support`` is ``(B, n_support, ...)`` and ``X_query``
    ``(B, n_query, ...)``; ``embed`` maps ``(n, ...)`` to ``(n, D)``. Returns
    ``z_support`` ``(B, n_support, D)`` and ``z_query`` ``(B, n_query, D)``.
    One call over every row lets the network batch all of them at once.
    """
    B, n_support = X_support.shape[:2]
    z = embed(torch.cat([X_support.flatten(0, 1), X_query.flatten(0, 1)]))
    z_support = z[: B * n_support].view(B, n_support, -1)
    return z_support, z[B * n_support :].view(B, X_query.shape[1], -1)


def _embed_used_rows(map_embed, X, support, query) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed each pool row that some episode uses, once.

    In eval mode an embedding does not depend on the batch it comes in, so
    episodes drawn from a pool (``support`` ``(E, n_support)`` and ``query``
    ``(E, n_query)`` row indices into ``X``) become index arithmetic on the
    embeddings. ``map_embed(rows)`` embeds an array of rows. Returns the
    embeddings ``(n_used, D)`` and each episode's positions in them
    ``(E, n_support + n_query)``, support first.
    """
    used, inverse = np.unique(
        np.concatenate([support, query], axis=1), return_inverse=True
    )
    z = map_embed(X[used])
    return z, torch.as_tensor(inverse.reshape(len(support), -1), device=z.device)
