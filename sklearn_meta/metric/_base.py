"""What the metric-based learners share: embed, summarise the support, compare."""

from __future__ import annotations

import numbers
from abc import abstractmethod
from functools import partial

import numpy as np
import torch
from torch.nn import functional as F

from .._episodes import _SCORING_CHUNK
from .._functional import _embed_episodes, _embed_used_rows
from .._sklearn import Interval
from ..base import BaseMetaLearner, MetaClassifierMixin
from ..tasks import _EpisodeBatch

#: The documented defaults and phrases the metric learners share (the entries
#: themselves are in :mod:`sklearn_meta._docs`).
_DOC_VALUES = {
    "module_role": (
        "The embedding network: maps ``(n, *sample_shape)`` to ``(n, ...)`` "
        "(flattened to ``(n, D)``)."
    ),
    "meta_batch_size": 1,
    "meta_batch_note": ", embedded in one forward pass",
    "train_split_note": (
        ", which skorch's ``EarlyStopping`` and ``Checkpoint`` callbacks can monitor"
    ),
}


class BaseMetricLearner(MetaClassifierMixin, BaseMetaLearner):
    """Base class of learners that adapt by embedding the support set.

    A subclass says how to summarise an embedded support set
    (:meth:`_support_summary`) and how to score embedded queries against that
    summary (:meth:`_query_logits`); everything is batched over episodes.
    The ``train_n_way`` parameter (the ways of training episodes) is
    constrained and read here; a learner without it trains with ``n_way``.
    """

    _parameter_constraints: dict = {
        **BaseMetaLearner._parameter_constraints,
        "train_n_way": [None, Interval(numbers.Integral, 2, None, closed="left")],
    }

    @abstractmethod
    def _support_summary(
        self, z_support: torch.Tensor, y_support: torch.Tensor, n_classes: int
    ):
        """Summarise embedded support sets.

        ``z_support`` is ``(B, n_support, D)``, ``y_support`` ``(B, n_support)``
        int64 class codes; returns whatever :meth:`_query_logits` takes.
        """

    @abstractmethod
    def _query_logits(self, summary, z_query: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_query, n_classes)`` of embedded queries.

        Computed from the summary :meth:`_support_summary` returned.
        """

    @property
    def _train_n_way(self) -> int:
        train_n_way = getattr(self, "train_n_way", None)
        return self.n_way if train_n_way is None else train_n_way

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(n, D)`` of samples ``(n, *sample_shape)``."""
        return self.module_(X).flatten(1)

    def _episode_losses(self, batch: _EpisodeBatch):
        z_support, z_query = _embed_episodes(
            self._embed, batch.X_support, batch.X_query
        )
        logits = self._query_logits(
            self._support_summary(z_support, batch.y_support, batch.n_classes), z_query
        )
        losses = (
            F.cross_entropy(
                logits.flatten(0, 1), batch.y_query.flatten(), reduction="none"
            )
            .view(batch.y_query.shape)
            .mean(1)
        )
        accuracy = (logits.argmax(-1) == batch.y_query).float().mean(1)
        return losses, accuracy

    def _adapt(self, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict:
        with torch.no_grad():
            z = self._map_chunks(self._embed, X)
            y = y.to(z.device)
            return {"summary": self._support_summary(z[None], y[None], n_classes)}

    def _predict_logits(self, state: dict, X: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            z = self._map_chunks(self._embed, X)
            return self._query_logits(state["summary"], z[None])[0]

    def _episode_logits_from_pool(self, X, support, y_support, query, n_way):
        z, positions = _embed_used_rows(
            partial(self._map_chunks, self._embed), X, support, query
        )
        n_support = support.shape[1]
        y_s = torch.as_tensor(y_support, device=z.device)
        logits = []
        for pos in positions.split(_SCORING_CHUNK):
            z_s, z_q = z[pos[:, :n_support]], z[pos[:, n_support:]]
            summary = self._support_summary(z_s, y_s.expand(len(pos), -1), n_way)
            logits.append(self._query_logits(summary, z_q))
        return torch.cat(logits)
