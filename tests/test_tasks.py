"""Tests of tasks and episode sampling."""

import numpy as np
import pytest

from sklearn_meta.tasks import (
    EpisodeSampler,
    Task,
    _sample_without_replacement,
    sample_tasks,
)


def _pool(n_classes=6, per_class=10):
    return np.repeat(np.arange(n_classes), per_class)


def test_sampler_episode_shapes_and_labels():
    """Check that episodes have n_way classes of k_shot + n_query distinct samples."""
    y = _pool()
    sampler = EpisodeSampler(y, n_way=4, k_shot=2, n_query=3)
    support, query = sampler.sample(50, random_state=0)
    assert support.shape == (50, 8) and query.shape == (50, 12)
    for s, q in zip(support, query):
        assert len(set(s) | set(q)) == 20  # no sample used twice
        s_classes = y[s].reshape(4, 2)
        q_classes = y[q].reshape(4, 3)
        # Class-major layout: one pool class per episode label.
        assert (s_classes == s_classes[:, :1]).all() and (
            q_classes == s_classes[:, :1]
        ).all()
        assert len(np.unique(s_classes[:, 0])) == 4
    np.testing.assert_array_equal(sampler.support_labels(), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(sampler.query_labels(), np.repeat(np.arange(4), 3))


def test_sampler_is_reproducible_and_seed_dependent():
    """Check that the same seed gives the same episodes and another seed others."""
    sampler = EpisodeSampler(_pool(), n_way=3, k_shot=1, n_query=2)
    a = sampler.sample(20, random_state=1)
    b = sampler.sample(20, random_state=1)
    c = sampler.sample(20, random_state=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_sampler_covers_classes_and_samples_uniformly():
    """Check that classes and samples are drawn with equal frequency."""
    y = _pool(n_classes=5, per_class=8)
    sampler = EpisodeSampler(y, n_way=2, k_shot=1, n_query=1)
    support, query = sampler.sample(20_000, random_state=0)
    counts = np.bincount(
        np.concatenate([support.ravel(), query.ravel()]), minlength=len(y)
    )
    expected = 20_000 * 4 / len(y)
    assert np.abs(counts / expected - 1).max() < 0.06
    # Support and query positions are exchangeable.
    s_counts = np.bincount(support.ravel(), minlength=len(y))
    assert np.abs(s_counts / (expected / 2) - 1).max() < 0.1


def test_sample_without_replacement_gives_distinct_positions_in_range():
    """Check that Floyd's sampler draws distinct positions below each bound."""
    rng = np.random.default_rng(0)
    n = np.array([[5, 7], [9, 5]])
    out = _sample_without_replacement(rng, n, 5)
    assert out.shape == (2, 2, 5)
    assert (out < n[..., None]).all() and (out >= 0).all()
    assert all(len(set(row)) == 5 for row in out.reshape(-1, 5))
    # Every permutation of a full draw is equally likely: first position uniform.
    firsts = _sample_without_replacement(rng, np.full(30_000, 3), 3)[:, 0]
    assert np.abs(np.bincount(firsts) / 10_000 - 1).max() < 0.05


def test_sampler_with_groups_never_mixes_groups():
    """Check that with groups every episode comes from a single group."""
    y = np.tile(np.repeat(np.arange(3), 4), 3)  # labels reused in every group
    groups = np.repeat(["a", "b", "c"], 12)
    sampler = EpisodeSampler(y, n_way=2, k_shot=1, n_query=2, groups=groups)
    support, query = sampler.sample(200, random_state=0)
    for s, q in zip(support, query):
        assert len(set(groups[np.concatenate([s, q])])) == 1
    assert set(groups[support[:, 0]]) == {"a", "b", "c"}


def test_sampler_raises_when_fewer_classes_than_n_way():
    """Check that a pool with fewer classes than n_way is refused."""
    msg = r"n_way=5 is larger than the number of classes in y \(3\)\. Lower n_way"
    with pytest.raises(ValueError, match=msg):
        EpisodeSampler(_pool(n_classes=3), n_way=5, k_shot=1, n_query=1)


def test_sampler_raises_when_class_too_small_and_names_it():
    """Check that a class with fewer than k_shot + n_query examples is named."""
    y = np.array(["cat"] * 10 + ["dog"] * 3 + ["emu"] * 10)
    msg = r"k_shot \+ n_query = 5 examples, but class\(es\) 'dog' have 3"
    with pytest.raises(ValueError, match=msg):
        EpisodeSampler(y, n_way=2, k_shot=2, n_query=3)


def test_sampler_raises_for_group_with_too_few_classes():
    """Check that a group with fewer than n_way classes is named."""
    y = np.array([0] * 4 + [1] * 4 + [0] * 4)
    groups = np.array(["g1"] * 8 + ["g2"] * 4)
    with pytest.raises(ValueError, match=r"classes in group\(s\) 'g2' \(1\)"):
        EpisodeSampler(y, n_way=2, k_shot=1, n_query=1, groups=groups)


def test_sampler_raises_for_mismatched_groups():
    """Check that groups and y of different lengths are refused."""
    with pytest.raises(ValueError, match="groups must have the same length as y"):
        EpisodeSampler(_pool(), n_way=2, k_shot=1, n_query=1, groups=[0, 1])


def test_sample_tasks_keeps_original_labels():
    """Check that sample_tasks returns Task objects in the pool's own labels."""
    X = np.arange(60, dtype=float).reshape(30, 2)
    y = np.repeat(np.array(["x", "y", "z"]), 10)
    tasks = sample_tasks(X, y, n_way=2, k_shot=2, n_query=3, n_tasks=5, random_state=0)
    assert len(tasks) == 5 and all(isinstance(t, Task) for t in tasks)
    t = tasks[0]
    assert t.X_support.shape == (4, 2) and t.X_query.shape == (6, 2)
    assert set(t.y_query) == set(t.y_support) and set(t.y_support) <= {"x", "y", "z"}
    # Rows and labels stay paired.
    np.testing.assert_array_equal(y[(t.X_support[:, 0] // 2).astype(int)], t.y_support)
