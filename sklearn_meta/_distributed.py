"""Data-parallel meta-training over processes, with torch.distributed.

Under ``torchrun`` (or any initialised process group) every rank draws the
same meta-batches, from ``random_state`` and the step alone, and adapts its
own share of each meta-batch's tasks. The meta-gradients (each rank's sum
over its tasks, divided by the whole meta-batch's size) are summed by one
all-reduce over a flat buffer, so every rank holds the one-process
meta-gradient and takes the same optimiser step. Floating-point buffers (the
running statistics of batch-norm layers) are averaged the same way.

Not DistributedDataParallel: DDP synchronises gradients with hooks on
``backward``, which do not see gradients taken with ``create_graph=True``
through an inner loop (PyTorch issue 63929), and it wraps the module, which
our functional inner loop calls with weights of its own.

Failures: every step begins its collectives with a one-number all-reduce of
each rank's status. A rank that raised takes part in it with its error,
then every rank learns the message and raises, so one rank's error ends them
all instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import distributed as dist

__all__: list[str] = []

#: How long a collective of a process group we create waits for a rank that
#: stopped answering (a rank that raised is reported at once, see above).
_TIMEOUT = datetime.timedelta(minutes=10)


class DistributedError(RuntimeError):
    """Another rank of a data-parallel fit raised; the message is its error."""


def _launched() -> bool:
    """Whether torchrun (or another launcher) set up more than one process."""
    env = os.environ
    return (
        all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))
        and int(env["WORLD_SIZE"]) > 1
    )


def _local_device(device: torch.device) -> torch.device:
    """Return this rank's device: CUDA without an index gets LOCAL_RANK's."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def _destroy_process_group() -> None:
    """Destroy the default process group if it is still there (at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _data_parallel(setting, device: torch.device) -> _DataParallel | None:
    """Return the data-parallel group a fit runs in, or None for one process.

    ``setting`` is the learner's ``distributed`` parameter: ``"auto"`` uses a
    process group when one is initialised or the launcher's environment is
    present (and initialises the group then); True requires one; False
    never uses one.
    """
    if setting is False:
        return None
    available = dist.is_available()
    if available and not dist.is_initialized() and _launched():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=_TIMEOUT)
        # The group is ours, so is its end: a process that exits with it alive
        # can abort (SIGABRT) while gloo's threads are torn down with the
        # interpreter. atexit handlers run while the interpreter is whole.
        atexit.register(_destroy_process_group)
    if not (available and dist.is_initialized()) or dist.get_world_size() == 1:
        if setting is True:
            raise ValueError(
                "distributed=True needs several processes: launch the script with "
                "torchrun (torchrun --nproc-per-node=N script.py) or initialise a "
                "torch.distributed process group first."
            )
        return None
    return _DataParallel(device)


@contextmanager
def _reporting_failures(dp: _DataParallel | None) -> Iterator[None]:
    """Report an error raised in the block to the other ranks, then re-raise.

    For the training loop around the steps: a failure outside a step (a
    callback, say) reaches the other processes at their next step's status
    report. Nothing happens with one process (``dp`` None).
    """
    try:
        yield
    except BaseException as exc:
        if dp is not None:
            dp.report_failure(exc)
        raise


def _join_fit(learner) -> _DataParallel | None:
    """Join the data-parallel fit ``learner`` starts, if it runs in one.

    ``learner`` has its ``device_`` and ``_seed_``; under a process group
    (see :func:`_data_parallel`) its device becomes this rank's and its seed
    rank 0's (with ``random_state=None`` each process drew its own), and it
    keeps the group for the fit in ``__dict__["_dp"]``, which ``fit`` removes
    at its end. Returns the group, or None.
    """
    dp = _data_parallel(getattr(learner, "distributed", False), learner.device_)
    if dp is not None:
        learner.device_ = _local_device(learner.device_)
        learner._seed_ = dp.broadcast_seed(learner._seed_)
        learner.__dict__["_dp"] = dp
    return dp


class _DataParallel:
    """A process's place in a data-parallel fit, and the collectives it uses."""

    def __init__(self, device: torch.device):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        # NCCL reduces tensors on the GPU; gloo on the CPU.
        nccl = dist.get_backend() == "nccl"
        self.device = device if nccl else torch.device("cpu")
        #: Whether the current step still owes its status to the others.
        self.owes_status = False
        #: Whether a failure was reported (so no rank reports it twice).
        self.failed = False

    def share(self, n: int) -> slice:
        """Return the part of ``n`` tasks (or samples) this rank takes.

        Contiguous parts in rank order, whose sizes differ by at most one.
        """
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def check_size(self, n: int, what: str) -> None:
        """Raise unless each rank gets at least one of ``n`` tasks."""
        if n < self.world_size:
            raise ValueError(
                f"{what} has {n} tasks, fewer than the {self.world_size} processes "
                "that share it: each process adapts a part of every meta-batch. "
                f"Use meta_batch_size >= {self.world_size} or fewer processes."
            )

    def sync_status(self, error: BaseException | None = None) -> None:
        """Tell every rank whether this one failed; raise if any did.

        Raises the rank's own ``error``; on the other ranks, a
        :class:`DistributedError` with the failed rank's message.
        """
        self.owes_status = False
        # Failed ranks do not sync again on their way out of fit.
        self.failed = error is not None
        flag = torch.tensor([0.0 if error is None else 1.0], device=self.device)
        dist.all_reduce(flag)
        if flag.item() == 0:
            return
        messages: list = [None] * self.world_size
        mine = None if error is None else f"{type(error).__name__}: {error}"
        dist.all_gather_object(messages, mine)
        if error is not None:
            raise error
        rank, message = next((r, m) for r, m in enumerate(messages) if m is not None)
        self.failed = True
        raise DistributedError(
            f"Process {rank} of the data-parallel fit failed: {message}"
        )

    def run_step(self, step, *args, owner: str = "The learner"):
        """Return ``step(*args)``, telling the other ranks if it raises.

        A step makes the collectives of one optimiser (or validation) step,
        beginning with :meth:`sync_status`. If it raises before that, this
        rank reports its error there, so the others raise too instead of
        waiting; a step that made no collective call at all is a defect of
        the learner (``owner`` names it), reported as such.
        """
        self.owes_status = True
        try:
            result = step(*args)
        except BaseException as exc:
            if self.owes_status:
                self.sync_status(exc)
            raise
        if self.owes_status:
            raise RuntimeError(
                f"{owner}'s step made no collective call; its gradients were not "
                "summed over the processes."
            )
        return result

    def report_failure(self, error: BaseException) -> None:
        """Report an error raised outside a step, unless one was reported.

        The other ranks learn of it at their next step's status report.
        """
        if not self.failed:
            self.sync_status(error)

    def reduce_gradients(self, parameters, *extra: float) -> list[float]:
        """Sum the parameters' gradients and ``extra`` numbers over all ranks.

        One all-reduce over a flat buffer; a parameter without a gradient on
        this rank adds zeros. Every parameter gets the summed gradient.
        Returns the summed ``extra``.
        """
        parameters = [p for p in parameters if p.requires_grad]
        parts = [
            (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1)
            for p in parameters
        ]
        head = torch.tensor(extra, dtype=torch.float64, device=self.device)
        flat = torch.cat([*(t.to(self.device, torch.float64) for t in parts), head])
        dist.all_reduce(flat)
        offset = 0
        for p in parameters:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).to(p.device, p.dtype)
            offset += n
        return flat[offset:].tolist()

    def reduce_numbers(self, *numbers: float) -> list[float]:
        """Sum numbers over all ranks."""
        flat = torch.tensor(numbers, dtype=torch.float64, device=self.device)
        dist.all_reduce(flat)
        return flat.tolist()

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average the module's floating-point buffers over all ranks."""
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1).to(torch.float64) for b in buffers])
        flat = flat.to(self.device)
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for b in buffers:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and floating-point buffers.

        A module instance built in each process (with its own random
        initialisation) then starts from the same weights everywhere.
        """
        tensors = [*module.parameters(), *module.buffers()]
        tensors = [t for t in tensors if t.is_floating_point()]
        if not tensors:
            return
        flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
        flat = flat.to(self.device)
        dist.broadcast(flat, 0)
        offset = 0
        with torch.no_grad():
            for t in tensors:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    def broadcast_seed(self, seed: int) -> int:
        """Return rank 0's ``seed`` on every rank."""
        value = torch.tensor([seed], dtype=torch.int64, device=self.device)
        dist.broadcast(value, 0)
        return int(value.item())

    def gather(self, values: np.ndarray) -> np.ndarray:
        """Concatenate every rank's ``values`` in rank order."""
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, values)
        return np.concatenate(parts)
