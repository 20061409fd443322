"""Shared fixtures: the offline data folder and small pools."""

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The folder holding ``omniglot/images_background.zip`` and friends."""
    if not (SHARED_DATA / "omniglot" / "images_background.zip").exists():
        pytest.fail(f"The offline Omniglot copy is missing from {SHARED_DATA}.")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def digits():
    """Sklearn's digits as an image pool ``(1797, 1, 8, 8)`` in [0, 1]."""
    from sklearn_meta.datasets import load_digits_images

    return load_digits_images(return_X_y=True)


@pytest.fixture(scope="session")
def flat_digits(digits):
    """Sklearn's digits as a tabular pool ``(1797, 64)``."""
    X, y = digits
    return X.reshape(len(X), -1), y


@pytest.fixture(scope="session")
def omniglot_small(data_home):
    """The first 150 background and 100 evaluation characters of Omniglot (28x28)."""
    from sklearn_meta.datasets import load_omniglot

    X, y = load_omniglot("background", data_home=data_home, return_X_y=True)
    Xe, ye = load_omniglot("evaluation", data_home=data_home, return_X_y=True)
    return X[:3000], y[:3000], Xe[:2000], ye[:2000]


@pytest.fixture(autouse=True)
def _full_float32_on_gpu(request):
    """Run GPU tests without TF32, so GPU and CPU results agree to float32 precision.

    Ampere and later GPUs use TF32 (10-bit mantissa) for convolutions by
    default, which moves outputs by ~1e-3: too much for a test comparing a
    model's predictions on the GPU with those of its pickle on the CPU.
    """
    if request.node.get_closest_marker("gpu") is None:
        yield
        return
    import torch

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
