"""How long ``fit(X, y)`` and ``predict`` take around the pool adaptation.

After ``fit(X, y)`` a meta-learner predicts over the training classes by
adapting to a sample of the pool (2,048 samples for the gradient-based
learners). That adaptation is made at the first prediction, not in ``fit``,
and an adapted state keeps its support's batch-norm statistics, so later
predictions run the queries alone. This script times, for MAML with the conv4
on Omniglot's 96,000 training images (one meta-iteration of 32 tasks, 3
adaptation steps): ``fit``, the first ``predict`` (which adapts), and later
``predict`` calls on 10 and 2,000 images.

Run ``python benchmarks/pool_latency.py`` (``--device cuda`` on a GPU).
"""

from __future__ import annotations

from _common import argument_parser, print_table, time_call, write_record

from sklearn_meta import MAMLClassifier
from sklearn_meta.datasets import load_omniglot


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "device", "json")
    args = parser.parse_args(argv)
    X, y = load_omniglot(
        "vinyals-train", data_home=args.data_home, download=False, return_X_y=True
    )
    clf = MAMLClassifier(
        n_way=5,
        k_shot=1,
        n_query=1,
        meta_batch_size=32,
        max_epochs=1,
        episodes_per_epoch=32,
        adapt_steps=3,
        device=args.device,
        random_state=0,
    )
    steps = {
        "fit": lambda: clf.fit(X, y),
        "first predict, 10 images": lambda: clf.predict(X[:10]),
        "next predict, 10 images": lambda: clf.predict(X[:10]),
        "next predict, 2,000 images": lambda: clf.predict(X[:2000]),
    }
    # In order: each prediction relies on what the steps before it did.
    timings = {step: time_call(fn, device=args.device) for step, fn in steps.items()}
    print_table(
        [{"step": step, "seconds": seconds} for step, seconds in timings.items()],
        [("step", "step"), ("seconds", "seconds", ".3f")],
    )
    figures = {
        "seconds": timings,
        "meta_iteration_seconds": clf.history_[-1, "dur"],
    }
    return write_record(
        args.json, figures, benchmark="pool_latency", args=args, device=args.device
    )


if __name__ == "__main__":
    main()
