"""Per-channel batch statistics on the CPU: ``torch.var_mean`` or two passes.

Task-wise batch norm needs each channel's biased variance and mean over the
batch and spatial dimensions, differentiably. Two ways, on the activations
of conv4's four layers for a task of ``--rows`` images (64 channels, 28x28
down to 3x3), in channels-last memory (as :class:`~sklearn_meta.nn.Conv4`
runs) and in contiguous NCHW:

- ``var_mean``: ``torch.var_mean(x, dim=(0, 2, 3), unbiased=False)``;
- ``two passes``: the mean, then the mean of the squared centred values.

Printed: microseconds per call, forward alone and forward plus backward
(gradients of a weighted sum of both statistics), the median of
``--repeats`` timings of ``--calls`` calls each, one torch thread unless
``--threads``; and the largest difference of the two variances in float64.

Run ``python benchmarks/norm_statistics.py`` (``--help`` for the options).
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import argument_parser, print_table, write_record

DIMS = (0, 2, 3)


def var_mean(x: torch.Tensor):
    """Return ``torch.var_mean`` over batch and space."""
    return torch.var_mean(x, dim=DIMS, unbiased=False)


def two_passes(x: torch.Tensor):
    """Return the mean, then the mean of the squared centred values."""
    mean = x.mean(DIMS, keepdim=True)
    return (x - mean).square().mean(DIMS), mean.flatten()


def microseconds(fn, x: torch.Tensor, backward: bool, calls: int, repeats: int):
    """Median microseconds of one call of ``fn`` (with its backward pass)."""
    w = torch.linspace(0.5, 1.5, x.shape[1], dtype=x.dtype)

    def once():
        var, mean = fn(x)
        if backward:
            torch.autograd.grad((w * var).sum() + (w * mean).sum(), x)

    for _ in range(3):
        once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            once()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    rows = []
    for side in (28, 14, 7, 3):
        base = torch.randn(args.rows, 64, side, side, generator=g)
        exact = base.double()
        difference = (var_mean(exact)[0] - two_passes(exact)[0]).abs().max().item()
        for layout in ("channels-last", "NCHW"):
            if layout == "channels-last":
                x = base.contiguous(memory_format=torch.channels_last)
            else:
                x = base.contiguous()
            x.requires_grad_()
            row = {"shape": list(x.shape), "layout": layout}
            for name, fn in (("var_mean", var_mean), ("two_passes", two_passes)):
                for backward in (False, True):
                    key = f"{name}_{'fwd_bwd' if backward else 'fwd'}_us"
                    row[key] = microseconds(fn, x, backward, args.calls, args.repeats)
            row["float64_variance_difference"] = difference
            rows.append(row)
            print(row, flush=True)
    print_table(
        rows,
        [
            ("shape", lambda r: "x".join(map(str, r["shape"]))),
            ("layout", "layout"),
            ("var_mean fwd µs", "var_mean_fwd_us", ".0f"),
            ("two passes fwd µs", "two_passes_fwd_us", ".0f"),
            ("var_mean fwd+bwd µs", "var_mean_fwd_bwd_us", ".0f"),
            ("two passes fwd+bwd µs", "two_passes_fwd_bwd_us", ".0f"),
            ("float64 variance difference", "float64_variance_difference", ".1e"),
        ],
        title=f"Per-channel statistics, {args.threads} thread(s).",
    )
    return write_record(
        args.json, {"rows": rows}, benchmark="norm_statistics", args=args
    )


if __name__ == "__main__":
    main()
