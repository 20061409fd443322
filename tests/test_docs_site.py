"""Tests of the documentation site's sources (docs/): nothing public is left out.

The site itself is built by ``make docs-ci``; these checks need no Sphinx.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: The modules whose ``__all__`` the API reference documents.
MODULES = [
    "sklearn_meta",
    "sklearn_meta.base",
    "sklearn_meta.gradient",
    "sklearn_meta.metric",
    "sklearn_meta.memory",
    "sklearn_meta.rl",
    "sklearn_meta.selection",
    "sklearn_meta.model_selection",
    "sklearn_meta.datasets",
    "sklearn_meta.tasks",
    "sklearn_meta.nn",
    "sklearn_meta.io",
    "sklearn_meta.augment",
]

_DIRECTIVE = re.compile(r"^\.\. ([\w:-]+)::\s*(.*)$")


def _autosummary_entries(text: str) -> list[tuple[str, str]]:
    """``(module, name)`` of each entry of the autosummary tables of a page.

    The module is the one the last ``.. currentmodule::`` before the table
    names; the entries are the table's indented lines that are not options.
    """
    entries, module, in_table = [], None, False
    for line in text.splitlines():
        directive = _DIRECTIVE.match(line)
        if directive:
            in_table = directive[1] == "autosummary"
            if directive[1] == "currentmodule":
                module = directive[2].strip()
            continue
        if not in_table or not line.strip():
            continue
        if not line[0].isspace():
            in_table = False
        elif not line.strip().startswith(":"):
            assert module, f"{line.strip()!r} is listed before any currentmodule"
            entries.append((module, line.strip()))
    return entries


def _api() -> str:
    return (DOCS / "api.rst").read_text(encoding="utf-8")


def _documented_objects() -> dict[str, list[object]]:
    """Each documented object, by its name, from docs/api.rst."""
    found: dict[str, list[object]] = {}
    for module, name in _autosummary_entries(_api()):
        obj = getattr(importlib.import_module(module), name)
        found.setdefault(name, []).append(obj)
    return found


def test_autosummary_entries_are_read():
    """Check that the parser of the reference finds tables and their modules."""
    text = """
.. currentmodule:: pkg

.. autosummary::
   :toctree: generated/

   first
   Second

Prose mentioning third.

.. currentmodule:: pkg.sub

.. autosummary::

   fourth
"""
    assert _autosummary_entries(text) == [
        ("pkg", "first"),
        ("pkg", "Second"),
        ("pkg.sub", "fourth"),
    ]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    """Check that every name of a module's ``__all__`` has a reference page.

    A name the top-level package re-exports may be documented where it is
    defined (``sklearn_meta.gradient.MAMLClassifier`` for
    ``sklearn_meta.MAMLClassifier``), but it must be the same object, and the
    name must still appear on the page.
    """
    module = importlib.import_module(module_name)
    documented = _documented_objects()
    api = _api()
    assert f".. automodule:: {module_name}\n" in api
    missing = [
        name
        for name in module.__all__
        if not any(obj is getattr(module, name) for obj in documented.get(name, []))
        or not re.search(rf"\b{re.escape(name)}\b", api)
    ]
    assert not missing, (
        f"docs/api.rst has no reference page for these names of {module_name}: "
        f"{missing}; add them to an autosummary table."
    )


def test_api_reference_lists_only_public_names():
    """Check that each entry of the reference is in its module's ``__all__``."""
    stale = [
        f"{module}.{name}"
        for module, name in _autosummary_entries(_api())
        if name not in importlib.import_module(module).__all__
    ]
    assert not stale, f"docs/api.rst documents names that are not public: {stale}"


def test_every_page_is_in_the_table_of_contents():
    """Check that the Markdown and reST pages are all reachable from the index."""
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    toctree = index.split(".. toctree::", 1)[1]
    entries = {line.strip() for line in toctree.splitlines()[1:] if line.strip()}
    pages = {p.stem for p in DOCS.glob("*") if p.suffix in {".md", ".rst"}} - {
        "index",
        "sg_execution_times",
    }
    assert pages <= entries, f"not in index.rst's toctree: {pages - entries}"
    assert "auto_examples/index" in entries
