"""Checks shared by the tests of the metric-based learners."""

import numpy as np
import torch
from torch import nn

from sklearn_meta._data import _samples
from sklearn_meta._episodes import _PoolEpisodes
from sklearn_meta.tasks import EpisodeSampler


def identity_learner(cls, n_features, **params):
    """An untrained learner with the identity as embedding, for hand computations."""
    X = np.random.default_rng(0).normal(size=(8, n_features))
    return cls(nn.Identity(), n_way=2, k_shot=1, n_query=1, max_epochs=0, **params).fit(
        X, np.arange(8) % 2
    )


def assert_adapts_to_digits_named_in_words(learner, digits):
    """Assert that a learner adapts to digits 5-9 named in words, 3 shots each.

    Predictions by name are the predictions by number, renamed, and the
    adapted classifier scores above 0.4 on the other images (chance is 0.2).
    """
    X, y = digits
    classes = np.arange(5, 10)
    support = np.concatenate([np.flatnonzero(y == c)[:3] for c in classes])
    names = np.array(["five", "six", "seven", "eight", "nine"])
    adapted = learner.adapt(X[support], names[y[support] - 5])
    coded = learner.adapt(X[support], y[support])
    np.testing.assert_array_equal(adapted.classes_, np.sort(names))
    query = np.setdiff1d(np.flatnonzero(y >= 5), support)
    proba = adapted.predict_proba(X[query])
    assert proba.shape == (len(query), 5)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(
        adapted.predict(X[query]), names[coded.predict(X[query]) - 5]
    )
    assert adapted.score(X[query], names[y[query] - 5]) > 0.4  # chance is 0.2


def assert_short_training_lifts_omniglot(cls, omniglot_small, min_accuracy):
    """Assert that two short epochs lift 5-way 1-shot accuracy on new alphabets.

    Trained on 20-way episodes of 150 background characters, scored on 200
    episodes of the evaluation alphabets: above ``min_accuracy`` (chance is
    0.2), 0.1 above the untrained learner, with a falling training loss.
    """
    X, y, Xe, ye = omniglot_small
    params = dict(
        n_way=5,
        k_shot=1,
        n_query=5,
        train_n_way=20,
        episodes_per_epoch=30,
        n_eval_episodes=200,
        random_state=0,
    )
    untrained = cls(**params, max_epochs=0).fit(X, y)
    trained = cls(**params, max_epochs=2).fit(X, y)
    before, after = untrained.score(Xe, ye), trained.score(Xe, ye)
    assert after > min_accuracy, after
    assert after > before + 0.1, (before, after)
    losses = trained.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def assert_meta_batch_losses_equal_per_episode(learner, X, y):
    """Assert that 4 stacked 3-way 2-shot episodes lose what each loses alone.

    ``learner`` is fitted on ``(X, y)``; it is put in eval mode, since batch
    statistics would couple the episodes in train mode.
    """
    learner.module_.eval()
    pool = _PoolEpisodes(
        _samples(np.asarray(X, dtype=np.float32)),
        EpisodeSampler(y, 3, 2, 3),
        torch.device("cpu"),
    )
    support, query = pool.sampler.sample(4, random_state=0)
    with torch.no_grad():
        batched, _ = learner._episode_losses(pool.gather(support, query))
        single = torch.cat(
            [
                learner._episode_losses(pool.gather(support[[i]], query[[i]]))[0]
                for i in range(4)
            ]
        )
    torch.testing.assert_close(batched, single)
