"""Siamese Networks (Koch, Zemel & Salakhutdinov, 2015)."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from .._docs import fill_doc
from .._functional import _embed_episodes
from .._sklearn import Interval, StrOptions
from ._base import _DOC_VALUES, BaseMetricLearner

#: Largest number of elements of the ``(..., n_query, n_support, D)`` pair
#: differences built at once; queries are processed in chunks beyond it.
_PAIR_CHUNK_ELEMENTS = 2**24


class _Support(NamedTuple):
    """An embedded support set, batched over episodes.

    ``embeddings`` is ``(B, n_support, D)`` and ``labels`` ``(B, n_support)``
    int64 class codes below ``n_classes``.
    """

    embeddings: torch.Tensor
    labels: torch.Tensor
    n_classes: int


class _SiameseNetwork(nn.Module):
    """Twin networks with shared weights, and the head that compares them.

    ``forward`` is the backbone, flattened to ``(n, D)``: both members of a
    pair go through the same network. ``head`` is the paper's weighted L1
    distance, a ``Linear(D, 1)`` on ``|h1 - h2|`` whose weights are the
    ``alpha_j`` (eq. 1). Holding both in one module makes the head part of
    ``module_``: trained, saved and restored with it. ``loss`` records how the
    network was trained, so the similarity it defines does not change if the
    estimator's ``loss`` parameter is set after ``fit``.

    Parameters
    ----------
    backbone : torch.nn.Module
        The embedding network.
    dim : int
        Size D of the backbone's flattened embeddings.
    loss : {"bce", "contrastive"}
        The training loss, which defines the similarity.
    """

    def __init__(self, backbone: nn.Module, dim: int, loss: str):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(dim, 1)
        with torch.no_grad():
            # Negative weights make the untrained network a weighted L1
            # nearest-neighbour rule (a larger difference lowers p(same));
            # PyTorch's symmetric initialisation would make half the features
            # reward differences, and one-shot accuracy start below chance.
            self.head.weight.abs_().neg_()
        self.loss = loss

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.backbone(X).flatten(1)

    def pair_scores(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """Scores ``(...)`` of pairs of embeddings ``(..., D)`` (broadcast).

        With ``loss="bce"`` the logit of p(same), sum_j alpha_j |h1_j - h2_j| + b;
        with ``loss="contrastive"`` the Euclidean distance ``||h1 - h2||``.
        """
        if self.loss == "contrastive":
            return _euclidean(h1, h2)
        return _weighted_l1_logits(h1, h2, self.head)

    def log_similarity(self, scores: torch.Tensor) -> torch.Tensor:
        """Log of the similarity in (0, 1] of pairs with the given scores.

        ``log p(same) = log sigmoid(logit)`` for "bce" and ``-distance`` (the
        similarity ``exp(-distance)``) for "contrastive".
        """
        if self.loss == "contrastive":
            return -scores
        return F.logsigmoid(scores)


def _weighted_l1_logits(
    h1: torch.Tensor, h2: torch.Tensor, head: nn.Linear
) -> torch.Tensor:
    """Logits ``(...)`` of p(same) for embeddings ``h1``, ``h2`` of shape ``(..., D)``.

    sum_j alpha_j |h1_j - h2_j| + b (eq. 1 of the paper, before the sigmoid).
    The inputs broadcast against each other.
    """
    return head((h1 - h2).abs()).squeeze(-1)


def _euclidean(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(...)`` between embeddings ``(..., D)`` (broadcast).

    The gradient at distance zero is taken as zero (PyTorch's convention for
    the norm), so identical embeddings do not produce NaNs.
    """
    return torch.linalg.vector_norm(h1 - h2, dim=-1)


def _balanced_pair_weights(same: torch.Tensor) -> torch.Tensor:
    """Pair weights ``(B, n_query, n_support)``: same and different count equally.

    ``same`` is ``(B, n_query, n_support)``: 1.0 for same-class pairs, 0.0 for
    the others. In each episode the same-class pairs share a weight of 1/2
    and the different-class pairs the other 1/2, so a weighted sum is the
    average of the two kinds' mean losses: what drawing same and different
    pairs with equal probability gives in expectation. An n-way episode has
    n - 1 times more different pairs than same ones, so an unweighted mean
    would mostly learn to say "different".
    """
    n_same = same.sum((1, 2), keepdim=True).clamp_min(1)
    n_different = (1 - same).sum((1, 2), keepdim=True).clamp_min(1)
    return 0.5 * (same / n_same + (1 - same) / n_different)


def _bce_pair_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Balanced binary cross-entropy ``(B,)`` of pair logits.

    ``logits`` is ``(B, n_query, n_support)`` and ``same`` the boolean mask
    of same-class pairs of the same shape, the targets (eq. 2 of
    the paper, without its weight decay), weighted by
    :func:`_balanced_pair_weights`.
    """
    target = same.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (_balanced_pair_weights(target) * bce).sum((1, 2))


def _contrastive_pair_loss(
    distances: torch.Tensor, same: torch.Tensor, margin: float
) -> torch.Tensor:
    """Balanced contrastive loss ``(B,)`` of pair distances.

    ``distances`` is ``(B, n_query, n_support)`` and ``same`` the boolean mask
    of same-class pairs of the same shape: 1/2 d^2 for same-class pairs and
    1/2 max(0, margin - d)^2 for the others (Hadsell, Chopra & LeCun, 2006,
    eq. 4), weighted by :func:`_balanced_pair_weights`.
    """
    target = same.to(distances.dtype)
    losses = 0.5 * torch.where(
        same, distances.square(), (margin - distances).clamp_min(0).square()
    )
    return (_balanced_pair_weights(target) * losses).sum((1, 2))


def _per_class_max(
    values: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Per-class maxima ``(B, n_query, n_classes)`` of pair values.

    ``values`` is ``(B, n_query, n_support)`` and ``labels`` ``(B,
    n_support)``. A class without support examples gets the most negative
    finite value, so it is never predicted and softmaxes stay finite.
    """
    B, n_query, _ = values.shape
    out = values.new_full((B, n_query, n_classes), torch.finfo(values.dtype).min)
    index = labels[:, None, :].expand(B, n_query, -1)
    return out.scatter_reduce(-1, index, values, reduce="amax", include_self=True)


class SiameseClassifier(BaseMetricLearner):
    __doc__ = fill_doc(
        """Siamese Networks: verify pairs, classify by the most similar support example.

    Twin networks with shared weights (one embedding network applied to both
    members of a pair) are meta-learned with a verification task: say whether
    two examples belong to the same class. The similarity of a pair is
    ``p(same) = sigmoid(sum_j alpha_j |h1_j - h2_j| + b)``, a weighted L1 distance
    between the embeddings whose weights alpha are meta-learned with the
    embedding. Pairs come from episodes: every (query, support) pair of an
    episode, labelled same or different, with binary cross-entropy weighted so
    that same and different pairs count equally in each episode (balanced
    pair sampling; an n-way episode has n - 1 times more different pairs).
    With ``loss="contrastive"`` the embedding is instead trained with the
    contrastive loss on the Euclidean distance d (Hadsell et al., 2006), and
    the similarity is exp(-d); the weighted L1 head is then unused.

    Adaptation is a forward pass: embed the support set. A query goes to the
    class of its most similar support example (one-shot classification by
    verification, as in the paper): its score for a class is the largest
    log-similarity to that class's support examples. :meth:`predict_proba` is
    the softmax of those scores: a ranking of the classes, not calibrated
    probabilities. :meth:`predict_pairs` gives the verification probability
    p(same) of pairs of samples directly.

    Parameters
    ----------
    %(module)s
    %(episode)s
    %(train_n_way)s
    loss : {"auto", "bce", "contrastive"}, default="auto"
        The pair loss: "bce" is the paper's binary cross-entropy of p(same)
        from the weighted L1 distance; "contrastive" is Hadsell et al.'s
        contrastive loss on the Euclidean distance of the embeddings, with
        similarity exp(-distance). "auto" is "contrastive" for tabular data
        and "bce" (the paper's) for anything else: on the tabular suite, with
        the embedding body of 64 hidden units, the weighted L1 head learned
        to tell the training classes apart in ways that read new classes
        backwards, and the contrastive loss scored higher on every problem
        (``docs/design.md``, "Siamese networks train with the contrastive
        loss on tabular data").
    margin : float, default=1.0
        Distance beyond which different-class pairs no longer contribute to
        the contrastive loss (unused with "bce").
    %(optimisation)s
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        A container whose ``backbone`` is the meta-trained embedding network
        and whose ``head`` is the weighted L1 distance (``Linear(D, 1)``).
    %(training_attributes)s
    %(classes_)s
    pool_state_ : dict or None
        The embedded training pool, the support set of :meth:`predict`
        (computed at the first prediction and kept).
    %(data_attributes)s

    See Also
    --------
    MatchingNetworkClassifier : attend over the support set instead.
    PrototypicalClassifier : compare queries with class means.
    sklearn.neighbors.KNeighborsClassifier : the one-nearest-neighbour rule
        without a learned similarity.

    References
    ----------
    .. [1] G. Koch, R. Zemel and R. Salakhutdinov, "Siamese Neural Networks for
       One-shot Image Recognition", ICML Deep Learning Workshop, 2015.
    .. [2] R. Hadsell, S. Chopra and Y. LeCun, "Dimensionality Reduction by
       Learning an Invariant Mapping", CVPR 2006.

    Examples
    --------
    >>> from sklearn_meta import SiameseClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = SiameseClassifier(n_way=3, k_shot=1, n_query=5, train_n_way=7,
    ...                         max_epochs=2, episodes_per_epoch=20, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.4  # chance: 1/3
    True
    >>> p_same = clf.predict_pairs(X[:3], X[3:6])  # verification: p(same class)
    >>> p_same.shape
    (3,)
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.classes_
    array([8, 9])
    """,
        **_DOC_VALUES,
        module_note=(
            "It embeds both members of a pair; the weighted L1 head is added to "
            "any module."
        ),
        train_n_way_note=(
            "An episode gives ``n_query * k_shot * train_n_way`` same-class pairs "
            "and ``train_n_way - 1`` times as many different-class pairs."
        ),
        history_note=(
            "; the accuracy is the one-shot classification accuracy of the "
            "episodes' queries"
        ),
    )

    _parameter_constraints: dict = {
        **BaseMetricLearner._parameter_constraints,
        "loss": [StrOptions({"auto", "bce", "contrastive"})],
        "margin": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        train_n_way=None,
        loss="auto",
        margin=1.0,
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
        self.loss = loss
        self.margin = margin
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

    def _wrap_module(self, backbone: nn.Module, dim: int) -> nn.Module:
        loss = self.loss
        if loss == "auto":
            loss = "contrastive" if len(self.sample_shape_) == 1 else "bce"
        return _SiameseNetwork(backbone, dim, loss)

    def _pair_scores(self, z_query: torch.Tensor, z_support: torch.Tensor):
        """Scores ``(B, n_query, n_support)`` of every (query, support) pair.

        ``z_query`` is ``(B, n_query, D)`` and ``z_support`` ``(B, n_support,
        D)``. Queries are taken in chunks so the pairwise differences stay
        small when a whole training pool is the support set.
        """
        B, n_support, D = z_support.shape
        step = max(1, _PAIR_CHUNK_ELEMENTS // max(1, B * n_support * D))
        return torch.cat(
            [
                self.module_.pair_scores(
                    z_query[:, i : i + step, None, :], z_support[:, None, :, :]
                )
                for i in range(0, z_query.shape[1], step)
            ],
            dim=1,
        )

    def _episode_losses(self, batch):
        # The twins share their weights, so one network embeds both members of
        # every pair, support and query of all episodes in one forward pass.
        z_support, z_query = _embed_episodes(
            self._embed, batch.X_support, batch.X_query
        )
        scores = self._pair_scores(z_query, z_support)
        same = batch.y_query[:, :, None] == batch.y_support[:, None, :]
        if self.module_.loss == "contrastive":
            losses = _contrastive_pair_loss(scores, same, self.margin)
        else:
            losses = _bce_pair_loss(scores, same)
        with torch.no_grad():
            logits = _per_class_max(
                self.module_.log_similarity(scores), batch.y_support, batch.n_classes
            )
            accuracy = (logits.argmax(-1) == batch.y_query).float().mean(1)
        return losses, accuracy

    def _support_summary(self, z_support, y_support, n_classes):
        return _Support(z_support, y_support, n_classes)

    def _query_logits(self, summary, z_query):
        log_similarity = self.module_.log_similarity(
            self._pair_scores(z_query, summary.embeddings)
        )
        return _per_class_max(log_similarity, summary.labels, summary.n_classes)

    def predict_pairs(self, X1, X2) -> np.ndarray:
        """Similarity of each pair ``(X1[i], X2[i])``: the verification face.

        With ``loss="bce"`` this is the network's probability p(same) that the
        two samples belong to the same class; with ``loss="contrastive"`` it
        is exp(-distance). Either way it lies in (0, 1], is symmetric in its
        two arguments, and needs no support set: it also works for classes
        never seen in training.

        Parameters
        ----------
        X1 : array-like of shape (n_pairs, ...)
            First members of the pairs.
        X2 : array-like of shape (n_pairs, ...)
            Second members, in the same order.

        Returns
        -------
        similarity : ndarray of shape (n_pairs,)
            The similarity of each pair.
        """
        check_is_fitted(self)
        X1 = self._check_X(X1)
        X2 = self._check_X(X2)
        if len(X1) != len(X2):
            raise ValueError(
                f"X1 has {len(X1)} samples but X2 has {len(X2)}; predict_pairs "
                "compares row i of X1 with row i of X2. Pass arrays with the same "
                "number of rows."
            )
        self.module_.eval()
        with torch.no_grad():
            z1 = self._map_chunks(self._embed, X1)
            z2 = self._map_chunks(self._embed, X2)
            scores = self.module_.pair_scores(z1, z2)
            return self.module_.log_similarity(scores).double().exp().cpu().numpy()
