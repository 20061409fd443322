"""Model-based learners: the Meta-Learner LSTM and the memory-augmented network."""

import math
import re

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_meta import MANNClassifier, MetaLSTMClassifier
from sklearn_meta._random import SCORING_SEED
from sklearn_meta._validation import _Pool
from sklearn_meta.memory._addressing import (
    _cosine_read_weights,
    _least_used,
    _lru_write,
)
from sklearn_meta.memory._meta_lstm import _MetaLSTMCell, _preprocess
from sklearn_meta.model_selection import ClassKFold
from sklearn_meta.tasks import EpisodeSampler, _EpisodeBatch, sample_tasks

#: Small Meta-LSTM settings: a tabular learner, a few steps.
LSTM_FAST = dict(
    n_way=3,
    k_shot=1,
    n_query=3,
    max_epochs=1,
    episodes_per_epoch=16,
    meta_batch_size=8,
    inner_steps=3,
    module__hidden_layer_sizes=(16, 16),
    n_eval_episodes=20,
    random_state=0,
)
#: Small MANN settings.
MANN_FAST = dict(
    n_way=3,
    k_shot=2,
    n_query=2,
    max_epochs=1,
    episodes_per_epoch=32,
    controller_size=32,
    memory_size=16,
    memory_dim=8,
    n_reads=2,
    module__hidden_layer_sizes=(32,),
    module__out_features=16,
    n_eval_episodes=20,
    random_state=0,
)


@pytest.fixture(scope="module")
def flat_digits(digits):
    X, y = digits
    return X.reshape(len(X), -1), y


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _preprocessed(v, p=10.0):
    """Andrychowicz et al.'s preprocessing written out by hand."""
    if abs(v) >= math.exp(-p):
        return [math.log(abs(v)) / p, float(np.sign(v))]
    return [-1.0, math.exp(p) * v]


# -- Meta-Learner LSTM ----------------------------------------------------------


def test_preprocessing_follows_andrychowicz_et_al():
    """Check both branches of the gradient preprocessing against hand values."""
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
    """Check c_t = f_t * c_{t-1} - i_t * grad_t with gates computed by hand."""
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
    """Check one step of the learned optimiser inside the learner, against numpy.

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
    clf = MetaLSTMClassifier(**{**LSTM_FAST, "max_epochs": 0}).fit(X, y)
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
    """Check truncated back-propagation: full when the window covers all steps.

    With a shorter window the LSTM's gradient changes but the initial
    parameters still receive one through the cell state's linear path.
    """
    X, y = flat_digits
    batch = _digit_batch(X, y)
    grads = {}
    for truncate in (None, 3, 1):
        clf = MetaLSTMClassifier(
            **{**LSTM_FAST, "max_epochs": 0}, truncate_steps=truncate
        ).fit(X, y)
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
    params = {k: v for k, v in LSTM_FAST.items() if not k.startswith("module__")}
    clf = MetaLSTMClassifier(**params, module__hidden_channels=4)
    clf.fit(X[y < 6], y[y < 6])
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in clf.module_.modules()
    )
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (6, 7, 8)])
    adapted = clf.adapt(X[support], y[support])
    queries = X[y >= 6][10:20]
    together = adapted.predict_proba(queries)
    alone = np.vstack([adapted.predict_proba(q[None]) for q in queries])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


# -- memory-augmented neural network ----------------------------------------------


def test_read_weights_are_a_softmax_of_scaled_cosines():
    """Check that read weights are distributions equal to softmax(beta * cosine)."""
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    memory = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    memory[1, 2] = 0  # an empty slot has similarity 0
    strength = torch.rand(2, 3, generator=g, dtype=torch.float64) * 5
    weights = _cosine_read_weights(keys, memory, strength)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    k, m = keys.numpy(), memory.numpy()
    for b in range(2):
        for r in range(3):
            cos = np.array(
                [
                    0.0
                    if not m[b, i].any()
                    else k[b, r]
                    @ m[b, i]
                    / np.linalg.norm(k[b, r])
                    / np.linalg.norm(m[b, i])
                    for i in range(4)
                ]
            )
            e = np.exp(strength[b, r].item() * cos)
            np.testing.assert_allclose(weights[b, r].numpy(), e / e.sum(), rtol=1e-6)


def test_least_used_picks_the_smallest_usages_in_order():
    """Check the least-used weights on a hand-made usage vector."""
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.3, 0.1]])
    expected_one = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]]])
    torch.testing.assert_close(_least_used(usage, 1), expected_one)
    # Two reads: the two smallest (a tie goes to the lower slot), then the next.
    torch.testing.assert_close(
        _least_used(usage, 3).sum(1), torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0]])
    )
    assert _least_used(usage, 3).argmax(-1).tolist() == [[1, 4, 3]]


def test_lru_write_wipes_and_fills_the_least_used_slot():
    """Check that a write with a closed gate lands in the least-used slot only.

    With an open gate it adds to the slots read at the previous step instead.
    """
    memory = torch.arange(12.0).view(1, 4, 3)
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.3]])
    least_used = _least_used(usage, 1)
    prev_read = torch.tensor([[[0.0, 0.0, 0.25, 0.75]]])
    key = torch.tensor([[[1.0, -1.0, 2.0]]])
    new, write = _lru_write(memory, key, torch.zeros(1, 1), prev_read, least_used)
    expected = memory.clone()
    expected[0, 1] = key[0, 0]  # slot 1 wiped, then written
    torch.testing.assert_close(new, expected)
    torch.testing.assert_close(write, least_used)
    new, _ = _lru_write(memory, key, torch.ones(1, 1), prev_read, least_used)
    expected = memory.clone()
    expected[0, 1] = 0  # wiped, nothing written
    expected[0, 2] += 0.25 * key[0, 0]
    expected[0, 3] += 0.75 * key[0, 0]
    torch.testing.assert_close(new, expected)


def _mann(X, y, **params):
    return MANNClassifier(**{**MANN_FAST, **params}).fit(X, y)


def test_mann_step_reads_distributions_and_wipes_memory_between_episodes(flat_digits):
    """Check read weights of a real step, and that episodes do not share memory."""
    X, y = flat_digits
    clf = _mann(X[y < 5], y[y < 5], max_epochs=0)
    model = clf.module_.eval()
    with torch.no_grad():
        z = clf._embed(torch.as_tensor(X[:12])).view(2, 6, -1)
        labels = torch.tensor([[0, 1, 2, 0, 1, 2], [2, 2, 1, 0, 1, 0]])
        state = model.initial_state(2, z)
        for t in range(6):
            _, state = model.step(state, z[:, t], labels[:, t])
            assert (state["read"] >= 0).all()
            torch.testing.assert_close(state["read"].sum(-1), torch.ones(2, 2))
        together = model.run(z, labels)[0]
        alone = torch.cat(
            [model.run(z[i : i + 1], labels[i : i + 1])[0] for i in (0, 1)]
        )
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    assert model.initial_state(1, z)["memory"].abs().sum() == 0


def test_mann_training_shuffles_labels_per_episode(flat_digits):
    """Check that training episodes map classes to random labels and orders.

    The orders and the label maps are checked apart: with the order held to
    the identity, the labels a class receives still change between episodes.
    """
    X, y = flat_digits
    clf = _mann(X[y < 5], y[y < 5], max_epochs=0, max_classes=5)
    seen = []
    original = clf.module_.store

    def spy(z, labels):
        seen.append(labels.clone())
        return original(z, labels)

    clf.module_.store = spy
    y_support = torch.tensor([[0, 0, 1, 1, 2, 2]] * 8)
    batch = _EpisodeBatch(
        torch.as_tensor(X[:48]).view(8, 6, -1),
        y_support,
        torch.as_tensor(X[48:72]).view(8, 3, -1),
        torch.tensor([[0, 1, 2]] * 8),
        n_classes=3,
    )
    clf._episode_losses(batch)
    # Shuffled orders: some episode does not show a class twice in a row.
    assert any((row[::2] != row[1::2]).any() for row in seen[0])
    identity = torch.arange(6).expand(8, -1)
    clf._sequence_order = lambda rng, n_episodes, length: identity[:n_episodes]
    clf._episode_losses(batch)
    maps = seen[1][:, ::2]  # the label of classes 0, 1, 2 in each episode
    torch.testing.assert_close(seen[1][:, 1::2], maps)  # one label per class
    assert all(len(set(row.tolist())) == 3 for row in maps)  # distinct labels
    assert len({tuple(row.tolist()) for row in maps}) > 1  # shuffled per episode
    assert set(maps.ravel().tolist()) - {0, 1, 2}  # subsets of max_classes labels


def test_mann_learns_to_bind_digits_well_above_chance(flat_digits):
    """Check that meta-training makes the MANN classify by what it stored.

    Labels are drawn afresh for every episode, so no label can be memorised:
    classifying held-out images above chance, better with every presentation
    of a class, needs examples bound to labels in memory. The held-out images
    are of the training digits: seven digits are too few for the embedding to
    carry over to the other three.
    """
    X, y = flat_digits
    params = dict(
        n_way=3,
        k_shot=2,
        n_query=2,
        meta_batch_size=16,
        episodes_per_epoch=480,
        controller_size=64,
        memory_size=32,
        memory_dim=16,
        lr=3e-3,
        n_eval_episodes=200,
        random_state=0,
    )
    even = np.arange(len(y)) % 2 == 0
    train, test = even & (y < 7), ~even & (y < 7)
    clf = MANNClassifier(**params, max_epochs=8).fit(X[train], y[train])
    assert clf.history_[-1, "train_acc"] > 0.6  # chance is 1/3
    by_instance = clf.accuracy_by_instance(
        X[test], y[test], n_way=3, n_instances=4, n_episodes=100
    )
    assert by_instance.shape == (4,)
    assert by_instance[1:].mean() > 0.6, by_instance
    assert by_instance[-1] > by_instance[0] + 0.15, by_instance
    assert clf.score(X[test], y[test]) > 0.6


def test_mann_stores_a_pool_sample_that_fits_in_memory(flat_digits):
    """Check that predict's sample of the pool is stored without any wipe.

    Each step writes ``n_reads`` least-used slots: 16 slots and 2 reads hold
    7 examples and the extra step that binds the last label, no more.
    """
    X, y = flat_digits
    clf = _mann(X[y < 3], y[y < 3], max_epochs=0)
    pool = _Pool(X[y < 3], y[y < 3], np.arange(3), None, None, None)
    kept = clf._pool_to_adapt(pool)
    X_kept, y_kept = kept.X, kept.codes
    assert len(X_kept) == 16 // 2 - 1
    assert sorted(np.bincount(y_kept).tolist()) == [2, 2, 3]
    model = clf.module_.eval()
    written = []
    with torch.no_grad():
        z = clf._embed(torch.as_tensor(X_kept))[:, None]
        state = model.initial_state(1, z[0])
        for t in range(len(X_kept) + 1):
            written += state["least_used"][0].argmax(-1).tolist()
            _, state = model.step(state, z[min(t, len(z) - 1)], torch.tensor([0]))
    assert sorted(written) == list(range(16))  # every slot written once


def test_mann_predicts_each_query_independently_of_the_others(flat_digits):
    """Check that adapted predictions of one query alone and in a batch agree."""
    X, y = flat_digits
    clf = _mann(X[y < 5], y[y < 5])
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    adapted = clf.adapt(X[support], np.array(["a", "b", "c"]).repeat(2))
    queries = X[y >= 5][20:30]
    together = adapted.predict_proba(queries)
    alone = np.vstack([adapted.predict_proba(q[None]) for q in queries])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
    assert set(adapted.predict(queries)) <= {"a", "b", "c"}


# -- the estimator contract, for both ------------------------------------------------


LEARNERS = [
    (MetaLSTMClassifier, LSTM_FAST),
    (MANNClassifier, MANN_FAST),
]


@pytest.mark.parametrize(
    "cls, params", LEARNERS, ids=lambda p: getattr(p, "__name__", "")
)
def test_adapt_returns_a_new_estimator_and_round_trips_through_joblib(
    cls, params, flat_digits, tmp_path
):
    """Check adapt leaves the meta-learner alone and pickles exactly."""
    X, y = flat_digits
    clf = cls(**params).fit(X[y < 5], y[y < 5])
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    adapted = clf.adapt(X[support], np.array(["x", "y", "z"]).repeat(2))
    for k, v in clf.module_.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    np.testing.assert_array_equal(adapted.classes_, ["x", "y", "z"])
    queries = X[y >= 5][:30]
    assert adapted.predict_proba(queries).shape == (30, 3)
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    joblib.dump(clf, tmp_path / "meta.joblib")
    loaded = joblib.load(tmp_path / "adapted.joblib")
    np.testing.assert_array_equal(
        loaded.predict_proba(queries), adapted.predict_proba(queries)
    )
    meta = joblib.load(tmp_path / "meta.joblib")
    np.testing.assert_array_equal(
        meta.adapt(X[support], np.array(["x", "y", "z"]).repeat(2)).predict_proba(
            queries
        ),
        adapted.predict_proba(queries),
    )


@pytest.mark.parametrize(
    "cls, params", LEARNERS, ids=lambda p: getattr(p, "__name__", "")
)
def test_fits_on_groups_and_on_tasks(cls, params, flat_digits):
    """Check that fit takes groups or tasks, and that the same seed repeats a run.

    After fit(tasks), score is the accuracy that the classifier made by adapt
    reaches on the episode score draws.
    """
    X, y = flat_digits
    groups = np.arange(len(y)) % 4
    a = cls(**params).fit(X, y, groups=groups)
    b = cls(**params).fit(X, y, groups=groups)
    for k, v in a.module_.state_dict().items():
        torch.testing.assert_close(v, b.module_.state_dict()[k], rtol=0, atol=0)
    tasks = sample_tasks(
        X[y < 6], y[y < 6], n_way=3, k_shot=2, n_query=2, n_tasks=16, random_state=0
    )
    # The tasks fix the training queries; n_query and n_eval_episodes shape
    # score's episodes only. One episode: the MANN stores the supports of a
    # score in orders drawn from one stream, and only the first is the order
    # adapt uses.
    learner = cls(**{**params, "n_query": 20, "n_eval_episodes": 1}).fit(tasks)
    X_eval, y_eval = X[y >= 6], y[y >= 6]
    sampler = EpisodeSampler(y_eval, n_way=3, k_shot=params["k_shot"], n_query=20)
    support, query = sampler.sample(1, np.random.default_rng(SCORING_SEED))
    adapted = learner.adapt(X_eval[support[0]], sampler.support_labels())
    accuracy = np.mean(adapted.predict(X_eval[query[0]]) == sampler.query_labels())
    assert learner.score(X_eval, y_eval) == pytest.approx(accuracy)
    with pytest.raises(NotFittedError, match="meta-trained on tasks"):
        learner.predict(X[:3])


@pytest.mark.parametrize(
    "cls, params", LEARNERS, ids=lambda p: getattr(p, "__name__", "")
)
def test_grid_search_with_class_folds(cls, params, flat_digits):
    """Check that GridSearchCV tunes a meta-parameter by episodic score."""
    X, y = flat_digits
    search = GridSearchCV(cls(**params), {"lr": [1e-3, 3e-3]}, cv=ClassKFold(2)).fit(
        X, y
    )
    assert search.best_params_["lr"] in (1e-3, 3e-3)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


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
        MetaLSTMClassifier(**{**LSTM_FAST, **params}).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (
            dict(usage_decay=1.5),
            "The 'usage_decay' parameter of MANNClassifier must be",
        ),
        (dict(memory_size=0), "The 'memory_size' parameter"),
        (dict(max_classes=2), "n_way=3 is larger than max_classes=2"),
        (dict(n_reads=20), "n_reads=20 is larger than memory_size=16"),
    ],
)
def test_mann_rejects_bad_parameters(params, match, flat_digits):
    """Check that fit rejects invalid MANN parameters and memory sizes."""
    X, y = flat_digits
    with pytest.raises((InvalidParameterError, ValueError), match=re.escape(match)):
        MANNClassifier(**{**MANN_FAST, **params}).fit(X, y)


def test_mann_errors_on_too_many_classes(flat_digits):
    """Check that adapt, predict and accuracy_by_instance reject too many classes."""
    X, y = flat_digits
    clf = _mann(X, y)  # 10 classes, 3 label outputs
    with pytest.raises(
        NotFittedError, match="more than its max_classes=3 label outputs"
    ):
        clf.predict(X[:2])
    support = np.concatenate([np.flatnonzero(y == c)[:1] for c in range(4)])
    with pytest.raises(
        ValueError,
        match="y_support has 4 classes but MANNClassifier can take at most 3",
    ):
        clf.adapt(X[support], y[support])
    with pytest.raises(ValueError, match="n_way has 4 classes"):
        clf.accuracy_by_instance(X, y, n_way=4)
    wide = _mann(X[y < 4], y[y < 4], max_classes=4)
    assert wide.predict(X[:5]).shape == (5,)
    assert wide.adapt(X[support], y[support]).predict_proba(X[:2]).shape == (2, 4)


@pytest.mark.parametrize(
    "params, match",
    [
        (
            dict(n_way=1),
            "The 'n_way' parameter of MANNClassifier.accuracy_by_instance must be "
            "an int in the range [2, inf). Got 1 instead.",
        ),
        (
            dict(n_instances=0),
            "The 'n_instances' parameter of MANNClassifier.accuracy_by_instance "
            "must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            dict(n_episodes=0),
            "The 'n_episodes' parameter of MANNClassifier.accuracy_by_instance "
            "must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            dict(random_state="seed"),
            "The 'random_state' parameter of MANNClassifier.accuracy_by_instance "
            "must be an int in the range [0, 4294967295], an instance of "
            "'numpy.random.mtrand.RandomState', an instance of "
            "'numpy.random._generator.Generator' or None. Got 'seed' instead.",
        ),
    ],
)
def test_mann_accuracy_by_instance_rejects_bad_arguments(params, match, flat_digits):
    """Check that accuracy_by_instance rejects invalid arguments in sklearn's words."""
    X, y = flat_digits
    clf = _mann(X[y < 3], y[y < 3], max_epochs=0)
    with pytest.raises(InvalidParameterError, match=re.escape(match)):
        clf.accuracy_by_instance(X, y, **{"n_way": 3, **params})


def test_predict_before_fit_raises(flat_digits):
    """Check that predict before fit raises sklearn's NotFittedError."""
    X, _ = flat_digits
    for cls, params in LEARNERS:
        with pytest.raises(
            NotFittedError, match=f"This {cls.__name__} instance is not"
        ):
            cls(**params).predict(X[:2])


def test_meta_lstm_trains_any_module_whose_parameters_it_sees(flat_digits):
    """Check a user module of other layer types: every parameter is updated."""
    X, y = flat_digits
    module = nn.Sequential(nn.Linear(64, 12), nn.LayerNorm(12), nn.Tanh())
    params = {k: v for k, v in LSTM_FAST.items() if not k.startswith("module__")}
    clf = MetaLSTMClassifier(module, **params).fit(X[y < 5], y[y < 5])
    assert module[0].weight.grad is None  # the user's instance is not trained
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    adapted = clf.adapt(X[support], y[support])
    start = dict(clf.module_.named_parameters())
    for name, value in adapted.state_["params"].items():
        if name.startswith("body."):
            assert not torch.equal(value, start[name]), name
    assert adapted.predict(X[y >= 5][:5]).shape == (5,)
