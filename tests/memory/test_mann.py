"""Tests of the memory-augmented neural network (sklearn_meta/memory/_mann.py).

With its memory addressing (``_addressing.py``) and its network (``_mann_model.py``).
"""

import re

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_meta import MANNClassifier
from sklearn_meta._validation import _Pool
from sklearn_meta.memory._addressing import (
    _cosine_read_weights,
    _least_used,
    _lru_write,
)
from sklearn_meta.model_selection import SeenClassesWarning
from sklearn_meta.tasks import _EpisodeBatch

from .._settings import fast
from ._helpers import (
    assert_adapt_returns_a_new_estimator_and_round_trips,
    assert_fits_on_groups_and_on_tasks,
    assert_grid_search_with_class_folds,
    assert_predict_before_fit_raises,
    assert_predicts_each_query_alone,
    support_of,
)


def _mann(X, y, **overrides):
    """A fast MANN fitted on ``(X, y)``."""
    return fast(MANNClassifier, **overrides).fit(X, y)


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
    """Check that the least-used weights pick the smallest usages, in order."""
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


def test_mann_step_reads_distributions_and_wipes_memory_between_episodes(flat_digits):
    """Check that a step's read weights are distributions and memory is per episode."""
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
    # Other samples of the training classes: binding is what is measured here.
    with pytest.warns(SeenClassesWarning):
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
    support = support_of(y)
    adapted = clf.adapt(X[support], np.array(["a", "b", "c"]).repeat(2))
    queries = X[y >= 5][20:30]
    assert_predicts_each_query_alone(adapted, queries)
    assert set(adapted.predict(queries)) <= {"a", "b", "c"}


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
        fast(MANNClassifier, **params).fit(X, y)


def test_mann_errors_on_too_many_classes(flat_digits):
    """Check that adapt, predict and accuracy_by_instance reject too many classes."""
    X, y = flat_digits
    clf = _mann(X, y)  # 10 classes, 3 label outputs
    with pytest.raises(
        NotFittedError, match="more than its max_classes=3 label outputs"
    ):
        clf.predict(X[:2])
    support = support_of(y, range(4), k_shot=1)
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


def test_adapt_returns_a_new_estimator_and_round_trips_through_joblib(
    flat_digits, tmp_path
):
    """Check that adapt leaves the meta-learner alone and both pickle exactly."""
    assert_adapt_returns_a_new_estimator_and_round_trips(
        MANNClassifier, *flat_digits, tmp_path
    )


def test_fits_on_groups_and_on_tasks(flat_digits):
    """Check that fit takes groups or tasks and that the same seed repeats a run."""
    assert_fits_on_groups_and_on_tasks(MANNClassifier, *flat_digits)


def test_grid_search_with_class_folds(flat_digits):
    """Check that GridSearchCV tunes a meta-parameter by episodic score."""
    assert_grid_search_with_class_folds(MANNClassifier, *flat_digits)


def test_predict_before_fit_raises(flat_digits):
    """Check that predict before fit raises sklearn's NotFittedError."""
    assert_predict_before_fit_raises(MANNClassifier, flat_digits[0])
