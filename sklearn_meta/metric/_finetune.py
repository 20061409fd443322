"""The transfer baseline: pre-train a classifier, then fit a new head per task.

Chen, Liu, Kira, Wang & Huang (2019), "A Closer Look at Few-shot
Classification": a backbone pre-trained as an ordinary classifier on all
meta-training classes, frozen, with a new linear (Baseline) or cosine
(Baseline++) head fitted on each support set, is a strong yardstick for
meta-learners.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._data import _prefetched, _Samples, _samples
from .._docs import fill_doc
from .._episodes import _augmented, _everything, _MetaBatch
from .._sklearn import Interval, StrOptions
from .._validation import _check_pool
from ..tasks import _check_task
from ._base import BaseMetricLearner
from ._prototypical import _compute_prototypes


class _Minibatch(NamedTuple):
    """Pre-training samples ``(n, *sample_shape)`` and their class codes ``(n,)``."""

    X: torch.Tensor
    y: torch.Tensor


class _PoolMinibatches:
    """Shuffled minibatches of a labelled pool, one pass per epoch.

    As with episodes, ``num_workers`` threads read the next minibatches while
    one trains, and ``augment`` transforms each in the training thread.
    """

    def __init__(
        self,
        X: _Samples,
        y: torch.Tensor,
        device: torch.device,
        *,
        augment=None,
        num_workers: int = 0,
        part=_everything,
    ):
        self.X = X
        self.y = y
        self.device = device
        self.augment = augment
        self.num_workers = num_workers
        self.part = part

    def batches(self, rng, n_samples: int, batch_size: int):
        order = rng.permutation(len(self.X))[:n_samples]
        sizes, parts = [], []
        for i in range(0, len(order), batch_size):
            # With several processes, this one reads its share of the samples.
            rows = order[i : i + batch_size]
            sizes.append(len(rows))
            parts.append(rows[self.part(len(rows))])
        reads = (partial(self.X.gather, idx, self.device) for idx in parts)
        for size, idx, X in zip(sizes, parts, _prefetched(reads, self.num_workers)):
            if self.augment is not None:
                X = _augmented(self.augment, X)
            y = self.y[torch.as_tensor(idx, device=self.device)]
            yield _MetaBatch([_Minibatch(X, y)], size)


class _CosineHead(nn.Module):
    """Logits ``scale * cos(z, w_c)`` (Baseline++)."""

    def __init__(self, in_features: int, n_classes: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(n_classes, in_features) / in_features**0.5
        )
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


class _BackboneWithHead(nn.Module):
    """The backbone (``forward`` embeds) and the pre-training head, in one module."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.backbone(X).flatten(1)


def _head_logits(
    z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, cosine: bool, scale: float
) -> torch.Tensor:
    """Logits ``(B, n, C)`` of embeddings ``(B, n, D)``.

    The heads are ``W`` ``(B, D, C)`` and ``b`` ``(B, C)`` (unused when cosine).
    """
    if cosine:
        return scale * F.normalize(z, dim=-1) @ F.normalize(W, dim=1)
    return z @ W + b[:, None, :]


def _fit_heads(
    z_support: torch.Tensor,
    y_support: torch.Tensor,
    n_classes: int,
    *,
    cosine: bool,
    scale: float,
    steps: int,
    lr: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit one head per episode on frozen support embeddings, all episodes at once.

    ``z_support`` is ``(B, n_support, D)`` and ``y_support`` ``(B, n_support)``;
    returns ``W`` ``(B, D, n_classes)`` and ``b`` ``(B, n_classes)``. Full-batch
    SGD with momentum 0.9 and weight decay 1e-3 (the optimiser of Chen et al.,
    who use minibatches of 4; support sets are small enough to use them whole).
    Heads start from the class means of the support embeddings, so a cosine head
    starts as a prototype classifier. The episodes' losses are independent, so
    summing them fits every head as if alone.
    """
    z = z_support.detach()
    W = _compute_prototypes(z, y_support, n_classes).transpose(1, 2)
    W = W.clone().requires_grad_(True)
    b = torch.zeros(
        z.shape[0], n_classes, dtype=z.dtype, device=z.device, requires_grad=True
    )
    if not cosine:
        with torch.no_grad():
            W.zero_()
    optimizer = torch.optim.SGD([W, b], lr=lr, momentum=0.9, weight_decay=1e-3)
    with torch.enable_grad():
        for _ in range(steps):
            logits = _head_logits(z, W, b, cosine, scale)
            loss = F.cross_entropy(logits.transpose(1, 2), y_support, reduction="none")
            optimizer.zero_grad()
            loss.mean(1).sum().backward()
            optimizer.step()
    return W.detach(), b.detach()


class FineTuneClassifier(BaseMetricLearner):
    __doc__ = fill_doc(
        """Transfer baseline: pre-train on all classes, fit a new head per task.

    ``fit`` trains the backbone and a classification head as an ordinary
    classifier over every class of the training pool (with ``groups``, every
    (group, class) pair is a class: the multi-task joint training objective, the
    average loss over all tasks). ``adapt`` freezes the backbone and fits a new
    head on the embedded support set: linear (Baseline) or cosine-similarity
    (Baseline++, ``head="cosine"``), by ``adapt_steps`` steps of SGD.

    It is the yardstick few-shot papers should beat: a meta-learner that does
    not outperform it has not learned to learn.

    Parameters
    ----------
    %(module)s
    %(episode)s
    head : {"linear", "cosine"}, default="linear"
        The head fitted at pre-training and at adaptation.
    cosine_scale : float, default=10.0
        Scale of the cosine head's logits.
    batch_size : int, default=64
        Samples per pre-training step.
    %(max_epochs)s
    %(lr)s
    %(optimizer)s
    adapt_steps : int, default=100
        SGD steps that fit a head to a support set.
    adapt_lr : float, default=0.01
        Learning rate of those steps.
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        Backbone (``module_.backbone``) and pre-training head (``module_.head``).
    n_pretrain_classes_ : int
        Outputs of the pre-training head.
    %(training_attributes)s
    %(classes_)s
    %(data_attributes)s

    References
    ----------
    .. [1] W.-Y. Chen, Y.-C. Liu, Z. Kira, Y.-C. F. Wang and J.-B. Huang, "A
       Closer Look at Few-shot Classification", ICLR 2019.

    Examples
    --------
    >>> from sklearn_meta.metric import FineTuneClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = FineTuneClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=2,
    ...                          random_state=0).fit(X[y < 7], y[y < 7])
    >>> clf.score(X[y >= 7], y[y >= 7]) > 0.5
    True
    """,
        module_role="The backbone (an embedding).",
        n_way_note=" (in :meth:`score` and in meta-validation)",
        training="pre-training: passes over the training pool",
        optimiser="pre-training optimiser",
        seeded="the initialisation, the minibatches and the episodes",
        history_note=" (``train_acc`` is the pre-training accuracy)",
    )

    _parameter_constraints: dict = {
        **BaseMetricLearner._parameter_constraints,
        "head": [StrOptions({"linear", "cosine"})],
        "cosine_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "adapt_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "adapt_lr": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        head="linear",
        cosine_scale=10.0,
        batch_size=64,
        max_epochs=10,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        adapt_steps=100,
        adapt_lr=0.01,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
        eval_n_way=None,
        eval_k_shot=None,
        eval_n_query=None,
        augment=None,
        num_workers=0,
        distributed="auto",
        device="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.module = module
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.head = head
        self.cosine_scale = cosine_scale
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.optimizer = optimizer
        self.adapt_steps = adapt_steps
        self.adapt_lr = adapt_lr
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
        self.eval_n_way = eval_n_way
        self.eval_k_shot = eval_k_shot
        self.eval_n_query = eval_n_query
        self.augment = augment
        self.num_workers = num_workers
        self.distributed = distributed
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed_kwargs(kwargs)

    # -- pre-training ------------------------------------------------------------

    @property
    def _step_size(self) -> int:
        return self.batch_size

    @property
    def _episodes_per_epoch(self) -> int:
        return self._n_pretrain_samples_

    def _prepare_pool(self, X, y, groups):
        pool = _check_pool(self, X, y, groups, classification=True, reset=True)
        self.sample_shape_ = tuple(pool.X.shape[1:])
        train_idx, valid_idx = self._validation_split(pool)
        units = pool.codes
        if pool.groups is not None:
            units = np.unique(
                np.c_[pool.groups, pool.codes], axis=0, return_inverse=True
            )[1]
        _, head_labels = np.unique(units[train_idx], return_inverse=True)
        self.n_pretrain_classes_ = int(head_labels.max()) + 1
        self._n_pretrain_samples_ = len(train_idx)
        samples = _samples(pool.X).on_device(self.device_)
        self._check_augment()
        train = _PoolMinibatches(
            samples if valid_idx is None else samples[train_idx],
            torch.as_tensor(head_labels, device=self.device_),
            self.device_,
            augment=self._augment_fn(),
            num_workers=self.num_workers,
            part=self._part,
        )
        valid = None
        if valid_idx is not None:
            valid = self._validation_episodes(pool, valid_idx, samples)
        # The pre-training head predicts the pool's classes when it saw all of them.
        self._head_covers_pool_ = valid_idx is None and pool.groups is None
        return train, valid, pool

    def _prepare_tasks(self, tasks):
        if not isinstance(tasks, Sequence):
            raise TypeError(
                "FineTuneClassifier pre-trains one classifier over the classes of all "
                "tasks, so it needs them up front: pass a list of tasks, not an "
                f"iterator ({type(tasks).__name__})."
            )
        # Every task is a group: its support and query sets form its pool.
        parts = [_check_task(t, i, classification=True) for i, t in enumerate(tasks)]
        X = np.concatenate([np.concatenate([p[0], p[2]]) for p in parts])
        y = np.concatenate([np.concatenate([p[1], p[3]]) for p in parts])
        groups = np.concatenate(
            [np.full(len(p[0]) + len(p[2]), i) for i, p in enumerate(parts)]
        )
        train, valid, _ = self._prepare_pool(X, y, groups)
        return train, valid, None

    def _wrap_module(self, backbone: nn.Module, dim: int) -> nn.Module:
        if self.head == "cosine":
            head = _CosineHead(dim, self.n_pretrain_classes_, self.cosine_scale)
        else:
            head = nn.Linear(dim, self.n_pretrain_classes_)
        return _BackboneWithHead(backbone, head)

    def _episode_losses(self, batch):
        if not isinstance(batch, _Minibatch):
            return super()._episode_losses(batch)  # meta-validation episodes
        logits = self.module_.head(self._embed(batch.X))
        losses = F.cross_entropy(logits, batch.y, reduction="none")
        return losses, (logits.argmax(1) == batch.y).float()

    def _fit_pool(self, pool) -> None:
        if pool is not None and self._head_covers_pool_:
            # The pre-training head is a classifier over exactly these classes.
            self.classes_ = pool.classes
            self.pool_state_ = {"head": True}
            return
        super()._fit_pool(pool)

    def _predict_logits(self, state: dict, X: np.ndarray) -> torch.Tensor:
        if state.get("head") is True:
            with torch.no_grad():
                return self._map_chunks(lambda x: self.module_.head(self._embed(x)), X)
        return super()._predict_logits(state, X)

    # -- adaptation ----------------------------------------------------------------

    def _support_summary(self, z_support, y_support, n_classes):
        return _fit_heads(
            z_support,
            y_support,
            n_classes,
            cosine=self.head == "cosine",
            scale=self.cosine_scale,
            steps=self.adapt_steps,
            lr=self.adapt_lr,
        )

    def _query_logits(self, summary, z_query):
        W, b = summary
        return _head_logits(z_query, W, b, self.head == "cosine", self.cosine_scale)
