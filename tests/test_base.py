"""Tests of the shared estimator contract, exercised through PrototypicalClassifier."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
)
from skorch.exceptions import DeviceWarning
from torch import nn

from sklearn_meta import AdaptedClassifier, PrototypicalClassifier, Task, adapt
from sklearn_meta.model_selection import ClassKFold
from sklearn_meta.tasks import sample_tasks

from ._helpers import assert_same_weights, predict_proba_without_cuda, weights
from ._settings import FAST_PARAMS, fast


@pytest.fixture(scope="module")
def fitted(digits):
    """A learner meta-trained on digits 0-6."""
    X, y = digits
    return fast(PrototypicalClassifier).fit(X[y < 7], y[y < 7])


@pytest.fixture(scope="module")
def support(digits):
    """A 3-way 2-shot support set of digits 7-9 and their other images as queries."""
    X, y = digits
    idx = np.concatenate([np.flatnonzero(y == c)[:2] for c in (7, 8, 9)])
    rest = np.setdiff1d(np.flatnonzero(y >= 7), idx)
    return X[idx], y[idx], X[rest], y[rest]


# -- fit in three forms ------------------------------------------------------


def test_fit_returns_self_and_sets_fitted_attributes(digits):
    """Check that fit returns self and sets the documented fitted state."""
    X, y = digits
    clf = fast(PrototypicalClassifier)
    assert clf.fit(X, y) is clf
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 1 and clf.sample_shape_ == (1, 8, 8)
    assert clf.device_ == torch.device("cpu")
    assert len(clf.history_) == FAST_PARAMS[PrototypicalClassifier]["max_epochs"]
    assert {"train_loss", "train_acc", "dur"} <= set(clf.history_[-1])


def test_fit_on_task_sequence_and_generator_learn(omniglot_small):
    """Check that fit(tasks) learns from a list and from a generator alike."""
    X, y, Xe, ye = omniglot_small
    tasks = sample_tasks(
        X, y, n_way=10, k_shot=1, n_query=5, n_tasks=40, random_state=0
    )
    params = dict(
        n_way=5,
        k_shot=1,
        n_query=5,
        max_epochs=2,
        episodes_per_epoch=20,
        meta_batch_size=4,
        n_eval_episodes=100,
        random_state=0,
    )
    untrained = PrototypicalClassifier(**{**params, "max_epochs": 0}).fit(tasks)
    from_list = PrototypicalClassifier(**params).fit(tasks)
    from_generator = PrototypicalClassifier(**params).fit(t for t in tasks)
    before = untrained.score(Xe, ye)
    for clf in (from_list, from_generator):
        assert clf.score(Xe, ye) > before + 0.05
    # The list is reshuffled every epoch; the generator is consumed once, in order.
    assert len(from_list.history_) == len(from_generator.history_) == 2


def test_fit_stops_when_a_task_iterator_runs_dry(digits):
    """Check that an iterator of tasks ends training when it is exhausted."""
    X, y = digits
    tasks = sample_tasks(X, y, n_way=3, k_shot=1, n_query=2, n_tasks=25, random_state=0)
    clf = fast(PrototypicalClassifier, max_epochs=10).fit(iter(tasks))
    assert len(clf.history_) == 3
    assert len(clf.history_[-1, "batches"]) == 5


def test_fit_on_tasks_has_no_pool_prediction_and_says_so(digits):
    """Check that predict after fit(tasks) says why it cannot, and adapt works."""
    X, y = digits
    tasks = sample_tasks(X, y, n_way=3, k_shot=1, n_query=2, n_tasks=10, random_state=0)
    clf = fast(PrototypicalClassifier).fit(tasks)
    with pytest.raises(
        NotFittedError, match="meta-trained on tasks rather than a labelled pool"
    ):
        clf.predict(X)
    assert clf.adapt(X[:20], y[:20]).predict(X[:5]).shape == (5,)


def test_fit_on_tasks_of_different_sizes(digits):
    """Check that tasks of different shapes train together (grouped by shape)."""
    X, y = digits
    tasks = sample_tasks(
        X, y, n_way=2, k_shot=1, n_query=2, n_tasks=6, random_state=0
    ) + sample_tasks(X, y, n_way=4, k_shot=2, n_query=1, n_tasks=6, random_state=1)
    clf = fast(PrototypicalClassifier, meta_batch_size=12).fit(tasks)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()


def test_fit_with_groups_draws_episodes_within_groups(digits):
    """Check that fit(X, y, groups) learns when labels mean something per group."""
    X, y = digits
    groups = np.where(y < 5, "low", "high")
    y_local = y % 5  # the same labels name different digits in the two groups
    seen = []

    class Spy(PrototypicalClassifier):
        def _episode_losses(self, batch):
            seen.append(batch.X_support.shape)
            return super()._episode_losses(batch)

    clf = fast(Spy).fit(X, y_local, groups=groups)
    assert seen and clf.score(X, y_local, groups=groups) > 1 / 3


def test_fit_rejects_y_or_groups_with_tasks(digits):
    """Check that fit(tasks, y) is refused with a clear message."""
    X, y = digits
    tasks = sample_tasks(X, y, n_way=3, k_shot=1, n_query=2, n_tasks=3, random_state=0)
    with pytest.raises(ValueError, match="takes the tasks alone"):
        fast(PrototypicalClassifier).fit(tasks, y[:3])


@pytest.mark.parametrize(
    "tasks, match",
    [
        ([Task(np.zeros((2, 3)), [0, 1], np.zeros((2, 3)), [0, 2])], "query labels 2"),
        (
            [Task(np.zeros((2, 3)), [0, 1], np.zeros((2, 4)), [0, 1])],
            "same trailing shape",
        ),
        (
            [Task(np.zeros((2, 3)), [0, 1, 1], np.zeros((2, 3)), [0, 1])],
            "X_support has 2 rows",
        ),
        (
            [Task(np.full((2, 3), np.nan), [0, 1], np.zeros((2, 3)), [0, 1])],
            "NaN or infinity",
        ),
        (
            iter([Task(np.zeros((2, 3)), [0, 1], np.zeros((2, 3)), [0, 1]), "nope"]),
            "item 1 is a str",
        ),
    ],
)
def test_fit_on_bad_tasks_raises_clear_errors(tasks, match):
    """Check that malformed tasks raise errors naming what is wrong."""
    with pytest.raises((ValueError, TypeError), match=match):
        fast(PrototypicalClassifier, meta_batch_size=2).fit(tasks)


# -- input validation ----------------------------------------------------------


def test_invalid_parameter_is_named_in_sklearn_wording(digits):
    """Check that a bad n_way raises sklearn's parameter-constraint message."""
    X, y = digits
    msg = (
        r"The 'n_way' parameter of PrototypicalClassifier must be an int in the "
        r"range \[2, inf\)\. Got 1 instead\."
    )
    with pytest.raises(InvalidParameterError, match=msg):
        PrototypicalClassifier(n_way=1).fit(X, y)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.full((20, 4), np.nan), np.repeat([0, 1], 10), "Input X contains NaN"),
        (np.full((20, 4), np.inf), np.repeat([0, 1], 10), "Input X contains infinity"),
        (np.zeros((20, 4)), np.repeat([0, 1], 9), "inconsistent numbers of samples"),
        (
            np.zeros((20, 4, 4)),
            np.repeat([0, 1], 10),
            "must be 2-dimensional .* or 4-dimensional",
        ),
        (np.zeros(20), np.repeat([0, 1], 10), "Expected 2D array, got 1D array"),
        (np.zeros((20, 4)), np.linspace(0, 1, 20), "looks continuous"),
        (np.zeros((20, 4)), None, "requires y to be passed"),
        (
            np.zeros((20, 4)),
            np.repeat([0, 1], 10),
            "n_way=3 is larger than the number of classes in y",
        ),
        (
            np.zeros((12, 4)),
            np.repeat([0, 1, 2], 4),
            r"k_shot \+ n_query = 5 examples, but class",
        ),
    ],
)
def test_fit_raises_clear_errors_on_bad_input(X, y, match):
    """Check that each kind of bad training data raises its own clear message."""
    clf = fast(PrototypicalClassifier, n_query=4 if len(X) == 12 else 3)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_groups_of_wrong_length_are_refused(digits):
    """Check that groups of the wrong length are refused with both lengths."""
    X, y = digits
    with pytest.raises(ValueError, match="groups has 3 entries but X has 1797 samples"):
        fast(PrototypicalClassifier).fit(X, y, groups=[0, 1, 2])


def test_methods_before_fit_raise_not_fitted(support):
    """Check that predict, predict_proba, adapt and score raise NotFittedError."""
    Xs, ys, Xq, yq = support
    clf = fast(PrototypicalClassifier)
    for call in (
        lambda: clf.predict(Xq),
        lambda: clf.predict_proba(Xq),
        lambda: clf.adapt(Xs, ys),
        lambda: clf.score(Xq, yq),
    ):
        with pytest.raises(NotFittedError):
            call()


def test_failed_fit_leaves_estimator_unfitted(digits):
    """Check that a fit that raises does not leave half-fitted state behind."""
    X, y = digits
    clf = fast(PrototypicalClassifier, n_way=11)
    with pytest.raises(ValueError):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_predict_checks_sample_shape_and_features(fitted, digits):
    """Check that queries of the wrong shape, width or values are refused."""
    X, _ = digits
    with pytest.raises(
        ValueError, match=r"samples of shape \(1, 4, 4\), but .* \(1, 8, 8\)"
    ):
        fitted.predict(X[:, :, :4, :4])
    with pytest.raises(ValueError, match="X has 2 features, but"):
        fitted.predict(np.concatenate([X, X], axis=1))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(np.full_like(X[:2], np.nan))


def test_unknown_keyword_parameter_is_refused_at_fit(digits):
    """Check that a typo in a routed parameter name is reported by fit."""
    X, y = digits
    clf = fast(PrototypicalClassifier, modul__hidden=3)
    with pytest.raises(
        TypeError, match=r"unexpected parameter\(s\) \['modul__hidden'\]"
    ):
        clf.fit(X, y)


def test_cuda_device_without_cuda_is_a_clear_error(digits):
    """Check that an unavailable or malformed device is a clear error."""
    X, y = digits
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fast(PrototypicalClassifier, device="cuda").fit(X, y)
    with pytest.raises(
        ValueError, match="'device' parameter must be 'auto' or a torch device"
    ):
        fast(PrototypicalClassifier, device="gpu-please").fit(X, y)


def test_module_that_does_not_fit_the_data_fails_early(digits):
    """Check that a module whose input layer mismatches the data is reported early."""
    X, y = digits
    clf = fast(PrototypicalClassifier, nn.Linear(5, 3))
    with pytest.raises(ValueError, match=r"could not process samples of shape \(64,\)"):
        clf.fit(X.reshape(len(X), -1), y)


# -- parameters, routing, clone, reproducibility ----------------------------------


def test_module_and_optimizer_parameters_are_routed(digits):
    """Check that module__* and optimizer__* reach the module and the optimiser."""
    X, y = digits
    clf = fast(
        PrototypicalClassifier,
        module__hidden_features=16,
        optimizer__weight_decay=0.1,
    )
    clf.set_params(module__scale=2.0)
    assert clf.get_params()["module__scale"] == 2.0
    copy = clone(clf)
    assert copy.get_params()["module__hidden_features"] == 16
    copy.fit(X.reshape(len(X), -1), y)
    linears = [m for m in copy.module_.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 64]
    assert copy.optimizer_.param_groups[0]["weight_decay"] == 0.1
    # A parameter the default module does not take is named, with the module.
    clf.set_params(module__hidden_layer_sizes=(16,))
    match = r"module__\* parameters .*unexpected keyword argument .hidden_layer_sizes"
    with pytest.raises(ValueError, match=match):
        clf.fit(X.reshape(len(X), -1), y)


def test_same_random_state_gives_identical_models(digits):
    """Check that random_state makes fits repeatable and different seeds differ."""
    X, y = digits
    a = fast(PrototypicalClassifier, random_state=3).fit(X, y)
    b = fast(PrototypicalClassifier, random_state=3).fit(X, y)
    c = fast(PrototypicalClassifier, random_state=4).fit(X, y)
    assert_same_weights(weights(a.module_), weights(b.module_))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not torch.equal(a.module_[0][0].weight, c.module_[0][0].weight)


def test_fit_leaves_global_torch_rng_alone(digits):
    """Check that seeding happens on forked generators, not the caller's."""
    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast(PrototypicalClassifier).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_user_module_instance_is_not_trained_in_place(digits):
    """Check that a module passed by the user keeps its weights."""
    X, y = digits
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    before = weights(module)
    clf = fast(PrototypicalClassifier, module).fit(X, y)
    assert_same_weights(before, weights(module))
    assert clf.module_ is not module


def test_fixed_embedding_needs_max_epochs_zero(digits):
    """Check that a module without trainable parameters is refused with advice."""
    X, y = digits
    with pytest.raises(ValueError, match="no trainable parameters"):
        fast(PrototypicalClassifier, nn.Flatten()).fit(X, y)


# -- adapt ---------------------------------------------------------------------------


def test_adapt_returns_new_classifier_and_leaves_meta_learner_unchanged(
    fitted, support
):
    """Check that adapt gives a fitted classifier and does not mutate the learner."""
    Xs, ys, Xq, yq = support
    before = weights(fitted.module_)
    classes_before = fitted.classes_.copy()
    adapted = fitted.adapt(Xs, ys)
    assert isinstance(adapted, AdaptedClassifier)
    np.testing.assert_array_equal(adapted.classes_, [7, 8, 9])
    assert adapted.predict_proba(Xq).shape == (len(Xq), 3)
    np.testing.assert_allclose(adapted.predict_proba(Xq).sum(1), 1)
    assert adapted.score(Xq, yq) > 1 / 3
    assert_same_weights(before, weights(fitted.module_))
    np.testing.assert_array_equal(fitted.classes_, classes_before)


def test_adapt_accepts_any_hashable_labels_and_order(fitted, support):
    """Check that string labels and a relabelling give the same predictions."""
    Xs, ys, Xq, _ = support
    names = np.array(["seven", "eight", "nine"])[ys - 7]
    by_number = fitted.adapt(Xs, ys).predict(Xq)
    by_name = fitted.adapt(Xs, names).predict(Xq)
    np.testing.assert_array_equal(
        np.array(["seven", "eight", "nine"])[by_number - 7], by_name
    )
    perm = np.random.default_rng(0).permutation(len(Xs))
    np.testing.assert_array_equal(
        fitted.adapt(Xs[perm], ys[perm]).predict(Xq), by_number
    )


def test_adapt_to_more_ways_than_trained(fitted, digits):
    """Check that a learner trained 3-way adapts to a 10-way support set."""
    X, y = digits
    idx = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(10)])
    adapted = fitted.adapt(X[idx], y[idx])
    assert len(adapted.classes_) == 10
    assert adapted.score(X, y) > 0.5


def test_adapt_raises_clear_errors(fitted, support):
    """Check that adapt refuses one class, too many classes and bad shapes."""
    Xs, ys, _, _ = support
    with pytest.raises(
        ValueError, match="y_support has 1 class; a classifier needs at least 2"
    ):
        fitted.adapt(Xs[:2], ys[:2])
    with pytest.raises(ValueError, match="X has samples of shape"):
        fitted.adapt(Xs[:, :, :4], ys)

    class AtMostTwo(PrototypicalClassifier):
        _max_adapt_classes = 2

    two = ys < 9
    limited = fast(AtMostTwo, n_way=2).fit(
        np.concatenate([Xs[two]] * 4), np.concatenate([ys[two]] * 4)
    )
    with pytest.raises(
        ValueError, match="y_support has 3 classes but AtMostTwo can take at most 2"
    ):
        limited.adapt(Xs, ys)


def test_adapted_classifier_is_independent_of_later_refits(fitted, support, digits):
    """Check that refitting the meta-learner does not change an adapted classifier."""
    X, y = digits
    Xs, ys, Xq, _ = support
    learner = clone(fitted).fit(X[y < 7], y[y < 7])
    adapted = learner.adapt(Xs, ys)
    before = adapted.predict_proba(Xq)
    learner.set_params(random_state=99).fit(X[y < 7], y[y < 7])
    np.testing.assert_array_equal(adapted.predict_proba(Xq), before)


def test_clone_of_adapted_classifier_adapts_again(fitted, support):
    """Check that clone keeps the fitted meta-learner, so fit adapts to new data."""
    Xs, ys, Xq, _ = support
    adapted = fitted.adapt(Xs, ys)
    again = clone(adapted)
    assert again.meta_learner is fitted
    np.testing.assert_array_equal(again.fit(Xs, ys).predict(Xq), adapted.predict(Xq))


def test_adapt_pipeline_returns_pipeline_with_adapted_last_step(digits, support):
    """Check that adapt on a Pipeline adapts its last step behind the same steps."""
    X, y = digits
    Xs, ys, Xq, _ = support
    flat = FunctionTransformer(lambda A: A.reshape(len(A), -1))
    pipe = make_pipeline(flat, StandardScaler(), fast(PrototypicalClassifier))
    pipe.fit(X[y < 7], y[y < 7])
    adapted = adapt(pipe, Xs, ys)
    assert isinstance(adapted, Pipeline) and isinstance(adapted[-1], AdaptedClassifier)
    assert adapted[0] is pipe[0] and adapted[1] is pipe[1]
    manual = (
        pipe[-1].adapt(pipe[:-1].transform(Xs), ys).predict(pipe[:-1].transform(Xq))
    )
    np.testing.assert_array_equal(adapted.predict(Xq), manual)
    with pytest.raises(TypeError, match="has no adapt method"):
        adapt(StandardScaler().fit(Xs.reshape(len(Xs), -1)), Xs, ys)


# -- scoring and model selection ----------------------------------------------------


def test_score_is_episodic_and_repeatable(fitted, digits):
    """Check that score averages n_eval_episodes episodes drawn from a fixed seed."""
    X, y = digits
    test = y >= 7
    scores = fitted._episodic_scores(X[test], y[test])
    assert scores.shape == (FAST_PARAMS[PrototypicalClassifier]["n_eval_episodes"],)
    assert fitted.score(X[test], y[test]) == pytest.approx(scores.mean())
    assert fitted.score(X[test], y[test]) == fitted.score(X[test], y[test])
    with pytest.raises(
        ValueError, match="n_way=3 is larger than the number of classes in y"
    ):
        fitted.score(X[y >= 8], y[y >= 8])


def test_grid_search_with_class_kfold_picks_by_episodic_score(omniglot_small):
    """Check that GridSearchCV with ClassKFold prefers a learner that learns."""
    X, y, _, _ = omniglot_small
    search = GridSearchCV(
        PrototypicalClassifier(
            n_way=5,
            k_shot=1,
            n_query=5,
            train_n_way=10,
            max_epochs=1,
            episodes_per_epoch=30,
            n_eval_episodes=100,
            random_state=0,
        ),
        {"lr": [1e-12, 3e-3]},
        cv=ClassKFold(2, shuffle=True, random_state=0),
    ).fit(X[:2000], y[:2000])
    assert search.best_params_ == {"lr": 3e-3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.05


def test_grid_search_routes_groups_to_fit_with_metadata_routing(digits):
    """Check that GridSearchCV with metadata routing passes groups to fit."""
    X, y = digits
    groups = np.where(y < 5, "low", "high")
    received = []

    class Recorder(PrototypicalClassifier):
        def fit(self, X, y=None, groups=None):
            received.append(None if groups is None else len(groups))
            return super().fit(X, y, groups=groups)

    with sklearn.config_context(enable_metadata_routing=True):
        clf = fast(Recorder).set_fit_request(groups=True).set_score_request(groups=True)
        GridSearchCV(clf, {"lr": [1e-3]}, cv=GroupKFold(2)).fit(X, y % 5, groups=groups)
    assert received and all(n is not None for n in received)


def test_meta_validation_split_holds_out_classes_and_records_history(digits):
    """Check that train_split records validation scores and refuses tiny splits."""
    X, y = digits
    clf = fast(PrototypicalClassifier, train_split=0.3, n_valid_episodes=10)
    clf.fit(X, y)
    assert {"valid_loss", "valid_acc"} <= set(clf.history_[-1])
    with pytest.raises(
        ValueError, match=r"Meta-validation split \(train_split=0.2\): n_way=3"
    ):
        fast(PrototypicalClassifier, train_split=0.2).fit(X, y)
    with pytest.raises(ValueError, match=r"Meta-training pool: n_way=3 is larger"):
        fast(PrototypicalClassifier, train_split=0.9).fit(X, y)


# -- callbacks: early stopping, checkpoints, schedules ---------------------------------


def test_early_stopping_on_meta_validation_stops_and_restores_best(digits):
    """Check that EarlyStopping on valid_acc stops early and restores the best."""
    X, y = digits
    best = {}

    class RememberBest(Callback):
        def on_epoch_end(self, net, **kwargs):
            if net.history[-1, "valid_acc_best"]:
                best["weights"] = weights(net.module_)

    stop = EarlyStopping(
        monitor="valid_acc", lower_is_better=False, patience=1, load_best=True
    )
    clf = fast(
        PrototypicalClassifier,
        max_epochs=30,
        lr=0.05,
        train_split=0.3,
        n_valid_episodes=20,
        callbacks=[RememberBest(), stop],
    )
    clf.fit(X, y)
    assert len(clf.history_) < 30
    assert_same_weights(best["weights"], weights(clf.module_))


def test_lr_scheduler_callback_changes_learning_rate(digits):
    """Check that skorch's LRScheduler drives the meta-optimiser."""
    X, y = digits
    clf = fast(
        PrototypicalClassifier,
        max_epochs=3,
        lr=0.1,
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5)],
    )
    clf.fit(X, y)
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_gradient_norm_clipping_callback_sees_gradients(digits):
    """Check that on_grad_computed lets skorch's GradientNormClipping clip."""
    X, y = digits
    norms = []

    class Norm(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
            norms.append(torch.stack(grads).norm().item())

    fast(PrototypicalClassifier, callbacks=[GradientNormClipping(1e-3), Norm()]).fit(
        X, y
    )
    assert norms and max(norms) <= 1e-3 * 1.0001


def test_verbose_prints_the_epoch_log(digits, capsys):
    """Check that verbose=1 prints skorch's log table."""
    X, y = digits
    fast(PrototypicalClassifier, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "train_acc" in out


def test_save_and_load_params_round_trip(fitted, digits, tmp_path):
    """Check that load_params restores saved weights and drops pool prediction."""
    X, y = digits
    fitted.save_params(
        f_params=tmp_path / "p.pt",
        f_optimizer=tmp_path / "o.pt",
        f_history=tmp_path / "h.json",
    )
    other = fast(PrototypicalClassifier, random_state=5).fit(X[y < 7], y[y < 7])
    other.load_params(
        f_params=tmp_path / "p.pt",
        f_optimizer=tmp_path / "o.pt",
        f_history=tmp_path / "h.json",
    )
    assert_same_weights(weights(fitted.module_), weights(other.module_))
    assert len(other.history_) == len(fitted.history_)
    with pytest.raises(NotFittedError, match="reloaded with load_params"):
        other.predict(X)
    Xs, ys = X[y >= 7][:30], y[y >= 7][:30]
    np.testing.assert_array_equal(
        fitted.adapt(Xs, ys).predict(X), other.adapt(Xs, ys).predict(X)
    )
    with pytest.raises(NotFittedError, match="save_params needs the module to exist"):
        PrototypicalClassifier().save_params(f_params=tmp_path / "x.pt")
    with pytest.raises(ValueError, match="use_safetensors=True is not supported"):
        fitted.save_params(f_params=tmp_path / "x.pt", use_safetensors=True)


# -- persistence -----------------------------------------------------------------------


def test_joblib_round_trip_reproduces_predictions_exactly(fitted, support, tmp_path):
    """Check that joblib copies of a learner and an adapted one predict the same."""
    Xs, ys, Xq, _ = support
    adapted = fitted.adapt(Xs, ys)
    joblib.dump(fitted, tmp_path / "meta.joblib")
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    meta2 = joblib.load(tmp_path / "meta.joblib")
    adapted2 = joblib.load(tmp_path / "adapted.joblib")
    np.testing.assert_array_equal(meta2.predict_proba(Xq), fitted.predict_proba(Xq))
    np.testing.assert_array_equal(adapted2.predict_proba(Xq), adapted.predict_proba(Xq))
    np.testing.assert_array_equal(
        meta2.adapt(Xs, ys).predict_proba(Xq), adapted.predict_proba(Xq)
    )
    # Pickling does not disturb the original.
    np.testing.assert_array_equal(fitted.classes_, meta2.classes_)
    pickle.loads(pickle.dumps(fast(PrototypicalClassifier)))  # before fit too


def test_model_saved_on_cuda_loads_on_cpu(fitted, support, monkeypatch):
    """Check that a CUDA-fitted model maps to the CPU where CUDA is missing."""
    Xs, ys, Xq, _ = support
    state = fitted.__getstate__()
    # Re-pack as if fitted on a GPU: the blob records device_ = cuda.
    from sklearn_meta._persistence import _pack_torch_state, _unpack_torch_state

    unpacked = _unpack_torch_state(dict(state))
    unpacked["device_"] = torch.device("cuda", 0)
    blob = _pack_torch_state(unpacked)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = PrototypicalClassifier.__new__(PrototypicalClassifier)
    with pytest.warns(
        DeviceWarning, match="saved on cuda:0, which is not available here"
    ):
        loaded.__setstate__(blob)
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.predict(Xq), fitted.predict(Xq))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.adapt(Xs, ys).predict(Xq)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_fit_predicts_and_loads_in_a_process_without_cuda(
    digits, support, tmp_path
):
    """Check that CUDA-trained pickles predict the same in a process without GPU."""
    X, y = digits
    Xs, ys, Xq, _ = support
    clf = fast(PrototypicalClassifier, device="auto").fit(X[y < 7], y[y < 7])
    assert next(clf.module_.parameters()).is_cuda
    adapted = clf.adapt(Xs, ys)
    on_cpu = predict_proba_without_cuda(tmp_path, {"meta": clf, "adapted": adapted}, Xq)
    np.testing.assert_allclose(on_cpu["meta"], clf.predict_proba(Xq), atol=1e-5)
    np.testing.assert_allclose(on_cpu["adapted"], adapted.predict_proba(Xq), atol=1e-5)
