"""Reptile: its closed-form update, the annealed outer step and its parameters."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_meta import (
    MAMLClassifier,
    ReptileClassifier,
    ReptileRegressor,
)
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast


def test_reptile_update_equals_its_closed_form_on_a_quadratic_loss():
    """Check that k SGD steps and Reptile's outer move equal their closed form.

    On ``L(w) = 1/n |A w - y|^2`` gradient descent is affine:
    ``w <- (I - a H) w + a b`` with ``H = 2/n A^T A``, ``b = 2/n A^T y``; the
    Reptile update is ``theta + eps * (mean_i phi_i - theta)``.
    """
    rng = np.random.default_rng(0)
    a, eps, k = 0.05, 0.5, 3
    reg = ReptileRegressor(
        nn.Identity(),
        inner_lr=a,
        inner_steps=k,
        lr=eps,
        anneal=False,
        max_epochs=0,
        k_shot=2,
        n_query=2,
        random_state=0,
    ).fit(rng.normal(size=(20, 3)).astype(np.float32), np.zeros(20, np.float32))
    reg.module_.double()
    with torch.no_grad():
        reg.module_.head.weight.copy_(torch.as_tensor(rng.normal(size=(1, 3))))
        reg.module_.head.bias.fill_(0.3)
    theta = np.r_[reg.module_.head.weight[0].detach().numpy(), 0.3]
    X_s, y_s = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6))
    X_q, y_q = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4))
    batch = _EpisodeBatch(
        *(torch.as_tensor(t) for t in (X_s, y_s, X_q, y_q)), n_classes=0
    )
    reg._train_step([batch])
    phis = []
    for i in range(2):
        A = np.c_[X_s[i], np.ones(6)]
        H, b = 2 / 6 * A.T @ A, 2 / 6 * A.T @ y_s[i]
        w = theta.copy()
        for _ in range(k):
            w = w - a * (H @ w - b)
        phis.append(w)
    expected = theta + eps * (np.mean(phis, axis=0) - theta)
    got = np.r_[
        reg.module_.head.weight[0].detach().numpy(),
        reg.module_.head.bias.detach().numpy(),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_reptile_anneals_the_outer_step_linearly(digits):
    """Check that Reptile's outer step size falls linearly from lr to lr / n_steps."""
    X, y = digits
    X = X.reshape(len(X), -1)
    seen = []

    class Record(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    fast(
        ReptileClassifier,
        max_epochs=2,
        episodes_per_epoch=10,
        meta_batch_size=5,
        lr=1.0,
        optimizer=Record,
    ).fit(X, y)
    np.testing.assert_allclose(seen, [1.0, 0.75, 0.5, 0.25])


def test_reptile_has_no_first_order_parameter():
    """Check that Reptile (first-order by nature) has no first_order parameter."""
    assert "first_order" not in ReptileClassifier().get_params()
    assert "first_order" in MAMLClassifier().get_params()


@pytest.mark.parametrize("lr", [0.0, -1.0])
def test_reptile_rejects_a_non_positive_outer_step(lr, digits):
    """Check that Reptile keeps the shared constraint lr > 0."""
    X, y = digits
    with pytest.raises(
        InvalidParameterError,
        match=r"The 'lr' parameter of ReptileClassifier must be a float in the "
        r"range \(0.0, inf\)",
    ):
        fast(ReptileClassifier, lr=lr).fit(X.reshape(len(X), -1), y)
