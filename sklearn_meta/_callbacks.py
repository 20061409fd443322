"""skorch's callbacks in our training loops: the meta-learners' and the policies'.

A learner lists the callbacks every fit has (``_default_callbacks``); the
user's ``callbacks`` parameter adds to them. Each epoch of training (a
meta-update, for the policies) notifies them as skorch's nets do, so skorch's
``EarlyStopping``, ``Checkpoint``, ``LoadInitState``, ``LRScheduler`` and
``PrintLog`` work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skorch.callbacks import Checkpoint, PrintLog, ProgressBar, TrainEndCheckpoint
from skorch.history import History

from ._random import Stream, _stream, _torch_seeded

__all__: list[str] = []

#: Callbacks that print or write files: one process of a data-parallel fit
#: runs them.
_WRITERS = (Checkpoint, TrainEndCheckpoint, PrintLog, ProgressBar)


class _CallbacksMixin:
    """Initialise the default and the user's callbacks; notify them.

    A class using it defines ``_default_callbacks(n_batches)``, the named
    callbacks every fit has, and the ``callbacks`` parameter; its fit sets
    ``history_``, ``callbacks_``, ``_seed_`` and ``device_`` before
    :meth:`_train_epochs`.
    """

    def _train_epochs(
        self,
        n_epochs: int,
        run_epoch: Callable[[int], None],
        *,
        X: Any,
        y: Any,
        exhausted: Callable[[], bool] = lambda: False,
        **epoch_kwargs: Any,
    ) -> None:
        """Run ``n_epochs`` epochs of ``run_epoch(epoch)``, notifying the callbacks.

        ``on_train_begin`` may restore a checkpoint (skorch's
        ``LoadInitState``); the run then spans ``_resumed_epochs_`` (the
        epochs restored) plus ``n_epochs``. Each epoch, numbered from 0 over
        the whole run, runs with torch's global generator seeded by its
        number, so random layers (dropout) draw in a resumed run what they
        drew in the uninterrupted one. skorch's ``EarlyStopping`` stops the
        loop by raising ``KeyboardInterrupt``, as in skorch's nets;
        ``exhausted()`` stops it before an epoch (an iterator of tasks ran
        dry). ``epoch_kwargs`` go to ``on_epoch_begin`` and ``on_epoch_end``.
        """
        self.notify("on_train_begin", X=X, y=y)
        self._resumed_epochs_ = len(self.history_)
        try:
            for _ in range(n_epochs):
                if exhausted():
                    break
                epoch = len(self.history_)
                self.history_.new_epoch()
                self.history_.record("epoch", epoch + 1)
                self.notify("on_epoch_begin", **epoch_kwargs)
                rng = _stream(self._seed_, Stream.EPOCH_TORCH, epoch)
                with _torch_seeded(rng, self.device_):
                    run_epoch(epoch)
                self.notify("on_epoch_end", **epoch_kwargs)
        except KeyboardInterrupt:
            pass
        self.notify("on_train_end", X=X, y=y)

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
        # Writers do nothing on the other processes of a data-parallel fit,
        # not even make their folders.
        quiet = self._quiet_process()
        return [
            (name, cb if quiet and isinstance(cb, _WRITERS) else cb.initialize())
            for name, cb in callbacks
        ]

    @property
    def _data_parallel(self):
        """The data-parallel group of the fit under way (None: one process)."""
        return self.__dict__.get("_dp")

    def _quiet_process(self) -> bool:
        """Whether this is a process of a data-parallel fit other than the first."""
        dp = self._data_parallel
        return dp is not None and dp.rank != 0

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
        # In a data-parallel fit only the first process prints and writes
        # files; every process runs the others (their decisions agree, as
        # the histories do).
        quiet = self._quiet_process()
        for _, cb in self.callbacks_:
            if quiet and isinstance(cb, _WRITERS):
                continue
            getattr(cb, method_name)(self, **cb_kwargs)
