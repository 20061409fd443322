"""
Data-parallel MAML over processes with torchrun
===============================================

Run it on two CPU processes of one machine:

.. code-block:: bash

    torchrun --standalone --nproc-per-node=2 examples/distributed_maml.py

or as a plain script, in one process:

.. code-block:: bash

    python examples/distributed_maml.py

Under torchrun every process runs this same script. ``fit`` notices the
launcher's environment, joins the process group (gloo on the CPU, nccl on
GPUs, one GPU per process from ``LOCAL_RANK``), and each process adapts its
share of every meta-batch: with 2 processes and ``meta_batch_size=32``, 16
tasks each. The meta-gradients are summed across processes, so every
process takes the same step and ends with the same model, the one a single
process would train with the same ``random_state`` up to the order in which
the tasks' gradients are summed (the user guide's "Scaling out" says how much
that can matter). Only the first process prints and writes files.
"""

import os
import time
from pathlib import Path

import torch

from sklearn_meta import MAMLClassifier
from sklearn_meta.datasets import load_omniglot
from sklearn_meta.model_selection import episodic_score

rank = int(os.environ.get("RANK", 0))
world_size = int(os.environ.get("WORLD_SIZE", 1))
# One torch thread per process: the processes share the machine's cores.
torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))

here = Path(__file__).resolve().parent
data_home = os.environ.get("SKLEARN_META_DATA", here.parents[1] / "shared" / "data")
X, y = load_omniglot(
    "background", data_home=data_home, download=False, dtype="uint8", return_X_y=True
)
X_new, y_new = load_omniglot(
    "evaluation", data_home=data_home, download=False, dtype="uint8", return_X_y=True
)

clf = MAMLClassifier(
    n_way=5,
    k_shot=1,
    n_query=1,
    meta_batch_size=32,  # the effective meta-batch, shared by the processes
    inner_steps=1,
    max_epochs=2,
    episodes_per_epoch=320,  # 10 meta-updates an epoch
    random_state=0,
)
start = time.perf_counter()
clf.fit(X, y)
seconds = time.perf_counter() - start

# score splits its episodes over the processes too, and every process gets
# the same result.
result = episodic_score(clf, X_new, y_new, n_episodes=200)
if rank == 0:
    updates = clf.max_epochs * clf.episodes_per_epoch // clf.meta_batch_size
    print(
        f"{world_size} process(es): {updates / seconds:.2f} meta-updates/s; "
        f"5-way 1-shot on new alphabets: {result.format(percent=True)}"
    )
    checksum = sum(float(p.detach().double().sum()) for p in clf.module_.parameters())
    print(f"weights checksum {checksum:.6f} (equal on every process)")
