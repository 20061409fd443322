"""Reptile: its closed-form update, the annealed outer step and its parameters."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn
from torch.nn import functional as F

from sklearn_meta import (
    MAMLClassifier,
    ReptileClassifier,
    ReptileRegressor,
)
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast


def _linear_reptile_step(rng, bias: float, **params):
    """One Reptile update of a linear regressor in float64, from random weights.

    Returns the starting ``theta`` (weights, then bias), the two tasks'
    support sets ``X_s`` ``(2, 6, 3)`` and ``y_s`` ``(2, 6)``, and the
    updated parameters in the same layout.
    """
    reg = ReptileRegressor(
        nn.Identity(),
        anneal=False,
        max_epochs=0,
        k_shot=2,
        n_query=2,
        random_state=0,
        **params,
    ).fit(rng.normal(size=(20, 3)).astype(np.float32), np.zeros(20, np.float32))
    reg.module_.double()
    with torch.no_grad():
        reg.module_.head.weight.copy_(torch.as_tensor(rng.normal(size=(1, 3))))
        reg.module_.head.bias.fill_(bias)
    theta = np.r_[reg.module_.head.weight[0].detach().numpy(), bias]
    X_s, y_s = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6))
    X_q, y_q = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4))
    batch = _EpisodeBatch(
        *(torch.as_tensor(t) for t in (X_s, y_s, X_q, y_q)), n_classes=0
    )
    reg._train_step([batch])
    updated = np.r_[
        reg.module_.head.weight[0].detach().numpy(),
        reg.module_.head.bias.detach().numpy(),
    ]
    return theta, X_s, y_s, updated


def test_reptile_update_equals_its_closed_form_on_a_quadratic_loss():
    """Check that k SGD steps and Reptile's outer move equal their closed form.

    On ``L(w) = 1/n |A w - y|^2`` gradient descent is affine:
    ``w <- (I - a H) w + a b`` with ``H = 2/n A^T A``, ``b = 2/n A^T y``; the
    Reptile update is ``theta + eps * (mean_i phi_i - theta)``.
    """
    a, eps, k = 0.05, 0.5, 3
    theta, X_s, y_s, got = _linear_reptile_step(
        np.random.default_rng(0), 0.3, inner_lr=a, inner_steps=k, lr=eps
    )
    phis = []
    for i in range(2):
        A = np.c_[X_s[i], np.ones(6)]
        H, b = 2 / 6 * A.T @ A, 2 / 6 * A.T @ y_s[i]
        w = theta.copy()
        for _ in range(k):
            w = w - a * (H @ w - b)
        phis.append(w)
    expected = theta + eps * (np.mean(phis, axis=0) - theta)
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


def test_a_prototype_head_makes_the_inner_loop_train_on_the_queries():
    """Check one Reptile update against the gradient of the query rows' loss.

    With the tabular default body the head starts at the support's
    prototypes (rows ``2 mu_c``, biases ``-|mu_c|^2``) and the inner SGD step
    takes the gradient of the query rows' loss (other bodies train on the
    support: the closed-form tests above). With the outer step 1, the
    body's update is minus the inner rate times that gradient; the support's
    own loss would give another.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    clf = ReptileClassifier(
        n_way=3,
        k_shot=1,
        n_query=2,
        inner_optimizer="sgd",
        inner_lr=0.1,
        inner_steps=1,
        lr=1.0,
        anneal=False,
        max_epochs=0,
        random_state=0,
    ).fit(X, np.arange(30) % 4)  # more classes than ways: no FewClassesWarning
    assert clf.module_.prototype_head
    clf.module_.double()
    body = clf.module_.body
    X_s, X_q = rng.normal(size=(3, 6)), rng.normal(size=(6, 6))
    y_s, y_q = torch.arange(3), torch.arange(6) % 3
    X_s, X_q = torch.as_tensor(X_s), torch.as_tensor(X_q)
    mu = body(X_s).detach()  # one shot: each class's prototype is its sample
    logits = body(X_q) @ (2 * mu).T - mu.square().sum(1)
    grads = torch.autograd.grad(F.cross_entropy(logits, y_q), list(body.parameters()))
    assert all(g.abs().max() > 1e-3 for g in grads)
    theta = [p.detach().clone() for p in body.parameters()]
    batch = _EpisodeBatch(X_s[None], y_s[None], X_q[None], y_q[None], n_classes=3)
    clf._train_step([batch])
    for p, start, g in zip(body.parameters(), theta, grads, strict=True):
        np.testing.assert_allclose(
            p.detach().numpy(), (start - 0.1 * g).numpy(), rtol=1e-10, atol=1e-14
        )


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


def test_inner_minibatches_equal_their_closed_form_on_a_quadratic_loss():
    """Check that each inner step descends on its own minibatch of the support.

    Three steps of two rows on a support set of six take rows 0-1, 2-3 and
    4-5 in turn (a regressor keeps its rows' order); each step is the affine
    gradient step of its minibatch's least-squares loss.
    """
    a, eps, k, b = 0.05, 0.5, 3, 2
    theta, X_s, y_s, got = _linear_reptile_step(
        np.random.default_rng(1),
        -0.2,
        inner_lr=a,
        inner_steps=k,
        inner_batch_size=b,
        lr=eps,
    )
    phis = []
    for i in range(2):
        w = theta.copy()
        for step in range(k):
            rows = slice(step * b, (step + 1) * b)
            A = np.c_[X_s[i, rows], np.ones(b)]
            w = w - a * 2 / b * A.T @ (A @ w - y_s[i, rows])
        phis.append(w)
    expected = theta + eps * (np.mean(phis, axis=0) - theta)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_classifier_minibatches_take_the_classes_in_turn():
    """Check the rows of each step: one of each class in turn, cycling.

    Support sets come class by class; a minibatch of three on three classes
    of three shots holds one shot of each class, the fourth step starts the
    cycle again, and an uneven support (classes of 3 and 1) still alternates.
    """
    from sklearn_meta.gradient._base import _minibatches

    X = torch.arange(9.0)[None, :, None]
    y = torch.tensor([[0, 0, 0, 1, 1, 1, 2, 2, 2]])
    rows = _minibatches(X, y, None, 3, 3)
    taken = [rows(step)[0][0, :, 0].tolist() for step in range(4)]
    assert taken == [[0.0, 3.0, 6.0], [1.0, 4.0, 7.0], [2.0, 5.0, 8.0], [0.0, 3.0, 6.0]]
    assert all(rows(step)[1][0].tolist() == [0, 1, 2] for step in range(3))

    X, y = torch.arange(4.0)[None, :, None], torch.tensor([[1, 1, 0, 1]])
    rows = _minibatches(X, y, None, 2, 2)
    assert [rows(s)[1][0].tolist() for s in range(2)] == [[0, 1], [1, 1]]
    assert rows(0)[0][0, :, 0].tolist() == [2.0, 0.0]
    # The whole support (or more) per step: the rows as given, every step.
    whole = _minibatches(X, y, None, 4, 2)(1)
    assert whole[0] is X and whole[1] is y


def test_minibatches_change_adaptation_and_the_whole_support_does_not(digits):
    """Check that adapt_batch_size reaches adaptation; the whole support is a no-op."""
    X, y = digits
    X = X.reshape(len(X), -1)
    clf = fast(ReptileClassifier).fit(X[y < 5], y[y < 5])
    Xs, ys, Xq = X[y >= 7][:12], y[y >= 7][:12], X[y >= 7][12:40]
    full = clf.adapt(Xs, ys).predict_proba(Xq)
    same = clf.set_params(adapt_batch_size=12).adapt(Xs, ys).predict_proba(Xq)
    np.testing.assert_array_equal(full, same)
    small = clf.set_params(adapt_batch_size=3).adapt(Xs, ys).predict_proba(Xq)
    assert np.abs(small - full).max() > 1e-4
    # inner_batch_size is the default of adapt_batch_size.
    clf.set_params(adapt_batch_size=None, inner_batch_size=3)
    np.testing.assert_array_equal(clf.adapt(Xs, ys).predict_proba(Xq), small)


@pytest.mark.parametrize("name", ["inner_batch_size", "adapt_batch_size"])
def test_minibatch_sizes_must_be_positive(name, digits):
    """Check that a minibatch of no samples is refused, naming the parameter."""
    X, y = digits
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        fast(ReptileClassifier, **{name: 0}).fit(X.reshape(len(X), -1), y)
