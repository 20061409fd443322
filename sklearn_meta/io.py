"""Save and load whole estimators in a format that never executes code on load.

A pickle (``joblib.dump``) is exact and fast, but loading one runs whatever
code the file asks for, so a pickle from an untrusted source is unsafe to
open. The format of :func:`dump` and :func:`load` is safe to open:

- a zip archive of a JSON document (the parameters, fitted attributes and the
  structure of every object), one safetensors file of the torch tensors and
  one of the numeric numpy arrays;
- loading reads data only. Objects are rebuilt from their class and
  attributes, and every class or function the file names must be trusted
  before anything is imported: by default the classes of sklearn_meta, torch
  modules and optimisers, skorch callbacks and gymnasium spaces; anything
  else (a user's own module class, say) only if passed in ``trusted``;
- scikit-learn objects inside an estimator (the pipelines of algorithm
  selection) are stored with skops, scikit-learn's own safe format, which
  checks its types the same way.

Round trips are exact: predictions, parameters and fitted state are equal to
the bit, and objects shared in the saved estimator (a module shared by a
meta-learner and its adapted estimators) are shared in the loaded one.
Tensors saved on a GPU load on the GPU when there is one and on the CPU,
with a warning, otherwise.
"""

from __future__ import annotations

import io as _io
import os
import zipfile
from collections.abc import Iterable
from typing import Any, BinaryIO

from . import __version__
from ._persistence import _warn_loaded_on_cpu
from ._serialization import (
    ARRAYS,
    PROTOCOL,
    SCHEMA,
    SKOPS_DIR,
    TENSORS,
    Decoder,
    Encoder,
    _import_skops,
    dumps_schema,
    named_types,
    skops_trusted_by_default,
    untrusted_names,
)

__all__ = ["UntrustedTypesError", "dump", "get_untrusted_types", "load"]

_FORMAT = "sklearn_meta"

#: First bytes of files that are pickles (protocol 2 and later) or the
#: compressed pickles joblib writes (zlib, gzip, bz2, xz, lzma).
_PICKLE_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00")

File = str | os.PathLike | BinaryIO


class UntrustedTypesError(ValueError):
    """A file names classes or functions that are not trusted.

    Attributes
    ----------
    untrusted : list of str
        The names, ``"module.QualName"``, sorted.
    """

    def __init__(self, untrusted: list[str]):
        self.untrusted = untrusted
        super().__init__(
            f"The file names {len(untrusted)} type(s) or function(s) that are not "
            f"trusted: {untrusted}. Nothing was imported or built. If you trust "
            "the file's source, pass them to load(file, trusted=[...]) (as names "
            "or as the objects themselves); sklearn_meta.io.get_untrusted_types "
            "lists them."
        )


def dump(estimator: Any, file: File) -> None:
    """Save ``estimator`` (fitted or not) in the safe format.

    Parameters
    ----------
    estimator : object
        A meta-learner, an adapted estimator, a policy, an algorithm-selection
        estimator, or any object built of what the format holds: scalars,
        containers, numpy arrays, torch tensors and modules, and objects of
        importable classes with an attribute dictionary.
    file : str, path-like or binary file object
        Where to write (conventionally with the suffix ``.skm``).

    Raises
    ------
    TypeError
        If part of the estimator cannot be stored without pickle (a lambda, a
        lock, a class defined inside a function); the message names where.

    See Also
    --------
    load : Load it again.

    Examples
    --------
    >>> import io
    >>> from sklearn_meta import PrototypicalClassifier
    >>> from sklearn_meta.io import dump, load
    >>> buffer = io.BytesIO()
    >>> dump(PrototypicalClassifier(n_way=3), buffer)
    >>> load(buffer).n_way
    3
    """
    encoder = Encoder()
    root = encoder.encode(estimator)
    meta = {
        "format": _FORMAT,
        "protocol": PROTOCOL,
        "sklearn_meta_version": __version__,
    }
    from safetensors.numpy import save as save_arrays
    from safetensors.torch import save as save_tensors

    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(SCHEMA, dumps_schema(root, meta), zipfile.ZIP_DEFLATED)
        archive.writestr(TENSORS, save_tensors(encoder.tensors))
        archive.writestr(ARRAYS, save_arrays(encoder.arrays))
        for member, blob in encoder.skops.items():
            archive.writestr(member, blob)


def get_untrusted_types(file: File) -> list[str]:
    """List the classes and functions ``file`` names that are not trusted by default.

    Nothing is imported or built: the names are read from the file's
    structure alone.

    Parameters
    ----------
    file : str, path-like or binary file object
        A file written by :func:`dump`.

    Returns
    -------
    untrusted : list of str
        ``"module.QualName"`` of each, sorted; pass the ones you trust to
        :func:`load` as ``trusted``.
    """
    with _open(file) as (archive, schema):
        return _untrusted(archive, schema, set())


def load(file: File, trusted: Iterable[str | type | Any] | None = None) -> Any:
    """Load an estimator saved by :func:`dump`, running no code from the file.

    Parameters
    ----------
    file : str, path-like or binary file object
        A file written by :func:`dump`.
    trusted : iterable of str, class or function, default=None
        Classes and functions to trust beyond the default ones, by name
        (``"module.QualName"``, as :func:`get_untrusted_types` lists them) or
        as the objects themselves.

    Returns
    -------
    estimator : object
        The estimator, equal to the saved one.

    Raises
    ------
    UntrustedTypesError
        If the file names classes or functions that are not trusted; nothing
        was imported then.
    ValueError
        If the file is not in this format: a pickle or joblib file is refused,
        since opening it could run code.

    Examples
    --------
    >>> import io
    >>> from sklearn_meta import MAMLRegressor
    >>> from sklearn_meta.io import dump, load
    >>> buffer = io.BytesIO()
    >>> dump(MAMLRegressor(inner_lr=0.02), buffer)
    >>> load(buffer).get_params()["inner_lr"]
    0.02
    """
    names = {_trusted_name(t) for t in (trusted or ())}
    with _open(file) as (archive, schema):
        untrusted = _untrusted(archive, schema, names)
        if untrusted:
            raise UntrustedTypesError(untrusted)
        from safetensors.numpy import load as load_arrays
        from safetensors.torch import load as load_tensors

        decoder = Decoder(
            load_tensors(archive.read(TENSORS)),
            load_arrays(archive.read(ARRAYS)),
            {m: archive.read(m) for m in archive.namelist() if m.startswith(SKOPS_DIR)},
            names,
        )
        estimator = decoder.decode(schema["root"])
    if decoder.moved_to_cpu:
        _warn_loaded_on_cpu(decoder.moved_to_cpu)
    return estimator


def _trusted_name(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    module, qualname = (
        getattr(entry, "__module__", None),
        getattr(entry, "__qualname__", None),
    )
    if module is None or qualname is None:
        raise TypeError(
            f"trusted takes names ('module.QualName'), classes or functions; got "
            f"{entry!r}."
        )
    return f"{module}.{qualname}"


def _untrusted(archive: zipfile.ZipFile, schema: dict, trusted: set[str]) -> list:
    untrusted = set(untrusted_names(named_types(schema["root"]), trusted))
    members = [m for m in archive.namelist() if m.startswith(SKOPS_DIR)]
    if members:
        skops_io = _import_skops("loading this file")
        for member in members:
            found = skops_io.get_untrusted_types(data=archive.read(member))
            untrusted.update(
                name
                for name in found
                if name not in trusted and not skops_trusted_by_default(name)
            )
    return sorted(untrusted)


class _open:
    """Open ``file`` as an archive of this format and read its schema."""

    def __init__(self, file: File):
        self._file = file
        self._archive: zipfile.ZipFile | None = None

    def __enter__(self) -> tuple[zipfile.ZipFile, dict]:
        import json

        head = _head(self._file)
        if not head.startswith(b"PK"):
            if head.startswith(_PICKLE_MAGIC):
                raise ValueError(
                    "This is a pickle (or joblib) file, not a file of "
                    "sklearn_meta.io.dump. Loading a pickle can run any code it "
                    "contains, so load refuses it; if you trust its source, open "
                    "it with joblib.load instead."
                )
            raise ValueError(
                "This is not a file of sklearn_meta.io.dump (it is not a zip archive)."
            )
        self._archive = zipfile.ZipFile(self._file)
        try:
            schema = json.loads(self._archive.read(SCHEMA))
        except (KeyError, ValueError) as exc:
            self._archive.close()
            raise ValueError(
                f"This zip archive is not a file of sklearn_meta.io.dump: {exc}"
            ) from exc
        if not isinstance(schema, dict) or schema.get("format") != _FORMAT:
            self._archive.close()
            raise ValueError(
                "This zip archive is not a file of sklearn_meta.io.dump (a skops "
                "file is opened with skops.io.load)."
            )
        if not isinstance(schema.get("protocol"), int) or schema["protocol"] > PROTOCOL:
            self._archive.close()
            raise ValueError(
                f"This file was written with protocol {schema.get('protocol')!r} "
                f"(sklearn_meta {schema.get('sklearn_meta_version')}); this "
                f"version reads protocol {PROTOCOL} and older. Upgrade sklearn_meta."
            )
        return self._archive, schema

    def __exit__(self, *exc_info) -> None:
        self._archive.close()


def _head(file: File) -> bytes:
    """Read the first bytes of ``file``, leaving a file object where it was."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return f.read(8)
    if isinstance(file, _io.TextIOBase):
        raise TypeError("Open the file in binary mode ('rb').")
    position = file.tell()
    file.seek(0)  # a zip archive is read from its start, wherever the file is
    head = file.read(8)
    file.seek(position)
    return head
