"""The README's Python blocks run as written, on the data the repository ships.

Each block runs in a fresh interpreter from a scratch folder that sits beside
``shared/`` as the repository does, so the README's relative data path holds;
no block may download anything (the process has no GPU and, in CI, no network).
"""

import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT, SHARED_DATA

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def _run(block: str, tmp_path) -> str:
    """Run ``block`` in ``tmp_path/repo``, beside ``tmp_path/shared``; return stdout."""
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    work = tmp_path / "repo"
    work.mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("SKLEARN_META_DATA", None)  # the README names its data itself
    result = subprocess.run(
        [sys.executable, "-c", block],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_the_readme_has_the_blocks_these_tests_check():
    """Check that the README still has its two Python blocks."""
    assert len(BLOCKS) == 2
    assert "PrototypicalClassifier" in BLOCKS[0]
    assert "MAMLRegressor" in BLOCKS[1]


@pytest.mark.slow
@pytest.mark.readme
def test_first_run_block_learns_and_saves(tmp_path):
    """Check the first block: it runs, learns well above chance, saves the model."""
    out = _run(BLOCKS[0], tmp_path)
    mean = float(re.match(r"([0-9.]+) ± ", out)[1])  # the first line, mean ± CI
    assert mean > 0.7, out  # chance is 0.2 for 5-way episodes
    assert (tmp_path / "repo" / "adapted.skm").stat().st_size > 0
    assert "'lr':" in out.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.readme
def test_regression_block_runs_and_fits_new_sine_waves(tmp_path):
    """Check the regression block: adapted, the error is a third of unadapted."""
    out = _run(BLOCKS[1], tmp_path)
    assert float(out.strip().splitlines()[-1]) < 1.0, out  # 3.0 before adapting
