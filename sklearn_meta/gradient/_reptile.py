"""Reptile (Nichol, Achiam & Schulman, 2018): move towards the adapted weights."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._docs import learner_doc
from .._episodes import _n_total
from .._sklearn import Interval, StrOptions
from ..base import MetaClassifierMixin, MetaRegressorMixin
from ..tasks import _EpisodeBatch
from ._base import BaseGradientLearner

_ADAM_BETAS = (0.0, 0.999)  # the paper's inner Adam: no first-moment averaging
_ADAM_EPS = 1e-8

_REFERENCES = """\
    .. [1] A. Nichol, J. Achiam and J. Schulman, "On First-Order Meta-Learning
       Algorithms", arXiv:1803.02999, 2018."""

_SUMMARY = """\
Reptile: meta-learn an initialisation by moving it towards adapted weights.

    Each task runs ``inner_steps`` steps of SGD or Adam on its support set
    from the current initialisation θ, giving φᵢ; the outer update is
    ``θ ← θ + ε · mean(φᵢ - θ)`` over the meta-batch, with ``ε = lr``
    annealed linearly to zero over training by default. It is handed to the
    meta-optimiser as the gradient ``θ - mean(φᵢ)``: plain SGD (the default)
    gives exactly the update above. No second-order terms, no query set in the
    update (the query loss is only recorded), except for a classifier whose
    head starts at the support's prototypes (with a
    :class:`~sklearn_meta.nn.TabularEmbedding` body, the tabular default): its
    inner loop of meta-training trains on the task's query rows, and the
    recorded loss is theirs after those steps."""

_EXTRA = """\
    inner_optimizer : {{"sgd", "adam"}}, default="{inner_optimizer}"
        The inner-loop update. "adam" is Adam with β₁ = 0 (as in the paper),
        its moments kept per task.
    inner_batch_size : int, default=None
        Support samples per inner step in meta-training; None takes the whole
        support set every step. Smaller, the steps cycle through the support
        in minibatches of this size, as the paper's inner loop does (its
        Omniglot protocol: 5 steps of 10 on a support set of 50, one pass
        over it). A classifier's minibatches take the classes in turn, so
        each holds every class as evenly as it can; a regressor's take the
        samples in their order. The same minibatches for every task.
    adapt_batch_size : int, default=None
        Support samples per step at adaptation (``adapt``, ``predict``,
        ``score``); None: ``inner_batch_size``. The paper adapts to Omniglot
        test tasks in minibatches of 5.
    anneal : bool or int, default=True
        Decrease the outer step size ``lr`` linearly to zero. True anneals over
        the run's epochs: those restored from a checkpoint (skorch's
        ``LoadInitState``) and the ``max_epochs`` this fit trains, so a fit
        interrupted and resumed from its checkpoint takes the steps of an
        uninterrupted one. An int anneals over that many epochs however
        training is split (the step stays zero after them): give the total
        when training in parts on purpose, as in ``anneal=100`` for two fits of
        50 epochs. False keeps ``lr``."""


class _ReptileMixin(BaseGradientLearner):
    """The Reptile update on top of the shared inner loop."""

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in BaseGradientLearner._parameter_constraints.items()
            if k != "first_order"
        },
        "inner_optimizer": [StrOptions({"sgd", "adam"})],
        "inner_batch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "adapt_batch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "anneal": ["boolean", Interval(numbers.Integral, 1, None, closed="left")],
    }

    first_order = True  # Reptile is first-order by construction.
    #: Without a second-order graph, one task per call wins from smaller
    #: tasks (``benchmarks/task_strategy.py``; docs/design.md, "One task per
    #: call runs native kernels").
    _CPU_PER_TASK_ROWS = 15

    def _inner_update(self, fast: dict, grads: dict, lrs, state: dict):
        """One inner step: SGD, or Adam with ``inner_optimizer='adam'``."""
        if self.inner_optimizer == "sgd":
            return super()._inner_update(fast, grads, lrs, state)
        t = state.get("t", 0) + 1
        b1, b2 = _ADAM_BETAS
        new, m, v = {}, {}, {}
        for k, g in grads.items():
            m[k] = b1 * state.get(("m", k), 0) + (1 - b1) * g
            v[k] = b2 * state.get(("v", k), 0) + (1 - b2) * g * g
            step = m[k] / (1 - b1**t) / ((v[k] / (1 - b2**t)).sqrt() + _ADAM_EPS)
            new[k] = fast[k] - self.inner_lr * step
        state = {"t": t, **{("m", k): x for k, x in m.items()}}
        state.update({("v", k): x for k, x in v.items()})
        return new, state

    def _outer_lr(self) -> float:
        """Return the outer step size of the current meta-update (annealed)."""
        if isinstance(self.anneal, (bool, np.bool_)):
            if not self.anneal:
                return self.lr
            # The whole run: the epochs restored from a checkpoint and this fit's.
            epochs = self._resumed_epochs_ + self.max_epochs
        else:
            epochs = int(self.anneal)
        per_epoch = -(-self._episodes_per_epoch // self._step_size)
        total = max(1, epochs * per_epoch)
        # Earlier epochs ran whole (an interrupted fit does not resume them);
        # in this one, training comes before validation and the current step's
        # batch is already open in the history.
        done = (
            (len(self.history_) - 1) * per_epoch + len(self.history_[-1]["batches"]) - 1
        )
        return self.lr * max(0.0, 1 - done / total)

    def _inner_rows(self, chunk: _EpisodeBatch):
        """Return the rows the inner loop trains on in meta-training (None: support).

        With a prototype head, the support's samples *are* the head's
        prototypes, so a 1-shot support scores itself perfectly and its loss
        only rewards pushing every sample away from the others, noise
        features included: Reptile then moved towards worse features than
        it started with (1.5 points below nearest centroid on the synthetic
        tabular problem). The query rows of the task are samples the head
        did not see, so the inner loop learns from how the prototypes
        classify them, as a prototypical network does (docs/design.md,
        "Reptile with a prototype head trains on the query rows").
        """
        if getattr(self.module_, "prototype_head", False):
            return chunk.X_query, chunk.y_query
        return None

    def _train_step(self, batches: list[_EpisodeBatch]) -> dict:
        """One Reptile update: move the initialisation towards adapted weights."""
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        meta = self._meta_params()
        total = _n_total(batches)
        deltas = {k: torch.zeros_like(p) for k, p in meta.items()}
        losses, scores = [], []
        with torch.no_grad():
            for batch in batches:
                for chunk in self._chunks(batch):
                    fast, out = self._adapt_tasks(
                        chunk.X_support,
                        chunk.y_support,
                        chunk.X_query,
                        chunk.n_classes,
                        self.inner_steps,
                        True,
                        self.inner_batch_size,
                        inner=self._inner_rows(chunk),
                    )
                    for k, p in meta.items():
                        # θ - φ summed over tasks (and over the classes of the
                        # head, whose rows all start from the one meta vector).
                        diff = p - fast[k]
                        deltas[k] += diff.reshape(-1, *p.shape).sum(0)
                    chunk_losses, chunk_scores = self._losses_and_scores(
                        out, chunk.y_query
                    )
                    losses.append(chunk_losses)
                    scores.append(chunk_scores)
        per_row = {
            k: total * (fast[k][0].numel() // p.numel()) for k, p in meta.items()
        }
        for k, p in meta.items():
            if p.requires_grad:  # the classifiers' fixed head start is not moved
                p.grad = deltas[k] / per_row[k]
        for group in self.optimizer_.param_groups:
            group["lr"] = self._outer_lr()
        return self._meta_update(batches, losses, scores, total)


class ReptileClassifier(MetaClassifierMixin, _ReptileMixin):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=False,
        references=_REFERENCES,
        first_order=False,
        extra_params=_EXTRA.format(inner_optimizer="adam"),
        lr_doc="The outer step size ε (annealed to zero with ``anneal``).",
        inner_lr="1e-3",
        inner_steps=5,
        meta_batch_size=5,
        lr="1.0",
        optimizer="torch.optim.SGD",
        examples="""\
    >>> from sklearn_meta import ReptileClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = ReptileClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=3,
    ...                         random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True""",
    )

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        inner_lr=1e-3,
        inner_steps=5,
        adapt_steps=None,
        inner_optimizer="adam",
        inner_batch_size=None,
        adapt_batch_size=None,
        anneal=True,
        meta_batch_size=5,
        task_chunk_size="auto",
        max_epochs=10,
        episodes_per_epoch=100,
        lr=1.0,
        optimizer=torch.optim.SGD,
        max_grad_norm=None,
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
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.inner_optimizer = inner_optimizer
        self.inner_batch_size = inner_batch_size
        self.adapt_batch_size = adapt_batch_size
        self.anneal = anneal
        self.meta_batch_size = meta_batch_size
        self.task_chunk_size = task_chunk_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
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


class ReptileRegressor(MetaRegressorMixin, _ReptileMixin):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=True,
        references=_REFERENCES,
        first_order=False,
        extra_params=_EXTRA.format(inner_optimizer="sgd"),
        lr_doc="The outer step size ε (annealed to zero with ``anneal``).",
        inner_lr="0.02",
        inner_steps=5,
        meta_batch_size=5,
        lr="0.1",
        optimizer="torch.optim.SGD",
        examples="""\
    >>> from sklearn_meta import ReptileRegressor
    >>> from sklearn_meta.datasets import make_sinusoid_tasks
    >>> tasks = make_sinusoid_tasks(n_tasks=500, random_state=0)
    >>> reg = ReptileRegressor(max_epochs=2, episodes_per_epoch=500,
    ...                        random_state=0).fit(tasks)
    >>> task = make_sinusoid_tasks(n_tasks=1, random_state=1)[0]
    >>> reg.adapt(task.X_support, task.y_support).predict(task.X_query).shape
    (10,)""",
    )

    def __init__(
        self,
        module=None,
        *,
        k_shot=10,
        n_query=10,
        inner_lr=0.02,
        inner_steps=5,
        adapt_steps=None,
        inner_optimizer="sgd",
        inner_batch_size=None,
        adapt_batch_size=None,
        anneal=True,
        meta_batch_size=5,
        task_chunk_size=None,
        max_epochs=10,
        episodes_per_epoch=1000,
        lr=0.1,
        optimizer=torch.optim.SGD,
        max_grad_norm=None,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
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
        self.k_shot = k_shot
        self.n_query = n_query
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.inner_optimizer = inner_optimizer
        self.inner_batch_size = inner_batch_size
        self.adapt_batch_size = adapt_batch_size
        self.anneal = anneal
        self.meta_batch_size = meta_batch_size
        self.task_chunk_size = task_chunk_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
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
