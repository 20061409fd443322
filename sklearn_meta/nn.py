"""Backbones: the default networks the learners use when ``module=None``.

:class:`Conv4` for images, :class:`TabularEmbedding` for tabular
classification (it starts as nearest centroid's space), :class:`MLP` for
tabular regression and the memory-augmented network.

Any :class:`torch.nn.Module` that maps a batch of samples ``(n, *sample_shape)``
to ``(n, n_outputs)`` (or to any shape whose leading dimension is ``n``) is a
valid backbone; these are the field's standard defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLP", "Conv4", "TabularEmbedding"]


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


class TabularEmbedding(nn.Module):
    """An embedding of tabular features that starts as nearest centroid's space.

    The default body of the classifiers on tabular data. Samples are centred
    on ``mean`` (the training pool's per-feature mean), multiplied by a
    learned weight per feature (starting at 1), optionally passed through a
    residual MLP whose output layer starts at zero, L2-normalised and
    multiplied by a learned scale:

    ``z = x_c + mlp(x_c)`` with ``x_c = (x - mean) * weight``, output
    ``exp(log_scale) * z / |z|``.

    At the start the embedding is the centred, L2-normalised sample times a
    constant, the space in which :class:`~sklearn_meta.NearestCentroidClassifier`
    (at its defaults) compares samples; training only has to improve on that
    baseline instead of first climbing back to it from random features.

    Parameters
    ----------
    in_features : int
        Number of input features (also the output dimension).
    hidden_features : int, default=0
        Hidden units of the residual MLP; 0, the default, leaves only the
        per-feature weights: a learned metric that cannot stray far from the
        baseline. A residual pays where the training classes share nonlinear
        structure with new ones (64 units: +17 points over nearest centroid
        for Prototypical Networks on Omniglot as 196 features) and costs where
        they do not (3-17 points for every learner measured on digits, from
        five training classes); choose it by cross-validation over classes,
        as in the user guide.
    mean : array-like of shape (in_features,), default=None
        Subtracted from every sample (kept as a buffer, not learned). None
        subtracts nothing.
    scale : float, default=e
        Starting value of the learned scale of the output.

    Examples
    --------
    >>> import torch
    >>> from sklearn_meta.nn import TabularEmbedding
    >>> embedding = TabularEmbedding(4, hidden_features=8)
    >>> z = embedding(torch.tensor([[3.0, 0.0, 0.0, 4.0]]))
    >>> z.shape, round(float(z.norm()), 4)
    (torch.Size([1, 4]), 2.7183)
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int = 0,
        mean=None,
        scale: float = math.e,
    ):
        super().__init__()
        if mean is None:
            mean = torch.zeros(in_features)
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        if mean.shape != (in_features,):
            raise ValueError(
                f"mean must have shape ({in_features},), one value per input "
                f"feature; got shape {tuple(mean.shape)}."
            )
        if not scale > 0:
            raise ValueError(f"scale must be positive; got {scale!r}.")
        self.register_buffer("mean", mean)
        self.weight = nn.Parameter(torch.ones(in_features))
        self.mlp = None
        if hidden_features:
            self.mlp = nn.Sequential(
                nn.Linear(in_features, hidden_features),
                nn.ReLU(),
                nn.Linear(hidden_features, in_features),
            )
            # The residual starts at zero: the embedding starts as the identity.
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Embed samples ``(n, in_features)`` as ``(n, in_features)``."""
        z = (X - self.mean) * self.weight
        if self.mlp is not None:
            z = z + self.mlp(z)
        return F.normalize(z, dim=-1) * self.log_scale.exp()
