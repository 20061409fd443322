"""Episodes per second and peak memory of meta-training from each kind of pool.

A synthetic pool shaped like mini-ImageNet's training split (64 classes of 600
images, 3x84x84 uint8: 813 MB as uint8, 3.25 GB as float32) is written once
under ``--root``: as a ``.npy`` file (read as a memmap) and as a folder of PNG
files, one sub-folder per class. Each image is its class's colour pattern
plus noise, so the PNGs compress as photos do, not as noise.

Each row meta-trains :class:`~sklearn_meta.PrototypicalClassifier` with the
default conv4 on 5-way 5-shot 15-query episodes (meta-batch of 1) for
``--episodes`` episodes, in a fresh process with ``--threads`` torch threads,
from one source:

- ``float32 in memory``: the pool as a float32 array (the path every pool
  took before lazy pools);
- ``uint8 in memory``: the uint8 array (converted per batch);
- ``memmap``: ``np.load(..., mmap_mode="r")``, read a meta-batch at a time;
- ``image folder (first epoch)``: :func:`~sklearn_meta.datasets.load_image_folder`
  with an empty cache, so the episodes' images are decoded as they are drawn;
- ``image folder (cached)``: the same with every image already in the cache;

each with ``num_workers=0`` (no prefetching) and ``--workers`` prefetching
threads. Episodes per second are timed from the end of the first
``--warmup`` episodes to the end of the run (drawing, reading and training);
the peak is the process's ``VmHWM``, with its anonymous part (``RssAnon``
sampled every 20 ms) beside it, since pages of a memory-mapped file count
in the resident size but are the kernel's to drop.

``--huge N`` adds a run on a uint8 memmap of ``N`` images of the same shape
(600,000 images make a 12.7 GB file, whose float32 copy of 51 GB could not
fit in this machine's memory), reporting the resident size after each tenth
of the episodes, to show that memory stays flat.

Run ``python benchmarks/data_pipeline.py`` (``--help`` for the options).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from _common import (
    BatchEndClock,
    argument_parser,
    print_table,
    run_worker,
    status_gib,
    write_record,
)
from skorch.callbacks import Callback

from sklearn_meta import PrototypicalClassifier
from sklearn_meta.datasets import load_image_folder

SHAPE = (3, 84, 84)
SOURCES = (
    "float32 in memory",
    "uint8 in memory",
    "memmap",
    "image folder (first epoch)",
    "image folder (cached)",
)


# -- the synthetic pool ---------------------------------------------------------------


def _class_images(label: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images of class ``label``: its colour pattern plus noise, uint8."""
    pattern_rng = np.random.default_rng(label)
    pattern = pattern_rng.uniform(40, 215, size=(SHAPE[0], 6, 6))
    base = np.kron(pattern, np.ones((14, 14)))  # 84x84 blocks of colour
    noise = rng.integers(-40, 41, size=(n, *SHAPE), dtype=np.int16)
    return np.clip(base[None] + noise, 0, 255).astype(np.uint8)


def write_array(path: Path, n_classes: int, per_class: int, seed: int = 0) -> None:
    """Write the pool as ``path`` (a ``.npy``) and its labels, a class at a time."""
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(n_classes * per_class, *SHAPE)
    )
    for label in range(n_classes):
        out[label * per_class : (label + 1) * per_class] = _class_images(
            label, per_class, rng
        )
    out.flush()
    del out
    np.save(
        path.with_name(path.stem + "-labels.npy"),
        np.repeat(np.arange(n_classes), per_class),
    )
    tmp.rename(path)


def write_folder(folder: Path, array: Path) -> None:
    """Write every image of ``array`` as a PNG, one sub-folder per class."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return
    X = np.load(array, mmap_mode="r")
    y = np.load(array.with_name(array.stem + "-labels.npy"))
    for i in range(len(X)):
        target = folder / f"n{y[i]:05d}" / f"{i:07d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(X[i].transpose(1, 2, 0))).save(target)
    done.touch()


# -- one row, in a fresh process ----------------------------------------------------


class _AnonPeak:
    """Sample ``RssAnon`` every 20 ms in a thread; keep the largest."""

    def __init__(self):
        self.peak = status_gib("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, status_gib("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, status_gib("RssAnon"))


def _load(spec: dict):
    """Return the pool ``(X, y)`` of a row's source."""
    root = Path(spec["root"])
    array = root / "pool.npy"
    source = spec["source"]
    if source == "huge":
        path = Path(spec["path"])
        labels = np.load(path.with_name(path.stem + "-labels.npy"))
        return np.load(path, mmap_mode="r"), labels
    if source.startswith("image folder"):
        cache = root / ("cache-cold" if "first" in source else "cache-warm")
        if "first" in source:
            shutil.rmtree(cache, ignore_errors=True)
        return load_image_folder(root / "folder", cache_dir=cache, return_X_y=True)
    y = np.load(root / "pool-labels.npy")
    if source == "memmap":
        return np.load(array, mmap_mode="r"), y
    if source == "uint8 in memory":
        return np.load(array), y
    # The float32 pool as a user would hold it, converted a class at a time
    # from the file, so the peak is that of the float32 array alone.
    stored = np.load(array, mmap_mode="r")
    X = np.empty(stored.shape, np.float32)
    for i in range(0, len(X), 600):
        np.divide(stored[i : i + 600], np.float32(255), out=X[i : i + 600])
    return X, y


def worker(spec: dict) -> dict:
    """Meta-train on one source; return episodes per second and memory."""
    torch.set_num_threads(spec["threads"])
    anon = _AnonPeak()
    X, y = _load(spec)
    clock = BatchEndClock()
    checkpoints = []

    class _Resident(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                checkpoints.append(status_gib("VmRSS"))

    learner = PrototypicalClassifier(
        n_way=5,
        k_shot=5,
        n_query=15,
        meta_batch_size=1,
        max_epochs=1,
        episodes_per_epoch=spec["episodes"],
        num_workers=spec["workers"],
        device="cpu",
        callbacks=[clock, _Resident()],
        random_state=0,
    )
    learner.fit(X, y)
    tenth = max(1, len(checkpoints) // 10)
    return {
        "episodes_per_s": clock.rate(spec["warmup"]),
        "peak_gib": status_gib("VmHWM"),
        "anon_peak_gib": anon.stop(),
        "resident_gib": checkpoints[::tenth],
    }


# -- the table ------------------------------------------------------------------------


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "json")
    parser.add_argument("--root", default="/tmp/sklearn_meta_pipeline")
    parser.add_argument("--classes", type=int, default=64)
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--sources",
        default=";".join(SOURCES),
        help="';'-separated, of: " + "; ".join(SOURCES),
    )
    parser.add_argument("--huge", type=int, default=0)
    parser.add_argument("--huge-episodes", type=int, default=200)
    parser.add_argument("--worker", default=None, help="(internal)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_array(root / "pool.npy", args.classes, args.per_class)
    print(f"pool array ready ({time.perf_counter() - started:.0f} s)", flush=True)
    sources = args.sources.split(";")
    unknown = set(sources) - set(SOURCES)
    if unknown:
        parser.error(f"unknown sources {sorted(unknown)}; choose from {SOURCES}")
    if any(s.startswith("image folder") for s in sources):
        started = time.perf_counter()
        write_folder(root / "folder", root / "pool.npy")
        print(f"PNG folder ready ({time.perf_counter() - started:.0f} s)", flush=True)
    if "image folder (cached)" in sources:
        data, _ = load_image_folder(
            root / "folder", cache_dir=root / "cache-warm", return_X_y=True
        )
        started = time.perf_counter()
        for i in range(0, len(data), 1024):
            data[np.arange(i, min(i + 1024, len(data)))]
        print(f"cache filled ({time.perf_counter() - started:.0f} s)", flush=True)

    rows = []
    base = {
        "root": str(root),
        "episodes": args.episodes,
        "warmup": args.warmup,
        "threads": args.threads,
    }
    for source in sources:
        for workers in (0, args.workers):
            spec = {**base, "source": source, "workers": workers}
            # The best of the repeats: the machine's noise only ever slows a run.
            runs = [run_worker(__file__, spec) for _ in range(args.repeats)]
            best = max(runs, key=lambda r: r["episodes_per_s"])
            rows.append(
                {
                    **spec,
                    **best,
                    "all_episodes_per_s": [r["episodes_per_s"] for r in runs],
                }
            )
            print(
                rows[-1]["source"],
                workers,
                f"{best['episodes_per_s']:.2f}/s",
                flush=True,
            )

    reference = {r["workers"]: r for r in rows if r["source"] == "float32 in memory"}
    for row in rows:
        ref = reference.get(row["workers"])
        row["speed_ratio"] = (
            None if ref is None else row["episodes_per_s"] / ref["episodes_per_s"]
        )
        row["peak_ratio"] = None if ref is None else row["peak_gib"] / ref["peak_gib"]
    print_table(
        rows,
        [
            ("source", "source"),
            ("prefetch threads", "workers"),
            ("episodes / s", "episodes_per_s", ".2f"),
            ("vs float32", "speed_ratio", ".2f"),
            ("peak RSS GiB", "peak_gib", ".2f"),
            ("vs float32", "peak_ratio", ".2f"),
            ("peak anonymous GiB", "anon_peak_gib", ".2f"),
        ],
        title=(
            f"ProtoNet conv4, 5-way 5-shot 15-query, {args.classes}x{args.per_class} "
            f"images of {SHAPE}, {args.threads} torch thread(s)"
        ),
    )
    figures = {"rows": rows}
    if args.huge:
        path = root / f"huge-{args.huge}.npy"
        started = time.perf_counter()
        write_array(path, args.huge // 600, 600)
        print(f"{args.huge} images ready ({time.perf_counter() - started:.0f} s)")
        spec = {
            **base,
            "root": str(root),
            "source": "huge",
            "episodes": args.huge_episodes,
            "workers": args.workers,
            "path": str(path),
        }
        huge = run_worker(__file__, spec)
        huge.update(
            n_images=args.huge,
            file_gib=path.stat().st_size / 2**30,
            float32_gib=args.huge * int(np.prod(SHAPE)) * 4 / 2**30,
            episodes=args.huge_episodes,
        )
        print_table(
            [huge],
            [
                ("images", "n_images"),
                ("memmap GiB", "file_gib", ".1f"),
                ("as float32 GiB", "float32_gib", ".1f"),
                ("episodes / s", "episodes_per_s", ".2f"),
                ("peak RSS GiB", "peak_gib", ".2f"),
                ("peak anonymous GiB", "anon_peak_gib", ".2f"),
                (
                    "RSS GiB, each tenth",
                    lambda r: " ".join(f"{v:.2f}" for v in r["resident_gib"]),
                ),
            ],
            title="A pool larger than memory, as a uint8 memmap",
        )
        figures["huge"] = huge
    return write_record(args.json, figures, benchmark="data_pipeline", args=args)


if __name__ == "__main__":
    main(sys.argv[1:])
