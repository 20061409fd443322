"""Tests of sklearn_meta.io: a file format for whole estimators that runs no code."""

import io
import json
import os
import pickle
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import ClassifierMixin, clone
from skorch.exceptions import DeviceWarning
from torch import nn

from sklearn_meta import MAMLRegressor, MANNClassifier, MetaLSTMClassifier
from sklearn_meta.datasets import make_sinusoid_tasks
from sklearn_meta.io import UntrustedTypesError, dump, get_untrusted_types, load
from sklearn_meta.rl import BernoulliBanditTasks, MAMLPolicy

from ._settings import fast, learners_for

#: The learners round-tripped alike (the exclusions are in tests/_settings.py).
LEARNERS = learners_for("test_io")

#: Learners whose fast settings are for tabular data, and what else they need.
_TABULAR = {MANNClassifier: {"max_classes": 5}, MetaLSTMClassifier: {}}


def round_trip(obj, **load_kwargs):
    """Dump ``obj`` to memory and load it back."""
    buffer = io.BytesIO()
    dump(obj, buffer)
    buffer.seek(0)
    return load(buffer, **load_kwargs)


def assert_same_tensors(a: nn.Module, b: nn.Module):
    """Assert equal values and layouts of two modules' states."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
        assert sa[key].stride() == sb[key].stride(), key
        assert sa[key].dtype == sb[key].dtype, key


def _assert_same_nested(a, b):
    """Assert that nested dicts and lists of tensors and scalars are equal."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same_nested(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_nested(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def _fitted(cls, digits):
    """A fitted learner, the adapted estimator and what they predict."""
    if issubclass(cls, ClassifierMixin):
        X, y = digits
        if cls in _TABULAR:
            X = X.reshape(len(X), -1)
        learner = fast(cls, **_TABULAR.get(cls, {})).fit(X[y < 5], y[y < 5])
        adapted = learner.adapt(X[y >= 5][:12], y[y >= 5][:12])
        queries = X[y >= 5][12:40]
        return learner, adapted, lambda est: est.predict_proba(queries)
    tasks = make_sinusoid_tasks(n_tasks=20, k_support=5, k_query=5, random_state=0)
    learner = fast(cls).fit(tasks)
    adapted = learner.adapt(tasks[0].X_support, tasks[0].y_support)
    queries = np.linspace(-5, 5, 20, dtype=np.float32)[:, None]
    return learner, adapted, lambda est: est.predict(queries)


@pytest.mark.parametrize("cls", LEARNERS, ids=lambda c: c.__name__)
def test_round_trip_is_exact_for_learners_and_adapted_estimators(cls, digits):
    """Check that predictions, parameters and weights survive to the bit."""
    learner, adapted, predict = _fitted(cls, digits)
    loaded_learner, loaded_adapted = round_trip([learner, adapted])

    assert type(loaded_learner) is cls
    assert repr(loaded_learner.get_params()) == repr(learner.get_params())
    assert_same_tensors(learner.module_, loaded_learner.module_)
    np.testing.assert_array_equal(predict(loaded_adapted), predict(adapted))
    # The loaded learner adapts like the saved one.
    if issubclass(cls, ClassifierMixin):
        np.testing.assert_array_equal(predict(loaded_learner), predict(learner))
    # What was shared is shared: the learner of the adapted estimator.
    assert loaded_adapted.meta_learner is loaded_learner
    if not hasattr(learner, "optimizer_"):
        # A non-learned baseline: no training state to save, none loaded.
        assert not hasattr(loaded_learner, "optimizer_")
        assert not hasattr(loaded_learner, "history_")
        return
    # A learner that trains: its history, and the module's parameters in the
    # optimiser.
    assert len(loaded_learner.history_) == len(learner.history_)
    group = loaded_learner.optimizer_.param_groups[0]["params"]
    assert any(p is group[0] for p in loaded_learner.module_.parameters())


def test_unfitted_estimator_round_trips_and_clones():
    """Check that an unfitted learner loads with its parameters, ready to fit."""
    body = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU())
    learner = fast(MAMLRegressor, body, optimizer=torch.optim.SGD)
    loaded = round_trip(learner)
    assert loaded.optimizer is torch.optim.SGD
    assert repr(clone(loaded)) == repr(learner)
    tasks = make_sinusoid_tasks(n_tasks=20, k_support=5, k_query=5, random_state=0)
    X = np.linspace(-5, 5, 9, dtype=np.float32)[:, None]
    expected = learner.fit(tasks).adapt(tasks[0].X_support, tasks[0].y_support)
    got = loaded.fit(tasks).adapt(tasks[0].X_support, tasks[0].y_support)
    np.testing.assert_array_equal(got.predict(X), expected.predict(X))


def test_policies_round_trip_exactly():
    """Check a meta-trained policy and an adapted policy."""
    tasks = BernoulliBanditTasks(n_arms=3, max_episode_steps=4)
    policy = fast(MAMLPolicy).fit(tasks)
    adapted = policy.adapt(tasks(3))
    loaded, loaded_adapted = round_trip([policy, adapted])
    obs = np.zeros((4, 1), dtype=np.float32)
    assert_same_tensors(policy.module_, loaded.module_)
    np.testing.assert_array_equal(loaded.predict_proba(obs), policy.predict_proba(obs))
    np.testing.assert_array_equal(
        loaded_adapted.predict_proba(obs), adapted.predict_proba(obs)
    )


def test_algorithm_selection_round_trips_exactly():
    """Check the recommender, the search and the meta-feature extractor."""
    pytest.importorskip("pymfe")
    pytest.importorskip("skops")
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    from sklearn_meta.selection import (
        AlgorithmRecommender,
        MetaFeatureExtractor,
        MetaSearchCV,
        make_meta_datasets,
    )

    family = make_meta_datasets(8, include_sklearn=False, n_samples=(60, 150))
    features = {"general": ["nr_inst", "nr_attr", "nr_class", "freq_class"]}
    recommender = AlgorithmRecommender(
        portfolio={"gnb": GaussianNB(), "knn": KNeighborsClassifier()},
        meta_features=MetaFeatureExtractor(features=features),
        n_neighbors=2,
        cv=3,
        verbose=0,
    ).fit(family[:7])
    target = family[7]
    search = MetaSearchCV(recommender, n_candidates=2, cv=2).fit(target.X, target.y)

    loaded_recommender, loaded_search = round_trip([recommender, search])

    def ranked(rec):
        return [(r.name, r.predicted_score) for r in rec.recommend(target.X, target.y)]

    assert ranked(loaded_recommender) == ranked(recommender)
    np.testing.assert_array_equal(loaded_recommender.scores_, recommender.scores_)
    np.testing.assert_array_equal(
        loaded_search.predict_proba(target.X), search.predict_proba(target.X)
    )
    extractor = MetaFeatureExtractor(features=features).fit(family)
    np.testing.assert_array_equal(
        round_trip(extractor).transform(family[:2]), extractor.transform(family[:2])
    )


# -- what the format refuses ------------------------------------------------------


class _RunsCode:
    """An object whose unpickling runs a command (the attack a pickle allows)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "joblib", "joblib-compressed"])
def test_pickle_and_joblib_files_are_refused_without_running_them(writer, tmp_path):
    """Check that a crafted pickle is refused and its payload never runs."""
    marker = tmp_path / "ran"
    path = tmp_path / "model.skm"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_RunsCode(marker)))
    else:
        compress = 3 if writer == "joblib-compressed" else 0
        joblib.dump(_RunsCode(marker), path, compress=compress)
    with pytest.raises(ValueError, match=r"pickle .*refuses it.*joblib\.load"):
        load(path)
    assert not marker.exists()


def _rewrite_schema(path, edit):
    """Rewrite the JSON document of a saved file with ``edit(schema)``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _replace_first(node, kind, **changes):
    """Change the first node of type ``kind`` in a schema tree (in place)."""
    if isinstance(node, dict):
        if node.get("type") == kind:
            node.update(changes)
            return True
        return any(_replace_first(v, kind, **changes) for v in node.values())
    if isinstance(node, list):
        return any(_replace_first(v, kind, **changes) for v in node)
    return False


@pytest.mark.parametrize(
    ("kind", "module", "name"),
    [
        ("function", "os", "system"),
        ("object", "subprocess", "Popen"),
        ("class", "builtins", "eval"),
        ("object", "sklearn_meta_evil_module", "Thing"),
        ("function", "torch.hub", "load"),
        ("object", "torch.nn.modules.module", "register_module_forward_hook"),
    ],
)
def test_crafted_file_naming_unsafe_code_is_refused_before_importing(
    kind, module, name, tmp_path
):
    """Check that names outside the allow-list are refused, and not imported."""
    path = tmp_path / "model.skm"
    dump(fast(MAMLRegressor, optimizer=torch.optim.SGD), path)
    _rewrite_schema(
        path,
        lambda schema: _replace_first(
            schema["root"], "class", type=kind, module=module, name=name, state={}
        ),
    )
    assert get_untrusted_types(path) == [f"{module}.{name}"]
    with pytest.raises(UntrustedTypesError, match=f"{module}.{name}.*trusted=") as info:
        load(path)
    assert info.value.untrusted == [f"{module}.{name}"]
    assert "sklearn_meta_evil_module" not in sys.modules


def test_a_trusted_class_cannot_be_called_as_an_enum_or_a_named_tuple(tmp_path):
    """Check that trusted classes are only built the way their node type says."""
    path = tmp_path / "model.skm"
    dump(fast(MAMLRegressor, optimizer=torch.optim.SGD), path)
    for kind, message in (("enum", "an enum"), ("namedtuple", "a named tuple")):
        _rewrite_schema(
            path,
            lambda schema, kind=kind: _replace_first(
                schema["root"],
                "class" if kind == "enum" else "enum",
                type=kind,
                module="sklearn_meta.selection",
                name="AlgorithmRecommender",
                value="/tmp",
                items=[],
            ),
        )
        with pytest.raises(ValueError, match=f"is not {message}"):
            load(path)


class UserNet(nn.Module):
    """A user's own module class: not trusted unless the user says so."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, 8), nn.ReLU())

    def forward(self, x):
        """Apply the body."""
        return self.body(x)


def test_user_classes_load_only_when_trusted(tmp_path):
    """Check that a user's module class needs trusted=, by name or as the class."""
    tasks = make_sinusoid_tasks(n_tasks=20, k_support=5, k_query=5, random_state=0)
    learner = fast(MAMLRegressor, UserNet()).fit(tasks)
    path = tmp_path / "model.skm"
    dump(learner, path)
    name = f"{UserNet.__module__}.UserNet"
    assert get_untrusted_types(path) == [name]
    with pytest.raises(UntrustedTypesError, match="UserNet"):
        load(path)
    X = np.linspace(-5, 5, 9, dtype=np.float32)[:, None]
    expected = learner.adapt(tasks[0].X_support, tasks[0].y_support).predict(X)
    for trusted in ([name], [UserNet]):
        loaded = load(path, trusted=trusted)
        adapted = loaded.adapt(tasks[0].X_support, tasks[0].y_support)
        np.testing.assert_array_equal(adapted.predict(X), expected)


def test_what_cannot_be_saved_safely_is_named(tmp_path):
    """Check that a lambda in a parameter fails at dump, naming where it is."""
    learner = fast(MAMLRegressor, nn.Linear(1, 1))
    learner.set_params(module=nn.Sequential(nn.Linear(1, 1)))
    learner.module.hook = lambda x: x
    with pytest.raises(TypeError, match=r"Cannot save estimator\.module\.hook"):
        dump(learner, tmp_path / "model.skm")


def test_foreign_and_malformed_files_are_refused(tmp_path):
    """Check the messages for a text file, a foreign zip and a newer protocol."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a zip archive"):
        load(text)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("schema.json", json.dumps({"protocol": 1}))
    with pytest.raises(ValueError, match=r"skops file is opened with skops\.io\.load"):
        load(foreign)
    newer = tmp_path / "newer.skm"
    dump(fast(MAMLRegressor), newer)
    _rewrite_schema(newer, lambda schema: schema.update(protocol=99))
    with pytest.raises(ValueError, match=r"protocol 99.*Upgrade sklearn_meta"):
        load(newer)
    with open(newer, encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        load(f)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_saved_on_a_gpu_loads_on_the_cpu_with_a_warning(tmp_path):
    """Check the CPU fallback: tensors and device_ on the CPU, and a warning."""
    tasks = make_sinusoid_tasks(n_tasks=20, k_support=5, k_query=5, random_state=0)
    learner = fast(MAMLRegressor).fit(tasks)
    path = tmp_path / "model.skm"
    dump(learner, path)

    def to_cuda(node):
        if isinstance(node, dict):
            if node.get("type") in ("tensor", "parameter"):
                node["device"] = "cuda:0"
            if node.get("type") == "device":
                node["value"] = "cuda:0"
            for value in node.values():
                to_cuda(value)
        elif isinstance(node, list):
            for value in node:
                to_cuda(value)

    _rewrite_schema(path, lambda schema: to_cuda(schema["root"]))
    with pytest.warns(DeviceWarning, match="saved on cuda:0.*loaded on the CPU"):
        loaded = load(path)
    assert loaded.device_ == torch.device("cpu")
    assert_same_tensors(learner.module_, loaded.module_)


@pytest.mark.gpu
def test_gpu_model_round_trips_on_the_gpu():
    """Check that a model fitted on the GPU loads there, predicting the same."""
    learner = fast(MAMLRegressor, device="cuda").fit(
        make_sinusoid_tasks(n_tasks=20, k_support=5, k_query=5, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = round_trip(learner)
    assert next(loaded.module_.parameters()).is_cuda
    assert_same_tensors(learner.module_, loaded.module_)


def test_a_loaded_learner_checkpoints_like_the_saved_one(digits, tmp_path):
    """Check that save_params of a loaded learner writes what the original would."""
    from sklearn_meta import PrototypicalClassifier

    learner, _, _ = _fitted(PrototypicalClassifier, digits)
    loaded = round_trip(learner)
    for name, est in (("saved", learner), ("loaded", loaded)):
        est.save_params(
            f_params=tmp_path / f"{name}.pt",
            f_optimizer=tmp_path / f"{name}-opt.pt",
            f_history=tmp_path / f"{name}.json",
        )
    for suffix in (".pt", "-opt.pt"):
        a = torch.load(tmp_path / f"saved{suffix}", weights_only=True)
        b = torch.load(tmp_path / f"loaded{suffix}", weights_only=True)
        _assert_same_nested(a, b)
    assert (tmp_path / "saved.json").read_text() == (
        tmp_path / "loaded.json"
    ).read_text()
