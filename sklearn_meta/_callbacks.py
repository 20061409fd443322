"""skorch's callbacks in our training loops: the meta-learners' and the policies'.

A learner lists the callbacks every fit has (``_default_callbacks``); the
user's ``callbacks`` parameter adds to them. Each epoch of training (a
meta-update, for the policies) notifies them as skorch's nets do, so skorch's
``EarlyStopping``, ``Checkpoint``, ``LoadInitState``, ``LRScheduler`` and
``PrintLog`` work unchanged.
"""

from __future__ import annotations

from typing import Any

from skorch.history import History

__all__: list[str] = []


class _CallbacksMixin:
    """Initialise the default and the user's callbacks; notify them.

    A class using it defines ``_default_callbacks(n_batches)``, the named
    callbacks every fit has, and the ``callbacks`` parameter.
    """

    def _initialize_callbacks(self, n_batches: int) -> list[tuple[str, Any]]:
        """Return the default and the user's callbacks, named and initialised."""
        callbacks = self._default_callbacks(n_batches)
        names = {name for name, _ in callbacks}
        for item in self.callbacks or []:
            name, cb = item if isinstance(item, tuple) else (type(item).__name__, item)
            if isinstance(cb, type):
                cb = cb()
            if name in names:
                raise ValueError(
                    f"Callback name {name!r} is used twice; give callbacks unique "
                    "names by passing (name, callback) tuples."
                )
            names.add(name)
            callbacks.append((name, cb))
        return [(name, cb.initialize()) for name, cb in callbacks]

    @property
    def history(self) -> History:
        """The training history (skorch's :class:`~skorch.history.History`)."""
        return self.history_

    def notify(self, method_name: str, **cb_kwargs) -> None:
        """Call ``method_name`` on every callback, as skorch's nets do.

        Parameters
        ----------
        method_name : str
            The callback hook, for instance ``"on_epoch_end"``.
        **cb_kwargs : dict
            Passed to the hook.
        """
        for _, cb in self.callbacks_:
            getattr(cb, method_name)(self, **cb_kwargs)
