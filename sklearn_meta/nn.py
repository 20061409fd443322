"""Backbones: the default networks the learners use when ``module=None``.

Any :class:`torch.nn.Module` that maps a batch of samples ``(n, *sample_shape)``
to ``(n, n_outputs)`` (or to any shape whose leading dimension is ``n``) is a
valid backbone; these are the field's standard defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

__all__ = ["MLP", "Conv4"]


class _PoolIfLarge(nn.Module):
    """2x2 max-pooling that leaves maps smaller than 2x2 alone.

    Lets the 4-block conv net run on small images (8x8 digits) while keeping the
    standard architecture (and the 64-dimensional output) at 28x28.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Max-pool ``x`` when its maps are large enough, else pass it on."""
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            return x
        return nn.functional.max_pool2d(x, 2)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    # Pooling before the ReLU gives the same output as the usual
    # conv-BN-ReLU-pool order (max and ReLU commute) with the ReLU on a quarter
    # of the values.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        _PoolIfLarge(),
        nn.ReLU(),
    )


class Conv4(nn.Sequential):
    """The standard 4-block convolutional embedding of few-shot learning.

    Each block is a 3x3 convolution with ``hidden_channels`` filters, batch
    normalisation, ReLU and 2x2 max-pooling (Vinyals et al., 2016; Snell et al.,
    2017). On 28x28 Omniglot images the output is 64-dimensional.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    hidden_channels : int, default=64
        Filters of every block.
    n_blocks : int, default=4
        Number of blocks.

    Examples
    --------
    >>> import torch
    >>> from sklearn_meta.nn import Conv4
    >>> Conv4()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 64])
    """

    def __init__(
        self, in_channels: int = 1, hidden_channels: int = 64, n_blocks: int = 4
    ):
        channels = [in_channels] + [hidden_channels] * n_blocks
        super().__init__(
            *(_conv_block(c_in, c_out) for c_in, c_out in pairwise(channels)),
            nn.Flatten(),
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed images ``(n, C, H, W)`` as ``(n, D)``."""
        # Channels-last runs the convolutions and pooling 1.5-2x faster on CPU
        # (measured in benchmarks/protonet.py); the output is the same. Inside
        # torch.func transforms (vmap over tasks) memory formats are not
        # supported, so the layout is left as it is there.
        if not torch._C._functorch.is_functorch_wrapped_tensor(x):
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


class MLP(nn.Sequential):
    """A multi-layer perceptron for tabular inputs.

    Parameters
    ----------
    in_features : int
        Number of input features.
    hidden_layer_sizes : sequence of int, default=(64, 64)
        Width of each hidden layer (ReLU activations).
    out_features : int, default=64
        Output dimension (an embedding, or logits/targets when used as a head).

    Examples
    --------
    >>> import torch
    >>> from sklearn_meta.nn import MLP
    >>> MLP(4, hidden_layer_sizes=(8,), out_features=3)(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        in_features: int,
        hidden_layer_sizes: Sequence[int] = (64, 64),
        out_features: int = 64,
    ):
        sizes = [in_features, *hidden_layer_sizes]
        layers: list[nn.Module] = []
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)


def _default_backbone(sample_shape: tuple[int, ...], **kwargs) -> nn.Module:
    """Build the default backbone for samples of ``sample_shape``.

    ``(n_features,)`` gets an :class:`MLP`, ``(channels, height, width)`` a
    :class:`Conv4`. ``kwargs`` are the user's ``module__*`` parameters.
    """
    if len(sample_shape) == 1:
        return MLP(kwargs.pop("in_features", sample_shape[0]), **kwargs)
    return Conv4(kwargs.pop("in_channels", sample_shape[0]), **kwargs)
