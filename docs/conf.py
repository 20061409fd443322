"""Sphinx configuration of the sklearn_meta documentation.

``make docs`` builds the site with every example executed; ``make docs-ci``
builds it without running them (``-D plot_gallery=0``). Both treat warnings
as errors and write to ``docs/_build/html``.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# Document (and run the examples against) the checkout the docs belong to,
# whichever copy of the package the environment has installed.
sys.path.insert(0, str(DOCS.parent))

import sklearn_meta  # noqa: E402

project = "sklearn_meta"
author = "sklearn_meta developers"
copyright = "sklearn_meta developers"
release = sklearn_meta.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build"]

# -- API reference -----------------------------------------------------------
# One page per public name (docs/api.rst lists them; tests/test_docs_site.py
# checks that the list covers every ``__all__``).
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc sections give the types
autodoc_default_options = {"members": True}
toc_object_entries_show_parents = "hide"  # "fit()", not "Class.fit()"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_xref_param_type = False

# -- Markdown pages (user guide, design, benchmarks, changelog) ---------------
# Headings get anchors, so "page.md#a-heading" links work on the site as they
# do on GitHub.
myst_heading_anchors = 3

# -- Examples ----------------------------------------------------------------
# Running an example as a script saves its figures where SKLEARN_META_FIGURES
# says; under sphinx-gallery (which captures the figures itself) they go to the
# build folder rather than beside the sources.
os.environ.setdefault("SKLEARN_META_FIGURES", str(DOCS / "_build" / "example_figures"))
Path(os.environ["SKLEARN_META_FIGURES"]).mkdir(parents=True, exist_ok=True)

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("sklearn_meta",),
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "abort_on_example_error": True,
    # A full build (``make docs``) runs every example, also those unchanged
    # since the last build, so the gallery shows what the library does now.
    # ``-D plot_gallery=0`` (``make docs-ci``) runs none.
    "run_stale_examples": True,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_meta {release}"
html_static_path = []
html_show_sourcelink = False
# The single pages have no sub-pages to list in a left sidebar.
html_sidebars = {
    page: [] for page in ("index", "user_guide", "design", "benchmarks", "changelog")
}
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}


# -- Cross-references in docstrings inherited from scikit-learn ----------------
# The estimators inherit methods from scikit-learn (get_params, score,
# set_fit_request, ...) whose docstrings refer to labels and glossary terms of
# scikit-learn's own documentation. Those references render as plain text; a
# broken reference in sklearn_meta's own docstrings still fails the build.


def _defined_in_scikit_learn(dotted: str) -> bool:
    """Whether the object a docstring belongs to is scikit-learn's own."""
    if dotted.startswith("sklearn."):
        return True
    if not dotted.startswith("sklearn_meta."):
        return False
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        rest = parts[i:]
        break
    else:
        return False
    owner = None
    for attr in rest:
        owner, obj = obj, getattr(obj, attr, None)
    if isinstance(owner, type) and rest:
        for cls in owner.__mro__:
            if rest[-1] in vars(cls):
                return cls.__module__.startswith("sklearn.")
    return False


def _scikit_learn_reference_as_text(app, env, node, contnode):
    if node.get("refdomain") != "std" or node.get("reftype") not in {"ref", "term"}:
        return None
    _, found, dotted = (node.source or "").rpartition(":docstring of ")
    dotted = dotted.rsplit(":", 1)[0]
    if found and _defined_in_scikit_learn(dotted):
        return contnode
    return None


def setup(app):
    """Connect the handler of scikit-learn's references."""
    app.connect("missing-reference", _scikit_learn_reference_as_text)
