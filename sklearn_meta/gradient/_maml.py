"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017), also first-order."""

from __future__ import annotations

from .._docs import learner_doc
from ._base import _GradientClassifier, _GradientRegressor

_REFERENCES = """\
    .. [1] C. Finn, P. Abbeel and S. Levine, "Model-Agnostic Meta-Learning for
       Fast Adaptation of Deep Networks", ICML 2017.
    .. [2] H.-J. Ye and W.-L. Chao, "How to Train Your MAML to Excel in
       Few-Shot Classification", ICLR 2022 (the head shared by all classes)."""

_SUMMARY = """\
Model-Agnostic Meta-Learning: an initialisation a few gradient steps adapt.

    The meta-learned parameters are the starting point of ``inner_steps``
    steps of gradient descent on each task's support loss; they are trained so
    that the adapted model has a low loss on the task's query set, through the
    inner steps (second order), or with ``first_order=True`` as first-order
    MAML."""


class MAMLClassifier(_GradientClassifier):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=False,
        references=_REFERENCES,
        examples="""\
    >>> from sklearn_meta import MAMLClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = MAMLClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=3,
    ...                      adapt_steps=5, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True
    >>> clf.adapt(X[y >= 8][:10], y[y >= 8][:10]).classes_
    array([8, 9])""",
    )


class MAMLRegressor(_GradientRegressor):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=True,
        references=_REFERENCES,
        examples="""\
    >>> from sklearn_meta import MAMLRegressor
    >>> from sklearn_meta.datasets import make_sinusoid_tasks
    >>> tasks = make_sinusoid_tasks(n_tasks=500, random_state=0)
    >>> reg = MAMLRegressor(max_epochs=2, episodes_per_epoch=500,
    ...                     random_state=0).fit(tasks)
    >>> task = make_sinusoid_tasks(n_tasks=1, random_state=1)[0]
    >>> adapted = reg.adapt(task.X_support, task.y_support)
    >>> adapted.predict(task.X_query).shape
    (10,)""",
    )
