"""What the gradient-based family shares.

The vectorised inner loop against a per-task reference, adaptation,
persistence, chunking, and every learner learning.
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from sklearn_meta import (
    ANILClassifier,
    ANILRegressor,
    MAMLClassifier,
    MAMLRegressor,
    MetaSGDClassifier,
    MetaSGDRegressor,
    ReptileClassifier,
    ReptileRegressor,
)
from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.tasks import _EpisodeBatch

from .._helpers import predict_proba_without_cuda
from .._settings import fast
from ._helpers import (
    image_episodes,
    sinusoid_mse,
    sinusoid_pool,
    vectorised_meta_gradient,
)


def _initialised(learner, X, y):
    """A learner with its module built (no training), in float64."""
    learner.set_params(max_epochs=0).fit(X, y)
    learner.module_.double()
    return learner


def _reference_meta_gradient(learner, batch, steps, first_order):
    """Per-task loop with torch.autograd.grad(create_graph=True): the reference."""
    model = learner.module_
    meta = dict(model.named_parameters())
    lrs = None if model.lrs is None else dict(model.lrs.items())
    adapt_body = learner._adapt_body
    n_classes = batch.n_classes
    n_tasks = len(batch.X_support)

    def forward(params, X, rows):
        body = {k[5:]: v for k, v in params.items() if k.startswith("body.")}
        with model.norm_calls(rows=rows):
            z = functional_call(model.body, body, (X,)).flatten(1)
        return F.linear(z, params["head.weight"], params["head.bias"])

    total = 0
    for i in range(n_tasks):
        fast_weights = {k: v for k, v in meta.items() if not k.startswith("lrs.")}
        fast_weights["head.weight"] = fast_weights["head.weight"].expand(n_classes, -1)
        fast_weights["head.bias"] = fast_weights["head.bias"].expand(n_classes)
        # Adapted but not meta-learned (the classifiers' fixed head start).
        fast_weights = {
            k: v if v.requires_grad else v.detach().requires_grad_()
            for k, v in fast_weights.items()
        }
        names = [k for k in fast_weights if adapt_body or k.startswith("head.")]
        X_s, y_s = batch.X_support[i], batch.y_support[i]
        for _ in range(steps):
            loss = F.cross_entropy(forward(fast_weights, X_s, None), y_s)
            grads = torch.autograd.grad(
                loss, [fast_weights[k] for k in names], create_graph=not first_order
            )
            for k, g in zip(names, grads, strict=True):
                lr = learner.inner_lr if lrs is None else lrs[k.replace(".", "/")]
                fast_weights[k] = fast_weights[k] - lr * g
        n_s = len(X_s)
        out = forward(fast_weights, torch.cat([X_s, batch.X_query[i]]), n_s)[n_s:]
        total = total + F.cross_entropy(out, batch.y_query[i]) / n_tasks
    params = list(model.parameters())
    learned = [p for p in params if p.requires_grad]
    found = torch.autograd.grad(total, learned, allow_unused=True)
    grads = dict(zip(map(id, learned), found))
    return [
        torch.zeros_like(p) if grads.get(id(p)) is None else grads[id(p)]
        for p in params
    ]


def _perturbed(cls, digits, steps, first_order):
    """A small conv learner in float64 with every parameter moved off its start.

    Non-zero head and batch-norm parameters, so that every term of the
    meta-gradient matters.
    """
    X, y = digits
    learner = _initialised(
        fast(
            cls,
            module__hidden_channels=4,
            inner_steps=steps,
            first_order=first_order,
        ),
        X,
        y,
    )
    with torch.no_grad():
        for p in learner.module_.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return learner


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("first_order", [False, True])
def test_vectorised_meta_gradient_equals_per_task_loop(digits, steps, first_order):
    """Check that the vmap meta-gradient equals a per-task loop (conv net, BN)."""
    learner = _perturbed(MAMLClassifier, digits, steps, first_order)
    batch = image_episodes(n_tasks=4, n_way=3, k_shot=2, n_query=2)
    expected = _reference_meta_gradient(learner, batch, steps, first_order)
    got = vectorised_meta_gradient(learner, batch)
    for (name, p), g, e in zip(learner.module_.named_parameters(), got, expected):
        # Every meta-learned term matters; the head's fixed start gets none.
        assert (e.abs().max() > 0) == p.requires_grad, name
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("cls", [MAMLClassifier, ANILClassifier, MetaSGDClassifier])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("first_order", [False, True])
def test_every_task_chunk_size_gives_the_per_task_meta_gradient(
    cls, digits, steps, first_order
):
    """Check one task per call, two, and the whole meta-batch against the loop.

    One task per call runs the module's native kernels (convolution, and
    batch norm fused when first-order; not vmap's grouped ones); every
    strategy accumulates the same meta-gradient, in float64 to the
    reference's rounding.
    """
    learner = _perturbed(cls, digits, steps, first_order)
    batch = image_episodes(n_tasks=4, n_way=3, k_shot=2, n_query=2)
    expected = _reference_meta_gradient(learner, batch, steps, first_order)
    for size in (1, 2, 4):
        learner.module_.zero_grad(set_to_none=True)
        for chunk in learner._chunks(batch, size):
            losses, _ = learner._episode_losses(chunk)
            (losses.sum() / 4).backward()
        for (name, p), e in zip(learner.module_.named_parameters(), expected):
            got = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(
                got, e, rtol=1e-8, atol=1e-12, msg=f"{name}, chunks of {size}"
            )


@pytest.mark.parametrize("steps", [1, 3])
def test_the_shared_head_start_cannot_change_the_query_loss(digits, steps):
    """Check why the classifiers' head start is not meta-learned: zero gradient.

    Made learnable and random, its meta-gradient is zero to float64 rounding
    (a start shared by every class shifts all logits alike), while the body's
    is not.
    """
    X, y = digits
    learner = _initialised(
        fast(MAMLClassifier, module__hidden_channels=4, inner_steps=steps), X, y
    )
    with torch.no_grad():
        for p in learner.module_.parameters():
            p.add_(0.1 * torch.randn_like(p))
    for p in learner.module_.head.parameters():
        p.requires_grad_(True)
    batch = image_episodes(n_tasks=4, n_way=3, k_shot=2, n_query=2)
    grads = dict(
        zip(
            [name for name, _ in learner.module_.named_parameters()],
            _reference_meta_gradient(learner, batch, steps, first_order=False),
        )
    )
    body = max(g.abs().max() for name, g in grads.items() if name.startswith("body"))
    for name in ("head.weight", "head.bias"):
        assert grads[name].abs().max() < 1e-12 * body, name


@pytest.mark.parametrize(
    "cls", [MAMLClassifier, ANILClassifier, MetaSGDClassifier, ReptileClassifier]
)
def test_the_head_start_stays_zero_and_out_of_the_optimiser(cls, digits):
    """Check that the gradient classifiers keep the head's start fixed at zero."""
    X, y = digits
    learner = fast(cls).fit(X[y < 5], y[y < 5])
    head = list(learner.module_.head.parameters())
    optimised = {id(p) for g in learner.optimizer_.param_groups for p in g["params"]}
    for p in head:
        assert not p.requires_grad and id(p) not in optimised
        assert torch.count_nonzero(p) == 0


def test_adapt_leaves_the_meta_learner_unchanged_and_adapts_any_ways(digits):
    """Check that adapting to 5 new string-labelled ways leaves the weights alone."""
    X, y = digits
    clf = fast(MAMLClassifier, module__hidden_channels=8).fit(X[y < 5], y[y < 5])
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7, 8, 9)])
    adapted = clf.adapt(X[support], np.array(list("abcde")).repeat(2))
    assert adapted.predict_proba(X[:7]).shape == (7, 5)
    assert set(adapted.predict(X[:7])) <= set("abcde")
    for k, v in clf.module_.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_label_order_does_not_change_adapted_predictions(digits):
    """Check that the shared head makes adaptation label-permutation equivariant."""
    X, y = digits
    clf = fast(MAMLClassifier, module__hidden_channels=8).fit(X[y < 5], y[y < 5])
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (5, 6, 7)])
    names = np.array(["p", "q", "r"]).repeat(2)
    renamed = np.array(["z", "y", "x"]).repeat(2)  # reversed label order
    p1 = clf.adapt(X[support], names).predict_proba(X[:10])
    p2 = clf.adapt(X[support], renamed).predict_proba(X[:10])
    np.testing.assert_allclose(p1, p2[:, ::-1], rtol=1e-5, atol=1e-6)


CLASSIFIERS = [MAMLClassifier, ANILClassifier, MetaSGDClassifier, ReptileClassifier]


REGRESSORS = [MAMLRegressor, ANILRegressor, MetaSGDRegressor, ReptileRegressor]


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_every_classifier_learns_digits_well_above_chance(cls, digits):
    """Check that each classifier scores above 0.4 on 5-way 1-shot held-out digits."""
    X, y = digits
    X = X.reshape(len(X), -1)
    params = dict(inner_lr=0.1) if cls is MetaSGDClassifier else {}
    clf = cls(
        n_way=5,
        k_shot=1,
        n_query=5,
        max_epochs=3,
        episodes_per_epoch=400,
        meta_batch_size=4,
        random_state=0,
        **params,
    )
    if cls is ReptileClassifier:
        clf.set_params(inner_optimizer="sgd", inner_lr=0.5)
    else:
        clf.set_params(lr=3e-3)
    clf.fit(X[y < 6], y[y < 6])
    # 5-way 1-shot on held-out digits (6 training classes): chance is 0.2.
    assert clf.score(X[y >= 5], y[y >= 5]) > 0.4


@pytest.mark.parametrize("cls", REGRESSORS, ids=lambda c: c.__name__)
def test_every_regressor_adapts_sinusoids(cls):
    """Check that each regressor's adaptation cuts the sinusoid MSE by over 15%."""
    train = make_sinusoid_tasks(n_tasks=2000, random_state=0)
    test = make_sinusoid_tasks(n_tasks=50, random_state=1)
    reg = cls(max_epochs=2, episodes_per_epoch=2000, meta_batch_size=5, random_state=0)
    if cls is ANILRegressor:
        # Only the linear head adapts: it takes larger steps well.
        reg.set_params(inner_lr=0.1)
    if cls is not MetaSGDRegressor:
        # Meta-SGD's learned step sizes are tuned for its training steps.
        reg.set_params(adapt_steps=5)
    reg.fit(train)
    adapted = sinusoid_mse(reg, test)
    unadapted = sinusoid_mse(reg.set_params(adapt_steps=0), test)
    # A short budget (MAML's far larger gain is checked above).
    assert adapted < 0.85 * unadapted


@pytest.mark.parametrize("cls", CLASSIFIERS + REGRESSORS, ids=lambda c: c.__name__)
def test_adapted_estimators_round_trip_through_joblib_exactly(cls, digits, tmp_path):
    """Check that joblib copies of a learner and its adapted one predict the same."""
    import joblib

    if cls in CLASSIFIERS:
        X, y = digits
        X = X.reshape(len(X), -1)
        learner = fast(cls, meta_batch_size=2).fit(X[y < 5], y[y < 5])
        Xs, ys, Xq = X[y >= 5][:10], y[y >= 5][:10], X[y >= 5][10:40]
    else:
        X, y, groups = sinusoid_pool()
        learner = fast(cls).fit(X, y, groups)
        Xs, ys, Xq = X[:10], y[:10], X[10:20]
    adapted = learner.adapt(Xs, ys)
    joblib.dump(adapted, tmp_path / "adapted.joblib")
    joblib.dump(learner, tmp_path / "meta.joblib")
    loaded = joblib.load(tmp_path / "adapted.joblib")
    np.testing.assert_array_equal(loaded.predict(Xq), adapted.predict(Xq))
    meta = joblib.load(tmp_path / "meta.joblib")
    np.testing.assert_array_equal(meta.adapt(Xs, ys).predict(Xq), adapted.predict(Xq))


def test_regressor_fits_groups_as_tasks_and_scores_episodic_r2():
    """Check that groups are tasks and adapting lifts the episodic R2 by over 0.1."""
    X, y, groups = sinusoid_pool(n_tasks=200)
    reg = MAMLRegressor(
        max_epochs=3,
        episodes_per_epoch=500,
        meta_batch_size=5,
        adapt_steps=5,
        n_eval_episodes=50,
        random_state=0,
    ).fit(X, y, groups)
    X_test, y_test, g_test = sinusoid_pool(n_tasks=30, seed=1)
    adapted_r2 = reg.score(X_test, y_test, groups=g_test)
    unadapted_r2 = reg.set_params(adapt_steps=0).score(X_test, y_test, groups=g_test)
    assert adapted_r2 > unadapted_r2 + 0.1


def test_regressor_handles_multi_output_targets():
    """Check that 2-column targets give 2-column predictions and refuse 1 column."""
    X, y, groups = sinusoid_pool()
    Y = np.c_[y, -2 * y]
    reg = fast(MAMLRegressor).fit(X, Y, groups)
    assert reg.n_outputs_ == 2
    assert reg.adapt(X[:10], Y[:10]).predict(X[:7]).shape == (7, 2)
    with pytest.raises(ValueError, match=r"targets of shape \(\) per sample"):
        reg.adapt(X[:10], Y[:10, 0])


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, match",
    [
        ({"train_split": 0.2}, {}, "a pool without groups is a single task"),
        (
            {"k_shot": 15, "n_query": 10},
            {"groups": True},
            r"every task \(group\) needs",
        ),
    ],
)
def test_regressor_pool_errors_are_clear(kwargs, fit_kwargs, match):
    """Check that splitting a group-less pool and too-small groups raise errors."""
    X, y, groups = sinusoid_pool()
    if fit_kwargs:
        fit_kwargs = {"groups": groups}
    with pytest.raises(ValueError, match=match):
        MAMLRegressor(max_epochs=1, **kwargs).fit(X, y, **fit_kwargs)


def test_regressor_rejects_nan_targets_in_adapt():
    """Check that adapt refuses a support set with NaN targets."""
    X, y, groups = sinusoid_pool()
    reg = MAMLRegressor(max_epochs=0, random_state=0).fit(X, y, groups)
    with pytest.raises(ValueError, match="NaN"):
        reg.adapt(X[:3], [0.0, np.nan, 1.0])


def test_gradient_clipping_bounds_the_meta_gradient(digits):
    """Check that max_grad_norm bounds every meta-gradient the optimiser sees."""
    X, y = digits
    X = X.reshape(len(X), -1)
    norms = []

    class Record(torch.optim.Adam):
        def step(self, closure=None):
            grads = [p.grad.flatten() for g in self.param_groups for p in g["params"]]
            norms.append(torch.cat(grads).norm().item())
            return super().step(closure)

    fast(MAMLClassifier, max_grad_norm=1e-3, optimizer=Record).fit(X, y)
    assert norms and max(norms) <= 1e-3 * (1 + 1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", [MAMLClassifier, ReptileClassifier])
def test_gpu_meta_training_matches_and_loads_on_cpu(cls, digits, tmp_path):
    """Check that a model meta-trained on CUDA predicts the same on the CPU."""
    X, y = digits
    clf = fast(cls, device="cuda").fit(X[y < 7], y[y < 7])
    assert next(clf.module_.parameters()).is_cuda
    Xs, ys, Xq = X[y >= 7][:9], y[y >= 7][:9], X[y >= 7][9:40]
    adapted = clf.adapt(Xs, ys)
    on_cpu = predict_proba_without_cuda(tmp_path, {"adapted": adapted}, Xq)
    np.testing.assert_allclose(on_cpu["adapted"], adapted.predict_proba(Xq), atol=1e-4)


def test_scoring_adapts_in_chunks_bounded_in_samples(digits, monkeypatch):
    """Check that scoring large episodes never adapts too many samples at once."""
    from sklearn_meta.gradient import _base

    X, y = digits
    X = X.reshape(len(X), -1)
    clf = fast(MAMLClassifier).fit(X[y < 5], y[y < 5])
    sizes = []
    adapt_tasks = clf._adapt_tasks

    def record(X_s, y_s, X_q, *args):
        sizes.append(X_s.shape[0] * (X_s.shape[1] + X_q.shape[1]))
        return adapt_tasks(X_s, y_s, X_q, *args)

    monkeypatch.setattr(clf, "_adapt_tasks", record)
    monkeypatch.setattr(_base, "_EVAL_ROWS", 100)
    # 5-way 1-shot 15-query: 80 samples per episode, so one episode per call.
    scores = clf._episodic_scores(
        X[y >= 5], y[y >= 5], n_way=5, n_query=15, n_episodes=6
    )
    assert len(scores) == 6 and len(sizes) == 6 and max(sizes) <= 100


def test_auto_task_chunks_are_8_on_cpu_and_whole_batch_on_cuda(digits, monkeypatch):
    """Check "auto": 8 small tasks per call on the CPU, large images one by one.

    With one torch thread from 30 rows a task (15 for Reptile), with more
    from 31 for both.
    """
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    X, y = digits
    clf = fast(MAMLClassifier, meta_batch_size=20).fit(X[y < 5], y[y < 5])
    assert clf.task_chunk_size == "auto"
    sizes = []
    adapt_tasks = clf._adapt_tasks

    def record(X_s, *args):
        sizes.append(len(X_s))
        return adapt_tasks(X_s, *args)

    monkeypatch.setattr(clf, "_adapt_tasks", record)
    images = torch.as_tensor(X[:120]).reshape(20, 2, 3, *X.shape[1:])
    labels = torch.arange(3).repeat(20, 1)
    clf._train_step([_EpisodeBatch(images[:, 0], labels, images[:, 1], labels, 3)])
    assert sizes == [8, 8, 4]
    # Tasks of 30 images or more: one per call (native kernels); Reptile's
    # boundary is 15.
    assert clf._task_chunk_size(29) == 8
    sizes.clear()
    images = torch.as_tensor(X[:600]).reshape(20, 30, *X.shape[1:])
    labels = torch.arange(3).repeat_interleave(10).repeat(20, 1)
    batch = _EpisodeBatch(
        images[:, :24], labels[:, :24], images[:, 24:], labels[:, 24:], 3
    )
    clf._train_step([batch])
    assert sizes == [1] * 20
    reptile = fast(ReptileClassifier).fit(X[y < 5], y[y < 5])
    assert (reptile._task_chunk_size(14), reptile._task_chunk_size(15)) == (8, 1)
    tabular = fast(MAMLClassifier).fit(X.reshape(len(X), -1)[y < 5], y[y < 5])
    assert tabular._task_chunk_size(100) == 8
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert (clf._task_chunk_size(30), clf._task_chunk_size(31)) == (8, 1)
    assert (reptile._task_chunk_size(30), reptile._task_chunk_size(31)) == (8, 1)
    monkeypatch.setattr(clf, "device_", torch.device("cuda"))
    assert clf._task_chunk_size(100) is None
    with pytest.raises(ValueError, match="task_chunk_size"):
        fast(MAMLClassifier, task_chunk_size="big").fit(X[y < 5], y[y < 5])


@pytest.mark.parametrize("cls", [MAMLClassifier, MAMLRegressor])
def test_pool_adaptation_waits_for_the_first_prediction(
    cls, digits, tmp_path, monkeypatch
):
    """Check that fit does not adapt to the pool, and predict adapts once."""
    import joblib

    X, y = digits
    X = X.reshape(len(X), -1)[:300]
    y = y[:300] if cls is MAMLClassifier else X[:, :3].sum(1) + 0.1 * y[:300]
    learner = fast(cls) if cls is MAMLClassifier else cls()
    if cls is MAMLRegressor:
        learner.set_params(k_shot=5, n_query=5, max_epochs=2, episodes_per_epoch=50)
    calls = []
    adapt = cls._adapt

    def record(self, *args):
        calls.append(len(args[0]))
        return adapt(self, *args)

    monkeypatch.setattr(cls, "_adapt", record)
    learner.fit(X, y)
    assert calls == []
    joblib.dump(learner, tmp_path / "unpredicted.joblib")
    first = learner.predict(X[:20])
    assert calls == [300]
    np.testing.assert_array_equal(learner.predict(X[:20]), first)
    assert calls == [300]
    # A pickle made before any prediction adapts on loading's first predict,
    # to the same result.
    loaded = joblib.load(tmp_path / "unpredicted.joblib")
    np.testing.assert_array_equal(loaded.predict(X[:20]), first)


class _NormUsedTwice(nn.Module):
    """A body that applies one batch-norm layer twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.norm(torch.relu(self.norm(self.conv(x)))).flatten(1)


def test_predictions_use_stored_support_statistics(digits):
    """Check that adapted states keep the support's batch-norm statistics.

    Queries normalised with the stored statistics, and the query pass of the
    inner loop (which records the support's statistics in a pass of its
    own), get the outputs they get when the support rows travel with them
    through the body; a norm layer used twice falls back to carrying the
    rows.
    """
    X, y = digits
    clf = fast(MAMLClassifier).fit(X[y < 5], y[y < 5])
    Xs, ys, Xq = X[y >= 7][:9], y[y >= 7][:9], X[y >= 7][9:60]
    state = clf._adapt(torch.as_tensor(Xs), torch.as_tensor(ys - 7), 3)
    assert state["support"] is None and len(state["norm_stats"]) == 4
    Xs_t, Xq_t = torch.as_tensor(Xs), torch.as_tensor(Xq)
    params = state["params"]
    with torch.no_grad():
        stored = clf._state_outputs(state, Xq_t)
        recorded = clf._query_outputs(params, Xs_t, Xq_t)
        z = clf._features(params, torch.cat([Xs_t, Xq_t]), len(Xs))[len(Xs) :]
        carried = clf._head(params, z)
    torch.testing.assert_close(stored, carried, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(recorded, carried, rtol=1e-5, atol=1e-5)

    twice = fast(MAMLClassifier, _NormUsedTwice()).fit(X[y < 5], y[y < 5])
    state = twice._adapt(torch.as_tensor(Xs), torch.as_tensor(ys - 7), 3)
    assert state["norm_stats"] is None and state["support"] is not None
    proba = twice.adapt(Xs, ys).predict_proba(Xq)
    assert proba.shape == (len(Xq), 3) and np.allclose(proba.sum(1), 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_statistics_are_those_of_var_mean(channels_last):
    """Check the two-pass statistics against ``torch.var_mean`` and its gradients.

    Values, first and second derivatives agree in float64 for a batch with a
    large common offset (where a one-pass formula would cancel).
    """
    from sklearn_meta._functional import _var_mean

    g = torch.Generator().manual_seed(0)
    x = 1e4 + torch.randn(5, 4, 6, 6, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(2, 4, generator=g, dtype=torch.float64)

    def first_grad(stats):
        var, mean = stats(x)
        out = (w[0] * var).sum() + (w[1] * mean).sum()
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return var, mean, grad

    def reference(x):
        return torch.var_mean(x, dim=(0, 2, 3), unbiased=False)

    ours, theirs = first_grad(_var_mean), first_grad(reference)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    second = [torch.autograd.grad(r[2].square().sum(), x)[0] for r in (ours, theirs)]
    torch.testing.assert_close(*second, rtol=1e-8, atol=1e-8)
