"""Speed and memory of MAML meta-iterations: sklearn_meta against higher / learn2learn.

Two workloads, each run by ours and by every peer library that imports, on the
same data from the same initial weights, each row in a fresh worker process
with the torch threads of ``--threads`` (1 and 2 by default). Memory on the
CPU is the worker's peak resident size (``VmHWM``), its growth over the
resident size before the loop (the data and model built), and the loop's own
growth: the peak of the timed meta-iterations over the resident size after
the warm-up; on a GPU, the same of allocated memory:

- ``sinusoid``: the regression benchmark of Finn et al. (2017): an MLP
  1-40-40-1, meta-batch of 25 tasks with K=10 support and 10 query points,
  one inner SGD step (lr 0.01), second order, Adam at 1e-3. Ours is
  :class:`~sklearn_meta.MAMLRegressor` ``fit(tasks)``; the time per
  meta-iteration is its epoch duration (``history_[-1, "dur"]``) divided by the
  meta-iterations, so it includes drawing and checking the tasks.
- ``omniglot``: 5-way 1-shot episodes with 1 query per class (the MAML paper's
  Omniglot protocol), 28x28 inputs, the standard conv4 with a 5-way head,
  meta-batch of 32, second order, 1 and 5 inner steps (lr 0.4), random
  pixels (timing only). Ours is :class:`~sklearn_meta.MAMLClassifier`
  ``fit`` on a pool of such images, one meta-iteration timed by a callback
  from ``on_batch_begin`` to ``on_batch_end`` (forward, backward and Adam
  step on a meta-batch of 32 episodes, not their drawing); peers run one
  meta-batch of the same shape.

Peers, run with the loop their documentation gives (a Python loop over tasks,
one backward per task):

- ``higher``: ``higher.innerloop_ctx(model, SGD(lr), copy_initial_weights=False)``.
- ``learn2learn``: ``l2l.algorithms.MAML(model, lr).clone()`` and ``adapt``.

Their conv4 is the usual NCHW one with ``nn.BatchNorm2d(track_running_stats=
False)`` (batch statistics everywhere), Linear head of 5 outputs; ours is
:class:`~sklearn_meta.nn.Conv4` with the zero-initialised head shared by all
classes and queries normalised with their support's statistics (see the user
guide), so the work is the same up to that query pass, where ours also runs
the support under the adapted weights for its statistics (1.5x the
query-side convolutions of the peers here). ``--batch-norm off`` takes the
batch norm out of both sides' conv4 (ours is then the same NCHW network, with
its own head), which isolates that pass: without batch norm the work is the
same on both sides.

Also printed: achieved GFLOP/s (FLOPs of the peer's meta-iteration counted by
:class:`torch.utils.flop_counter.FlopCounterMode`, over each time) beside the
machine's float32 matrix-multiply GFLOP/s measured here.

Run ``python benchmarks/maml.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import NamedTuple

import numpy as np
import torch
from _common import (
    MetaIterationTimer,
    argument_parser,
    paper_conv4,
    print_table,
    run_worker,
    status_gib,
    time_call,
    write_record,
)
from torch import nn
from torch.nn import functional as F

from sklearn_meta import MAMLClassifier, MAMLRegressor
from sklearn_meta.datasets import make_sinusoid_tasks

#: Tasks per meta-batch on Omniglot.
OMNIGLOT_TASKS = 32


def peers() -> dict[str, str]:
    """Name -> version of the peer libraries that import here."""
    found = {}
    for name in ("higher", "learn2learn"):
        try:
            module = __import__(name)
        except Exception:  # any failure means "not available"
            continue
        found[name] = getattr(module, "__version__", "installed")
    return found


# -- workloads ---------------------------------------------------------------------


def sinusoid_data(n_iterations: int, seed: int = 0):
    tasks = make_sinusoid_tasks(n_tasks=25 * n_iterations, random_state=seed)
    return tasks


def peer_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)
    )


class Episodes(NamedTuple):
    """A meta-batch of episodes: support and query images and labels, per task."""

    X_support: torch.Tensor
    y_support: torch.Tensor
    X_query: torch.Tensor
    y_query: torch.Tensor


def omniglot_batch(n_tasks: int = OMNIGLOT_TASKS, seed: int = 0, device="cpu"):
    """Omniglot-shaped 5-way 1-shot 1-query episodes (random pixels: timing only)."""
    g = torch.Generator().manual_seed(seed)
    X_s = torch.rand(n_tasks, 5, 1, 28, 28, generator=g)
    X_q = torch.rand(n_tasks, 5, 1, 28, 28, generator=g)
    y = torch.arange(5).repeat(n_tasks, 1)
    return Episodes(*(t.to(device) for t in (X_s, y, X_q, y)))


def ours_sinusoid(n_iterations: int, device):
    tasks = sinusoid_data(n_iterations)
    reg = MAMLRegressor(
        device=device,
        inner_lr=0.01,
        meta_batch_size=25,
        max_epochs=1,
        episodes_per_epoch=25 * n_iterations,
        random_state=0,
    )

    def run():
        reg.fit(tasks)
        return reg.history_[-1, "dur"] / n_iterations

    return run


def ours_omniglot(
    steps: int, chunk, device, module=None, callbacks=(), batch_norm: bool = True
):
    """Seconds of one meta-iteration of ours: ``run()`` fits for one, times it.

    The pool is 5 classes of 2 random images, so every episode is 5-way 1-shot
    1-query; ``module`` is the learner's (None: its default conv4), and
    ``callbacks`` run beside the timer; ``batch_norm=False`` (with no
    ``module``) takes the peers' conv4 without batch norm as the body.
    """
    if module is None and not batch_norm:
        module = paper_conv4(n_out=None, batch_norm=False)
    X = np.random.default_rng(0).random((10, 1, 28, 28), dtype=np.float32)
    timer = MetaIterationTimer()
    clf = MAMLClassifier(
        module,
        device=device,
        n_way=5,
        k_shot=1,
        n_query=1,
        inner_lr=0.4,
        inner_steps=steps,
        task_chunk_size=chunk,
        meta_batch_size=OMNIGLOT_TASKS,
        max_epochs=1,
        episodes_per_epoch=OMNIGLOT_TASKS,
        callbacks=[("timer", timer), *callbacks],
        random_state=0,
    )

    def run():
        clf.fit(X, np.arange(10) % 5)
        return timer.seconds_[-1]

    return run


def _peer_step(library: str, model, meta_opt, batches, steps: int, lr: float, loss_fn):
    """One meta-iteration of a peer library over a list of per-task tensors."""
    meta_opt.zero_grad()
    n = len(batches)
    if library == "higher":
        import higher

        inner_opt = torch.optim.SGD(model.parameters(), lr=lr)
        for X_s, y_s, X_q, y_q in batches:
            with higher.innerloop_ctx(model, inner_opt, copy_initial_weights=False) as (
                fmodel,
                diffopt,
            ):
                for _ in range(steps):
                    diffopt.step(loss_fn(fmodel(X_s), y_s))
                (loss_fn(fmodel(X_q), y_q) / n).backward()
    else:
        import learn2learn as l2l

        maml = l2l.algorithms.MAML(model, lr=lr)
        for X_s, y_s, X_q, y_q in batches:
            learner = maml.clone()
            for _ in range(steps):
                learner.adapt(loss_fn(learner(X_s), y_s))
            (loss_fn(learner(X_q), y_q) / n).backward()
    meta_opt.step()


def peer_sinusoid(library: str, n_iterations: int, device):
    torch.manual_seed(0)
    model = peer_mlp().to(device)
    meta_opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tasks = sinusoid_data(n_iterations)
    chunks = [
        [
            tuple(
                torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)
                for a in (
                    t.X_support,
                    t.y_support[:, None],
                    t.X_query,
                    t.y_query[:, None],
                )
            )
            for t in tasks[i : i + 25]
        ]
        for i in range(0, len(tasks), 25)
    ]

    def run():
        def all_chunks():
            for batches in chunks:
                _peer_step(library, model, meta_opt, batches, 1, 0.01, F.mse_loss)

        return time_call(all_chunks, device=device) / len(chunks)

    return run


def peer_omniglot(library: str, steps: int, device, batch_norm: bool = True):
    torch.manual_seed(0)
    model = paper_conv4(batch_norm=batch_norm).to(device)
    meta_opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = list(zip(*omniglot_batch(device=device), strict=True))

    def run():
        return time_call(
            _peer_step,
            library,
            model,
            meta_opt,
            batches,
            steps,
            0.4,
            F.cross_entropy,
            device=device,
        )

    return run


def omniglot_flops(steps: int, batch_norm: bool = True) -> float:
    """FLOPs of one second-order meta-iteration (the plain loop, counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = paper_conv4(batch_norm=batch_norm)
    b = omniglot_batch()
    counter = FlopCounterMode(display=False)
    with counter:
        for i in range(len(b.X_support)):
            params = dict(model.named_parameters())
            for _ in range(steps):
                loss = F.cross_entropy(
                    torch.func.functional_call(model, params, (b.X_support[i],)),
                    b.y_support[i],
                )
                grads = torch.autograd.grad(
                    loss, list(params.values()), create_graph=True
                )
                params = {k: v - 0.4 * g for (k, v), g in zip(params.items(), grads)}
            F.cross_entropy(
                torch.func.functional_call(model, params, (b.X_query[i],)), b.y_query[i]
            ).backward()
    return float(counter.get_total_flops())


def matmul_gflops(device="cpu") -> float:
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    a @ b
    times = [time_call(torch.matmul, a, b, device=device) for _ in range(5)]
    return 2 * 2048**3 / min(times) / 1e9


# -- running ----------------------------------------------------------------------


def make_runner(spec: dict):
    library, work, device = spec["library"], spec["work"], spec["device"]
    if work == "sinusoid":
        if library == "sklearn_meta":
            return ours_sinusoid(spec["iterations"], device)
        return peer_sinusoid(library, spec["iterations"], device)
    batch_norm = spec.get("batch_norm", True)
    if library == "sklearn_meta":
        return ours_omniglot(
            spec["steps"], spec.get("chunk"), device, batch_norm=batch_norm
        )
    return peer_omniglot(library, spec["steps"], device, batch_norm)


def worker(spec: dict) -> dict:
    """Run one row: warm-up, the median of the repeats, peak memory and its growth.

    On the CPU the peak is this fresh process's ``VmHWM`` (``ru_maxrss`` would
    start from the parent's resident size), and the growth is the peak less
    the resident size once the data and model are built, before the loop
    (warm-up included). The loop's own growth is the peak of the timed
    meta-iterations less the resident size after the warm-up (the kernel's
    peak is reset then, by writing 5 to ``/proc/self/clear_refs``): what
    each meta-iteration holds at once, without one-time costs.
    """
    torch.set_num_threads(spec["threads"])
    # PyTorch imports torch._dynamo (about 80 MB resident) when the first
    # optimiser of a process is built: the peers build theirs in
    # make_runner, ours inside fit. Paid here, it is in no row's growth.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    run = make_runner(spec)
    cuda = torch.device(spec["device"]).type == "cuda"
    before = torch.cuda.memory_allocated() / 2**30 if cuda else status_gib("VmRSS")
    run()
    warm_peak = (
        torch.cuda.max_memory_allocated() / 2**30 if cuda else status_gib("VmHWM")
    )
    if cuda:
        warm = torch.cuda.memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        warm = status_gib("VmRSS")
    times = [run() for _ in range(spec["repeats"])]
    loop_peak = (
        torch.cuda.max_memory_allocated() / 2**30 if cuda else status_gib("VmHWM")
    )
    peak = max(warm_peak, loop_peak)
    return {
        "seconds": statistics.median(times),
        "peak_gib": peak,
        "growth_gib": peak - before,
        "loop_growth_gib": loop_peak - warm,
    }


def run_row(spec: dict) -> dict:
    """Run a row in a fresh process, so its peak memory is its own."""
    return {**spec, **run_worker(__file__, spec)}


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "device", "json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sinusoid-iterations", type=int, default=40)
    parser.add_argument(
        "--chunk",
        type=lambda s: s if s == "auto" else None if s == "none" else int(s),
        default="auto",
        help="our task_chunk_size on Omniglot ('none': the whole meta-batch)",
    )
    parser.add_argument("--steps", default="1,5", help="inner steps on Omniglot")
    parser.add_argument(
        "--batch-norm",
        choices=("on", "off"),
        default="on",
        help="batch norm in the Omniglot conv4 of both sides",
    )
    parser.add_argument(
        "--work", default="sinusoid,omniglot", help="the workloads to run"
    )
    parser.add_argument(
        "--threads", default="1,2", help="torch threads, each a row of its own"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}

    available = peers()
    libraries = ["sklearn_meta", *available]
    print(f"peers found: {available or 'none'}", flush=True)
    rows = []
    threads_list = [int(t) for t in args.threads.split(",")]
    steps_list = [int(s) for s in args.steps.split(",")]
    works = args.work.split(",")
    for threads in threads_list:
        for library in libraries if "sinusoid" in works else ():
            spec = {
                "work": "sinusoid",
                "library": library,
                "iterations": args.sinusoid_iterations,
                "repeats": args.repeats,
                "device": args.device,
                "threads": threads,
            }
            rows.append(run_row(spec))
            print(rows[-1], flush=True)
        for steps in steps_list if "omniglot" in works else ():
            for library in libraries:
                spec = {
                    "work": "omniglot",
                    "library": library,
                    "steps": steps,
                    "repeats": args.repeats,
                    "device": args.device,
                    "threads": threads,
                    "batch_norm": args.batch_norm == "on",
                }
                if library == "sklearn_meta":
                    spec["chunk"] = args.chunk
                rows.append(run_row(spec))
                print(rows[-1], flush=True)

    gemm = matmul_gflops(args.device)
    flops = {
        steps: omniglot_flops(steps, args.batch_norm == "on")
        for steps in (steps_list if "omniglot" in works else ())
    }
    reference = next((p for p in ("learn2learn", "higher") if p in available), None)
    for row in rows:
        key = (row["work"], row.get("steps"), row["threads"])
        ref = next(
            (
                r
                for r in rows
                if r["library"] == reference
                and (r["work"], r.get("steps"), r["threads"]) == key
            ),
            None,
        )
        row["ratio"] = None if ref is None else row["seconds"] / ref["seconds"]
        for key in ("growth", "loop_growth"):
            row[f"{key}_ratio"] = (
                None
                if ref is None or ref[f"{key}_gib"] <= 0
                else row[f"{key}_gib"] / ref[f"{key}_gib"]
            )
        row["gflops"] = (
            flops[row["steps"]] / row["seconds"] / 1e9
            if row["work"] == "omniglot"
            else None
        )
    print_table(
        rows,
        [
            (
                "work",
                lambda r: (
                    f"{r['work']} {r['steps']} step(s)"
                    + ("" if r.get("batch_norm", True) else ", no batch norm")
                    if "steps" in r
                    else r["work"]
                ),
            ),
            ("threads", "threads"),
            ("library", "library"),
            ("s / meta-iter", "seconds", ".4f"),
            ("peak GiB", "peak_gib", ".2f"),
            ("growth GiB", "growth_gib", ".3f"),
            ("loop growth GiB", "loop_growth_gib", ".3f"),
            ("GFLOP/s", "gflops", ".0f"),
            ("time ratio", "ratio", ".2f"),
            ("growth ratio", "growth_ratio", ".2f"),
            ("loop growth ratio", "loop_growth_ratio", ".2f"),
        ],
    )
    print(
        f"ratio = ours / {reference or 'no peer'}; float32 matmul on this machine: "
        f"{gemm:.0f} GFLOP/s; meta-iteration FLOPs: "
        + ", ".join(f"{s} step(s) {f / 1e9:.1f} GFLOP" for s, f in flops.items())
    )
    figures = {
        "peers": available,
        "rows": rows,
        "matmul_gflops": gemm,
        "meta_iteration_flops": flops,
    }
    return write_record(
        args.json, figures, benchmark="maml", args=args, device=args.device
    )


if __name__ == "__main__":
    main()
