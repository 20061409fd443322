"""Run the gallery examples end to end (slow: each meta-trains a model)."""

import runpy
from pathlib import Path

import matplotlib
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, data_home, monkeypatch):
    """Check that an example runs to the end on the CPU without downloads."""
    matplotlib.use("Agg")
    monkeypatch.setenv("SKLEARN_META_DATA", str(data_home))
    runpy.run_path(str(path), run_name="__main__")
