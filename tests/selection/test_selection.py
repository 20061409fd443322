"""Tests for sklearn_meta.selection: meta-features, portfolios, recommendation."""

import json
import threading

import joblib
import numpy as np
import pytest
from joblib import parallel_config
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_iris, make_regression
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from sklearn_meta.selection import (
    AlgorithmRecommender,
    Dataset,
    MetaFeatureExtractor,
    MetaSearchCV,
    Portfolio,
    check_datasets,
    default_portfolio,
    leave_one_dataset_out,
    make_meta_datasets,
)

GENERAL = {"general": ["nr_inst", "nr_attr", "nr_class", "attr_to_inst", "freq_class"]}


def _entropy(counts):
    p = np.asarray(counts, dtype=float) / np.sum(counts)
    return float(-(p * np.log2(p)).sum())


# --------------------------------------------------------------- meta-features
def test_meta_features_equal_hand_computed_values():
    """Check that simple and entropy measures equal hand-computed values."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10, 3))
    y = np.array([0] * 6 + [1] * 2 + [2] * 2)
    mfe = MetaFeatureExtractor(
        features={**GENERAL, "info-theory": ["class_ent"]}, summary=("mean", "sd")
    )
    values = mfe.fit_transform([Dataset("d", X, y)])[0]
    row = dict(zip(mfe.get_feature_names_out(), values))
    assert row["nr_inst"] == 10
    assert row["nr_attr"] == 3
    assert row["nr_class"] == 3
    assert row["attr_to_inst"] == pytest.approx(3 / 10)
    assert row["freq_class.mean"] == pytest.approx(1 / 3)
    assert row["freq_class.sd"] == pytest.approx(np.std([0.6, 0.2, 0.2], ddof=1))
    assert row["class_ent"] == pytest.approx(_entropy([6, 2, 2]))


def test_meta_features_of_iris_follow_feature_names():
    """Check that transform's columns follow get_feature_names_out."""
    iris = Dataset("iris", *load_iris(return_X_y=True))
    mfe = MetaFeatureExtractor(features={**GENERAL, "info-theory": ["class_ent"]})
    values = mfe.fit_transform([iris])
    names = list(mfe.get_feature_names_out())
    assert values.shape == (1, len(names))
    assert values[0, names.index("nr_inst")] == 150
    assert values[0, names.index("class_ent")] == pytest.approx(np.log2(3))


def test_default_meta_features_cover_every_family():
    """Check that the default set has a measure of each of the five families."""
    iris = Dataset("iris", *load_iris(return_X_y=True))
    described = MetaFeatureExtractor().describe(iris)
    for name in ("nr_inst", "cor.mean", "mut_inf.mean", "leaves", "one_nn.mean"):
        assert np.isfinite(described[name]), name
    # one_nn is the 1-NN landmark: a cross-validated accuracy.
    assert 0.8 < described["one_nn.mean"] <= 1.0


def test_regression_meta_features_add_target_measures():
    """Check that regression adds target moments and a linear landmark."""
    X, y = make_regression(200, 4, noise=0.0, random_state=0)
    row = MetaFeatureExtractor().describe(Dataset("lin", X, y))
    assert row["target_skewness"] == pytest.approx(stats.skew(y))
    assert row["target_kurtosis"] == pytest.approx(stats.kurtosis(y))
    assert row["landmark_ridge"] > 0.99  # noiseless linear target
    assert row["landmark_stump"] < row["landmark_ridge"]
    assert "class_ent" not in row


def test_meta_feature_transform_rejects_other_task():
    """Check that transform refuses data sets of another task than fit's."""
    mfe = MetaFeatureExtractor(features=GENERAL).fit([load_iris(return_X_y=True)])
    with pytest.raises(ValueError, match="must be a classification task"):
        mfe.transform([make_regression(30, 2, random_state=0)])


def test_meta_feature_extractor_rejects_unknown_group():
    """Check that a pymfe group that does not exist is refused."""
    mfe = MetaFeatureExtractor(features={"magic": ["x"]})
    with pytest.raises(ValueError, match="unknown pymfe groups \\['magic'\\]"):
        mfe.fit([load_iris(return_X_y=True)])


# -------------------------------------------------------------------- datasets
@pytest.mark.parametrize(
    ("datasets", "error", "match"),
    [
        ([], ValueError, "at least 1"),
        (load_iris(return_X_y=True), TypeError, "must be a Dataset or an \\(X, y\\)"),
        (np.zeros((3, 2)), TypeError, "must be a list of Dataset"),
        ([(np.zeros((0, 2)), np.zeros(0))], ValueError, "is empty"),
        ([(np.ones((4, 2)), np.zeros(4))], ValueError, "has a single class"),
        (
            [(np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([0, 1]))],
            ValueError,
            "missing or infinite values in X.*SimpleImputer",
        ),
        ([(np.ones((4, 2)), np.zeros(3))], ValueError, "y must have shape \\(4,\\)"),
        (
            [Dataset("a", np.eye(2), [0, 1]), Dataset("a", np.eye(2), [1, 0])],
            ValueError,
            "names must be unique; \\['a'\\]",
        ),
        (
            [(np.eye(3), [0, 1, 0]), (np.eye(3), [0.5, 1.5, 2.25])],
            ValueError,
            "must be a classification task, but \\['dataset_1'\\] is not",
        ),
    ],
)
def test_check_datasets_raises_clear_errors(datasets, error, match):
    """Check that bad data sets are refused early with the reason."""
    with pytest.raises(error, match=match):
        check_datasets(datasets)


def test_make_meta_datasets_is_reproducible_and_varied():
    """Check that the same seed gives the same family, and that it varies."""
    first = make_meta_datasets(30, random_state=3)
    second = make_meta_datasets(30, random_state=3)
    assert [d.name for d in first] == [d.name for d in second]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
    assert [d.name for d in first[:4]] == ["iris", "wine", "breast_cancer", "digits"]
    kinds = {d.name.rsplit("_", 1)[0] for d in first[4:]}
    assert len(kinds) >= 4
    assert len({d.X.shape[1] for d in first}) > 10
    assert len({len(np.unique(d.y)) for d in first}) >= 3
    check_datasets(first)  # every generated data set is valid


def test_make_meta_datasets_regression_family():
    """Check that the regression family has continuous targets, diabetes first."""
    family = make_meta_datasets(5, task="regression", random_state=0)
    assert family[0].name == "diabetes"
    assert {d.task for d in family} == {"regression"}


def test_make_meta_datasets_rejects_bad_arguments():
    """Check that make_meta_datasets refuses bad arguments with clear messages."""
    with pytest.raises(ValueError, match="task must be 'classification'"):
        make_meta_datasets(2, task="ranking")
    with pytest.raises(ValueError, match="n_samples must be a pair"):
        make_meta_datasets(2, n_samples=(10, 5))


# ------------------------------------------------------------------- portfolio
def test_default_portfolios():
    """Check that default portfolios have their size, task, names, fresh copies."""
    classification = default_portfolio()
    assert (len(classification), classification.task) == (28, "classification")
    assert {"rf", "select+rf", "scale+knn1", "scale_select+svc_C10"} <= set(
        classification
    )
    assert classification["rf"] is not classification["rf"]
    regression = default_portfolio("regression")
    assert (len(regression), regression.task) == (24, "regression")
    with pytest.raises(ValueError, match="task must be 'classification'"):
        default_portfolio("clustering")


def test_portfolio_from_product_names_and_pipelines():
    """Check that from_product crosses preprocessing with models."""
    p = Portfolio.from_product(
        {"none": None, "scale": StandardScaler()},
        {"lr": LogisticRegression(), "nb": GaussianNB()},
    )
    assert list(p) == ["lr", "scale+lr", "nb", "scale+nb"]
    assert isinstance(p["scale+nb"], Pipeline)
    assert isinstance(p["scale+nb"].steps[0][1], StandardScaler)
    extended = p.extend({"knn": KNeighborsClassifier()})
    assert len(extended) == 5 and len(p) == 4


@pytest.mark.parametrize(
    ("entries", "error", "match"),
    [
        ({"lr": "logistic"}, TypeError, "'lr' is not a scikit-learn estimator"),
        ({"lr": LogisticRegression}, TypeError, "got a class"),
        ({"lr": StandardScaler()}, TypeError, "'lr' is not a scikit-learn"),
        (
            {"lr": LogisticRegression(), "ridge": Ridge()},
            ValueError,
            "must be classification estimators.*\\['ridge'\\]",
        ),
        ([("a", GaussianNB()), ("a", GaussianNB())], ValueError, "more than once"),
        ({}, ValueError, "at least one configuration"),
    ],
)
def test_portfolio_rejects_bad_entries(entries, error, match):
    """Check that a portfolio entry that is not an estimator is refused."""
    with pytest.raises(error, match=match):
        Portfolio(entries)


# ----------------------------------------------------------------- recommender
SMALL_PORTFOLIO = {
    "logreg": Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]),
    "knn1": Pipeline([("s", StandardScaler()), ("m", KNeighborsClassifier(1))]),
    "knn15": Pipeline([("s", StandardScaler()), ("m", KNeighborsClassifier(15))]),
    "gnb": GaussianNB(),
}
SMALL_FEATURES = {
    **GENERAL,
    "statistical": ["cor", "skewness"],
    "landmarking": ["one_nn", "linear_discr", "naive_bayes"],
}


@pytest.fixture(scope="module")
def family():
    return make_meta_datasets(36, include_sklearn=False, n_samples=(60, 250))


@pytest.fixture(scope="module")
def fitted(family, tmp_path_factory):
    cache = tmp_path_factory.mktemp("selection_cache")
    recommender = AlgorithmRecommender(
        portfolio=SMALL_PORTFOLIO,
        meta_features=MetaFeatureExtractor(
            features=SMALL_FEATURES, landmarking_folds=3
        ),
        n_neighbors=3,
        cv=3,
        cache_dir=cache,
        verbose=0,
    )
    return recommender.fit(family)


def test_recommender_first_choice_beats_fixed_default(fitted):
    """Check that, leaving each data set out, the top-1 beats a fixed default."""
    results = leave_one_dataset_out(fitted, default="logreg", k=2)
    assert results["top1_score"].mean() > results["default_score"].mean() + 0.01
    assert results["top1_regret"].mean() < results["default_regret"].mean()
    assert results["topk_regret"].mean() <= results["top1_regret"].mean()
    # Regret is measured against the best member's score, the recommended
    # one's score read from the scores measured in fit.
    names = fitted.configuration_names_
    measured = np.asarray(fitted.scores_)
    chosen = [names.index(name) for name in results["recommended"]]
    np.testing.assert_allclose(results["best_score"], measured.max(axis=1))
    np.testing.assert_allclose(
        results["top1_score"], measured[np.arange(len(chosen)), chosen]
    )
    np.testing.assert_allclose(
        results["top1_regret"], results["best_score"] - results["top1_score"]
    )
    assert len(set(results["recommended"])) >= 2  # it does not always say one name


def test_recommender_model_strategy_also_beats_default(fitted, family):
    """Check that the model strategy also beats the default, leaving one out."""
    model = clone(fitted).set_params(
        strategy="model", ranker=RandomForestRegressor(25, random_state=0)
    )
    model.fit(family)
    # The evaluations and meta-features come back from the cache.
    assert model.n_evaluations_computed_ == 0
    results = leave_one_dataset_out(model, default="logreg")
    assert results["top1_score"].mean() > results["default_score"].mean()


def test_recommend_ranks_the_portfolio(fitted, family):
    """Check that recommend ranks, scores and returns unfitted configurations."""
    target = family[0]
    top = fitted.recommend(target.X, target.y, k=2)
    assert [r.rank for r in top] == [1, 2]
    assert top[0].predicted_score >= top[1].predicted_score
    with pytest.raises(NotFittedError):
        check_is_fitted(top[0].estimator)
    everything = fitted.recommend(target.X, target.y, k=None)
    assert sorted(r.name for r in everything) == sorted(SMALL_PORTFOLIO)
    assert [r.name for r in everything[:2]] == [r.name for r in top]
    (best,) = fitted.predict([target])
    assert repr(best) == repr(SMALL_PORTFOLIO[top[0].name])
    # A data set seen in fit is its own nearest neighbour: the prediction
    # equals its measured scores.
    row = fitted.dataset_names_.index(target.name)
    np.testing.assert_allclose(
        fitted.predict_scores([target])[0], fitted.scores_[row], atol=1e-6
    )


def test_recommend_validates_input(fitted):
    """Check that recommend refuses a bad k and a data set of the wrong task."""
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="k must be a positive int or None"):
        fitted.recommend(X, y, k=0)
    with pytest.raises(ValueError, match="expected to be a classification task"):
        fitted.recommend(*make_regression(50, 3, random_state=0))
    with pytest.raises(NotFittedError):
        AlgorithmRecommender().recommend(X, y)


def test_recommender_rejects_portfolio_of_other_task(family):
    """Check that a portfolio of the other task than the data sets is refused."""
    recommender = AlgorithmRecommender(portfolio={"ridge": Ridge()}, verbose=0)
    with pytest.raises(ValueError, match="holds regression estimators but"):
        recommender.fit(family[:2])


def test_recommender_round_trips_through_joblib(fitted, family, tmp_path):
    """Check that a saved recommender recommends exactly the same."""
    joblib.dump(fitted, tmp_path / "rec.joblib")
    loaded = joblib.load(tmp_path / "rec.joblib")
    target = family[5]
    np.testing.assert_array_equal(
        loaded.predict_scores([target]), fitted.predict_scores([target])
    )


class _InterruptingClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression that counts its fits and stops the run at a limit."""

    fits = 0
    limit = None

    def fit(self, X, y):
        type(self).fits += 1
        if self.limit is not None and type(self).fits > self.limit:
            raise KeyboardInterrupt
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_interrupted_fit_resumes_without_recomputing(family, tmp_path):
    """Check that a resumed run recomputes nothing already cached."""
    datasets = family[:4]
    make = lambda: AlgorithmRecommender(  # noqa: E731
        portfolio={"counting": _InterruptingClassifier(), "gnb": GaussianNB()},
        meta_features=MetaFeatureExtractor(features=GENERAL),
        cv=2,
        n_jobs=1,
        cache_dir=tmp_path,
        verbose=0,
    )
    _InterruptingClassifier.fits, _InterruptingClassifier.limit = 0, 4
    with pytest.raises(KeyboardInterrupt):
        make().fit(datasets)
    # Data set by data set: (0, counting), (0, gnb), (1, counting), (1, gnb)
    # finished before the fifth fit stopped the run.
    saved = list((tmp_path / "evaluations").glob("*.json"))
    assert len(saved) == 4
    assert all(np.isfinite(json.loads(p.read_text())["scores"]).all() for p in saved)
    _InterruptingClassifier.fits, _InterruptingClassifier.limit = 0, None
    resumed = make().fit(datasets)
    assert resumed.n_evaluations_computed_ == 4
    assert _InterruptingClassifier.fits == 2 * 2  # two data sets left, two folds
    again = make().fit(datasets)
    assert again.n_evaluations_computed_ == 0
    assert _InterruptingClassifier.fits == 4
    np.testing.assert_array_equal(again.scores_, resumed.scores_)


class _FitFailsClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose fit always raises."""

    def fit(self, X, y):
        raise RuntimeError("this configuration cannot fit")

    def predict(self, X):
        raise NotFittedError("never fitted")


def test_failing_configuration_scores_nan_and_ranks_last(family):
    """Check that a configuration that cannot fit or score is NaN, not raised."""
    recommender = AlgorithmRecommender(
        portfolio={
            "bad": KNeighborsClassifier(n_neighbors=10_000),  # predict raises
            "raises": _FitFailsClassifier(),  # fit raises on every fold
            "gnb": GaussianNB(),
        },
        meta_features=MetaFeatureExtractor(features=GENERAL),
        cv=2,
        verbose=0,
    ).fit(family[:3])
    assert np.isnan(recommender.scores_[:, :2]).all()
    assert np.isfinite(recommender.scores_[:, 2]).all()
    target = family[3]
    assert recommender.recommend(target.X, target.y, k=1)[0].name == "gnb"


class _ThreadRecordingClassifier(ClassifierMixin, BaseEstimator):
    """Gaussian naive Bayes recording the thread of each fit."""

    threads = []

    def fit(self, X, y):
        type(self).threads.append(threading.get_ident())
        self.model_ = GaussianNB().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def _small_recommender(portfolio, n_jobs=None):
    return AlgorithmRecommender(
        portfolio=portfolio,
        meta_features=MetaFeatureExtractor(features=GENERAL),
        n_neighbors=1,
        cv=2,
        n_jobs=n_jobs,
        verbose=0,
    )


@pytest.mark.parametrize(
    # loky's workers take ~10 s on one core to import torch. The
    # multiprocessing backend is not run end to end: it forks this process,
    # whose torch (OpenMP) threads are running, and a forked child can then
    # deadlock; its fallback is tested below.
    "backend",
    ["threading", pytest.param("loky", marks=pytest.mark.slow)],
)
def test_recommender_fits_alike_on_every_joblib_backend(family, backend):
    """Check that parallel_config's backend gives the scores of n_jobs=1."""
    portfolio = {"bad": KNeighborsClassifier(10_000), **SMALL_PORTFOLIO}
    expected = _small_recommender(portfolio, n_jobs=1).fit(family[:4])
    with parallel_config(backend=backend, n_jobs=2):
        recommender = _small_recommender(portfolio).fit(family[:4])
    np.testing.assert_array_equal(recommender.scores_, expected.scores_)


def test_backends_that_cannot_stream_results_return_them_at_the_end():
    """Check multiprocessing gets a Parallel returning a list, loky a generator."""
    from sklearn_meta.selection._evaluation import _unordered_parallel

    with parallel_config(backend="multiprocessing", n_jobs=2):
        assert _unordered_parallel(None).return_generator is False
    with parallel_config(backend="loky", n_jobs=2):
        assert _unordered_parallel(None).return_generator is True


def test_n_jobs_composes_with_parallel_config(family):
    """Check that n_jobs=None defers to parallel_config and an int overrides it."""
    portfolio = {"gnb": _ThreadRecordingClassifier()}
    main = threading.get_ident()
    with parallel_config(backend="threading", n_jobs=2):
        _ThreadRecordingClassifier.threads = []
        _small_recommender(portfolio).fit(family[:4])
        assert main not in _ThreadRecordingClassifier.threads
        _ThreadRecordingClassifier.threads = []
        _small_recommender(portfolio, n_jobs=1).fit(family[:4])
        assert set(_ThreadRecordingClassifier.threads) == {main}


def test_leave_one_dataset_out_validates(fitted):
    """Check that leave_one_dataset_out refuses an unknown default and a bad k."""
    with pytest.raises(ValueError, match="default='rf' is not a configuration"):
        leave_one_dataset_out(fitted)
    with pytest.raises(ValueError, match="k must be an int in \\[1, 4\\]"):
        leave_one_dataset_out(fitted, default="gnb", k=5)


def test_regression_recommender_end_to_end(tmp_path):
    """Check that a regression recommender recommends the linear model for lines."""
    family = make_meta_datasets(
        8, task="regression", include_sklearn=False, n_samples=(80, 200)
    )
    recommender = AlgorithmRecommender(
        portfolio={"ridge": Ridge(), "knn": KNeighborsRegressor()},
        meta_features=MetaFeatureExtractor(features=GENERAL),
        n_neighbors=2,
        cv=3,
        verbose=0,
    ).fit(family)
    assert recommender.portfolio_.task == "regression"
    X, y = make_regression(150, 5, noise=1.0, random_state=1)
    assert recommender.recommend(X, y, k=1)[0].name == "ridge"


# ------------------------------------------------------------------ the search
def test_meta_search_evaluates_recommended_first(fitted, family):
    """Check that MetaSearchCV evaluates the top recommendations, in order."""
    target = family[7]
    search = MetaSearchCV(fitted, n_candidates=3, cv=3).fit(target.X, target.y)
    expected = [r.name for r in search.recommendations_[:3]]
    assert list(search.cv_results_["configuration"]) == expected
    assert list(search.cv_results_["recommended_rank"]) == [1, 2, 3]
    best = search.cv_results_["configuration"][search.best_index_]
    assert search.best_score_ == np.max(search.cv_results_["mean_test_score"])
    assert repr(search.best_estimator_.named_steps["model"]) == repr(
        SMALL_PORTFOLIO[best]
    )
    assert search.score(target.X, target.y) > 0.5
    assert search.predict(target.X).shape == target.y.shape


def test_meta_search_stops_at_time_budget(fitted, family):
    """Check that a spent time budget stops the search after the first batch."""
    target = family[7]
    search = MetaSearchCV(fitted, n_candidates=4, time_budget=1e-6, cv=2, n_jobs=1)
    search.fit(target.X, target.y)
    assert len(search.cv_results_["configuration"]) == 1


def test_meta_search_needs_a_fitted_recommender(family):
    """Check that an unfitted recommender is refused, naming FrozenEstimator."""
    target = family[7]
    with pytest.raises(NotFittedError, match=r"wrap it in sklearn\.frozen"):
        MetaSearchCV(AlgorithmRecommender()).fit(target.X, target.y)


def test_meta_search_inside_cross_val_score(fitted, family):
    """Check that a frozen recommender survives the search being cloned."""
    target = family[7]
    search = MetaSearchCV(FrozenEstimator(fitted), n_candidates=2, cv=2)
    scores = cross_val_score(search, target.X, target.y, cv=3)
    assert scores.shape == (3,) and (scores > 0.4).all()


def test_random_state_instance_seeds_fit_and_recommend_alike(family, tmp_path):
    """Check that a RandomState seeds the meta-features of fit and recommend alike."""
    recommender = AlgorithmRecommender(
        portfolio={"gnb": GaussianNB(), "knn": KNeighborsClassifier(3)},
        meta_features=None,
        n_neighbors=1,
        cv=2,
        cache_dir=tmp_path,
        verbose=0,
        random_state=np.random.RandomState(0),
    ).fit(family[:3])
    stored = sorted((tmp_path / "meta_features").glob("*.json"))
    assert len(stored) == 3
    # A training data set is described with the same settings again, so its
    # meta-features come from the cache and it is its own nearest neighbour.
    np.testing.assert_array_equal(
        recommender.predict_scores([family[1]])[0], recommender.scores_[1]
    )
    assert sorted((tmp_path / "meta_features").glob("*.json")) == stored
