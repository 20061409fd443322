"""Tests of the Meta-Learner LSTM (sklearn_meta/memory/_meta_lstm.py)."""

import math
import re

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_meta import MetaLSTMClassifier
from sklearn_meta.memory._meta_lstm import _MetaLSTMCell, _preprocess
from sklearn_meta.nn import MLP
from sklearn_meta.tasks import _EpisodeBatch, sample_tasks

from .._settings import FAST_PARAMS, fast
from ._helpers import (
    assert_adapt_returns_a_new_estimator_and_round_trips,
    assert_fits_on_groups_and_on_tasks,
    assert_grid_search_with_class_folds,
    assert_predict_before_fit_raises,
    assert_predicts_each_query_alone,
    support_of,
)


def _fast_with_own_module(*args, **overrides):
    """A fast Meta-LSTM without the registry's settings of the default module."""
    params = {
        k: v
        for k, v in FAST_PARAMS[MetaLSTMClassifier].items()
        if not k.startswith("module__")
    }
    return MetaLSTMClassifier(*args, **{**params, **overrides})


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _preprocessed(v, p=10.0):
    """Andrychowicz et al.'s preprocessing written out by hand."""
    if abs(v) >= math.exp(-p):
        return [math.log(abs(v)) / p, float(np.sign(v))]
    return [-1.0, math.exp(p) * v]


def test_preprocessing_follows_andrychowicz_et_al():
    """Check that both branches of the gradient preprocessing give hand values."""
    x = torch.tensor([0.5, -3.0, 2e-5, -1e-7, 0.0], dtype=torch.float64)
    expected = torch.tensor([_preprocessed(v) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(_preprocess(x), expected)


def _hand_made_cell(hidden_size=0):
    torch.manual_seed(0)
    cell = _MetaLSTMCell(hidden_size, inner_lr=0.1).double()
    with torch.no_grad():
        cell.weight_x.copy_(
            torch.tensor([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.1]])
        )
        cell.weight_theta.copy_(torch.tensor([0.7, -0.3]))
        cell.weight_prev.copy_(torch.tensor([-0.4, 0.6]))
        cell.bias.copy_(torch.tensor([-1.0, 2.0]))
    return cell


def test_lstm_update_equals_the_gate_formula_by_hand():
    """Check that the cell update is c_t = f_t * c_{t-1} - i_t * grad_t by hand."""
    cell = _hand_made_cell()
    grad = np.array([[0.5, -2e-5, 0.0], [-1.5, 3e-6, 0.25]])
    loss = np.array([1.3, 0.02])
    theta = np.array([[0.2, -0.4, 1.0], [0.0, 0.3, -0.7]])
    i_prev = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 0.9]])
    f_prev = np.array([[0.9, 0.8, 0.7], [1.0, 0.5, 0.1]])
    W_x = cell.weight_x.detach().numpy()
    w_t, w_p, b = (
        t.detach().numpy() for t in (cell.weight_theta, cell.weight_prev, cell.bias)
    )
    expected = np.empty_like(theta)
    for task in range(2):
        for k in range(3):
            x = np.array(_preprocessed(grad[task, k]) + _preprocessed(loss[task]))
            i = _sigmoid(
                x @ W_x[:, 0]
                + w_t[0] * theta[task, k]
                + w_p[0] * i_prev[task, k]
                + b[0]
            )
            f = _sigmoid(
                x @ W_x[:, 1]
                + w_t[1] * theta[task, k]
                + w_p[1] * f_prev[task, k]
                + b[1]
            )
            expected[task, k] = f * theta[task, k] - i * grad[task, k]
    t = {
        k: torch.tensor(v)
        for k, v in dict(g=grad, l=loss, c=theta, i=i_prev, f=f_prev).items()
    }
    i, f, _ = cell.gates(t["g"], t["l"], t["c"], {"i": t["i"], "f": t["f"]})
    np.testing.assert_allclose(
        (f * t["c"] - i * t["g"]).detach().numpy(), expected, rtol=1e-12
    )


def test_learner_step_is_the_gate_formula_on_a_linear_softmax_learner(flat_digits):
    """Check that one step of the learned optimiser in the learner matches numpy.

    The learner is a linear softmax classifier (identity body, shared head), so
    the support gradient has the closed form ``(softmax - onehot)^T X / n``.
    """
    rng = np.random.default_rng(0)
    X_pool = rng.normal(size=(12, 4)).astype(np.float32)
    clf = MetaLSTMClassifier(
        nn.Identity(),
        n_way=2,
        k_shot=1,
        n_query=1,
        hidden_size=0,
        max_epochs=0,
        random_state=0,
    ).fit(X_pool, np.arange(12) % 2)
    clf.module_.double()
    hand = _hand_made_cell()
    clf.module_.update_rule.load_state_dict(hand.state_dict())
    with torch.no_grad():
        clf.module_.head.weight.copy_(
            torch.tensor([0.3, -0.2, 0.1, 0.05], dtype=torch.float64)
        )
        clf.module_.head.bias.fill_(0.1)
    X_s = rng.normal(size=(5, 4))
    y_s = np.array([0, 1, 2, 0, 1])
    n_classes = 3
    # The cell state: head weight rows (3 x 4), then the head biases (3).
    W0 = np.tile([0.3, -0.2, 0.1, 0.05], (n_classes, 1))
    b0 = np.full(n_classes, 0.1)
    logits = X_s @ W0.T + b0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(n_classes)[y_s]
    loss = -np.log(p[np.arange(5), y_s]).mean()
    grad = np.concatenate([((p - onehot).T @ X_s / 5).ravel(), (p - onehot).mean(0)])
    theta = np.concatenate([W0.ravel(), b0])
    W_x = hand.weight_x.detach().numpy()
    w_t, _, b = (
        t.detach().numpy() for t in (hand.weight_theta, hand.weight_prev, hand.bias)
    )
    x = np.array([_preprocessed(g) + _preprocessed(loss) for g in grad])
    # First step: previous gates are zero.
    i = _sigmoid(x @ W_x[:, 0] + w_t[0] * theta + b[0])
    f = _sigmoid(x @ W_x[:, 1] + w_t[1] * theta + b[1])
    expected = f * theta - i * grad
    with torch.no_grad():
        fast, _ = clf._adapt_tasks(
            torch.tensor(X_s)[None],
            torch.tensor(y_s)[None],
            torch.tensor(X_s)[None],
            n_classes,
            1,
        )
    got = torch.cat([fast["head.weight"][0].ravel(), fast["head.bias"][0]]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def _meta_gradients(clf, batch):
    clf.module_.zero_grad(set_to_none=True)
    losses, _ = clf._episode_losses(batch)
    losses.mean().backward()
    return {k: p.grad for k, p in clf.module_.named_parameters()}


def _digit_batch(X, y, n_tasks=3, seed=0):
    tasks = sample_tasks(
        X, y, n_way=3, k_shot=2, n_query=2, n_tasks=n_tasks, random_state=seed
    )

    def codes(t, labels):
        return torch.as_tensor(
            np.unique(t.y_support, return_inverse=True)[1]
            if labels is t.y_support
            else np.searchsorted(np.unique(t.y_support), labels)
        )

    return _EpisodeBatch(
        torch.stack([torch.as_tensor(t.X_support, dtype=torch.float64) for t in tasks]),
        torch.stack([codes(t, t.y_support) for t in tasks]),
        torch.stack([torch.as_tensor(t.X_query, dtype=torch.float64) for t in tasks]),
        torch.stack([codes(t, t.y_query) for t in tasks]),
        n_classes=3,
    )


def test_meta_batch_is_adapted_as_each_task_alone(flat_digits):
    """Check that the vectorised meta-batch equals a loop over single tasks."""
    X, y = flat_digits
    clf = fast(MetaLSTMClassifier, max_epochs=0).fit(X, y)
    clf.module_.double()
    batch = _digit_batch(X, y)
    together = _meta_gradients(clf, batch)
    alone = None
    for i in range(3):
        one = _EpisodeBatch(*(t[i : i + 1] for t in batch[:4]), n_classes=3)
        grads = _meta_gradients(clf, one)
        alone = grads if alone is None else {k: alone[k] + grads[k] for k in grads}
    for name, g in together.items():
        torch.testing.assert_close(g, alone[name] / 3, rtol=1e-8, atol=1e-12)


def test_meta_gradient_reaches_initialisation_and_lstm_with_truncation(flat_digits):
    """Check that truncated back-propagation is full when its window covers all steps.

    With a shorter window the LSTM's gradient changes but the initial
    parameters still receive one through the cell state's linear path.
    """
    X, y = flat_digits
    batch = _digit_batch(X, y)
    grads = {}
    for truncate in (None, 3, 1):
        clf = fast(MetaLSTMClassifier, max_epochs=0, truncate_steps=truncate).fit(X, y)
        clf.module_.double()
        grads[truncate] = _meta_gradients(clf, batch)
    for name, g in grads[None].items():
        assert g is not None and g.abs().max() > 0, name
        torch.testing.assert_close(grads[3][name], g, rtol=1e-10, atol=1e-14)
    body = [k for k in grads[1] if k.startswith("body.")]
    assert all(grads[1][k].abs().max() > 0 for k in body)
    assert not torch.allclose(
        grads[1]["update_rule.weight_x"], grads[None]["update_rule.weight_x"]
    )


def test_meta_lstm_learns_digits_well_above_chance(flat_digits):
    """Check that meta-training the optimiser lifts 5-way 1-shot accuracy."""
    X, y = flat_digits
    params = dict(
        n_way=5,
        k_shot=1,
        n_query=5,
        inner_steps=3,
        meta_batch_size=8,
        episodes_per_epoch=200,
        # The MLP, not the default body (which starts at nearest centroid):
        # what is measured is the learned optimiser, from random features.
        module=MLP,
        module__in_features=64,
        module__hidden_layer_sizes=(32, 32),
        n_eval_episodes=100,
        lr=3e-3,
        random_state=0,
    )
    untrained = MetaLSTMClassifier(**params, max_epochs=0).fit(X[y < 5], y[y < 5])
    clf = MetaLSTMClassifier(**params, max_epochs=2).fit(X[y < 5], y[y < 5])
    before = untrained.score(X[y >= 5], y[y >= 5])
    after = clf.score(X[y >= 5], y[y >= 5])
    # 5-way 1-shot on digits never seen in training: chance is 0.2.
    assert after > 0.35 and after > before + 0.1, (before, after)
    losses = clf.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_meta_lstm_handles_batch_norm_task_by_task(digits):
    """Check that a conv learner with batch norm adapts, per task, not transductively.

    Queries are normalised with their task's support statistics, so a query's
    probabilities do not depend on the other queries it comes with.
    """
    X, y = digits
    clf = _fast_with_own_module(module__hidden_channels=4)
    clf.fit(X[y < 6], y[y < 6])
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in clf.module_.modules()
    )
    support = support_of(y, (6, 7, 8))
    adapted = clf.adapt(X[support], y[support])
    queries = X[y >= 6][10:20]
    assert_predicts_each_query_alone(adapted, queries)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(inner_lr=1.0), "The 'inner_lr' parameter of MetaLSTMClassifier must be"),
        (dict(hidden_size=-1), "The 'hidden_size' parameter"),
        (dict(truncate_steps=0), "The 'truncate_steps' parameter"),
    ],
)
def test_meta_lstm_rejects_bad_parameters(params, match, flat_digits):
    """Check that fit rejects the Meta-LSTM's invalid parameters in sklearn's words."""
    X, y = flat_digits
    with pytest.raises(InvalidParameterError, match=re.escape(match)):
        fast(MetaLSTMClassifier, **params).fit(X, y)


def test_meta_lstm_trains_any_module_whose_parameters_it_sees(flat_digits):
    """Check that adapt updates every parameter of a user module of other layers."""
    X, y = flat_digits
    module = nn.Sequential(nn.Linear(64, 12), nn.LayerNorm(12), nn.Tanh())
    clf = _fast_with_own_module(module).fit(X[y < 5], y[y < 5])
    assert module[0].weight.grad is None  # the user's instance is not trained
    support = support_of(y)
    adapted = clf.adapt(X[support], y[support])
    start = dict(clf.module_.named_parameters())
    for name, value in adapted.state_["params"].items():
        if name.startswith("body."):
            assert not torch.equal(value, start[name]), name
    assert adapted.predict(X[y >= 5][:5]).shape == (5,)


def test_adapt_returns_a_new_estimator_and_round_trips_through_joblib(
    flat_digits, tmp_path
):
    """Check that adapt leaves the meta-learner alone and both pickle exactly."""
    assert_adapt_returns_a_new_estimator_and_round_trips(
        MetaLSTMClassifier, *flat_digits, tmp_path
    )


def test_fits_on_groups_and_on_tasks(flat_digits):
    """Check that fit takes groups or tasks and that the same seed repeats a run."""
    assert_fits_on_groups_and_on_tasks(MetaLSTMClassifier, *flat_digits)


def test_grid_search_with_class_folds(flat_digits):
    """Check that GridSearchCV tunes a meta-parameter by episodic score."""
    assert_grid_search_with_class_folds(MetaLSTMClassifier, *flat_digits)


def test_predict_before_fit_raises(flat_digits):
    """Check that predict before fit raises sklearn's NotFittedError."""
    assert_predict_before_fit_raises(MetaLSTMClassifier, flat_digits[0])
