"""scikit-learn's own estimator checks, run over every public estimator.

Every check a learner cannot pass is listed in ``EXPECTED_FAILED_CHECKS`` with
its reason. The checks run in strict mode: a listed check that starts passing
fails the suite, so the list stays true.

Not run here: ``sklearn_meta.rl.MAMLPolicy`` and ``AdaptedPolicy``. Their
``fit`` takes a task sampler (a callable returning gymnasium environments) or
an environment, not ``(X, y)`` arrays, so every check that fits on arrays
would only test the type error. Their clone, get_params/set_params,
random_state and joblib behaviour is tested in tests/test_rl.py.

Not run here either: ``sklearn_meta.selection.AlgorithmRecommender`` and
``MetaFeatureExtractor``. Each of their samples is a whole data set (a list of
``Dataset`` objects or ``(X, y)`` pairs), not a row of an array, so the checks'
arrays are not valid input. Their contract (errors, clone, joblib, caching) is
tested in tests/test_selection.py. ``MetaSearchCV`` takes ``(X, y)`` and runs
all the checks below, with a small fitted recommender.
"""

import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_meta import (
    ANILClassifier,
    ANILRegressor,
    FineTuneClassifier,
    MAMLClassifier,
    MAMLRegressor,
    MANNClassifier,
    MatchingNetworkClassifier,
    MetaLSTMClassifier,
    MetaSGDClassifier,
    MetaSGDRegressor,
    PrototypicalClassifier,
    ReptileClassifier,
    ReptileRegressor,
    SiameseClassifier,
)
from sklearn_meta.selection import (
    AlgorithmRecommender,
    MetaFeatureExtractor,
    MetaSearchCV,
    make_meta_datasets,
)

#: Small settings under which a learner trains in well under a second on the
#: checks' toy data (2-class episodes with one query per class).
CHECK_PARAMS = dict(
    n_way=2,
    k_shot=1,
    n_query=1,
    max_epochs=2,
    episodes_per_epoch=10,
    n_eval_episodes=5,
    random_state=0,
)

#: The same for the regressors: one task (the whole pool), 1 support and 1
#: query sample per episode.
REGRESSOR_PARAMS = dict(
    k_shot=1,
    n_query=1,
    max_epochs=2,
    episodes_per_epoch=10,
    meta_batch_size=5,
    n_eval_episodes=5,
    random_state=0,
)

ESTIMATORS = [
    FineTuneClassifier(
        **{k: v for k, v in CHECK_PARAMS.items() if k != "episodes_per_epoch"}
    ),
    MatchingNetworkClassifier(**CHECK_PARAMS),
    PrototypicalClassifier(**CHECK_PARAMS),
    SiameseClassifier(**CHECK_PARAMS),
    # predict after fit(X, y) adapts to the whole pool: enough steps to fit it.
    *(
        cls(**CHECK_PARAMS, meta_batch_size=5, adapt_steps=20)
        for cls in (ANILClassifier, MAMLClassifier, MetaSGDClassifier)
    ),
    ReptileClassifier(
        **CHECK_PARAMS, inner_optimizer="sgd", inner_lr=0.4, adapt_steps=20
    ),
    # A learned optimiser starting as gradient descent with step inner_lr.
    MetaLSTMClassifier(**CHECK_PARAMS, meta_batch_size=5, inner_lr=0.5, adapt_steps=10),
    # Enough label outputs for the classes of the checks' data.
    MANNClassifier(
        **CHECK_PARAMS,
        max_classes=10,
        controller_size=16,
        memory_size=16,
        memory_dim=8,
        n_reads=1,
    ),
    *(
        cls(**REGRESSOR_PARAMS)
        for cls in (ANILRegressor, MAMLRegressor, MetaSGDRegressor, ReptileRegressor)
    ),
]

#: A recommender over two configurations, fitted on three small data sets and
#: frozen so that the checks' clones of the search keep it fitted.
_RECOMMENDER = AlgorithmRecommender(
    portfolio={"logreg": LogisticRegression(), "gnb": GaussianNB()},
    meta_features=MetaFeatureExtractor(features={"general": ["nr_inst", "nr_attr"]}),
    n_neighbors=2,
    cv=2,
    verbose=0,
).fit(make_meta_datasets(3, include_sklearn=False, n_samples=(40, 80)))
ESTIMATORS.append(MetaSearchCV(FrozenEstimator(_RECOMMENDER), n_candidates=2, cv=2))

#: check name -> why the learners cannot pass it.
EXPECTED_FAILED_CHECKS = {
    "ANILRegressor": {
        "check_regressors_train": (
            "The check asks score(X_train, y_train) > 0.5, but a meta-regressor's "
            "score is the episodic R2 of few-shot tasks drawn from (X, y): adapt to "
            "k_shot samples, predict n_query others (design rule 4). Fitting the "
            "training pool itself (predict after fit) is tested in "
            "tests/test_gradient.py."
        ),
    },
    "MAMLRegressor": {
        "check_regressors_train": (
            "The check asks score(X_train, y_train) > 0.5, but a meta-regressor's "
            "score is the episodic R2 of few-shot tasks drawn from (X, y): adapt to "
            "k_shot samples, predict n_query others (design rule 4). Fitting the "
            "training pool itself (predict after fit) is tested in "
            "tests/test_gradient.py."
        ),
    },
    "MetaSGDRegressor": {
        "check_regressors_train": (
            "The check asks score(X_train, y_train) > 0.5, but a meta-regressor's "
            "score is the episodic R2 of few-shot tasks drawn from (X, y): adapt to "
            "k_shot samples, predict n_query others (design rule 4). Fitting the "
            "training pool itself (predict after fit) is tested in "
            "tests/test_gradient.py."
        ),
    },
    "ReptileRegressor": {
        "check_methods_subset_invariance": (
            "As for PrototypicalClassifier: float32 matrix products differ in the "
            "last bits with the batch size; one prediction of twenty differs by "
            "1 ulp (2e-7), over the check's 1e-7."
        ),
        "check_regressors_train": (
            "The check asks score(X_train, y_train) > 0.5, but a meta-regressor's "
            "score is the episodic R2 of few-shot tasks drawn from (X, y): adapt to "
            "k_shot samples, predict n_query others (design rule 4). Fitting the "
            "training pool itself (predict after fit) is tested in "
            "tests/test_gradient.py."
        ),
    },
    "MANNClassifier": {
        "check_classifiers_train": (
            "The check asks for 83% training accuracy after two epochs of ten "
            "episodes, but a MANN predicts by binding stored examples to labels in "
            "its memory, which takes thousands of meta-training episodes to learn; "
            "learning to bind is tested in tests/test_memory.py."
        ),
    },
    "MatchingNetworkClassifier": {
        "check_methods_subset_invariance": (
            "As for PrototypicalClassifier, float32 matrix products differ in the "
            "last bits with the batch size, so probabilities agree to ~1e-6, not "
            "the check's 1e-7; the predicted labels agree."
        ),
    },
    "PrototypicalClassifier": {
        "check_methods_subset_invariance": (
            "float32 matrix products of a neural network differ in the last bits "
            "with the batch size (BLAS blocking), so probabilities of one sample "
            "alone and within a batch agree to ~1e-6, not the check's 1e-7; the "
            "predicted labels agree."
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    """Check that the estimators pass scikit-learn's estimator checks."""
    check(estimator)


def test_expected_failures_name_existing_estimators():
    """Check that the list of expected failures names only tested estimators."""
    names = {type(e).__name__ for e in ESTIMATORS}
    assert set(EXPECTED_FAILED_CHECKS) <= names
    assert all(
        reason.strip()
        for checks in EXPECTED_FAILED_CHECKS.values()
        for reason in checks.values()
    )


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_estimator_is_exported_with_docstring(estimator):
    """Check that each public estimator documents parameters and references."""
    doc = type(estimator).__doc__
    assert "Parameters" in doc and "References" in doc and "Examples" in doc
