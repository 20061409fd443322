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
   support's, which takes the support rows out of the query pass;
4. the same meta-iteration written by hand without ``vmap``: the conv4 in the
   grouped layout (images, tasks x channels, height, width), where per-task
   batch norm is the native ``F.batch_norm`` and no copy moves the task
   dimension; profiled the same way;
5. ``higher``'s meta-iteration on the same work, when it imports, so the
   convolution time can be set against the peer's whole time.

Prints a table and JSON. Run ``python benchmarks/maml_layers.py``.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import machine, save_record, time_call
from maml import omniglot_batch, ours_omniglot, peer_omniglot, peers
from torch.nn import functional as F

from sklearn_meta import MAMLClassifier

N_TASKS, N_IMAGES, FILTERS = 8, 10, 64
CONV_OPS = ("convolution", "conv2d", "mkldnn_convolution", "convolution_backward")


def _milliseconds(fn, repeats: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


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


def _profile(run) -> dict:
    """Best of 3 timed runs, and one profiled: convolution and other self time."""
    run()
    seconds = min(run() for _ in range(3))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        run()
    conv = other = 0.0
    for event in p.key_averages():
        self_seconds = event.self_cpu_time_total / 1e6
        if any(op in event.key for op in CONV_OPS):
            conv += self_seconds
        else:
            other += self_seconds
    return {"seconds": seconds, "convolution_s": conv, "other_s": other}


def profile_meta_iteration() -> dict:
    return _profile(ours_omniglot(steps=1, chunk=8, device="cpu"))


class _OwnStatisticsMAML(MAMLClassifier):
    """MAML whose queries are normalised by their own batch statistics."""

    def _query_outputs(self, fast, X_s, X_q, z_q=None):
        return super()._query_outputs(fast, None, X_q, z_q)


def own_statistics_meta_iteration() -> dict:
    return _profile(
        ours_omniglot(steps=1, chunk=8, device="cpu", cls=_OwnStatisticsMAML)
    )


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
            part = type(batch)(*(t[i : i + chunk] for t in batch[:4]), n_classes=5)
            (
                _grouped_query_losses(meta, part, 1).sum() / len(batch.X_support)
            ).backward()
        optimizer.step()

    def run() -> float:
        return time_call(step)

    return _profile(run)


def peer_seconds() -> dict:
    """Best of 3 of each importable peer's meta-iteration (1 inner step)."""
    out = {}
    for library in peers():
        run = peer_omniglot(library, 1, "cpu")
        run()
        out[library] = min(run() for _ in range(3))
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the record here")
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
        "meta_iteration_own_statistics": own_statistics_meta_iteration(),
        "meta_iteration_without_vmap": grouped_meta_iteration(),
        "peers": peer_seconds(),
    }
    save_record({"machine": machine(), **report}, args.json)
    print(f"\nOne layer, forward + backward, {N_TASKS} tasks x {N_IMAGES} images (ms)")
    print(
        "| input | grouped | grouped, channels-last | per-task loop | shared weights |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, r in report["conv"].items():
        print(
            f"| {name} | {r['grouped']:.1f} | {r['grouped_channels_last']:.1f} "
            f"| {r['per_task_loop']:.1f} | {r['shared_weights']:.1f} |"
        )
    print("\n| pooled input | max_pool2d | channels-last | reshape + amax |")
    print("| --- | --- | --- | --- |")
    for name, r in report["pool"].items():
        print(
            f"| {name} | {r['max_pool2d']:.1f} | {r['max_pool2d_channels_last']:.1f} "
            f"| {r['reshape_amax']:.1f} |"
        )
    for key, label in (
        ("meta_iteration", "Meta-iteration"),
        ("meta_iteration_own_statistics", "Queries by their own statistics"),
        ("meta_iteration_without_vmap", "Without vmap, grouped layout"),
    ):
        m = report[key]
        print(
            f"\n{label}: {m['seconds']:.3f} s; profiled self time "
            f"{m['convolution_s']:.2f} s in convolutions, {m['other_s']:.2f} s in "
            "the rest"
        )
    for library, seconds in report["peers"].items():
        conv = report["meta_iteration"]["convolution_s"]
        print(
            f"{library}: {seconds:.3f} s; our convolutions alone are "
            f"{conv / seconds:.2f}x of it"
        )
    return report


if __name__ == "__main__":
    main()
