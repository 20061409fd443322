"""Tests of the transfer baseline (pre-train, then fit a new head per task)."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_meta import FineTuneClassifier
from sklearn_meta.metric._finetune import _fit_heads, _head_logits
from sklearn_meta.tasks import sample_tasks

from .._helpers import weights
from .._settings import fast


@pytest.fixture(scope="module")
def fitted(digits):
    """A learner pre-trained on digits 0-6."""
    X, y = digits
    return fast(FineTuneClassifier).fit(X[y < 7], y[y < 7])


@pytest.mark.parametrize("cosine", [False, True])
def test_fit_heads_separates_support_sets(cosine):
    """Check that fitted heads classify their own (separable) support sets."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 3, 8, generator=g) * 3
    y = torch.arange(3).repeat_interleave(5).expand(4, -1)
    z = centers.gather(1, y[..., None].expand(-1, -1, 8)) + torch.randn(
        4, 15, 8, generator=g
    )
    W, b = _fit_heads(z, y, 3, cosine=cosine, scale=10.0, steps=100, lr=0.01)
    logits = _head_logits(z, W, b, cosine, 10.0)
    assert (logits.argmax(-1) == y).float().mean() > 0.95


def test_fit_heads_fits_each_episode_independently():
    """Check that heads fitted in one batch equal heads fitted one episode at a time."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([[0, 0, 1, 1, 2, 2]] * 3)
    W, b = _fit_heads(z, y, 3, cosine=False, scale=1.0, steps=20, lr=0.05)
    for i in range(3):
        Wi, bi = _fit_heads(
            z[i : i + 1], y[i : i + 1], 3, cosine=False, scale=1.0, steps=20, lr=0.05
        )
        torch.testing.assert_close(W[i : i + 1], Wi)
        torch.testing.assert_close(b[i : i + 1], bi)


@pytest.mark.slow
def test_pretraining_learns_and_transfers_to_new_alphabets(omniglot_small):
    """Check that pre-training lifts 5-way 1-shot accuracy on unseen alphabets."""
    X, y, Xe, ye = omniglot_small
    params = dict(n_way=5, k_shot=1, n_query=5, n_eval_episodes=200, random_state=0)
    before = FineTuneClassifier(**params, max_epochs=0).fit(X, y).score(Xe, ye)
    clf = FineTuneClassifier(**params, max_epochs=2).fit(X, y)
    after = clf.score(Xe, ye)
    assert after > 0.75 and after > before + 0.1, (before, after)
    losses = clf.history_[:, "train_loss"]
    assert losses[-1] < losses[0]
    # After fit it is an ordinary classifier over the 150 training characters.
    assert clf.predict_proba(X[:5]).shape == (5, 150)
    assert np.mean(clf.predict(X) == y) > 0.3  # chance is 1/150


def test_pretraining_on_digits_transfers_to_held_out_digits(fitted, digits):
    """Check that pre-training on digits 0-6 scores well above chance on 7-9."""
    X, y = digits
    # 3-way 1-shot episodes of the held-out digits: chance is 1/3.
    assert fitted.score(X[y >= 7], y[y >= 7]) > 0.5
    # An ordinary classifier over the 7 training digits: chance is 1/7.
    assert np.mean(fitted.predict(X[y < 7]) == y[y < 7]) > 0.9


def test_adapt_freezes_the_backbone(fitted, digits):
    """Check that adapt fits a head only: the pre-trained weights are untouched."""
    X, y = digits
    clf = fitted
    before = weights(clf.module_)
    adapted = clf.adapt(X[y >= 7][:12], y[y >= 7][:12])
    for key, value in weights(clf.module_).items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    np.testing.assert_array_equal(adapted.classes_, [7, 8, 9])
    W, b = adapted.state_["summary"]
    assert W.shape == (1, 64, 3) and b.shape == (1, 3)


def test_groups_make_one_pretraining_class_per_group_and_label(digits):
    """Check that pre-training classes are the (group, class) pairs."""
    X, y = digits
    groups = np.where(y < 5, "low", "high")
    clf = fast(FineTuneClassifier).fit(X, y % 5, groups=groups)
    assert clf.n_pretrain_classes_ == 10
    assert clf.adapt(X[:30], y[:30]).predict(X[:5]).shape == (5,)


def test_fit_on_task_list_and_refuses_iterator(digits):
    """Check that fit takes a list of tasks and refuses an iterator with advice."""
    X, y = digits
    tasks = sample_tasks(X, y, n_way=3, k_shot=1, n_query=2, n_tasks=5, random_state=0)
    clf = fast(FineTuneClassifier).fit(tasks)
    assert clf.n_pretrain_classes_ == 15  # 3 classes in each of 5 tasks
    with pytest.raises(TypeError, match="needs them up front: pass a list of tasks"):
        fast(FineTuneClassifier).fit(iter(tasks))


def test_cosine_head_and_joblib_round_trip(digits, tmp_path):
    """Check that the cosine (Baseline++) head trains and round-trips joblib."""
    X, y = digits
    clf = fast(FineTuneClassifier, head="cosine").fit(X[y < 7], y[y < 7])
    adapted = clf.adapt(X[y >= 7][:12], y[y >= 7][:12])
    joblib.dump(adapted, tmp_path / "a.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "a.joblib").predict_proba(X), adapted.predict_proba(X)
    )


def test_meta_validation_records_episodic_accuracy(digits):
    """Check that train_split gives episodic valid_acc for early stopping."""
    X, y = digits
    clf = fast(FineTuneClassifier, train_split=0.3, n_valid_episodes=10)
    clf.fit(X, y)
    valid_acc = clf.history_[:, "valid_acc"]
    assert len(valid_acc) == clf.max_epochs and valid_acc[-1] > 0.5  # chance is 1/3
    # The head saw only the training split, so predictions use a new head.
    assert clf.predict(X[:3]).shape == (3,)


def test_bad_head_is_refused(digits):
    """Check that an unknown head raises sklearn's parameter-constraint message."""
    X, y = digits
    with pytest.raises(
        InvalidParameterError, match="The 'head' parameter of FineTuneClassifier"
    ):
        fast(FineTuneClassifier, head="svm").fit(X, y)
