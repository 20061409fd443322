"""Fast settings of every public learner: one registry, in one place.

``FAST_PARAMS`` maps each learner to parameters that meta-train it in well
under a second: what a test builds a learner with unless it tests something
that needs more training (learning quality has its own, written-out settings);
``fast(cls, **overrides)`` builds one. ``CHECK_PARAMS`` holds the settings of
``tests/test_common.py``, whose toy data hold few samples per class.
``NOT_APPLICABLE`` lists the cross-learner tests that cannot apply to a
learner of the registry, with the reason; ``learners_for(test)`` is the rest.
"""

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
    NearestCentroidClassifier,
    NearestNeighborClassifier,
    PrototypicalClassifier,
    ReptileClassifier,
    ReptileRegressor,
    SiameseClassifier,
)
from sklearn_meta.rl import MAMLPolicy

#: Two short epochs of ten episodes, seeded.
_SHORT_TRAINING = dict(max_epochs=2, episodes_per_epoch=10, random_state=0)

#: 3-way 1-shot episodes with 3 queries per class, scored on 20 episodes.
_EPISODES = dict(n_way=3, k_shot=1, n_query=3, n_eval_episodes=20, **_SHORT_TRAINING)

#: Sine-wave or tabular regression pools: one epoch of 20 tasks in meta-batches of 5.
_REGRESSION = dict(
    max_epochs=1, episodes_per_epoch=20, meta_batch_size=5, random_state=0
)

#: The non-learned baselines train nothing: the episodes and the scoring alone.
_NOT_TRAINED = dict(n_way=3, k_shot=1, n_query=3, n_eval_episodes=20)

#: estimator class -> parameters under which it meta-trains in well under a second.
FAST_PARAMS = {
    NearestCentroidClassifier: _NOT_TRAINED,
    NearestNeighborClassifier: _NOT_TRAINED,
    PrototypicalClassifier: _EPISODES,
    MatchingNetworkClassifier: _EPISODES,
    SiameseClassifier: _EPISODES,
    # Pre-training runs over the pool's samples: there is no episode count.
    FineTuneClassifier: {
        k: v for k, v in _EPISODES.items() if k != "episodes_per_epoch"
    },
    ANILClassifier: _EPISODES,
    MAMLClassifier: _EPISODES,
    MetaSGDClassifier: _EPISODES,
    ReptileClassifier: _EPISODES,
    ANILRegressor: _REGRESSION,
    MAMLRegressor: _REGRESSION,
    MetaSGDRegressor: _REGRESSION,
    ReptileRegressor: _REGRESSION,
    # A tabular learner, a few steps.
    MetaLSTMClassifier: dict(
        n_way=3,
        k_shot=1,
        n_query=3,
        max_epochs=1,
        episodes_per_epoch=16,
        meta_batch_size=8,
        inner_steps=3,
        module__hidden_features=16,
        n_eval_episodes=20,
        random_state=0,
    ),
    MANNClassifier: dict(
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
    ),
    MAMLPolicy: dict(
        hidden_layer_sizes=(8,),
        meta_batch_size=3,
        n_episodes=3,
        max_iter=2,
        n_eval_tasks=3,
        random_state=0,
    ),
}


#: Why the training-resume tests cannot apply to the non-learned baselines.
_NOTHING_TRAINED = (
    "nothing is trained, so there is no checkpoint to save or resume from: fit "
    "learns feature statistics in one pass (tests/metric/test_baselines.py)"
)

#: Cross-learner tests that cannot apply to a learner of the registry: test
#: module -> {learner class: why}. The one list of such exclusions (the
#: scikit-learn checks a learner fails are in tests/test_common.py's
#: EXPECTED_FAILED_CHECKS).
NOT_APPLICABLE = {
    "test_io": {
        MAMLPolicy: (
            "its fit takes a task sampler, not a pool or tasks; "
            "test_policies_round_trip_exactly round-trips it"
        ),
    },
    "test_resume": {
        MAMLPolicy: (
            "its fit takes a task sampler, not a pool; "
            "test_policies_resume_exactly resumes it"
        ),
        NearestCentroidClassifier: _NOTHING_TRAINED,
        NearestNeighborClassifier: _NOTHING_TRAINED,
    },
}


def learners_for(test: str) -> list:
    """Return the learners of the registry that the cross-learner ``test`` runs over."""
    excluded = NOT_APPLICABLE.get(test, {})
    return [cls for cls in FAST_PARAMS if cls not in excluded]


def fast(cls, *args, **overrides):
    """Build ``cls(*args)`` with its fast settings, updated by ``overrides``.

    A subclass (a test's spy) gets the settings of the learner it derives from.
    """
    params = next(FAST_PARAMS[base] for base in cls.__mro__ if base in FAST_PARAMS)
    return cls(*args, **{**params, **overrides})


#: The checks' classification data: 2-class episodes with one query per class.
_CHECK_EPISODES = dict(
    n_way=2, k_shot=1, n_query=1, n_eval_episodes=5, **_SHORT_TRAINING
)

#: The checks' regression data: one task (the whole pool), 1 support and 1
#: query sample per episode.
_CHECK_REGRESSION = dict(
    k_shot=1, n_query=1, meta_batch_size=5, n_eval_episodes=5, **_SHORT_TRAINING
)

#: The same episodes for the non-learned baselines, which train nothing.
_CHECK_NOT_TRAINED = {k: _CHECK_EPISODES[k] for k in _NOT_TRAINED}

#: estimator class -> parameters for scikit-learn's estimator checks.
CHECK_PARAMS = {
    NearestCentroidClassifier: _CHECK_NOT_TRAINED,
    NearestNeighborClassifier: _CHECK_NOT_TRAINED,
    FineTuneClassifier: {
        k: v for k, v in _CHECK_EPISODES.items() if k != "episodes_per_epoch"
    },
    MatchingNetworkClassifier: _CHECK_EPISODES,
    PrototypicalClassifier: _CHECK_EPISODES,
    SiameseClassifier: _CHECK_EPISODES,
    # predict after fit(X, y) adapts to the whole pool: enough steps to fit it.
    ANILClassifier: dict(**_CHECK_EPISODES, meta_batch_size=5, adapt_steps=20),
    MAMLClassifier: dict(**_CHECK_EPISODES, meta_batch_size=5, adapt_steps=20),
    MetaSGDClassifier: dict(**_CHECK_EPISODES, meta_batch_size=5, adapt_steps=20),
    ReptileClassifier: dict(
        **_CHECK_EPISODES, inner_optimizer="sgd", inner_lr=0.4, adapt_steps=20
    ),
    # A learned optimiser starting as gradient descent with step inner_lr.
    MetaLSTMClassifier: dict(
        **_CHECK_EPISODES, meta_batch_size=5, inner_lr=0.5, adapt_steps=10
    ),
    # Enough label outputs for the classes of the checks' data.
    MANNClassifier: dict(
        **_CHECK_EPISODES,
        max_classes=10,
        controller_size=16,
        memory_size=16,
        memory_dim=8,
        n_reads=1,
    ),
    ANILRegressor: _CHECK_REGRESSION,
    MAMLRegressor: _CHECK_REGRESSION,
    MetaSGDRegressor: _CHECK_REGRESSION,
    # The checks' targets reach the hundreds: smaller inner steps keep the
    # adaptation of a barely trained model from overflowing float32.
    ReptileRegressor: dict(**_CHECK_REGRESSION, inner_lr=1e-4, lr=0.01),
}
