"""Meta-SGD (Li, Zhou, Chen & Li, 2017): learned per-parameter step sizes."""

from __future__ import annotations

import torch
from torch import nn

from .._docs import learner_doc
from ._base import _GradientClassifier, _GradientRegressor, _lr_key, _MetaModel

_REFERENCES = """\
    .. [1] Z. Li, F. Zhou, F. Chen and H. Li, "Meta-SGD: Learning to Learn
       Quickly for Few-Shot Learning", arXiv:1707.09835, 2017."""

_SUMMARY = """\
Meta-SGD: MAML whose inner step sizes are meta-learned, one per parameter.

    Every adapted parameter has a step size of its own shape (the update
    direction and size, since they may turn negative), meta-learned with the
    initialisation by back-propagating the query loss through the inner
    loop. They start at ``inner_lr`` and live in ``module_.lrs``."""

_INNER_LR_NOTE = ": the starting value of every learned step size"


def _make_step_sizes(learner, model: _MetaModel) -> nn.ParameterDict:
    """One learned step size per parameter entry, starting at ``inner_lr``."""
    return nn.ParameterDict(
        {
            _lr_key(name): nn.Parameter(torch.full_like(p, learner.inner_lr))
            for name, p in model.named_parameters()
        }
    )


class MetaSGDClassifier(_GradientClassifier):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=False,
        references=_REFERENCES,
        inner_lr_note=_INNER_LR_NOTE,
        examples="""\
    >>> from sklearn_meta import MetaSGDClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = MetaSGDClassifier(n_way=3, k_shot=1, n_query=5, max_epochs=3,
    ...                         inner_lr=0.1, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.5
    True""",
    )

    _make_lrs = _make_step_sizes


class MetaSGDRegressor(_GradientRegressor):
    __doc__ = learner_doc(
        _SUMMARY,
        regressor=True,
        references=_REFERENCES,
        inner_lr_note=_INNER_LR_NOTE,
        examples="""\
    >>> from sklearn_meta import MetaSGDRegressor
    >>> from sklearn_meta.datasets import make_sinusoid_tasks
    >>> tasks = make_sinusoid_tasks(n_tasks=500, random_state=0)
    >>> reg = MetaSGDRegressor(max_epochs=2, episodes_per_epoch=500,
    ...                        random_state=0).fit(tasks)
    >>> reg.module_.lrs["head/bias"].shape
    torch.Size([1])""",
    )

    _make_lrs = _make_step_sizes
