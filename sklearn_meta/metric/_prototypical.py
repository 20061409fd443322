"""Prototypical Networks (Snell, Swersky & Zemel, 2017)."""

from __future__ import annotations

import numbers

import torch
from torch.nn import functional as F

from .._sklearn import Interval
from ._base import BaseMetricLearner


def _compute_prototypes(
    z_support: torch.Tensor, y_support: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Class means of embedded support sets.

    ``z_support`` is ``(B, n_support, D)`` and ``y_support`` ``(B, n_support)``;
    the result is ``(B, n_classes, D)`` (eq. 1 of the paper). Works for any
    label order and any number of shots per class.
    """
    one_hot = F.one_hot(y_support, n_classes).to(z_support.dtype)  # (B, n, C)
    sums = one_hot.transpose(1, 2) @ z_support
    return sums / one_hot.sum(1).clamp_min(1)[..., None]


def _squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(B, n, m)`` between rows of ``a`` and ``b``.

    ``a`` is ``(B, n, D)`` and ``b`` is ``(B, m, D)``.
    """
    sq = (a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[..., None, :]
    return torch.baddbmm(sq, a, b.transpose(1, 2), alpha=-2).clamp_min(0)


class PrototypicalClassifier(BaseMetricLearner):
    """Prototypical Networks: classify by distance to class means in an embedding.

    The embedding network is meta-learned so that, in every episode, each query
    is nearest to the mean embedding (the *prototype*) of its class's support
    examples. Adaptation is a forward pass: embed the support set and average
    per class. Logits are negative squared Euclidean distances to the
    prototypes, and training minimises their cross-entropy on the query set.
    All episodes of a meta-batch are embedded in one forward pass.

    Parameters
    ----------
    module : torch.nn.Module instance or class, default=None
        The embedding network: maps ``(n, *sample_shape)`` to ``(n, ...)``
        (flattened to ``(n, D)``). A class is instantiated with the
        ``module__*`` parameters; an instance is copied, never trained in
        place. None uses :class:`~sklearn_meta.nn.Conv4` for images
        ``(n, C, H, W)`` and :class:`~sklearn_meta.nn.MLP` for tabular data.
    n_way : int, default=5
        Classes per episode (at evaluation; and at training unless
        ``train_n_way`` is set).
    k_shot : int, default=1
        Support examples per class.
    n_query : int, default=15
        Query examples per class.
    train_n_way : int, default=None
        Classes per training episode. The paper trains with more ways than it
        tests (60-way for Omniglot). None means ``n_way``.
    meta_batch_size : int, default=1
        Episodes per optimiser step, embedded in one forward pass.
    max_epochs : int, default=10
        Epochs of meta-training.
    episodes_per_epoch : int, default=100
        Training episodes per epoch (rounded down to whole meta-batches).
    lr : float, default=1e-3
        Learning rate of the optimiser.
    optimizer : callable, default=torch.optim.Adam
        Optimiser class; ``optimizer__*`` parameters are passed to it.
    train_split : float, cross-validator or None, default=None
        Meta-validation: a float holds out that fraction of the classes (of
        the groups when ``fit`` gets groups; of the tasks for ``fit(tasks)``);
        a splitter such as :class:`~sklearn_meta.model_selection.ClassShuffleSplit`
        gives the split itself. The history then records ``valid_loss`` and
        ``valid_acc`` each epoch, which skorch's ``EarlyStopping`` and
        ``Checkpoint`` callbacks can monitor.
    n_valid_episodes : int, default=100
        Meta-validation episodes per epoch (the same episodes every epoch).
    n_eval_episodes : int, default=600
        Episodes :meth:`score` averages over.
    device : str or torch.device, default="auto"
        Where to train: "auto" takes CUDA when available.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the default ones (epoch timer, loss and accuracy records, and
        with ``verbose`` a progress bar and a printed log).
    verbose : int, default=0
        Print a progress bar and a per-epoch log when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the episodes.
    **kwargs : dict
        ``module__*`` and ``optimizer__*`` parameters.

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-trained embedding.
    optimizer_ : torch.optim.Optimizer
        The optimiser, with its state (for resuming).
    history_ : skorch.history.History
        Per-epoch and per-batch records.
    callbacks_ : list of (str, callback)
        The initialised callbacks.
    classes_ : ndarray of shape (n_classes,)
        Classes of the training pool (after ``fit(X, y)``).
    pool_state_ : dict or None
        Prototypes of the training classes, used by :meth:`predict`
        (computed at the first prediction and kept).
    n_features_in_ : int
        ``X.shape[1]`` in ``fit`` (channels, for images).
    sample_shape_ : tuple of int
        Shape of one sample.
    device_ : torch.device
        The device in use.

    See Also
    --------
    sklearn.neighbors.NearestCentroid : the same rule without a learned embedding.

    References
    ----------
    .. [1] J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for
       Few-shot Learning", NeurIPS 2017.

    Examples
    --------
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = PrototypicalClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=2,
    ...                              episodes_per_epoch=20, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.classes_
    array([8, 9])
    """

    _parameter_constraints: dict = {
        **BaseMetricLearner._parameter_constraints,
        "train_n_way": [None, Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        train_n_way=None,
        meta_batch_size=1,
        max_epochs=10,
        episodes_per_epoch=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
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
        self.train_n_way = train_n_way
        self.meta_batch_size = meta_batch_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed_kwargs(kwargs)

    @property
    def _train_n_way(self) -> int:
        return self.n_way if self.train_n_way is None else self.train_n_way

    def _support_summary(self, z_support, y_support, n_classes):
        return _compute_prototypes(z_support, y_support, n_classes)

    def _query_logits(self, summary, z_query):
        return -_squared_euclidean(z_query, summary)
