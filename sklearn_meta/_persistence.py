"""Persistence: pickling fitted torch state, checkpoints, frozen inference views.

A fitted attribute is one whose name ends in ``_`` (sklearn's convention),
including private ones such as ``_seed_``. :func:`_fitted_attrs` says which
they are, and everything here follows it: ``fit`` clears them, pickling packs
them into one ``torch.save`` blob that loads on a machine without a GPU, and
an inference copy shares them.
"""

from __future__ import annotations

import io
import warnings

import torch
from sklearn.exceptions import NotFittedError
from skorch.exceptions import DeviceWarning
from skorch.history import History

__all__: list[str] = []


def _fitted_attrs(state: dict) -> list[str]:
    """Names in ``state`` (an instance ``__dict__``) that hold fitted state."""
    return [k for k in state if k.endswith("_") and not k.startswith("__")]


def _pack_torch_state(state: dict) -> dict:
    """Move the fitted attributes into one ``torch.save`` blob.

    On loading, :func:`_unpack_torch_state` maps CUDA tensors to the CPU when
    the machine has no GPU, so a model trained on a GPU loads anywhere.
    """
    state = dict(state)  # object.__getstate__ returns the live __dict__
    fitted = {k: state.pop(k) for k in _fitted_attrs(state)}
    buffer = io.BytesIO()
    torch.save(fitted, buffer)
    state["_torch_state"] = buffer.getvalue()
    return state


def _unpack_torch_state(state: dict) -> dict:
    """Undo :func:`_pack_torch_state`, mapping CUDA tensors to the CPU if needed."""
    blob = state.pop("_torch_state", None)
    if blob is None:
        return state
    map_location = None if torch.cuda.is_available() else torch.device("cpu")
    fitted = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=False)
    device = fitted.get("device_")
    if (
        device is not None
        and torch.device(device).type == "cuda"
        and not torch.cuda.is_available()
    ):
        _warn_loaded_on_cpu({str(device)}, stacklevel=4)
        fitted["device_"] = torch.device("cpu")
    state.update(fitted)
    return state


def _warn_loaded_on_cpu(devices: set[str], stacklevel: int = 3) -> None:
    """Warn that a model saved on the GPUs ``devices`` was loaded on the CPU."""
    warnings.warn(
        f"This model was saved on {', '.join(sorted(devices))}, which is not "
        "available here; its tensors were loaded on the CPU and it will run on "
        "the CPU.",
        DeviceWarning,
        stacklevel=stacklevel,
    )


class _TorchStateMixin:
    """Pickling, fitted-state clearing and frozen views for inference.

    Pickles map CUDA tensors to the CPU on machines without a GPU. Every
    estimator of the package holding torch state uses it: the meta-learners,
    the adapted estimators and the policies.
    """

    #: Fitted attributes an adapted estimator's frozen copy leaves behind:
    #: what only training needs, and the prediction over the training pool
    #: (which holds the pool itself until that prediction is first made).
    _not_for_inference: tuple[str, ...] = ("optimizer_", "callbacks_", "_pool_cache_")

    def _settle(self) -> None:
        """Compute whatever is computed lazily, so that a saved copy is small."""

    def __getstate__(self):
        """Pack the fitted attributes into one ``torch.save`` blob."""
        self._settle()
        return _pack_torch_state(super().__getstate__())

    def __setstate__(self, state):
        """Unpack the fitted attributes, on the CPU when there is no GPU."""
        super().__setstate__(_unpack_torch_state(state))

    def _clear_fitted(self) -> None:
        """Remove every fitted attribute, so a failed ``fit`` leaves none behind."""
        for attr in _fitted_attrs(vars(self)):
            delattr(self, attr)

    def _inference_copy(self):
        """Make a copy that keeps what prediction needs, frozen in time.

        Its fitted torch state goes through the pickling blob above, so the
        copy has modules of its own: a later ``load_params`` (which loads
        weights in place) or ``fit`` of the original leaves it as it was.
        """
        drop = self._not_for_inference
        state = {k: v for k, v in vars(self).items() if k not in drop}
        frozen = object.__new__(type(self))
        frozen.__setstate__(_pack_torch_state(state))
        return frozen


class _CheckpointMixin:
    """skorch's ``save_params``/``load_params``, so its ``Checkpoint`` works."""

    def _after_params_loaded(self) -> None:
        """Drop what the old parameters computed (the learners' hook)."""

    def _check_initialized(self, what: str) -> None:
        """Raise NotFittedError naming ``what`` unless the module exists."""
        if not hasattr(self, "module_"):
            raise NotFittedError(
                f"{what} needs the module to exist: fit this {type(self).__name__} "
                "first, or pass skorch's LoadInitState(checkpoint) callback to fit "
                "to resume from a checkpoint."
            )

    def save_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        use_safetensors: bool = False,
        **kwargs,
    ) -> None:
        """Save the module's parameters, the optimizer state and the history.

        The skorch interface, so skorch's ``Checkpoint`` callback works.

        Parameters
        ----------
        f_params : file-like object or str, default=None
            Where to save the module's ``state_dict``.
        f_optimizer : file-like object or str, default=None
            Where to save the optimizer's ``state_dict`` (nothing is written
            when nothing is trained: a fixed module, or a non-learned baseline).
        f_criterion : file-like object or str, default=None
            Accepted for compatibility with skorch's ``Checkpoint`` and ignored:
            the loss of a meta-learner has no parameters.
        f_history : file-like object or str, default=None
            Where to save the history as JSON.
        use_safetensors : bool, default=False
            Must be False: the optimizer state is not a flat tensor dict.
        **kwargs : dict
            ``f_module``, skorch's name for ``f_params``.
        """
        self._check_initialized("save_params")
        _check_safetensors(use_safetensors)
        f_params = _module_file(f_params, kwargs, "save_params")
        if f_params is not None:
            torch.save(self.module_.state_dict(), f_params)
        if f_optimizer is not None and getattr(self, "optimizer_", None) is not None:
            torch.save(self.optimizer_.state_dict(), f_optimizer)
        if f_history is not None:
            self.history_.to_file(f_history)

    def load_params(
        self,
        f_params=None,
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
        checkpoint=None,
        use_safetensors: bool = False,
        **kwargs,
    ) -> None:
        """Load what :meth:`save_params` saved (or a skorch ``Checkpoint``).

        Loading after ``fit`` replaces the meta-learned parameters, so the
        prediction over the training classes is dropped: call :meth:`adapt`
        (or ``fit`` again) afterwards.

        Parameters
        ----------
        f_params, f_optimizer, f_history : file-like object or str, default=None
            Files written by :meth:`save_params`.
        f_criterion : file-like object or str, default=None
            Ignored (see :meth:`save_params`).
        checkpoint : skorch.callbacks.Checkpoint, default=None
            Take the file names from this checkpoint.
        use_safetensors : bool, default=False
            Must be False.
        **kwargs : dict
            ``f_module``, skorch's name for ``f_params``.
        """
        self._check_initialized("load_params")
        _check_safetensors(use_safetensors)
        f_params = _module_file(f_params, kwargs, "load_params")
        if checkpoint is not None:
            # The history first: checkpoint file names may depend on it.
            if f_history is None and checkpoint.f_history is not None:
                self.history_ = History.from_file(checkpoint.f_history_)
            files = checkpoint.get_formatted_files(self)
            f_params = f_params or files.get("f_params")
            f_optimizer = f_optimizer or files.get("f_optimizer")
            f_history = f_history or files.get("f_history")
        map_location = self.device_
        if f_params is not None:
            self.module_.load_state_dict(
                torch.load(f_params, map_location=map_location, weights_only=True)
            )
            self._after_params_loaded()
        if f_optimizer is not None and getattr(self, "optimizer_", None) is not None:
            self.optimizer_.load_state_dict(
                torch.load(f_optimizer, map_location=map_location, weights_only=True)
            )
        if f_history is not None:
            self.history_ = History.from_file(f_history)


def _check_safetensors(use_safetensors: bool) -> None:
    if use_safetensors:
        raise ValueError(
            "use_safetensors=True is not supported: sklearn_meta saves with "
            "torch.save. Pass use_safetensors=False (the default)."
        )


def _module_file(f_params, kwargs: dict, caller: str):
    """Accept skorch's ``f_module`` (what its Checkpoint passes) for ``f_params``."""
    f_module = kwargs.pop("f_module", None)
    if kwargs:
        raise TypeError(
            f"{caller}() got unexpected argument(s) {sorted(kwargs)}; meta-learners "
            "have one module, saved with f_params (or f_module)."
        )
    if f_params is not None and f_module is not None:
        raise TypeError(f"{caller}() got both f_params and f_module; pass one.")
    return f_module if f_params is None else f_params
