"""Prototypical Networks (Snell, Swersky & Zemel, 2017)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .._docs import fill_doc
from ._base import _DOC_VALUES, BaseMetricLearner


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
    __doc__ = fill_doc(
        """Prototypical Networks: classify by distance to class means in an embedding.

    The embedding network is meta-learned so that, in every episode, each query
    is nearest to the mean embedding (the *prototype*) of its class's support
    examples. Adaptation is a forward pass: embed the support set and average
    per class. Logits are negative squared Euclidean distances to the
    prototypes, and training minimises their cross-entropy on the query set.
    All episodes of a meta-batch are embedded in one forward pass.

    Parameters
    ----------
    %(module)s
    %(episode)s
    %(train_n_way)s
    %(optimisation)s
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-trained embedding.
    %(training_attributes)s
    %(classes_)s
    pool_state_ : dict or None
        Prototypes of the training classes, used by :meth:`predict`
        (computed at the first prediction and kept).
    %(data_attributes)s

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
    """,
        **_DOC_VALUES,
        train_n_way_note=(
            "The paper trains with more ways than it tests (60-way for Omniglot)."
        ),
    )

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
        self.train_n_way = train_n_way
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

    def _support_summary(self, z_support, y_support, n_classes):
        return _compute_prototypes(z_support, y_support, n_classes)

    def _query_logits(self, summary, z_query):
        return -_squared_euclidean(z_query, summary)
