"""Memory addressing of the memory-augmented network (Santoro et al., 2016).

Content-based reads, the least-used weights and the least-recently-used
write, as batched tensor functions: every memory of a batch of episodes is
read and written at once. Equations are numbered as in the paper.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__: list[str] = []


def _cosine_read_weights(
    keys: torch.Tensor, memory: torch.Tensor, strength: torch.Tensor
) -> torch.Tensor:
    """Content-based read weights: a softmax over slots of cosine similarities.

    ``keys`` is ``(B, K, W)`` (``K`` keys per memory), ``memory`` ``(B, N, W)``
    and ``strength`` ``(B, K)``; the result is ``(B, K, N)``, each row a
    distribution over the ``N`` slots (eq. 2-3 of the paper, with the key
    strength of Graves et al.'s content addressing). Empty slots have
    similarity 0.
    """
    similarity = F.normalize(keys, dim=-1, eps=1e-8) @ F.normalize(
        memory, dim=-1, eps=1e-8
    ).transpose(1, 2)
    return torch.softmax(strength[..., None] * similarity, dim=-1)


def _least_used(usage: torch.Tensor, n: int) -> torch.Tensor:
    """One-hot weights ``(B, n, N)`` of the ``n`` least-used slots.

    ``usage`` is ``(B, N)``; row ``r`` marks the slot with the ``r``-th
    smallest usage (ties go to the lower slot). Their sum is the paper's
    ``w^lu`` (eq. 6): ones at the ``n`` smallest usages, ``n`` the number of
    reads.
    """
    slots = torch.argsort(usage, dim=-1, stable=True)[:, :n]
    return F.one_hot(slots, usage.shape[-1]).to(usage.dtype)


def _lru_write(
    memory: torch.Tensor,
    keys: torch.Tensor,
    write_gate: torch.Tensor,
    prev_read: torch.Tensor,
    prev_least_used: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-recently-used access: write ``keys`` and return memory and weights.

    ``memory`` is ``(B, N, W)``, ``keys`` ``(B, R, W)`` (one per head),
    ``write_gate`` ``(B, R)`` in (0, 1), ``prev_read`` and ``prev_least_used``
    ``(B, R, N)``. Each head writes to a mix of the slots it read last step
    and its least-used slot (eq. 7); the least-used slots are wiped first,
    so they receive fresh content (eq. 8). Returns the new memory
    ``(B, N, W)`` and the write weights ``(B, R, N)``.
    """
    gate = write_gate[..., None]
    write = gate * prev_read + (1 - gate) * prev_least_used
    wiped = memory * (1 - prev_least_used.sum(1).clamp_max(1))[..., None]
    return wiped + write.transpose(1, 2) @ keys, write
