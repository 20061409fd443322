"""Activation checkpointing of the inner loop's forward passes: memory and time.

The work is the MAML meta-gradient of the paper's Omniglot model (conv4,
batch norm with batch statistics, 5-way output), task by task as the learners
run it on the CPU: ``--steps`` inner SGD steps (lr 0.4) on a 5-way support
set of ``--shots`` shots, then the loss of 15 queries per class at the adapted
weights, backpropagated to the initial weights, over a meta-batch of
``--tasks`` tasks. Random pixels, float64 (so the two ways can be compared
exactly). ``--width`` sets the filters per layer (64 is the paper's; larger
stands in for a larger model).

Two ways, each row in a fresh process (its ``VmHWM`` is its own peak), one
meta-iteration of warm-up then one timed:

- ``plain``: ``functional_call`` of the model;
- ``checkpointed``: each conv block (convolution, batch norm, ReLU, pooling)
  under ``torch.utils.checkpoint.checkpoint(use_reentrant=False)``, its
  activations recomputed when a backward pass needs them.

Both second order and first order (inner gradients without a graph). Printed:
seconds per meta-iteration, peak resident memory and its growth over the
resident size before the loop, and the squared norm of the meta-gradient
(equal in both ways when checkpointing is exact).

Run ``python benchmarks/checkpoint_inner.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _common import (
    argument_parser,
    paper_conv4,
    print_table,
    run_worker,
    status_gib,
    write_record,
)
from torch.func import functional_call
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint


def block(x, weight, bias, scale, shift):
    """One conv block: convolution, batch norm (batch statistics), ReLU, pooling."""
    x = F.conv2d(x, weight, bias, padding=1)
    x = F.batch_norm(x, None, None, scale, shift, training=True)
    return F.max_pool2d(F.relu(x), 2)


def worker(spec: dict) -> dict:
    """Time one meta-iteration of ``spec`` and read this process's peak memory."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = paper_conv4(spec["width"]).double()

    def forward(p, X):
        if spec["way"] == "plain":
            return functional_call(model, p, (X,))
        for i in range(4):
            conv, norm = f"{4 * i}.", f"{4 * i + 1}."
            weights = (p[conv + "weight"], p[conv + "bias"])
            weights += (p[norm + "weight"], p[norm + "bias"])
            X = checkpoint(block, X, *weights, use_reentrant=False)
        return F.linear(X.flatten(1), p["17.weight"], p["17.bias"])

    g = torch.Generator().manual_seed(0)
    shots = spec["shots"]
    tasks = [
        (
            torch.rand(5 * shots, 1, 28, 28, generator=g, dtype=torch.float64),
            torch.arange(5).repeat(shots),
            torch.rand(75, 1, 28, 28, generator=g, dtype=torch.float64),
            torch.arange(5).repeat(15),
        )
        for _ in range(spec["tasks"])
    ]
    second_order = spec["order"] == "second"

    def meta_iteration():
        meta = dict(model.named_parameters())
        for X_s, y_s, X_q, y_q in tasks:
            fast = dict(meta)
            for _ in range(spec["steps"]):
                loss = F.cross_entropy(forward(fast, X_s), y_s)
                grads = torch.autograd.grad(
                    loss, list(fast.values()), create_graph=second_order
                )
                fast = {
                    k: v - 0.4 * g
                    for (k, v), g in zip(fast.items(), grads, strict=True)
                }
            (F.cross_entropy(forward(fast, X_q), y_q) / len(tasks)).backward()

    before = status_gib("VmRSS")
    meta_iteration()  # warm-up
    model.zero_grad()
    start = time.perf_counter()
    meta_iteration()
    seconds = time.perf_counter() - start
    peak = status_gib("VmHWM")
    return {
        "seconds": seconds,
        "peak_gib": peak,
        "growth_gib": peak - before,
        "grad_norm2": sum(p.grad.pow(2).sum().item() for p in model.parameters()),
    }


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--widths", default="64,128")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        for order in ("second", "first"):
            for way in ("plain", "checkpointed"):
                spec = {
                    "width": width,
                    "order": order,
                    "way": way,
                    "steps": args.steps,
                    "shots": args.shots,
                    "tasks": args.tasks,
                    "threads": args.threads,
                }
                rows.append({**spec, **run_worker(__file__, spec)})
                print(rows[-1], flush=True)
    print_table(
        rows,
        [
            ("filters", "width"),
            ("order", "order"),
            ("forward passes", "way"),
            ("s / meta-iteration", "seconds", ".2f"),
            ("peak GiB", "peak_gib", ".3f"),
            ("growth GiB", "growth_gib", ".3f"),
            ("meta-gradient squared norm", "grad_norm2", ".12e"),
        ],
        title=(
            f"MAML meta-gradient, {args.tasks} tasks one at a time, 5-way "
            f"{args.shots}-shot, {args.steps} inner steps, float64, "
            f"{args.threads} thread(s)."
        ),
    )
    return write_record(
        args.json, {"rows": rows}, benchmark="checkpoint_inner", args=args
    )


if __name__ == "__main__":
    main()
