"""Tests of the public classes' documentation: it agrees with the signatures."""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import re

import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import BaseShuffleSplit

import sklearn_meta
from sklearn_meta._docs import fill_doc

_PACKAGES = [
    "sklearn_meta",
    "sklearn_meta.gradient",
    "sklearn_meta.metric",
    "sklearn_meta.memory",
    "sklearn_meta.rl",
    "sklearn_meta.selection",
    "sklearn_meta.model_selection",
]

_SECTION = re.compile(r"^(\S[^\n]*)\n-+$", re.MULTILINE)
_DEFAULT = re.compile(r",\s*default=(.+)$")


def _public_classes() -> list[type]:
    """Every concrete estimator and splitter a subpackage exports, once."""
    found = {}
    for name in _PACKAGES:
        package = importlib.import_module(name)
        for attr in package.__all__:
            obj = getattr(package, attr)
            if (
                inspect.isclass(obj)
                and issubclass(
                    obj, BaseEstimator | BaseCrossValidator | BaseShuffleSplit
                )
                and not inspect.isabstract(obj)
                and not attr.startswith("Base")
            ):
                found[obj.__qualname__] = obj
    return [found[k] for k in sorted(found)]


def _sections(doc: str) -> dict[str, str]:
    """The numpydoc sections of a docstring, by title."""
    doc = inspect.cleandoc(doc)
    heads = list(_SECTION.finditer(doc))
    return {
        m[1].strip(): doc[
            m.end() : (heads[i + 1].start() if i + 1 < len(heads) else None)
        ]
        for i, m in enumerate(heads)
    }


def _documented_parameters(cls: type) -> dict[str, str | None]:
    """Parameter names mapped to their documented default (None: none given).

    Each entry is a line ``name : type, default=value`` at the section's
    indentation followed by its indented description.
    """
    section = _sections(cls.__doc__ or "").get("Parameters", "")
    params = {}
    for line in section.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        assert " : " in line or line.startswith("**"), (
            f"{cls.__name__}: {line!r} is not a numpydoc parameter line "
            "('name : type, default=value')."
        )
        names, _, type_ = line.partition(" : ")
        match = _DEFAULT.search(type_)
        for name in names.split(","):
            params[name.strip().lstrip("*")] = match[1].strip() if match else None
    return params


_UNRESOLVED = object()
_MODULE_ALIASES = {"np": "numpy"}


def _resolve(text: str):
    """The value a documented default names: a literal or a dotted name."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    module, _, attr = text.rpartition(".")
    try:
        module = importlib.import_module(_MODULE_ALIASES.get(module, module))
        return getattr(module, attr)
    except (ImportError, AttributeError, ValueError):
        return _UNRESOLVED


def _same_default(documented: str, actual) -> bool:
    """Whether a documented default names the signature's default.

    ``1e-3`` names 0.001, ``torch.optim.Adam`` and ``Adam`` name that class,
    ``np.nan`` names a NaN; ``True`` does not name 1.
    """
    value = _resolve(documented)
    if value is _UNRESOLVED:
        # A bare class or function name, such as ``Adam`` for torch.optim.Adam.
        return getattr(actual, "__name__", None) == documented
    if isinstance(value, bool) or isinstance(actual, bool):
        return value is actual
    if isinstance(value, float | int) and isinstance(actual, float | int):
        return value == actual or (math.isnan(value) and math.isnan(actual))
    return value is actual or (type(value) is type(actual) and value == actual)


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__name__)
def test_documented_defaults_match_the_signature(cls):
    """Check that each documented parameter and default is the signature's own."""
    signature = inspect.signature(cls.__init__)
    actual = {
        name: p
        for name, p in list(signature.parameters.items())[1:]
        if p.kind is not inspect.Parameter.VAR_POSITIONAL
    }
    documented = _documented_parameters(cls)
    assert set(documented) == set(actual), (
        f"{cls.__name__}: documented but not in __init__: "
        f"{sorted(set(documented) - set(actual))}; in __init__ but not "
        f"documented: {sorted(set(actual) - set(documented))}."
    )
    for name, p in actual.items():
        default = documented[name]
        if p.kind is inspect.Parameter.VAR_KEYWORD or p.default is p.empty:
            assert default is None, f"{cls.__name__}.{name} has no default."
            continue
        assert default is not None, f"{cls.__name__}.{name} documents no default."
        assert _same_default(default, p.default), (
            f"{cls.__name__}.{name}: documented default={default}, but the "
            f"signature's is {p.default!r}."
        )


def test_public_classes_cover_every_family():
    """Check that the walk over the packages finds the learners of every family."""
    names = {cls.__name__ for cls in _public_classes()}
    assert {
        "MAMLClassifier",
        "PrototypicalClassifier",
        "FineTuneClassifier",
        "MANNClassifier",
        "MAMLPolicy",
        "AlgorithmRecommender",
        "ClassKFold",
    } <= names
    assert set(sklearn_meta.__all__) & names


def test_fill_doc_indents_shared_entries_and_keeps_the_rest():
    """Check that a placeholder line becomes the shared entry at its indentation."""
    doc = fill_doc(
        """Summary.

    Parameters
    ----------
    %(n_way)s
    own : {"a", "b"}, default="a"
        Not shared; 100% kept.
    %(meta_batch_size)s
    """,
        meta_batch_size=3,
    )
    params = _documented_parameters(type("Learner", (), {"__doc__": doc}))
    assert params == {"n_way": "5", "own": '"a"', "meta_batch_size": "3"}
    assert "\n        Classes per episode" in doc
    assert "100% kept" in doc


def test_fill_doc_raises_on_unknown_placeholders_and_missing_values():
    """Check that a misspelt entry or a missing default is an error, not text."""
    with pytest.raises(KeyError, match="n_ways"):
        fill_doc("    %(n_ways)s\n")
    with pytest.raises(KeyError, match="meta_batch_size"):
        fill_doc("    %(meta_batch_size)s\n")
