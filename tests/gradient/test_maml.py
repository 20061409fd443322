"""MAML and first-order MAML: closed forms and learning."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_meta import (
    MAMLClassifier,
    MAMLRegressor,
)
from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.nn import MLP
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast
from ._helpers import (
    sinusoid_mse,
    vectorised_meta_gradient,
)


def test_first_order_drops_exactly_the_inner_hessian_on_a_linear_model():
    """Check that MAML and first-order MAML meta-gradients equal their closed forms.

    For a linear regressor ``f(x) = w.x + b`` with squared loss, one inner
    step gives ``w' = w - a g_s`` with ``g_s = 2/n A^T (A w - y)`` (``A`` the
    inputs with a column of ones). The meta-gradient is ``(I - a H_s) g_q(w')``
    with ``H_s = 2/n A^T A``; first-order MAML's is ``g_q(w')``.
    """
    rng = np.random.default_rng(0)
    X_s, X_q = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    y_s, y_q = rng.normal(size=6), rng.normal(size=5)
    X_pool = rng.normal(size=(20, 3)).astype(np.float32)
    y_pool = rng.normal(size=20).astype(np.float32)
    a = 0.1
    for first_order in (False, True):
        reg = MAMLRegressor(
            nn.Identity(),
            inner_lr=a,
            first_order=first_order,
            max_epochs=0,
            k_shot=2,
            n_query=2,
            random_state=0,
        ).fit(X_pool, y_pool)
        reg.module_.double()
        w0 = torch.cat([reg.module_.head.weight[0], reg.module_.head.bias]).detach()
        batch = _EpisodeBatch(
            *(torch.as_tensor(t)[None] for t in (X_s, y_s, X_q, y_q)), n_classes=0
        )
        got = vectorised_meta_gradient(reg, batch)
        got = torch.cat([got[0][0], got[1]]).numpy()

        A_s = np.c_[X_s, np.ones(6)]
        A_q = np.c_[X_q, np.ones(5)]
        w = w0.numpy()
        g_s = 2 / 6 * A_s.T @ (A_s @ w - y_s)
        w_adapted = w - a * g_s
        g_q = 2 / 5 * A_q.T @ (A_q @ w_adapted - y_q)
        hessian = 2 / 6 * A_s.T @ A_s
        expected = g_q if first_order else (np.eye(4) - a * hessian) @ g_q
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    # The two differ: the Hessian term matters here.
    assert not np.allclose(g_q, (np.eye(4) - a * hessian) @ g_q)


def test_maml_classifier_learns_digit_images_well_above_chance(digits):
    """Check that MAML on digit images lowers its loss and scores above 0.4."""
    X, y = digits
    clf = MAMLClassifier(
        n_way=5,
        k_shot=1,
        n_query=5,
        max_epochs=3,
        episodes_per_epoch=200,
        meta_batch_size=4,
        lr=3e-3,
        module__hidden_channels=16,
        inner_steps=2,
        random_state=0,
    ).fit(X[y < 6], y[y < 6])
    losses = clf.history_[:, "train_loss"]
    assert losses[-1] < losses[0]
    # 5-way 1-shot on the held-out digits 5-9 (6 training classes): chance 0.2.
    assert clf.score(X[y >= 5], y[y >= 5]) > 0.4


def test_maml_regressor_adapts_sinusoids_far_better_than_baselines():
    """Check that MAML (K=10) halves the MSE of no adaptation and joint training."""
    train = make_sinusoid_tasks(n_tasks=4000, random_state=0)
    test = make_sinusoid_tasks(n_tasks=100, random_state=1)
    reg = MAMLRegressor(
        max_epochs=4, episodes_per_epoch=4000, adapt_steps=10, random_state=0
    ).fit(train)
    adapted = sinusoid_mse(reg, test)
    unadapted = sinusoid_mse(reg.set_params(adapt_steps=0), test)
    # Joint training: one network fitted to all tasks' points, then fine-tuned
    # with the same inner steps (a MAML with zero inner steps in training).
    pooled = MAMLRegressor(
        inner_steps=1,
        inner_lr=1e-12,
        max_epochs=4,
        episodes_per_epoch=4000,
        random_state=0,
    ).fit(train)
    pooled.set_params(inner_lr=0.01, adapt_steps=10)
    joint = sinusoid_mse(pooled, test)
    assert adapted < 0.5 * unadapted
    assert adapted < 0.5 * joint


def test_grid_search_tunes_adapt_steps_by_episodic_score(digits):
    """Check that GridSearchCV with ClassKFold picks adapt_steps=1 over 0."""
    from sklearn.model_selection import GridSearchCV

    from sklearn_meta.model_selection import ClassKFold

    X, y = digits
    X = X.reshape(len(X), -1)
    search = GridSearchCV(
        # The MLP body, whose head starts at zero (the default tabular body's
        # head starts at the support's prototypes: nearest centroid already).
        fast(MAMLClassifier, meta_batch_size=2, module=MLP, module__in_features=64),
        {"adapt_steps": [0, 1]},
        cv=ClassKFold(2),
    ).fit(X, y)
    # Without a step the head is the same for every class: chance-level scores.
    assert search.best_params_ == {"adapt_steps": 1}
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] == pytest.approx(1 / 3, abs=0.1) and scores[1] > 0.5


def test_regressor_predict_after_fit_fits_the_training_pool():
    """Check that predict after fit(X, y) fits the training pool with R2 above 0.9."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    y = (y - y.mean()) / y.std()
    reg = MAMLRegressor(
        k_shot=5,
        n_query=5,
        max_epochs=2,
        episodes_per_epoch=50,
        meta_batch_size=5,
        inner_lr=0.1,
        adapt_steps=20,
        random_state=0,
    ).fit(X, y)
    assert 1 - np.mean((reg.predict(X) - y) ** 2) / np.var(y) > 0.9
