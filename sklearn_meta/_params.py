"""Parameters routed to components, as in skorch (``module__hidden=32``).

A learner's ``__init__`` stores ``module__*`` and ``optimizer__*`` keyword
arguments as parameters of their own, so ``get_params``, ``set_params``,
``clone`` and ``GridSearchCV`` see them; ``fit`` hands them to the module's
constructor and the optimiser.
"""

from __future__ import annotations

__all__: list[str] = []

#: Parameter prefixes routed to components.
_ROUTED_PREFIXES = ("module__", "optimizer__")


class _RoutedParamsMixin:
    """``get_params``/``set_params`` that include the routed parameters."""

    def _store_routed_kwargs(self, kwargs: dict) -> None:
        """Keep extra keyword arguments (``module__*``/``optimizer__*``) as parameters.

        Like every parameter they are only validated in ``fit``.
        """
        for key, value in kwargs.items():
            setattr(self, key, value)

    def _extra_param_names(self) -> list[str]:
        """Names of the parameters set beyond the signature's (the routed ones)."""
        known = set(self._get_param_names())
        return [
            k
            for k in vars(self)
            if k not in known and not k.startswith("_") and not k.endswith("_")
        ]

    def _check_extra_params(self) -> None:
        """Raise a TypeError for an extra parameter that is not routed."""
        unexpected = [
            k for k in self._extra_param_names() if not k.startswith(_ROUTED_PREFIXES)
        ]
        if unexpected:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) "
                f"{sorted(unexpected)}. "
                "Only parameters routed to a component, prefixed 'module__' or "
                "'optimizer__', may be added."
            )

    def get_params(self, deep: bool = True) -> dict:
        """Get parameters, including routed ``module__*``/``optimizer__*`` ones.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update((k, getattr(self, k)) for k in self._extra_param_names())
        return params

    def set_params(self, **params):
        """Set parameters, including routed ``module__*``/``optimizer__*`` ones.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to their new values.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        extra = set(self._extra_param_names())
        routed = {
            k: v
            for k, v in params.items()
            if k.startswith(_ROUTED_PREFIXES) or k in extra
        }
        for key, value in routed.items():
            setattr(self, key, value)
        rest = {k: v for k, v in params.items() if k not in routed}
        if rest:
            super().set_params(**rest)
        return self

    def _routed(self, prefix: str) -> dict:
        """Return the parameters routed to ``prefix`` (``"module"``), unprefixed."""
        return {
            k[len(prefix) + 2 :]: v
            for k, v in vars(self).items()
            if k.startswith(prefix + "__")
        }
