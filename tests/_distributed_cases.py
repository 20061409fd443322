"""The fits the data-parallel tests run in one process and in two.

Shared by ``tests/test_distributed.py`` (the one-process reference) and
``tests/_distributed_worker.py`` (each process of the two-process fit), so
both build exactly the same learner on the same data.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits

from sklearn_meta import (
    MAMLClassifier,
    MetaLSTMClassifier,
    PrototypicalClassifier,
    ReptileClassifier,
)
from sklearn_meta.rl import MAMLPolicy, PointNavigationTasks


def _digits(images: bool):
    digits = load_digits()
    keep = digits.target < 7
    X = (digits.images[keep][:350] / 16).astype(np.float32)
    X = X[:, None] if images else X.reshape(len(X), -1)
    return X, digits.target[keep][:350]


#: SGD rather than Adam: Adam divides each gradient by its own scale, so a
#: parameter whose gradient is zero up to rounding (a bias that distances do
#: not see) takes steps of up to lr driven by rounding, different for any
#: other order of summation, in one process as in several. Plain SGD shows the
#: processes' sum to be the one-process meta-gradient.
_EPISODES = dict(
    n_way=3,
    k_shot=1,
    n_query=3,
    random_state=0,
    device="cpu",
    optimizer=torch.optim.SGD,
    lr=0.01,
)

#: name -> (learner class, parameters, images?). The gradient learners' one
#: process takes its tasks in chunks of 2 (3 for a meta-batch of 5): the
#: order in which two processes sum them.
CASES = {
    # Meta-validation split over the processes too.
    "prototypical": (
        PrototypicalClassifier,
        dict(meta_batch_size=4, max_epochs=2, episodes_per_epoch=8, train_split=0.3),
        False,
    ),
    # Second order, through batch norm (task-wise statistics).
    "maml": (
        MAMLClassifier,
        dict(meta_batch_size=4, max_epochs=2, episodes_per_epoch=8, task_chunk_size=2),
        True,
    ),
    # A meta-batch of 5 over 2 processes: 3 and 2 tasks.
    "maml_odd": (
        MAMLClassifier,
        dict(meta_batch_size=5, max_epochs=1, episodes_per_epoch=10, task_chunk_size=3),
        True,
    ),
    "reptile": (
        ReptileClassifier,
        dict(meta_batch_size=4, max_epochs=2, episodes_per_epoch=8, task_chunk_size=2),
        True,
    ),
    "meta_lstm": (
        MetaLSTMClassifier,
        dict(
            meta_batch_size=4,
            max_epochs=1,
            episodes_per_epoch=8,
            task_chunk_size=2,
            inner_steps=2,
            module__hidden_features=16,
        ),
        False,
    ),
}

#: Meta-RL (second order, Gaussian policy): a meta-batch of 5 tasks, 3 and 2
#: per process. SGD for the reason above.
POLICY = dict(
    hidden_layer_sizes=(8,),
    meta_batch_size=5,
    n_episodes=3,
    max_iter=3,
    n_eval_tasks=5,
    optimizer=torch.optim.SGD,
    lr=0.05,
    random_state=0,
)


def _navigation():
    return PointNavigationTasks(max_episode_steps=12)


#: The history entries compared (the policy's returns before and after
#: adaptation are means over every process's tasks too).
RECORDED = ("train_loss", "valid_loss", "return_before", "return_after")


def build(case: str, callbacks=None):
    """Return the learner of ``case`` and the arguments of its ``fit``."""
    if case == "maml_policy":
        return MAMLPolicy(**POLICY, callbacks=callbacks), (_navigation(),)
    cls, params, images = CASES[case]
    learner = cls(**_EPISODES, **params, callbacks=callbacks)
    return learner, _digits(images)


def score_data(case: str):
    """The arguments of the ``score`` of ``case``'s learner."""
    if case == "maml_policy":
        return (_navigation(),)
    return _digits(CASES[case][2])
