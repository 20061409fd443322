"""Helpers shared by the tests of every family."""

import os
import subprocess
import sys

import joblib
import numpy as np
import torch


def weights(module):
    """A detached copy of a module's state."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(a, b):
    """Assert that two copies of a module's state are equal to the bit."""
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def predict_proba_without_cuda(tmp_path, estimators, X):
    """Probabilities of pickled estimators, computed in a process without CUDA.

    Parameters
    ----------
    tmp_path : pathlib.Path
        A folder for the pickles, the data and the results.
    estimators : dict of str to estimator
        The estimators, by file name.
    X : ndarray
        The samples to predict.

    Returns
    -------
    probabilities : dict of str to ndarray
        ``predict_proba(X)`` of each estimator loaded on a machine with no GPU.
    """
    for name, estimator in estimators.items():
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
    np.save(tmp_path / "X.npy", X)
    script = (
        "import joblib, numpy as np, torch, warnings;"
        "assert not torch.cuda.is_available();"
        "warnings.simplefilter('ignore');"
        f"d = {str(tmp_path)!r};"
        "X = np.load(d + '/X.npy');"
        f"names = {list(estimators)!r};"
        "[np.save(f'{d}/{n}.npy', joblib.load(f'{d}/{n}.joblib').predict_proba(X))"
        " for n in names]"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    return {name: np.load(tmp_path / f"{name}.npy") for name in estimators}
