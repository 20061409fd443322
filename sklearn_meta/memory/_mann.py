"""Memory-augmented neural network (Santoro et al., 2016): the estimator.

The addressing lives in :mod:`._addressing` and the network in
:mod:`._mann_model`; this module turns episodes into sequences for it.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from .._docs import fill_doc
from .._episodes import _SCORING_CHUNK
from .._functional import _embed_episodes, _embed_used_rows
from .._random import Stream, _as_generator, _stream
from .._sklearn import Interval, validate_params
from .._validation import _check_pool
from ..base import BaseMetaLearner, MetaClassifierMixin
from ..tasks import EpisodeSampler, _EpisodeBatch, _stratified_sample
from ._mann_model import _MANNModel


def _random_orders(
    rng: np.random.Generator, n: int, length: int, device: torch.device
) -> torch.Tensor:
    """Draw ``n`` random permutations of ``range(length)``, ``(n, length)``."""
    return torch.as_tensor(np.argsort(rng.random((n, length)), axis=1), device=device)


class MANNClassifier(MetaClassifierMixin, BaseMetaLearner):
    __doc__ = fill_doc(
        """Memory-augmented neural network: one-shot learning by binding in memory.

    An LSTM controller with an external memory (Santoro et al., 2016) reads
    an episode as a sequence: at each step it sees an example together with
    the *previous* example's label (time-offset labels), writes to memory by
    least-recently-used access, reads the memory by cosine similarity of keys
    and classifies the example from what it read. Memory is wiped between
    episodes and labels are shuffled per episode, so the network cannot
    memorise classes: it must learn to bind each example's representation
    to the label shown one step later and to retrieve it. What is
    meta-learned is the embedding (``module``), the controller and its
    read, write and output layers; adaptation is a forward pass.

    ``adapt`` feeds the support set through the network as such a sequence
    (in an order fixed by ``random_state``) and keeps the final state: the
    stored support. ``predict`` reads each query against it, as one more
    step, independently of the other queries. Training episodes are the
    support sequence (the paper's loss: every step's label predicted before
    it is shown) followed by the queries read against the stored support;
    :meth:`accuracy_by_instance` gives the paper's accuracy by presentation
    number.

    Parameters
    ----------
    %(module)s
    %(episode)s
    max_classes : int, default=None
        Size of the label input and output: the most classes ``adapt`` can
        take. Training episodes map their ``n_way`` classes to a random
        subset of these labels, so every output is trained. None means
        ``n_way``.
    controller_size : int, default=200
        Units of the LSTM controller (the paper's 200).
    memory_size : int, default=128
        Memory slots (the paper's 128).
    memory_dim : int, default=40
        Size of a slot (the paper's 40).
    n_reads : int, default=4
        Read heads (the paper's 4); each also writes.
    usage_decay : float, default=0.95
        Decay of the usage weights between steps (the paper's gamma).
    %(optimisation)s
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        What is meta-learned: ``module_.body`` (a copy of the module),
        ``module_.controller``, ``module_.keys``, ``module_.controls`` and
        ``module_.output``.
    %(training_attributes)s
    %(classes_)s
    pool_state_ : dict or None
        The memory after storing a sample of the training pool, spread over
        its classes, used by :meth:`predict`: at most what the memory holds
        before writes start wiping earlier ones, ``memory_size // n_reads -
        1`` samples (but one per class at least); stored at the first
        prediction and kept. None when the pool has more than
        ``max_classes`` classes.
    %(data_attributes)s

    See Also
    --------
    MatchingNetworkClassifier : attention over the support set, without a
        learned memory.

    Notes
    -----
    A meta-batch is one batch of sequences: every episode's examples are
    embedded in one forward pass, and each time step runs the controller,
    the reads and the writes of all episodes at once; only the time steps
    are a loop. Departures from the paper, which made learning to bind fit
    a CPU budget: reads use a key strength ``1 + softplus(.)`` emitted by the
    controller (Graves et al.'s content addressing; the paper's softmax over
    plain cosines cannot be sharper than ``e^2`` between two slots); the
    embedding is batch-normalised and the one-hot label scaled to the same
    norm before the controller; each head writes to its own least-used slot
    (together the paper's ``w^lu``), and those slots are wiped before the
    write. The write gate ``sigmoid(alpha)`` is emitted by the controller,
    per head and step.

    References
    ----------
    .. [1] A. Santoro, S. Bartunov, M. Botvinick, D. Wierstra and
       T. Lillicrap, "Meta-Learning with Memory-Augmented Neural Networks",
       ICML 2016.
    .. [2] A. Graves, G. Wayne and I. Danihelka, "Neural Turing Machines",
       arXiv:1410.5401, 2014 (content addressing).

    Examples
    --------
    >>> from sklearn_meta import MANNClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = MANNClassifier(n_way=3, k_shot=2, n_query=2, controller_size=32,
    ...                      memory_size=16, max_epochs=2,
    ...                      episodes_per_epoch=32, random_state=0)
    >>> clf = clf.fit(X[y < 7], y[y < 7])
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.predict_proba(X[y >= 8][10:13]).shape
    (3, 2)
    >>> clf.accuracy_by_instance(X[y >= 5], y[y >= 5], n_way=3,
    ...                          n_instances=4, n_episodes=20).shape
    (4,)
    """,
        module_role="The embedding fed to the controller: maps ``(n, *sample_shape)`` "
        "to ``(n, ...)`` (flattened).",
        module_note="``torch.nn.Flatten()`` feeds raw pixels, as the paper does.",
        module_default=(
            ":class:`~sklearn_meta.nn.Conv4` for images ``(n, C, H, W)`` and "
            ":class:`~sklearn_meta.nn.MLP` for tabular data"
        ),
        k_shot_note=" (the sequence is ``n_way * k_shot`` long)",
        meta_batch_size=16,
        meta_batch_note=", run as one batch of sequences",
        seeded="the initialisation, the episodes, their orders and label maps",
    )

    #: The controller reads standardised features of its own, so tabular
    #: samples keep the MLP body: the centred, normalised embedding of the
    #: other classifiers measured no different here (docs/design.md).
    _tabular_embedding = False

    _parameter_constraints: dict = {
        **BaseMetaLearner._parameter_constraints,
        "max_classes": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "controller_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "memory_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "memory_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_reads": [Interval(numbers.Integral, 1, None, closed="left")],
        "usage_decay": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        max_classes=None,
        controller_size=200,
        memory_size=128,
        memory_dim=40,
        n_reads=4,
        usage_decay=0.95,
        meta_batch_size=16,
        max_epochs=10,
        episodes_per_epoch=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
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
        self.max_classes = max_classes
        self.controller_size = controller_size
        self.memory_size = memory_size
        self.memory_dim = memory_dim
        self.n_reads = n_reads
        self.usage_decay = usage_decay
        self.meta_batch_size = meta_batch_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
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

    # -- parameters ------------------------------------------------------------

    @property
    def _n_labels(self) -> int:
        """Size of the label input and output: ``max_classes``, else ``n_way``."""
        return self.n_way if self.max_classes is None else self.max_classes

    @property
    def _max_adapt_classes(self) -> int:
        return self._n_labels

    def _check_params(self) -> None:
        if self.n_reads > self.memory_size:
            raise ValueError(
                f"n_reads={self.n_reads} is larger than memory_size="
                f"{self.memory_size}: every read head writes to a slot of its own. "
                "Lower n_reads or raise memory_size."
            )
        for name in ("n_way", "eval_n_way"):
            value = getattr(self, name)
            if value is not None and value > self._n_labels:
                raise ValueError(
                    f"{name}={value} is larger than max_classes={self.max_classes}: "
                    "the network has one label input and output per class. Raise "
                    f"max_classes or lower {name}."
                )

    # -- the model -------------------------------------------------------------

    def _wrap_module(self, module: nn.Module, dim: int) -> nn.Module:
        return _MANNModel(
            module,
            dim,
            self._n_labels,
            self.controller_size,
            self.memory_size,
            self.memory_dim,
            self.n_reads,
            float(self.usage_decay),
        )

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        """Embed a batch ``(n, *sample_shape)`` as ``(n, D)`` standardised features."""
        return self.module_.norm(self.module_.body(X).flatten(1))

    def _embed_rows(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Embed the rows of ``X`` on the device, a chunk at a time: ``(n, D)``."""
        return self._map_chunks(self._embed, X)

    # -- episodes --------------------------------------------------------------

    def _training_rng(self) -> np.random.Generator:
        """Return the generator of a training step's orders and label maps.

        Derived from the seed, the epoch and the batch, so a run resumed from
        a checkpoint draws the same ones.
        """
        key = []
        if len(self.history_):
            key = [len(self.history_), len(self.history_[-1]["batches"])]
        return _stream(self._seed_, Stream.TRAIN_ORDER, *key)

    def _sequence_order(self, rng, n_episodes: int, length: int) -> torch.Tensor:
        """Draw a random order ``(E, length)`` of each episode's support."""
        return _random_orders(rng, n_episodes, length, self.device_)

    def _in_random_order(
        self, rng, z: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffle each sequence ``z`` ``(E, n, D)`` with its ``labels`` ``(E, n)``."""
        order = self._sequence_order(rng, len(z), z.shape[1])
        return z.gather(1, order[..., None].expand_as(z)), labels.gather(1, order)

    def _episode_losses(self, batch: _EpisodeBatch):
        B, n_s = batch.y_support.shape
        n_classes = batch.n_classes
        if n_classes > self._n_labels:
            raise ValueError(
                f"A task has {n_classes} classes but {type(self).__name__} has "
                f"max_classes={self._n_labels} label outputs. Raise max_classes."
            )
        z_s, z_q = _embed_episodes(self._embed, batch.X_support, batch.X_query)
        rng = self._training_rng()
        z_s, y_s = self._in_random_order(rng, z_s, batch.y_support)
        # Labels shuffled per episode: the classes get a random subset of labels.
        label_map = _random_orders(rng, B, self._n_labels, self.device_)[:, :n_classes]
        y_s = label_map.gather(1, y_s)
        y_q = label_map.gather(1, batch.y_query)
        logits_s, state = self.module_.store(z_s, y_s)
        logits_q = self.module_.query(state, z_q)
        allowed = torch.zeros(B, self._n_labels, dtype=torch.bool, device=z_s.device)
        allowed.scatter_(1, label_map, True)
        logits = torch.cat([logits_s, logits_q], 1).masked_fill(
            ~allowed[:, None], float("-inf")
        )
        targets = torch.cat([y_s, y_q], 1)
        losses = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), reduction="none"
        ).view(B, -1)
        accuracy = (logits[:, n_s:].argmax(-1) == y_q).float().mean(1)
        return losses.mean(1), accuracy

    # -- adaptation and prediction ---------------------------------------------

    def _store(self, z_s: torch.Tensor, y_s: torch.Tensor, rng) -> dict:
        """Feed support sequences ``(E, n, D)`` in a random order; return the state."""
        return self.module_.store(*self._in_random_order(rng, z_s, y_s))[1]

    def _adapt(self, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict:
        with torch.no_grad():
            z = self._embed_rows(X)
            rng = _stream(self._seed_, Stream.ADAPT_ORDER)
            state = self._store(z[None], y.to(z.device)[None], rng)
        return {"memory": state, "n_classes": n_classes}

    def _predict_logits(self, state: dict, X: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            z = self._embed_rows(X)
            logits = self.module_.query(state["memory"], z[None])[0]
        return logits[:, : state["n_classes"]]

    def _episode_logits_from_pool(self, X, support, y_support, query, n_way):
        # Embeddings in eval mode do not depend on the batch: embed each sample
        # the episodes use once, then run the episodes in batches.
        n_s = support.shape[1]
        rng = _stream(self._seed_, Stream.ADAPT_ORDER)
        with torch.no_grad():
            z, positions = _embed_used_rows(self._embed_rows, X, support, query)
            y_s = torch.as_tensor(np.asarray(y_support), device=z.device)
            logits = []
            for i in range(0, len(support), _SCORING_CHUNK):
                pos = positions[i : i + _SCORING_CHUNK]
                labels = (
                    y_s.expand(len(pos), -1) if y_s.ndim == 1 else y_s[i : i + len(pos)]
                )
                state = self._store(z[pos[:, :n_s]], labels, rng)
                logits.append(self.module_.query(state, z[pos[:, n_s:]])[..., :n_way])
        return torch.cat(logits)

    def _pool_to_adapt(self, pool):
        # Every step writes n_reads least-used slots (and storing ends with one
        # extra step), so memory_size slots hold this many examples before the
        # least-recently-used access starts wiping the first ones stored.
        capacity = max(self.memory_size // self.n_reads - 1, len(pool.classes))
        if len(pool.X) <= capacity:
            return pool
        rng = _stream(self._seed_, Stream.POOL_SAMPLE)
        return pool.subset(_stratified_sample(pool.codes, capacity, rng))

    def _fit_pool(self, pool) -> None:
        if pool is not None and len(pool.classes) > self._n_labels:
            # Too many classes to bind to the label outputs: adapt-only.
            self.classes_ = pool.classes
            self.pool_state_ = None
            return
        super()._fit_pool(pool)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities over the classes seen in ``fit``.

        Available when the training pool has at most ``max_classes``
        classes: the network stores a sample of the pool and reads each
        sample of ``X`` against it.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        n_classes = len(getattr(self, "classes_", ()))
        if self.pool_state_ is None and n_classes > self._n_labels:
            raise NotFittedError(
                f"This {type(self).__name__} was fitted on {n_classes} "
                f"classes, more than its max_classes={self._n_labels} label "
                "outputs, so it cannot predict over them. Call "
                "adapt(X_support, y_support) with at most max_classes classes."
            )
        return super().predict_proba(X)

    @validate_params(
        {
            "n_way": [Interval(numbers.Integral, 2, None, closed="left")],
            "n_instances": [Interval(numbers.Integral, 1, None, closed="left")],
            "n_episodes": [Interval(numbers.Integral, 1, None, closed="left")],
            # sklearn's "random_state" spelled out, plus the numpy Generator
            # that the episodes are drawn with, which callers may pass.
            "random_state": [
                Interval(numbers.Integral, 0, 2**32 - 1, closed="both"),
                np.random.RandomState,
                np.random.Generator,
                None,
            ],
        },
        prefer_skip_nested_validation=True,
    )
    def accuracy_by_instance(
        self, X, y, *, n_way=5, n_instances=10, n_episodes=100, random_state=0
    ) -> np.ndarray:
        """Accuracy by presentation number within an episode (the paper's table).

        Each episode is a random sequence of ``n_instances`` examples of each
        of ``n_way`` classes drawn from ``(X, y)``, fed with time-offset
        labels; every step is classified before its label is shown.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            A labelled pool (classes never seen in ``fit`` for a fair test).
        y : array-like of shape (n_samples,)
            Labels.
        n_way : int, default=5
            Classes per episode, at most ``max_classes``.
        n_instances : int, default=10
            Presentations of each class per episode.
        n_episodes : int, default=100
            Episodes to average over.
        random_state : int, RandomState instance, Generator or None, default=0
            Seeds the episodes and their orders.

        Returns
        -------
        accuracy : ndarray of shape (n_instances,)
            Entry ``k`` is the accuracy on the ``(k + 1)``-th presentation of a
            class.
        """
        check_is_fitted(self)
        pool = _check_pool(self, X, y, None, classification=True, reset=False)
        self._check_adapt_classes(n_way, "n_way")
        rng = _as_generator(random_state)
        sampler = EpisodeSampler._from_codes(
            pool.codes, n_way, n_instances, 0, classes=pool.classes
        )
        support, _ = sampler.sample(n_episodes, rng)
        labels = torch.as_tensor(sampler.support_labels(), device=self.device_)
        self.module_.eval()
        correct, instance = [], []
        with torch.no_grad():
            for i in range(0, n_episodes, _SCORING_CHUNK):
                rows = support[i : i + _SCORING_CHUNK]
                z = self._embed_rows(pool.X[rows.ravel()]).view(*rows.shape, -1)
                z, y_seq = self._in_random_order(rng, z, labels.expand(len(rows), -1))
                logits = self.module_.run(z, y_seq)[0][..., :n_way]
                correct.append((logits.argmax(-1) == y_seq).cpu())
                # Presentation number: earlier occurrences of the label, plus 1.
                one_hot = F.one_hot(y_seq, n_way)
                seen = (one_hot.cumsum(1) * one_hot).sum(-1)
                instance.append(seen.cpu())
        correct = torch.cat(correct).double()
        instance = torch.cat(instance)
        return np.array(
            [correct[instance == k].mean().item() for k in range(1, n_instances + 1)]
        )
