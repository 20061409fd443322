"""torch.compile of a first-order inner loop on the CPU: speed, compile time, exactness.

The work is the first-order meta-gradient of the MAML paper's Omniglot
model, task by task as the first-order learners run it on the CPU (one task
per call, native kernels): conv4 (64 filters, batch norm with batch
statistics), 5-way episodes with 1 or 5 shots and 15 queries per class,
meta-batch of 32 tasks, 1 and 5 inner SGD steps (lr 0.4), then the query
gradient at the adapted weights, accumulated over the tasks. Inputs are random
pixels (timing only).

Two ways of running the same loop, in the same process:

- ``eager``: the loss ``F.cross_entropy(functional_call(model, fast, X), y)``
  and ``torch.autograd.grad``, as PyTorch runs them;
- ``compiled``: the same loss function through ``torch.compile`` (inductor,
  default mode); ``torch.autograd.grad`` then runs the compiled backward.

For each setting: seconds per meta-iteration (the fastest of ``--repeats``),
the seconds of the first compiled meta-iteration after a reset of the
compiler, with an empty compile cache (compilation included), and how far
each float32 meta-gradient is from the same loop in float64 (eager): the
largest difference relative to the largest gradient entry. Compiled is as
exact as eager when its distance is of the same size (with five shots and
five steps, rounding differences grow through the steps in both).

Run ``python benchmarks/compile_inner.py`` (``--help`` for the options).
"""

from __future__ import annotations

import os
import tempfile
import time

import torch
from _common import argument_parser, paper_conv4, print_table, write_record
from torch.func import functional_call
from torch.nn import functional as F


def meta_gradient(loss_fn, model, tasks, steps: int) -> dict:
    """First-order meta-gradient of ``tasks``, one task at a time."""
    meta = {k: v.detach() for k, v in model.named_parameters()}
    total = {k: torch.zeros_like(v) for k, v in meta.items()}
    for X_s, y_s, X_q, y_q in tasks:
        fast = {k: v.clone().requires_grad_() for k, v in meta.items()}
        for _ in range(steps):
            grads = torch.autograd.grad(loss_fn(fast, X_s, y_s), list(fast.values()))
            fast = {
                k: (v - 0.4 * g).detach().requires_grad_()
                for (k, v), g in zip(fast.items(), grads, strict=True)
            }
        grads = torch.autograd.grad(loss_fn(fast, X_q, y_q), list(fast.values()))
        for k, g in zip(fast, grads, strict=True):
            total[k] += g / len(tasks)
    return total


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--threads", default="1,2", help="torch threads, each a row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=32, help="meta-batch size")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = paper_conv4()
    model64 = paper_conv4().double()
    model64.load_state_dict(model.state_dict())

    def loss_fn(fast, X, y):
        return F.cross_entropy(functional_call(model, fast, (X,)), y)

    def loss_fn64(fast, X, y):
        return F.cross_entropy(functional_call(model64, fast, (X,)), y)

    def distance(grads, reference) -> float:
        scale = max(g.abs().max().item() for g in reference.values())
        return (
            max(
                (grads[k].double() - reference[k]).abs().max().item() for k in reference
            )
            / scale
        )

    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for shots in (1, 5):
            g = torch.Generator().manual_seed(shots)
            tasks = [
                (
                    torch.rand(5 * shots, 1, 28, 28, generator=g),
                    torch.arange(5).repeat(shots),
                    torch.rand(75, 1, 28, 28, generator=g),
                    torch.arange(5).repeat(15),
                )
                for _ in range(args.tasks)
            ]
            for steps in (1, 5):
                # A cold start: the compiler's state and on-disk caches empty.
                torch._dynamo.reset()
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp()
                compiled = torch.compile(loss_fn)
                start = time.perf_counter()
                meta_gradient(compiled, model, tasks, steps)
                first = time.perf_counter() - start
                seconds, grads = {}, {}
                for name, fn in (("eager", loss_fn), ("compiled", compiled)):
                    times = []
                    for _ in range(args.repeats):
                        start = time.perf_counter()
                        grads[name] = meta_gradient(fn, model, tasks, steps)
                        times.append(time.perf_counter() - start)
                    seconds[name] = min(times)
                tasks64 = [
                    (X_s.double(), y_s, X_q.double(), y_q)
                    for X_s, y_s, X_q, y_q in tasks
                ]
                reference = meta_gradient(loss_fn64, model64, tasks64, steps)
                rows.append(
                    {
                        "threads": threads,
                        "shots": shots,
                        "steps": steps,
                        "eager_seconds": seconds["eager"],
                        "compiled_seconds": seconds["compiled"],
                        "speed_up": seconds["eager"] / seconds["compiled"],
                        "first_compiled_seconds": first,
                        "eager_vs_float64": distance(grads["eager"], reference),
                        "compiled_vs_float64": distance(grads["compiled"], reference),
                    }
                )
                print(rows[-1], flush=True)
    print_table(
        rows,
        [
            ("threads", "threads"),
            ("5-way shots", "shots"),
            ("inner steps", "steps"),
            ("eager s / meta-iteration", "eager_seconds", ".3f"),
            ("compiled s / meta-iteration", "compiled_seconds", ".3f"),
            ("speed-up", "speed_up", ".2f"),
            ("first compiled meta-iteration (s)", "first_compiled_seconds", ".1f"),
            ("eager vs float64", "eager_vs_float64", ".1e"),
            ("compiled vs float64", "compiled_vs_float64", ".1e"),
        ],
        title=(
            f"First-order meta-gradient of {args.tasks} tasks, one task per call, "
            "conv4 on 28x28 inputs, 15 queries per class."
        ),
    )
    return write_record(args.json, {"rows": rows}, benchmark="compile_inner", args=args)


if __name__ == "__main__":
    main()
