"""Batched image augmentations for meta-training.

The standard augmentations of few-shot training, for a learner's ``augment``
parameter. Each is a callable on a batch of float images ``(n, C, H, W)`` on
the device that returns a batch of the same shape, transforming every image
with its own random draw in one batched operation. They draw from torch's
generator of the batch's device, which ``fit`` seeds from ``random_state``,
so a fit with augmentation is repeatable; called directly, they draw from
torch's global generator (or a ``generator`` given to the call).

Intensities are expected in [0, 1], as uint8 pools give them;
:class:`ColorJitter` clips to that range.

Examples
--------
>>> import torch
>>> from sklearn_meta.augment import RandomCrop, RandomHorizontalFlip
>>> images = torch.rand(8, 3, 32, 32)
>>> augment = [RandomCrop(padding=4), RandomHorizontalFlip()]
>>> out = images
>>> for transform in augment:
...     out = transform(out, generator=torch.Generator().manual_seed(0))
>>> out.shape
torch.Size([8, 3, 32, 32])
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

__all__ = [
    "ColorJitter",
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
]


def _check_images(X) -> torch.Tensor:
    """Return ``X`` if it is a float batch of images ``(n, C, H, W)``, else raise."""
    if not isinstance(X, torch.Tensor) or X.ndim != 4 or not X.is_floating_point():
        got = (
            f"a {X.dtype} tensor of shape {tuple(X.shape)}"
            if isinstance(X, torch.Tensor)
            else type(X).__name__
        )
        raise ValueError(
            f"Augmentations take a float tensor of images (n, channels, height, "
            f"width); got {got}."
        )
    return X


def _uniform(n: int, low: float, high: float, X: torch.Tensor, generator):
    """Draw ``n`` numbers uniform in ``[low, high)`` on ``X``'s device."""
    u = torch.rand(n, device=X.device, generator=generator, dtype=X.dtype)
    return low + (high - low) * u


def _check_range(name: str, value, low: float, high: float) -> float:
    if not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}]; got {value!r}.")
    return float(value)


def _check_interval(name: str, value, low: float, high: float) -> tuple:
    """Check a ``(min, max)`` pair within ``[low, high]``."""
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, numbers.Real) for v in value)
        or not low <= value[0] <= value[1] <= high
    ):
        raise ValueError(
            f"{name} must be a pair (min, max) with {low} <= min <= max <= {high}; "
            f"got {value!r}."
        )
    return float(value[0]), float(value[1])


class _Augmentation:
    """Base of the augmentations: a ``repr`` of the parameters."""

    _params: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{type(self).__name__}({args})"


class Compose(_Augmentation):
    """Apply augmentations in turn.

    A learner's ``augment`` given as a list is composed this way.

    Parameters
    ----------
    transforms : list of callables
        Each takes and returns a batch ``(n, C, H, W)``.
    """

    _params = ("transforms",)

    def __init__(self, transforms: Sequence[Callable]):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise ValueError(
                    f"augment[{i}] is a {type(t).__name__}, not a callable taking a "
                    "batch of images."
                )
        self.transforms = transforms

    def __call__(self, X: torch.Tensor, generator=None) -> torch.Tensor:
        """Apply each transform in turn (ours draw from ``generator``)."""
        for t in self.transforms:
            X = t(X, generator=generator) if isinstance(t, _Augmentation) else t(X)
        return X


class RandomCrop(_Augmentation):
    """Pad every side, then crop a window of the original size at random.

    The standard augmentation of CIFAR-FS and mini-ImageNet training.

    Parameters
    ----------
    padding : int, default=4
        Pixels added on each side before cropping.
    padding_mode : {"constant", "reflect", "replicate"}, default="constant"
        How the border is filled (``"constant"`` pads with zeros), as in
        :func:`torch.nn.functional.pad`.
    """

    _params = ("padding", "padding_mode")

    def __init__(self, padding: int = 4, padding_mode: str = "constant"):
        if not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"padding must be an int >= 0; got {padding!r}.")
        if padding_mode not in ("constant", "reflect", "replicate"):
            raise ValueError(
                "padding_mode must be 'constant', 'reflect' or 'replicate'; got "
                f"{padding_mode!r}."
            )
        self.padding = int(padding)
        self.padding_mode = padding_mode

    def __call__(self, X: torch.Tensor, generator=None) -> torch.Tensor:
        """Crop each image of ``X`` at its own random offset."""
        X = _check_images(X)
        p = self.padding
        if p == 0:
            return X
        n, _, h, w = X.shape
        padded = F.pad(X, (p, p, p, p), mode=self.padding_mode)
        dy = torch.randint(0, 2 * p + 1, (n,), device=X.device, generator=generator)
        dx = torch.randint(0, 2 * p + 1, (n,), device=X.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=X.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=X.device))[:, None, None, :]
        batch = torch.arange(n, device=X.device)[:, None, None, None]
        channels = torch.arange(X.shape[1], device=X.device)[None, :, None, None]
        return padded[batch, channels, rows, cols]


class RandomResizedCrop(_Augmentation):
    """Crop a random part of each image and resize it to the original size.

    The box covers a fraction of the area drawn uniformly from ``scale``, with
    an aspect ratio drawn log-uniformly from ``ratio``; a box that would not
    fit is clipped to the image (torchvision draws again instead). The crop is
    resampled bilinearly.

    Parameters
    ----------
    scale : tuple of float, default=(0.08, 1.0)
        Range of the box's share of the image's area.
    ratio : tuple of float, default=(3/4, 4/3)
        Range of the box's width over its height.
    """

    _params = ("scale", "ratio")

    def __init__(self, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.scale = _check_interval("scale", scale, 1e-6, 1.0)
        self.ratio = _check_interval("ratio", ratio, 1e-6, 1e6)

    def __call__(self, X: torch.Tensor, generator=None) -> torch.Tensor:
        """Crop and resize each image of ``X`` with its own box."""
        X = _check_images(X)
        n = len(X)
        area = _uniform(n, *self.scale, X, generator)
        log_lo, log_hi = torch.log(torch.tensor(self.ratio, dtype=X.dtype))
        aspect = torch.exp(_uniform(n, float(log_lo), float(log_hi), X, generator))
        # Box sides as fractions of the image's width and height.
        bw = torch.sqrt(area * aspect).clamp(max=1.0)
        bh = torch.sqrt(area / aspect).clamp(max=1.0)
        # Box centres, in [-1, 1] coordinates, anywhere the box fits.
        cx = (1 - bw) * (2 * _uniform(n, 0.0, 1.0, X, generator) - 1)
        cy = (1 - bh) * (2 * _uniform(n, 0.0, 1.0, X, generator) - 1)
        theta = torch.zeros(n, 2, 3, device=X.device, dtype=X.dtype)
        theta[:, 0, 0], theta[:, 0, 2] = bw, cx
        theta[:, 1, 1], theta[:, 1, 2] = bh, cy
        grid = F.affine_grid(theta, list(X.shape), align_corners=False)
        return F.grid_sample(
            X, grid, mode="bilinear", padding_mode="border", align_corners=False
        )


class RandomHorizontalFlip(_Augmentation):
    """Mirror each image left to right with probability ``p``.

    Parameters
    ----------
    p : float, default=0.5
        Probability that an image is flipped.
    """

    _params = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = _check_range("p", p, 0.0, 1.0)

    def __call__(self, X: torch.Tensor, generator=None) -> torch.Tensor:
        """Flip a random share ``p`` of the images of ``X``."""
        X = _check_images(X)
        flip = _uniform(len(X), 0.0, 1.0, X, generator) < self.p
        return torch.where(flip[:, None, None, None], X.flip(-1), X)


class ColorJitter(_Augmentation):
    """Change brightness, contrast and saturation by random factors.

    Each image gets its own factors, drawn uniformly from
    ``[max(0, 1 - v), 1 + v]`` for a setting ``v``, applied in this order:
    brightness scales the intensities; contrast blends the image with the
    mean of its grey levels; saturation blends a colour image with its grey
    version (single-channel images have none to change). Results are clipped
    to [0, 1]. torchvision applies the three in a random order; here the
    order is fixed.

    Parameters
    ----------
    brightness, contrast, saturation : float, default=0.4
        How far each factor may move from 1 (0 leaves that property alone).
    """

    _params = ("brightness", "contrast", "saturation")

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4
    ):
        self.brightness = _check_range("brightness", brightness, 0.0, float("inf"))
        self.contrast = _check_range("contrast", contrast, 0.0, float("inf"))
        self.saturation = _check_range("saturation", saturation, 0.0, float("inf"))

    def _factors(self, v: float, X: torch.Tensor, generator) -> torch.Tensor:
        return _uniform(len(X), max(0.0, 1 - v), 1 + v, X, generator)[
            :, None, None, None
        ]

    def __call__(self, X: torch.Tensor, generator=None) -> torch.Tensor:
        """Jitter each image of ``X`` by its own factors."""
        X = _check_images(X)
        colour = X.shape[1] == 3
        weights = torch.tensor([0.299, 0.587, 0.114], device=X.device, dtype=X.dtype)

        def grey(images: torch.Tensor) -> torch.Tensor:
            if not colour:
                return images.mean(1, keepdim=True)
            return (images * weights[None, :, None, None]).sum(1, keepdim=True)

        if self.brightness:
            X = (X * self._factors(self.brightness, X, generator)).clamp(0, 1)
        if self.contrast:
            mean = grey(X).mean(dim=(1, 2, 3), keepdim=True)
            f = self._factors(self.contrast, X, generator)
            X = (f * X + (1 - f) * mean).clamp(0, 1)
        if self.saturation and colour:
            f = self._factors(self.saturation, X, generator)
            X = (f * X + (1 - f) * grey(X)).clamp(0, 1)
        return X
