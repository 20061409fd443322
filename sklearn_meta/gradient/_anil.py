"""Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, 2020)."""

from __future__ import annotations

from .._docs import learner_doc
from ._base import _GradientClassifier, _GradientRegressor

_REFERENCES = """\
    .. [1] A. Raghu, M. Raghu, S. Bengio and O. Vinyals, "Rapid Learning or
       Feature Reuse? Towards Understanding the Effectiveness of MAML",
       ICLR 2020."""

_SUMMARY = """\
ANIL: MAML with only the head adapted in the inner loop.

    The body is meta-learned through the inner loop like MAML's, but only the
    head takes inner gradient steps, so each task embeds its support and
    query sets once and adapts a linear model on the features: much cheaper
    than MAML at about the same accuracy (the paper's finding: MAML's inner
    loop mostly reuses features)."""


class ANILClassifier(_GradientClassifier):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=False,
        references=_REFERENCES,
        examples="""\
    >>> from sklearn_meta import ANILClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = ANILClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=3,
    ...                      adapt_steps=5, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True""",
    )

    _adapt_body = False


class ANILRegressor(_GradientRegressor):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=True,
        references=_REFERENCES,
        examples="""\
    >>> from sklearn_meta import ANILRegressor
    >>> from sklearn_meta.datasets import make_sinusoid_tasks
    >>> tasks = make_sinusoid_tasks(n_tasks=500, random_state=0)
    >>> reg = ANILRegressor(max_epochs=2, episodes_per_epoch=500,
    ...                     random_state=0).fit(tasks)
    >>> task = make_sinusoid_tasks(n_tasks=1, random_state=1)[0]
    >>> reg.adapt(task.X_support, task.y_support).predict(task.X_query).shape
    (10,)""",
    )

    _adapt_body = False
