"""The network of the memory-augmented classifier (Santoro et al., 2016).

:class:`_MANNModel` holds everything meta-learned (the embedding, the LSTM
controller, the key, control and output layers) and runs episodes as batches
of sequences over the addressing of :mod:`._addressing`. The estimator,
:class:`~sklearn_meta.MANNClassifier`, feeds it episodes in its own orders and
label maps.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._addressing import _cosine_read_weights, _least_used, _lru_write

__all__: list[str] = []

#: softplus(9) + 1 = 10: the key strength reads start with.
_INITIAL_STRENGTH_BIAS = 9.0


class _MANNModel(nn.Module):
    """Everything meta-learned: the embedding, the controller and the heads.

    A step reads the example's embedding and the previous example's label,
    runs the LSTM controller, reads the memory by content with ``n_reads``
    heads, classifies from the controller's output and what was read, and
    writes the keys to memory by least-recently-used access. As in the paper,
    a step writes before it reads: an example's key lands in a fresh slot,
    which the step then reads, so the next step (which shows the example's
    label) writes to that same slot and binds the label to the example.
    """

    def __init__(
        self,
        body: nn.Module,
        dim: int,
        n_labels: int,
        controller_size: int,
        memory_size: int,
        memory_dim: int,
        n_reads: int,
        usage_decay: float,
    ):
        super().__init__()
        self.body = body
        # Standardised features: embeddings (ReLU outputs, pixels) share a large
        # common component, which would make every key alike and content
        # addressing blind until the controller learned to remove it.
        self.norm = nn.BatchNorm1d(dim)
        self.controller = nn.LSTMCell(dim + n_labels, controller_size)
        self.keys = nn.Linear(controller_size, n_reads * memory_dim, bias=False)
        # Per head: the write gate's logit and the key strength's pre-activation.
        self.controls = nn.Linear(controller_size, 2 * n_reads)
        with torch.no_grad():
            # Sharp reads from the start (key strength about 10): a step then
            # reads mostly the slot it just wrote, and the next step, which
            # shows the label, writes into that slot, binding the two.
            self.controls.bias[1::2] = _INITIAL_STRENGTH_BIAS
        self.output = nn.Linear(controller_size + n_reads * memory_dim, n_labels)
        self.n_labels = n_labels
        self.label_scale = math.sqrt(dim)
        self.memory_size = memory_size
        self.memory_dim = memory_dim
        self.n_reads = n_reads
        self.usage_decay = usage_decay

    def initial_state(self, n: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the state of ``n`` fresh episodes: empty memory, no label.

        The state holds the controller's ``h`` and ``c`` ``(n, H)``, the
        ``memory`` ``(n, N, W)``, the slot ``usage`` ``(n, N)``, the last
        ``read`` weights and the ``least_used`` weights ``(n, R, N)``, and the
        one-hot ``label`` ``(n, n_labels)`` shown at the next step.
        """
        H = self.controller.hidden_size
        N, W, R = self.memory_size, self.memory_dim, self.n_reads
        usage = like.new_zeros(n, N)
        return {
            "h": like.new_zeros(n, H),
            "c": like.new_zeros(n, H),
            "memory": like.new_zeros(n, N, W),
            "usage": usage,
            "read": like.new_zeros(n, R, N),
            "least_used": _least_used(usage, R),
            "label": like.new_zeros(n, self.n_labels),
        }

    def _control(
        self, state: dict[str, torch.Tensor], z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the controller on inputs ``z`` ``(B, Q, D)`` from one state each.

        Returns ``h`` ``(B, Q, H)``, ``c``, keys ``(B, Q, R, W)``, write-gate
        logits and key strengths ``(B, Q, R)``.
        """
        B, Q = z.shape[:2]
        H = self.controller.hidden_size
        # The standardised embedding has norm about sqrt(D), the one-hot label
        # 1: scaled alike, the label is not drowned in the controller's input.
        label = state["label"] * self.label_scale
        inputs = torch.cat([z, label[:, None].expand(B, Q, -1)], -1)
        h, c = self.controller(
            inputs.flatten(0, 1),
            (
                state["h"][:, None].expand(B, Q, H).flatten(0, 1),
                state["c"][:, None].expand(B, Q, H).flatten(0, 1),
            ),
        )
        keys = self.keys(h).view(B, Q, self.n_reads, self.memory_dim)
        gate_logit, strength = self.controls(h).view(B, Q, self.n_reads, 2).unbind(-1)
        return (
            h.view(B, Q, H),
            c.view(B, Q, H),
            keys,
            gate_logit,
            1 + F.softplus(strength),
        )

    def _classify(
        self,
        memory: torch.Tensor,
        h: torch.Tensor,
        keys: torch.Tensor,
        strength: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, Q, n_labels)`` and read weights ``(B, Q, R, N)``.

        ``memory`` is ``(B, N, W)``, ``h`` ``(B, Q, H)``, ``keys``
        ``(B, Q, R, W)`` and ``strength`` ``(B, Q, R)``: each of the ``Q``
        inputs reads the memory of its episode with ``R`` heads.
        """
        B, Q, R, W = keys.shape
        weights = _cosine_read_weights(
            keys.reshape(B, Q * R, W), memory, strength.reshape(B, Q * R)
        )
        read = (weights @ memory).view(B, Q, R * W)
        logits = self.output(torch.cat([h, read], -1))
        return logits, weights.view(B, Q, R, -1)

    def step(
        self, state: dict[str, torch.Tensor], z: torch.Tensor, label: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step of a batch of sequences: write, then read and classify.

        ``z`` is ``(B, D)``, ``label`` ``(B,)`` the true label of this step
        (shown to the controller at the next step). Returns the logits
        ``(B, n_labels)``, computed before the label is shown, and the new state.
        """
        h, c, keys, gate_logit, strength = self._control(state, z[:, None])
        h, c, keys = h[:, 0], c[:, 0], keys[:, 0]
        memory, write = _lru_write(
            state["memory"],
            keys,
            torch.sigmoid(gate_logit[:, 0]),
            state["read"],
            state["least_used"],
        )
        logits, read = self._classify(memory, h[:, None], keys[:, None], strength)
        read = read[:, 0]
        # eq. 5: decayed usage plus this step's read and write weights.
        usage = self.usage_decay * state["usage"] + read.sum(1) + write.sum(1)
        new_state = {
            "h": h,
            "c": c,
            "memory": memory,
            "usage": usage,
            "read": read,
            "least_used": _least_used(usage, self.n_reads),
            "label": F.one_hot(label, self.n_labels).to(z.dtype),
        }
        return logits[:, 0], new_state

    def run(
        self, z: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Feed sequences ``z`` ``(B, T, D)`` with labels ``(B, T)``.

        Memory starts empty (it is wiped between episodes). Returns the
        logits ``(B, T, n_labels)`` of every step, each computed before its
        label was shown, and the final state.
        """
        state = self.initial_state(len(z), z)
        logits = []
        for t in range(z.shape[1]):
            out, state = self.step(state, z[:, t], labels[:, t])
            logits.append(out)
        return torch.stack(logits, 1), state

    def store(
        self, z: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Feed support sequences, then one step that shows the last label.

        The extra step (an empty example) lets the last example be bound to
        its label too. Returns the logits of the sequence and the stored
        state, whose label input is cleared for the queries.
        """
        logits, state = self.run(z, labels)
        _, state = self.step(state, torch.zeros_like(z[:, 0]), labels.new_zeros(len(z)))
        state["label"] = torch.zeros_like(state["label"])
        return logits, state

    def query(self, state: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, Q, n_labels)`` of queries ``(B, Q, D)`` read against a state.

        Each query is one more step after the stored sequence, with no label
        shown, independent of the other queries: it reads the memory and
        writes nothing.
        """
        h, _, keys, _, strength = self._control(state, z)
        return self._classify(state["memory"], h, keys, strength)[0]
