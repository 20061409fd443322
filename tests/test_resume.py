"""Tests that every learner resumes from a checkpoint exactly where it stopped.

skorch's ``Checkpoint`` saves the module, the optimiser and the history at the
end of each epoch; a new learner with ``LoadInitState(checkpoint)`` restores
them and trains ``max_epochs`` more epochs. However training was split, the
result must be the one of training straight through, bit for bit, on the CPU;
Reptile split on purpose gives its annealing horizon (``_FIXED_HORIZON``).
"""

import numpy as np
import pytest
import torch
from sklearn.base import ClassifierMixin
from skorch.callbacks import Callback, Checkpoint, LoadInitState
from torch import nn

from sklearn_meta import (
    MAMLClassifier,
    MANNClassifier,
    MetaLSTMClassifier,
    PrototypicalClassifier,
    ReptileClassifier,
    ReptileRegressor,
)

from ._helpers import assert_same_weights, weights
from ._settings import fast, learners_for
from .gradient._helpers import sinusoid_pool

#: Every learner of the registry trained by the epoch loop (the exclusions and
#: their reasons are in tests/_settings.py).
LEARNERS = learners_for("test_resume")

#: Learners whose fast settings are for tabular data, and what else they need
#: (the MANN predicts over the training pool's seven classes).
_TABULAR = {MANNClassifier: {"max_classes": 7}, MetaLSTMClassifier: {}}

#: Epochs of the straight run; the split runs stop after ``_FIRST``.
_EPOCHS = 4
_FIRST = 2

#: Reptile anneals its outer step to zero over the run, and a first fit of 2
#: epochs with ``anneal=True`` is a whole run of its own. Training split on
#: purpose gives the horizon in epochs, the same in every part.
_FIXED_HORIZON = {
    cls: {"anneal": _EPOCHS} for cls in (ReptileClassifier, ReptileRegressor)
}


class _Interrupted(Exception):
    """What :class:`_InterruptAt` raises."""


class _InterruptAt(Callback):
    """Raise :class:`_Interrupted` at the start of epoch ``epoch`` (1-based)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise _Interrupted


class _RecordOuterStep(Callback):
    """Record the learning rate of every meta-update, as the optimiser applies it."""

    def __init__(self, seen):
        self.seen = seen

    def on_grad_computed(self, net, **kwargs):
        self.seen.append(net.optimizer_.param_groups[0]["lr"])


def _dropout_body():
    """An image body whose training draws from torch's global generator."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.5), nn.ReLU())


def _learner(cls, max_epochs, callbacks=None, **overrides):
    """Build ``cls`` on the CPU with its fast settings for ``max_epochs`` epochs."""
    return fast(
        cls,
        max_epochs=max_epochs,
        callbacks=callbacks,
        device="cpu",
        **_TABULAR.get(cls, {}),
        **overrides,
    )


@pytest.fixture(scope="module")
def pools(digits):
    """Each learner's training pool ``(X, y, groups)``, by class.

    The classifiers' pool is 350 digits of 7 classes: the gradient learners'
    predictions adapt to all of it.
    """
    X, y = digits
    classification = (X[y < 7][:350], y[y < 7][:350], None)
    flat = (classification[0].reshape(350, -1), classification[1], None)
    regression = sinusoid_pool(n_tasks=20)
    return {
        cls: (
            flat
            if cls in _TABULAR
            else classification
            if issubclass(cls, ClassifierMixin)
            else regression
        )
        for cls in LEARNERS
    }


@pytest.fixture(scope="module")
def straight_runs(pools):
    """``get(cls, **overrides)``: ``cls`` fitted for ``_EPOCHS`` epochs in one go.

    Each run is fitted once, when a test first asks for it.
    """
    runs = {}

    def get(cls, **overrides):
        key = (cls, *sorted(overrides.items()))
        if key not in runs:
            X, y, groups = pools[cls]
            runs[key] = _learner(cls, _EPOCHS, **overrides).fit(X, y, groups=groups)
        return runs[key]

    return get


def _resume(cls, pool, checkpoint, callbacks=(), **overrides):
    """Fit a new learner that loads ``checkpoint`` and trains the epochs left."""
    X, y, groups = pool
    callbacks = [LoadInitState(checkpoint), *callbacks]
    learner = _learner(cls, _EPOCHS - _FIRST, callbacks, **overrides)
    return learner.fit(X, y, groups=groups)


def _interrupt_and_resume(cls, pool, checkpoint, **overrides):
    """Stop a 4-epoch fit at the start of epoch 3; resume it from ``checkpoint``."""
    X, y, groups = pool
    callbacks = [checkpoint, _InterruptAt(_FIRST + 1)]
    interrupted = _learner(cls, _EPOCHS, callbacks, **overrides)
    with pytest.raises(_Interrupted):
        interrupted.fit(X, y, groups=groups)
    assert not hasattr(interrupted, "module_")  # a failed fit leaves nothing
    return _resume(cls, pool, checkpoint, **overrides)


def _assert_same_run(straight, resumed, pool):
    """Assert that two learners hold the same weights, history and predictions."""
    X = pool[0][:60]
    assert len(resumed.history_) == len(straight.history_) == _EPOCHS
    assert resumed.history_[:, "train_loss"] == straight.history_[:, "train_loss"]
    assert_same_weights(weights(straight.module_), weights(resumed.module_))
    np.testing.assert_array_equal(straight.predict(X), resumed.predict(X))
    if hasattr(straight, "predict_proba"):
        np.testing.assert_array_equal(
            straight.predict_proba(X), resumed.predict_proba(X)
        )


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_split_training_equals_straight_training(cls, pools, straight_runs, tmp_path):
    """Check that 2 epochs, then 2 more from the checkpoint, equal 4 at once."""
    X, y, groups = pools[cls]
    settings = _FIXED_HORIZON.get(cls, {})
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    _learner(cls, _FIRST, [checkpoint], **settings).fit(X, y, groups=groups)
    resumed = _resume(cls, pools[cls], checkpoint, **settings)
    _assert_same_run(straight_runs(cls, **settings), resumed, pools[cls])


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_interrupted_training_resumes_exactly(cls, pools, straight_runs, tmp_path):
    """Check that a 4-epoch fit stopped after epoch 2 resumes to the same end."""
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    resumed = _interrupt_and_resume(cls, pools[cls], checkpoint)
    _assert_same_run(straight_runs(cls), resumed, pools[cls])


@pytest.mark.parametrize("cls", [ReptileClassifier, ReptileRegressor])
def test_resumed_reptile_keeps_annealing_over_the_run(cls, pools, tmp_path):
    """Check that a resumed fit anneals over all the run's epochs, not its own.

    The outer steps of epochs 3 and 4 resumed from a 2-epoch checkpoint are
    those of epochs 3 and 4 of a 4-epoch run, still above zero.
    """
    X, y, groups = pools[cls]
    straight, resumed = [], []
    _learner(cls, _EPOCHS, [_RecordOuterStep(straight)]).fit(X, y, groups=groups)
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    _learner(cls, _FIRST, [checkpoint]).fit(X, y, groups=groups)
    _resume(cls, pools[cls], checkpoint, [_RecordOuterStep(resumed)])
    assert len(straight) == 2 * len(resumed)
    assert resumed == straight[len(resumed) :]
    assert min(resumed) > 0


@pytest.mark.parametrize(
    "cls", [PrototypicalClassifier, MAMLClassifier, ReptileClassifier]
)
def test_dropout_in_the_module_resumes_exactly(cls, pools, tmp_path):
    """Check that random layers draw the same numbers in a resumed run.

    Dropout draws from torch's global generator, which each epoch seeds from
    the learner's seed and the epoch, then gives back to the caller as it was.
    """
    X, y, _ = pools[cls]
    straight = _learner(cls, _EPOCHS, module=_dropout_body).fit(X, y)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = _learner(cls, _EPOCHS, module=_dropout_body).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)  # the caller's numbers
    assert_same_weights(weights(straight.module_), weights(again.module_))
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    resumed = _interrupt_and_resume(cls, pools[cls], checkpoint, module=_dropout_body)
    _assert_same_run(straight, resumed, pools[cls])


# -- the policies: each meta-update is an epoch to the callbacks ---------------------


def _policy(max_iter, callbacks=None):
    """A fast bandit policy meta-trained for ``max_iter`` meta-updates."""
    from sklearn_meta.rl import MAMLPolicy

    return fast(MAMLPolicy, max_iter=max_iter, callbacks=callbacks)


def _assert_same_policy(straight, resumed):
    """Assert equal histories, weights and action probabilities."""
    assert len(resumed.history_) == len(straight.history_) == _EPOCHS
    for key in ("train_loss", "return_before", "return_after"):
        assert resumed.history_[:, key] == straight.history_[:, key]
    assert_same_weights(weights(straight.module_), weights(resumed.module_))
    obs = np.zeros((3, 1), dtype=np.float32)
    np.testing.assert_array_equal(
        straight.predict_proba(obs), resumed.predict_proba(obs)
    )


@pytest.mark.parametrize("interrupted", [False, True], ids=["split", "interrupted"])
def test_policies_resume_exactly(interrupted, tmp_path):
    """Check 2 + 2 meta-updates, and an interrupted run, against 4 at once."""
    from sklearn_meta.rl import BernoulliBanditTasks

    tasks = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)
    straight = _policy(_EPOCHS).fit(tasks)
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    if interrupted:
        first = _policy(_EPOCHS, [checkpoint, _InterruptAt(_FIRST + 1)])
        with pytest.raises(_Interrupted):
            first.fit(tasks)
    else:
        _policy(_FIRST, [checkpoint]).fit(tasks)
    resumed = _policy(_EPOCHS - _FIRST, [LoadInitState(checkpoint)]).fit(tasks)
    _assert_same_policy(straight, resumed)
