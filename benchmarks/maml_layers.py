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
   convolution operators and everything else.

Prints a table and JSON. Run ``python benchmarks/maml_layers.py``.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import machine, save_record
from maml import ours_omniglot
from torch.nn import functional as F

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


def profile_meta_iteration() -> dict:
    run = ours_omniglot(steps=1, chunk=8)
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
    m = report["meta_iteration"]
    print(
        f"\nMeta-iteration: {m['seconds']:.3f} s; profiled self time "
        f"{m['convolution_s']:.2f} s in convolutions, {m['other_s']:.2f} s in the rest"
    )
    return report


if __name__ == "__main__":
    main()
