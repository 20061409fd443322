"""Where a MAML meta-iteration's CPU time goes: convolutions, pooling, the rest.

Three measurements behind the "Measured since" paragraph of the MAML speed
section in ``docs/benchmarks.md``:

1. one conv4 layer's forward and backward for 8 tasks of 10 images, as the
   grouped convolution ``vmap`` turns per-task weights into, the same in
   channels-last memory format, a Python loop over tasks, and one ordinary
   convolution of all 80 images with shared weights (the hardware's best case);
2. max pooling's forward and backward on the same layouts, against a pooling
   written as a reshape and ``amax``;
3. a profile of one of our meta-iterations (the Omniglot work of
   ``benchmarks/maml.py``, 1 inner step, chunks of 8 tasks), split into
   convolution operators and everything else, and the same with queries
   normalised by their own statistics (the peers' choice) instead of their
   support's, which takes the support rows out of the query pass (a conv4
   whose normalisation layers normalise each call by its own statistics,
   passed as ``module``);
4. the same meta-iteration written by hand without ``vmap``: the conv4 in the
   grouped layout (images, tasks x channels, height, width), where per-task
   batch norm is the native ``F.batch_norm`` and no copy moves the task
   dimension; profiled the same way;
5. ``higher``'s meta-iteration on the same work, when it imports, so the
   convolution time can be set against the peer's whole time.

Prints a table and JSON. Run ``python benchmarks/maml_layers.py``.
"""

from __future__ import annotations

import torch
from _common import argument_parser, print_table, time_call, write_record
from maml import Episodes, omniglot_batch, ours_omniglot, peer_omniglot, peers
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F

from sklearn_meta.nn import Conv4

N_TASKS, N_IMAGES, FILTERS = 8, 10, 64
CONV_OPS = ("convolution", "conv2d", "mkldnn_convolution", "convolution_backward")


def _milliseconds(fn, repeats: int = 20) -> float:
    """Mean milliseconds of ``fn()`` over ``repeats`` calls, after one more."""
    fn()
    return time_call(lambda: [fn() for _ in range(repeats)]) / repeats * 1e3


def _backward(tensor: torch.Tensor) -> None:
    tensor.sum().backward()


def conv_layouts(channels: int, size: int) -> dict:
    shape = (N_IMAGES, N_TASKS * channels, size, size)
    x = torch.randn(shape, requires_grad=True)
    w = torch.randn(N_TASKS * FILTERS, channels, 3, 3, requires_grad=True)
    last = torch.channels_last
    x_cl = x.detach().contiguous(memory_format=last).requires_grad_()
    w_cl = w.detach().contiguous(memory_format=last).requires_grad_()
    xs = [
        torch.randn(N_IMAGES, channels, size, size, requires_grad=True)
        for _ in range(N_TASKS)
    ]
    ws = [
        torch.randn(FILTERS, channels, 3, 3, requires_grad=True) for _ in range(N_TASKS)
    ]
    x_all = torch.randn(N_TASKS * N_IMAGES, channels, size, size, requires_grad=True)
    w_one = w[:FILTERS].detach().requires_grad_()
    return {
        "grouped": _milliseconds(
            lambda: _backward(F.conv2d(x, w, padding=1, groups=N_TASKS))
        ),
        "grouped_channels_last": _milliseconds(
            lambda: _backward(F.conv2d(x_cl, w_cl, padding=1, groups=N_TASKS))
        ),
        "per_task_loop": _milliseconds(
            lambda: _backward(
                sum(F.conv2d(a, b, padding=1).sum() for a, b in zip(xs, ws))
            )
        ),
        "shared_weights": _milliseconds(
            lambda: _backward(F.conv2d(x_all, w_one, padding=1))
        ),
    }


def _amax_pool(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    x = x[..., : 2 * h, : 2 * w]
    return x.reshape(*x.shape[:-2], h, 2, w, 2).amax(dim=(-3, -1))


def pool_layouts(size: int) -> dict:
    x = torch.randn(N_IMAGES, N_TASKS * FILTERS, size, size, requires_grad=True)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)
    x_cl.requires_grad_()
    return {
        "max_pool2d": _milliseconds(lambda: _backward(F.max_pool2d(x, 2))),
        "max_pool2d_channels_last": _milliseconds(
            lambda: _backward(F.max_pool2d(x_cl, 2))
        ),
        "reshape_amax": _milliseconds(lambda: _backward(_amax_pool(x))),
    }


def _cpu_profiler() -> torch.profiler.profile:
    return torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])


def _profile(run, profiled) -> dict:
    """Best of 3 timed runs, and the self time of one profiled run.

    ``run()`` returns its seconds; ``profiled()`` makes one more run and
    returns the finished profiler. Self time splits into convolution
    operators and everything else.
    """
    run()
    seconds = min(run() for _ in range(3))
    conv = other = 0.0
    for event in profiled().key_averages():
        self_seconds = event.self_cpu_time_total / 1e6
        if any(op in event.key for op in CONV_OPS):
            conv += self_seconds
        else:
            other += self_seconds
    return {"seconds": seconds, "convolution_s": conv, "other_s": other}


class ProfileNextMetaIteration(Callback):
    """Profile the next training meta-iteration of a fit once :meth:`arm` is called."""

    def arm(self) -> None:
        """Profile the next meta-iteration."""
        self.armed_ = True

    def on_batch_begin(self, net, training=False, **kwargs):
        """Start the profiler if armed."""
        if training and getattr(self, "armed_", False):
            self.profiler_ = _cpu_profiler()
            self.profiler_.start()

    def on_batch_end(self, net, training=False, **kwargs):
        """Stop it."""
        if training and getattr(self, "armed_", False):
            self.profiler_.stop()
            self.armed_ = False


def profile_meta_iteration(module=None) -> dict:
    """Profile our meta-iteration (1 step, chunks of 8), with ``module`` if given."""
    profiler = ProfileNextMetaIteration()
    run = ours_omniglot(
        steps=1,
        chunk=8,
        device="cpu",
        module=module,
        callbacks=[("profile", profiler)],
    )

    def profiled():
        profiler.arm()
        run()
        return profiler.profiler_

    return _profile(run, profiled)


class OwnStatisticsNorm(nn.Module):
    """Batch normalisation by the statistics of each call's own batch.

    Not a ``torch.nn.modules.batchnorm._BatchNorm``, so a learner keeps it as
    it is: under ``vmap`` over tasks every call normalises a task's rows by
    their own statistics, so the support pass and the query pass of the inner
    loop each use their own (the peers' work), where the learner's own layer
    normalises queries with their support's. The arithmetic is the learner's.
    """

    def __init__(self, norm: nn.BatchNorm2d):
        super().__init__()
        self.eps = norm.eps
        self.weight = nn.Parameter(norm.weight.detach().clone())
        self.bias = nn.Parameter(norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(n, C, H, W)`` by its own per-channel statistics."""
        var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        scale = torch.rsqrt(var + self.eps) * self.weight
        shift = -mean * scale + self.bias
        return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))


def own_statistics_conv4() -> Conv4:
    """Build the default conv4 with its batch norms normalising by their own batch."""
    module = Conv4()
    for block in module.children():
        for i, layer in enumerate(block.children()):
            if isinstance(layer, nn.BatchNorm2d):
                block[i] = OwnStatisticsNorm(layer)
    return module


def _grouped_conv4(fast: dict, x: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Run the conv4 body on ``(images, tasks * channels, h, w)``, weights per task."""
    for i in range(4):
        x = F.conv2d(
            x,
            fast[f"w{i}"].flatten(0, 1),
            fast[f"b{i}"].flatten(),
            padding=1,
            groups=n_tasks,
        )
        x = F.batch_norm(
            x,
            None,
            None,
            fast[f"gamma{i}"].flatten(),
            fast[f"beta{i}"].flatten(),
            training=True,
        )
        x = F.max_pool2d(F.relu(x), 2)
    return x.reshape(len(x), n_tasks, -1)


def _grouped_query_losses(meta: dict, batch, steps: int) -> torch.Tensor:
    """Per-task query losses after ``steps`` second-order inner steps of 0.4."""
    n_tasks, n_way = batch.X_support.shape[:2]

    def logits(fast, X):
        images = X.transpose(0, 1).flatten(1, 2)  # (images, tasks * 1, 28, 28)
        z = _grouped_conv4(fast, images, n_tasks)
        return torch.einsum("ntc,tkc->tnk", z, fast["head_w"]) + fast["head_b"][:, None]

    def loss(fast, X, y):
        return F.cross_entropy(
            logits(fast, X).flatten(0, 1), y.flatten(), reduction="none"
        )

    fast = {k: v.expand(n_tasks, *v.shape) for k, v in meta.items()}
    fast["head_w"] = meta["head_w"].expand(n_tasks, n_way, -1)
    fast["head_b"] = meta["head_b"].expand(n_tasks, n_way)
    for _ in range(steps):
        support = loss(fast, batch.X_support, batch.y_support).sum() / n_way
        grads = torch.autograd.grad(support, list(fast.values()), create_graph=True)
        fast = {k: v - 0.4 * g for (k, v), g in zip(fast.items(), grads, strict=True)}
    return loss(fast, batch.X_query, batch.y_query).view(n_tasks, -1).mean(1)


def grouped_meta_iteration(chunk: int = N_TASKS) -> dict:
    """Profile a hand-written meta-iteration (1 step, chunks of 8) without vmap."""
    meta = {"head_w": torch.zeros(FILTERS), "head_b": torch.zeros(1)}
    c_in = 1
    for i in range(4):
        conv = torch.nn.Conv2d(c_in, FILTERS, 3)
        meta.update(
            {
                f"w{i}": conv.weight.detach(),
                f"b{i}": conv.bias.detach(),
                f"gamma{i}": torch.ones(FILTERS),
                f"beta{i}": torch.zeros(FILTERS),
            }
        )
        c_in = FILTERS
    meta = {k: v.clone().requires_grad_() for k, v in meta.items()}
    optimizer = torch.optim.Adam(meta.values(), lr=1e-3)
    batch = omniglot_batch()

    def step() -> None:
        optimizer.zero_grad()
        for i in range(0, len(batch.X_support), chunk):
            part = Episodes(*(t[i : i + chunk] for t in batch))
            (
                _grouped_query_losses(meta, part, 1).sum() / len(batch.X_support)
            ).backward()
        optimizer.step()

    def profiled() -> torch.profiler.profile:
        with _cpu_profiler() as profiler:
            step()
        return profiler

    return _profile(lambda: time_call(step), profiled)


def peer_seconds() -> dict:
    """Best of 3 of each importable peer's meta-iteration (1 inner step)."""
    out = {}
    for library in peers():
        run = peer_omniglot(library, 1, "cpu")
        run()
        out[library] = min(run() for _ in range(3))
    return out


def main() -> dict:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = {
        "conv": {
            f"{c}x{s}x{s}": conv_layouts(c, s)
            for c, s in ((1, 28), (FILTERS, 14), (FILTERS, 7), (FILTERS, 3))
        },
        "pool": {f"{FILTERS}x{s}x{s}": pool_layouts(s) for s in (28, 14, 7)},
        "meta_iteration": profile_meta_iteration(),
        "meta_iteration_own_statistics": profile_meta_iteration(own_statistics_conv4()),
        "meta_iteration_without_vmap": grouped_meta_iteration(),
        "peers": peer_seconds(),
    }
    write_record(args.json, report, benchmark="maml_layers", args=args)
    print_table(
        [{"input": name, **r} for name, r in report["conv"].items()],
        [
            ("input", "input"),
            ("grouped", "grouped", ".1f"),
            ("grouped, channels-last", "grouped_channels_last", ".1f"),
            ("per-task loop", "per_task_loop", ".1f"),
            ("shared weights", "shared_weights", ".1f"),
        ],
        title=f"One layer, forward + backward, {N_TASKS} tasks x {N_IMAGES} images "
        "(ms)",
    )
    print_table(
        [{"input": name, **r} for name, r in report["pool"].items()],
        [
            ("pooled input", "input"),
            ("max_pool2d", "max_pool2d", ".1f"),
            ("channels-last", "max_pool2d_channels_last", ".1f"),
            ("reshape + amax", "reshape_amax", ".1f"),
        ],
    )
    conv = report["meta_iteration"]["convolution_s"]
    print_table(
        [
            {"run": label, **report[key]}
            for key, label in (
                ("meta_iteration", "meta-iteration"),
                ("meta_iteration_own_statistics", "queries by their own statistics"),
                ("meta_iteration_without_vmap", "without vmap, grouped layout"),
            )
        ]
        + [{"run": library, "seconds": s} for library, s in report["peers"].items()],
        [
            ("run", "run"),
            ("s", "seconds", ".3f"),
            ("profiled s in convolutions", "convolution_s", ".2f"),
            ("profiled s in the rest", "other_s", ".2f"),
            (
                "our convolutions / a peer's time",
                lambda r: None if "convolution_s" in r else conv / r["seconds"],
                ".2f",
            ),
        ],
    )
    return report


if __name__ == "__main__":
    main()
