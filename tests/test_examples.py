"""Run the gallery examples end to end (slow: each meta-trains a model)."""

import ast
import re
import runpy
from pathlib import Path

import matplotlib
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_follows_the_gallery_conventions(path):
    """Check an example's title, cells, stated run time and saved figures.

    sphinx-gallery takes the title from the docstring's first line, underlined
    with ``=``, and a text cell from each ``# %%`` block; run as a script, an
    example must save its figures, as ``plt.show`` writes nothing headless.
    """
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source), clean=False)
    title, underline = doc.strip("\n").splitlines()[:2]
    assert underline == "=" * len(title), f"{path.name}: {title!r} is not underlined"
    assert "\n# %%\n" in source
    assert re.search(r"Run time: about .+ on a 2-core machine", " ".join(doc.split()))
    saved = re.findall(r'savefig\(figures / "([^"]+)"\)', source)
    assert saved and all(name.startswith(path.stem) for name in saved)
    made = source.count("plt.subplots(") + source.count("plt.figure(")
    assert len(saved) == made, f"{path.name} makes {made} figures, saves {len(saved)}"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, data_home, monkeypatch, tmp_path):
    """Check that an example runs to the end on the CPU and saves its figures."""
    matplotlib.use("Agg")
    monkeypatch.setenv("SKLEARN_META_DATA", str(data_home))
    monkeypatch.setenv("SKLEARN_META_FIGURES", str(tmp_path))
    runpy.run_path(str(path), run_name="__main__")
    assert sorted(p.name for p in tmp_path.glob(f"{path.stem}*.png"))
