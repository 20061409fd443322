"""What the metric-based learners share: embed, summarise the support, compare."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from torch.nn import functional as F

from .._episodes import _SCORING_CHUNK
from ..base import BaseMetaLearner, MetaClassifierMixin
from ..tasks import _EpisodeBatch


class BaseMetricLearner(MetaClassifierMixin, BaseMetaLearner):
    """Base class of learners that adapt by embedding the support set.

    A subclass says how to summarise an embedded support set
    (:meth:`_support_summary`) and how to score embedded queries against that
    summary (:meth:`_query_logits`); everything is batched over episodes.
    """

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

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(n, D)`` of samples ``(n, *sample_shape)``."""
        return self.module_(X).flatten(1)

    def _episode_losses(self, batch: _EpisodeBatch):
        B, n_support = batch.y_support.shape
        n_query = batch.y_query.shape[1]
        # Support and query of every episode in one forward pass.
        z = self._embed(
            torch.cat([batch.X_support.flatten(0, 1), batch.X_query.flatten(0, 1)])
        )
        z_support = z[: B * n_support].view(B, n_support, -1)
        z_query = z[B * n_support :].view(B, n_query, -1)
        logits = self._query_logits(
            self._support_summary(z_support, batch.y_support, batch.n_classes), z_query
        )
        losses = (
            F.cross_entropy(
                logits.flatten(0, 1), batch.y_query.flatten(), reduction="none"
            )
            .view(B, n_query)
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
        # Embeddings in eval mode do not depend on the batch, so every sample
        # the episodes use is embedded once, then episodes are index arithmetic.
        used, inverse = np.unique(
            np.concatenate([support, query], axis=1), return_inverse=True
        )
        inverse = inverse.reshape(len(support), -1)
        z = self._map_chunks(self._embed, X[used])
        n_support = support.shape[1]
        y_s = torch.as_tensor(y_support, device=z.device)
        logits = []
        for i in range(0, len(support), _SCORING_CHUNK):
            pos = torch.as_tensor(inverse[i : i + _SCORING_CHUNK], device=z.device)
            z_s, z_q = z[pos[:, :n_support]], z[pos[:, n_support:]]
            summary = self._support_summary(z_s, y_s.expand(len(pos), -1), n_way)
            logits.append(self._query_logits(summary, z_q))
        return torch.cat(logits)
