"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, 2016)."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .._docs import fill_doc
from .._sklearn import Interval
from ._base import _DOC_VALUES, BaseMetricLearner


class _Support(NamedTuple):
    """An embedded support set, batched over episodes.

    ``embeddings`` is ``(B, n_support, D)``: g(x_i, S), after the full context
    embedding when there is one; ``one_hot`` is ``(B, n_support, n_classes)``.
    """

    embeddings: torch.Tensor
    one_hot: torch.Tensor


def _cosine_attention(
    z_query: torch.Tensor, z_support: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Attention ``(B, n_query, n_support)`` of queries over a support set.

    ``z_query`` is ``(B, n_query, D)`` and ``z_support`` ``(B, n_support, D)``:
    a softmax over the support set of the cosine similarities divided by
    ``temperature`` (eq. 2 of the paper, where the temperature is 1).
    """
    cosine = F.normalize(z_query, dim=-1) @ F.normalize(z_support, dim=-1).mT
    return torch.softmax(cosine / temperature, dim=-1)


def _label_mixture_log_proba(
    attention: torch.Tensor, one_hot: torch.Tensor
) -> torch.Tensor:
    """Log-probabilities ``(B, n_query, n_classes)`` of the attention's label mixture.

    ``attention`` is ``(B, n_query, n_support)`` and ``one_hot`` ``(B, n_support,
    n_classes)``. The prediction is the attention-weighted sum of the support
    labels (eq. 1); its log is clamped so that a class with no weight at all
    gets a large finite negative logit rather than ``-inf``.
    """
    proba = attention @ one_hot.to(attention.dtype)
    return proba.clamp_min(torch.finfo(proba.dtype).tiny).log()


class _FullContextEmbedding(nn.Module):
    """A backbone with the full context embeddings of the paper's appendix.

    ``forward`` is the backbone (g' = f'), flattened to ``(n, D)``; the support
    embeddings are then re-read by a bidirectional LSTM over the support set
    (:meth:`embed_support`) and each query by an attention LSTM over the
    embedded support set (:meth:`embed_query`). Holding the three in one module
    makes the LSTMs part of ``module_``: trained, saved and restored with it.

    Parameters
    ----------
    backbone : torch.nn.Module
        The embedding network.
    dim : int
        Size D of the backbone's flattened embeddings.
    steps : int
        Read steps K of the attention LSTM.
    """

    def __init__(self, backbone: nn.Module, dim: int, steps: int):
        super().__init__()
        self.backbone = backbone
        self.support_lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        # The paper's LSTM takes f'(x) as input and [h, r] as its recurrent
        # state; gates linear in [f', h, r] are an LSTM cell fed [f', r] with
        # hidden state h.
        self.query_cell = nn.LSTMCell(2 * dim, dim)
        self.steps = steps

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.backbone(X).flatten(1)

    def embed_support(self, g_prime: torch.Tensor) -> torch.Tensor:
        """Re-embed support sets ``(B, n_support, D)`` in their context.

        g(x_i, S) = h_fwd_i + h_bwd_i + g'(x_i), with a bidirectional LSTM read
        over the support set in the order given.
        """
        h, _ = self.support_lstm(g_prime)
        h_forward, h_backward = h.chunk(2, dim=-1)
        return h_forward + h_backward + g_prime

    def embed_query(self, f_prime: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Refine queries ``(B, n_query, D)`` by K attention reads over ``g``.

        ``g`` is the embedded support set ``(B, n_support, D)``. Starting from
        h_0 = f'(x) and c_0 = 0, each step reads r = sum_i softmax(h^T g_i) g_i,
        then h, c = LSTM([f'(x), r], (h, c)) and h = h + f'(x); the result is h_K.
        """
        B, n_query, D = f_prime.shape
        f = f_prime.reshape(B * n_query, D)
        h, c = f, torch.zeros_like(f)
        for _ in range(self.steps):
            read_weights = torch.softmax(h.view(B, n_query, D) @ g.mT, dim=-1)
            r = (read_weights @ g).reshape(B * n_query, D)
            h, c = self.query_cell(torch.cat([f, r], dim=-1), (h, c))
            h = h + f
        return h.view(B, n_query, D)


class MatchingNetworkClassifier(BaseMetricLearner):
    __doc__ = fill_doc(
        """Matching Networks: classify by attention over the embedded support set.

    The embedding network is meta-learned so that, in every episode, each query
    attends to the support examples of its own class: the attention is a
    softmax over the support set of cosine similarities between embeddings,
    and the predicted distribution is the attention-weighted sum of the
    support labels' one-hot vectors. Training minimises the negative
    log-likelihood of that mixture on the query set. Adaptation is a forward
    pass: embed the support set. With ``fce=True`` the embeddings also depend
    on the whole support set (the paper's full context embeddings): a
    bidirectional LSTM re-embeds the support set and an attention LSTM refines
    each query, both meta-learned with the embedding network. All episodes of
    a meta-batch are embedded in one forward pass.

    Parameters
    ----------
    %(module)s
    %(episode)s
    %(train_n_way)s
    fce : bool, default=False
        Use full context embeddings: a bidirectional LSTM over the support set
        and an attention LSTM for the queries (the paper's appendix). The
        support embeddings then depend on the order of the support set.
    fce_steps : int, default=5
        Read steps K of the queries' attention LSTM when ``fce=True``.
    temperature : float, default=0.1
        The cosine similarities are divided by it before the softmax. The
        paper uses 1.0, but cosines lie in [-1, 1], so its attention is nearly
        uniform and the likelihood is nearly flat: in short runs on Omniglot
        (5-way 1-shot, 120 training episodes) accuracy rose from 0.61 untrained
        to 0.66 with 1.0 and to 0.79 with 0.1. Smaller values sharpen the
        attention towards the nearest support examples.
    %(optimisation)s
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-trained embedding; with ``fce=True`` a container whose
        ``backbone`` is the embedding network and which also holds the LSTMs.
    %(training_attributes)s
    %(classes_)s
    pool_state_ : dict or None
        The embedded training pool, the support set of :meth:`predict`
        (computed at the first prediction and kept).
    %(data_attributes)s

    See Also
    --------
    PrototypicalClassifier : compare queries with class means instead.
    sklearn.neighbors.KNeighborsClassifier : a hard, unlearned counterpart.

    References
    ----------
    .. [1] O. Vinyals, C. Blundell, T. Lillicrap, K. Kavukcuoglu and
       D. Wierstra, "Matching Networks for One Shot Learning", NeurIPS 2016.

    Examples
    --------
    >>> from sklearn_meta import MatchingNetworkClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = MatchingNetworkClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=2,
    ...                                 episodes_per_epoch=20, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.classes_
    array([8, 9])
    """,
        **_DOC_VALUES,
        module_note=(
            "It embeds support and query examples alike; with ``fce=True`` the "
            "LSTMs are added to any module."
        ),
        train_n_way_note=("The paper trains with the number of ways it tests with."),
    )

    _parameter_constraints: dict = {
        **BaseMetricLearner._parameter_constraints,
        "fce": ["boolean"],
        "fce_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        train_n_way=None,
        fce=False,
        fce_steps=5,
        temperature=0.1,
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
        self.fce = fce
        self.fce_steps = fce_steps
        self.temperature = temperature
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
        if not self.fce:
            return backbone
        return _FullContextEmbedding(backbone, dim, self.fce_steps)

    def _support_summary(self, z_support, y_support, n_classes):
        # The fitted module, not the fce parameter, says whether there are
        # LSTMs, so set_params(fce=...) after fit cannot break predictions.
        if isinstance(self.module_, _FullContextEmbedding):
            z_support = self.module_.embed_support(z_support)
        return _Support(z_support, F.one_hot(y_support, n_classes))

    def _attention(self, summary: _Support, z_query: torch.Tensor) -> torch.Tensor:
        """Attention ``(B, n_query, n_support)`` of embedded queries."""
        if isinstance(self.module_, _FullContextEmbedding):
            z_query = self.module_.embed_query(z_query, summary.embeddings)
        return _cosine_attention(z_query, summary.embeddings, self.temperature)

    def _query_logits(self, summary, z_query):
        return _label_mixture_log_proba(
            self._attention(summary, z_query), summary.one_hot
        )
