"""Building the torch module a learner trains: device, seeding, checks.

Every learner turns its ``module`` parameter into a fitted ``module_`` the same
way: ``None`` builds the learner's default, a class is called with the
``module__*`` parameters, and an instance is deep-copied so the user's module
is never trained in place. Initialisers draw from torch's global generator, so
they run inside a forked generator state seeded from the learner's seed: the
caller's random numbers are left untouched and a fit is repeatable.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ._random import _torch_seeded

__all__: list[str] = []


def _resolve_device(device) -> torch.device:
    """``"auto"`` is CUDA when present, else the CPU; anything else is parsed."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto' or a torch device string such as "
            f"'cpu' or 'cuda:0'. Got {device!r} instead."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine. Use device='auto' to fall back to the CPU."
        )
    return resolved


def _make_module(
    module,
    kwargs: dict,
    build_default: Callable[..., nn.Module],
    *,
    seed: int,
    device: torch.device,
) -> nn.Module:
    """Turn a ``module`` parameter into a new module on ``device``.

    Parameters
    ----------
    module : None, nn.Module instance or callable
        The learner's ``module`` parameter.
    kwargs : dict
        The ``module__*`` parameters, without their prefix.
    build_default : callable
        ``build_default(**kwargs)`` builds the learner's default module.
    seed : int
        Seeds the initialisers.
    device : torch.device
        Where the module goes.

    Returns
    -------
    module : nn.Module
        A module the caller owns.
    """

    def build():
        if module is None:
            try:
                return build_default(**kwargs)
            except TypeError as exc:
                if not kwargs:
                    raise  # not the user's parameters: a defect to see as it is
                raise ValueError(
                    f"The module__* parameters {sorted(kwargs)} do not fit the "
                    f"default module: {exc}. Pass module= with the class they are "
                    "meant for (for example sklearn_meta.nn.MLP)."
                ) from exc
        if isinstance(module, nn.Module):
            if kwargs:
                raise ValueError(
                    f"module__ parameters ({sorted(kwargs)}) cannot be applied to "
                    "a module instance; pass the module class instead."
                )
            # A module given by the user is never trained in place.
            return copy.deepcopy(module)
        return module(**kwargs)

    with _torch_seeded(seed):  # modules are built on the CPU
        built = build()
    if not isinstance(built, nn.Module):
        raise TypeError(
            "The 'module' parameter must be a torch.nn.Module instance or a "
            f"callable returning one; got {type(built).__name__}."
        )
    return built.to(device)


def _probe_module(module: nn.Module, sample: torch.Tensor, what: str, hint: str):
    """Run ``module`` once in eval mode on ``sample``; return the output's shape.

    A module that fails raises a ``ValueError`` naming ``what`` it could not
    process, followed by ``hint``, so a mismatch with the data fails before
    training starts rather than deep inside it.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return tuple(module(sample).shape)
    except Exception as exc:
        raise ValueError(
            f"The module could not process {what} of shape "
            f"{tuple(sample.shape[1:])}: {type(exc).__name__}: {exc}. {hint}"
        ) from exc
    finally:
        module.train(was_training)
