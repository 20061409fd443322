"""The non-learned baselines: nearest centroid and nearest neighbour on raw features.

Wang, Chao, Weinberger & van der Maaten (2019), "SimpleShot: Revisiting
Nearest-Neighbor Classification for Few-Shot Learning": a nearest-centroid
rule on well-transformed features (centred, L2-normalised) is a yardstick
meta-learners must beat. Here the features are the samples themselves,
flattened; ``fit`` learns only the statistics of the transform, from the
training pool, and trains nothing. The learners' machinery (validation,
episodic scoring, ``adapt``, persistence) is reused as it is: the embedding
is a fixed module whose buffers hold those statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._data import _feature_moments, _samples
from .._docs import fill_doc
from .._episodes import _INFERENCE_CHUNK, _fit_takes_tasks
from .._modules import _resolve_device
from .._sklearn import StrOptions, _fit_context
from .._validation import _check_pool
from ..base import BaseMetaLearner
from ..tasks import _check_task, _TaskStream
from ._base import BaseMetricLearner
from ._prototypical import _compute_prototypes, _squared_euclidean


def _scale_from_variance(var: torch.Tensor, mean: torch.Tensor, n: int) -> torch.Tensor:
    """Return the standard deviations ``(D,)``, with 1 for constant features.

    A variance within the rounding error of its computation is zero: the
    feature is constant and is divided by 1 rather than by zero, as
    :class:`sklearn.preprocessing.StandardScaler` does (the same bound).
    Flooring the deviation at a small number instead would blow up, at test
    time, a feature constant in the training pool that varies on new classes.
    """
    eps = torch.finfo(torch.float64).eps
    constant = var <= n * eps * var + (n * mean * eps).square()
    return torch.where(constant, torch.ones_like(var), var.sqrt())


class _FeatureTransform(nn.Module):
    """Flatten samples, standardise them with fixed statistics, scale to unit norm.

    SimpleShot's transforms: unnormalised (no statistics), centred
    (``mean``), standardised (``mean`` and ``scale``), each optionally
    followed by L2 normalisation. Maps ``(n, *sample_shape)`` to float64
    features ``(n, D)``; ``mean`` and ``scale`` are ``(D,)`` float64 buffers or
    None. There are no parameters: nothing here is trained.
    """

    def __init__(
        self,
        mean: torch.Tensor | None,
        scale: torch.Tensor | None,
        l2_normalize: bool,
    ):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.l2_normalize = l2_normalize

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        z = X.flatten(1).double()
        if self.mean is not None:
            z = z - self.mean
        if self.scale is not None:
            z = z / self.scale
        if self.l2_normalize:
            # z / max(||z||, 1e-12): a zero vector stays zero.
            z = F.normalize(z, dim=1)
        return z


def _nearest_sample_distances(
    z_query: torch.Tensor,
    z_support: torch.Tensor,
    y_support: torch.Tensor,
    n_classes: int,
) -> torch.Tensor:
    """Euclidean distance from each query to the nearest support sample of each class.

    ``z_query`` is ``(B, n_query, D)``, ``z_support`` ``(B, n_support, D)`` and
    ``y_support`` ``(B, n_support)`` int64 class codes; the result is
    ``(B, n_query, n_classes)`` (infinite for a class without support).
    """
    distances = _squared_euclidean(z_query, z_support).sqrt()
    index = y_support[:, None, :].expand_as(distances)
    nearest = distances.new_full((*distances.shape[:2], n_classes), float("inf"))
    return nearest.scatter_reduce(2, index, distances, reduce="amin")


_BASELINE_PARAMS = """\
    %(episode)s
    standardize : {{"none", "center", "standardize"}}, default="center"
        The per-feature transform, with statistics learned from the training
        pool by ``fit``: ``"none"`` keeps the raw features, ``"center"``
        subtracts the pool's mean, ``"standardize"`` subtracts it and divides
        by the pool's standard deviation (features constant in the pool are
        divided by 1, as :class:`~sklearn.preprocessing.StandardScaler`
        does). Centring alone does not change Euclidean distances; with
        ``l2_normalize`` it does (SimpleShot's CL2N).
    l2_normalize : bool, default=True
        After the transform, scale each feature vector to unit L2 norm.
    %(n_eval_episodes)s
    %(evaluation)s
    device : str or torch.device, default="auto"
        Where features are transformed and compared: "auto" takes CUDA when
        available. Features and distances are float64.
    random_state : int, RandomState instance or None, default=None
        Accepted so that code setting it on every learner works; nothing here
        is random (:meth:`score` draws its episodes from a fixed seed, as
        every learner's does).

    Attributes
    ----------
    module_ : torch.nn.Module
        The fixed transform: flattens samples, subtracts ``mean_``, divides
        by ``scale_``, scales to unit norm; float64 buffers, no parameters.
    mean_ : ndarray of shape (n_dims,) or None
        Per-feature mean of the training pool (``n_dims`` is the size of a
        flattened sample); None when ``standardize="none"``.
    scale_ : ndarray of shape (n_dims,) or None
        Per-feature standard deviation of the training pool (1 for constant
        features); None unless ``standardize="standardize"``.
    %(classes_)s
    pool_state_ : dict or None
        {pool_state}, used by :meth:`predict` (computed at the first
        prediction and kept).
    %(data_attributes)s"""

_DOC_VALUES = {
    "n_way_note": (
        ": ``fit`` checks that the pool can supply such episodes (as every "
        "learner's does), and :meth:`score` draws them unless ``eval_n_way`` "
        "says otherwise"
    ),
    "k_shot_note": " (the same, with ``eval_k_shot``)",
}


class _BaseNonLearned(BaseMetricLearner):
    """What the non-learned baselines share: parameters, statistics, no training.

    ``fit`` validates the data as the learners' ``fit`` does, learns the
    transform's statistics and keeps the pool for ``predict``; it builds no
    optimiser, history or callbacks, because nothing is trained. A subclass
    says how a transformed support set is summarised and compared, as every
    metric learner does.
    """

    _parameter_constraints: dict = {
        **{
            name: BaseMetaLearner._parameter_constraints[name]
            for name in (
                "n_way",
                "k_shot",
                "n_query",
                "n_eval_episodes",
                "eval_n_way",
                "eval_k_shot",
                "eval_n_query",
                "device",
                "random_state",
            )
        },
        "standardize": [StrOptions({"none", "center", "standardize"})],
        "l2_normalize": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        standardize="center",
        l2_normalize=True,
        n_eval_episodes=600,
        eval_n_way=None,
        eval_k_shot=None,
        eval_n_query=None,
        device="auto",
        random_state=None,
    ):
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.standardize = standardize
        self.l2_normalize = l2_normalize
        self.n_eval_episodes = n_eval_episodes
        self.eval_n_way = eval_n_way
        self.eval_k_shot = eval_k_shot
        self.eval_n_query = eval_n_query
        self.device = device
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Learn the transform's statistics from a pool or tasks; train nothing.

        The data are validated as every learner's ``fit`` validates them (a
        pool must hold ``n_way`` classes of at least ``k_shot + n_query``
        samples). The per-feature mean and standard deviation that
        ``standardize`` asks for are learned from every sample given, read a
        chunk at a time (a pool on disk is never loaded whole) and
        accumulated in float64.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or sequence of Task
            A labelled pool, ``(n_samples, n_features)`` for tabular data or
            ``(n_samples, channels, height, width)`` for images (flattened to
            vectors); or tasks (then ``y`` and ``groups`` must be None), whose
            support and query samples together are the pool. An iterator of
            tasks is accepted with ``standardize="none"`` only, which reads
            its first task (for the sample shape): statistics need every task.
        y : array-like of shape (n_samples,), default=None
            Labels of the pool.
        groups : array-like of shape (n_samples,), default=None
            With a pool: the task each sample belongs to; the pool must
            supply episodes within a group. Statistics are over all groups.

        Returns
        -------
        self : object
            The fitted baseline.
        """
        return super().fit(X, y, groups)

    def _check_extra_params(self) -> None:
        """Raise for any parameter beyond the signature's: nothing is routed."""
        extra = self._extra_param_names()
        if extra:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {sorted(extra)}. "
                "It has no module or optimizer to route module__* or optimizer__* "
                "parameters to."
            )

    def _fit(self, X, y, groups):
        self._check_extra_params()
        self.device_ = _resolve_device(self.device)
        if _fit_takes_tasks(X, y, groups):
            samples, pool = self._task_samples(X), None
        else:
            pool = _check_pool(self, X, y, groups, classification=True, reset=True)
            self.sample_shape_ = tuple(pool.X.shape[1:])
            rows = np.arange(len(pool.codes))
            episode = (self.n_way, self.k_shot, self.n_query)
            self._make_sampler(pool, rows, episode, "Training pool")
            samples = pool.X
        self.module_ = self._transform_from(samples).eval()
        self._fit_pool(pool)
        return self

    def _task_samples(self, tasks) -> np.ndarray:
        """Check tasks as the learners do; return the samples statistics come from."""
        stream = _TaskStream(tasks, classification=True)
        if stream.is_finite:
            checked = [_check_task(task, i, True) for i, task in enumerate(tasks)]
        elif self.standardize == "none":
            checked = [stream.first()]
        else:
            raise TypeError(
                f"{type(self).__name__} with standardize={self.standardize!r} learns "
                "its statistics from every sample of the tasks, so it needs them up "
                f"front: pass a list of tasks, not an iterator "
                f"({type(tasks).__name__})."
            )
        shape = checked[0][0].shape[1:]
        for i, (X_support, *_) in enumerate(checked):
            if X_support.shape[1:] != shape:
                raise ValueError(
                    f"Task {i} has samples of shape {X_support.shape[1:]}, but task 0 "
                    f"has samples of shape {shape}; every task must have samples of "
                    "one shape."
                )
        self.sample_shape_ = tuple(shape)
        self.n_features_in_ = shape[0]
        return np.concatenate([np.concatenate([c[0], c[2]]) for c in checked])

    def _transform_from(self, samples) -> _FeatureTransform:
        """Build the transform, learning the statistics ``standardize`` asks for."""
        mean = scale = None
        if self.standardize != "none":
            mean, var, n = _feature_moments(
                _samples(samples), self.device_, _INFERENCE_CHUNK
            )
            if self.standardize == "standardize":
                scale = _scale_from_variance(var, mean, n)
        return _FeatureTransform(mean, scale, self.l2_normalize).to(self.device_)

    @property
    def mean_(self) -> np.ndarray | None:
        """Per-feature mean of the training pool (None without centring)."""
        mean = self.module_.mean
        return None if mean is None else mean.numpy(force=True)

    @property
    def scale_(self) -> np.ndarray | None:
        """Per-feature standard deviation of the pool (None unless standardising)."""
        scale = self.module_.scale
        return None if scale is None else scale.numpy(force=True)


class NearestCentroidClassifier(_BaseNonLearned):
    __doc__ = fill_doc(
        """Nearest class mean of the support set, on raw features: no training.

    Each sample is flattened to a vector and transformed (``standardize``,
    then ``l2_normalize``, with statistics learned from the training pool by
    ``fit``); a query goes to the class whose support mean is nearest in
    Euclidean distance: SimpleShot's rule, on the samples rather than on a
    network's features. ``fit`` trains nothing, so this is the first score a
    meta-learner must beat. Adaptation averages the transformed support set
    per class. :meth:`predict_proba` is the softmax of the negative squared
    distances to the class means (a prototypical network's output with this
    fixed embedding).

    Parameters
    ----------
"""
        + _BASELINE_PARAMS.format(
            pool_state="The class means of the transformed training pool"
        )
        + """

    See Also
    --------
    sklearn.neighbors.NearestCentroid : the same rule on one fixed data set.
    NearestNeighborClassifier : the nearest support sample instead of the mean.
    PrototypicalClassifier : the same rule in a meta-learned embedding.

    References
    ----------
    .. [1] Y. Wang, W.-L. Chao, K. Q. Weinberger and L. van der Maaten,
       "SimpleShot: Revisiting Nearest-Neighbor Classification for Few-Shot
       Learning", arXiv:1911.04623, 2019.

    Examples
    --------
    >>> from sklearn_meta.metric import NearestCentroidClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = NearestCentroidClassifier(n_way=5, k_shot=1).fit(X[y < 5], y[y < 5])
    >>> clf.score(X[y >= 5], y[y >= 5]) > 0.6
    True
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.classes_
    array([8, 9])
    """,
        **_DOC_VALUES,
    )

    def _support_summary(self, z_support, y_support, n_classes):
        return _compute_prototypes(z_support, y_support, n_classes)

    def _query_logits(self, summary, z_query):
        return -_squared_euclidean(z_query, summary)


class NearestNeighborClassifier(_BaseNonLearned):
    __doc__ = fill_doc(
        """Label of the nearest support sample, on raw features: no training.

    Each sample is flattened to a vector and transformed (``standardize``,
    then ``l2_normalize``, with statistics learned from the training pool by
    ``fit``); a query takes the label of its nearest support sample in
    Euclidean distance (1-nearest neighbour). ``fit`` trains nothing, so this
    is the first score a meta-learner must beat. Adaptation keeps the
    transformed support set. :meth:`predict_proba` is the softmax of the
    negative distances to the nearest support sample of each class.

    Parameters
    ----------
"""
        + _BASELINE_PARAMS.format(
            pool_state="The transformed training pool and its class codes"
        )
        + """

    See Also
    --------
    sklearn.neighbors.KNeighborsClassifier : with ``n_neighbors=1``, the same rule.
    NearestCentroidClassifier : the nearest class mean instead of the sample.

    References
    ----------
    .. [1] Y. Wang, W.-L. Chao, K. Q. Weinberger and L. van der Maaten,
       "SimpleShot: Revisiting Nearest-Neighbor Classification for Few-Shot
       Learning", arXiv:1911.04623, 2019.
    .. [2] T. Cover and P. Hart, "Nearest Neighbor Pattern Classification",
       IEEE Transactions on Information Theory 13(1), 1967.

    Examples
    --------
    >>> from sklearn_meta.metric import NearestNeighborClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = NearestNeighborClassifier(n_way=5, k_shot=1).fit(X[y < 5], y[y < 5])
    >>> clf.score(X[y >= 5], y[y >= 5]) > 0.6
    True
    >>> adapted = clf.adapt(X[y >= 8][:10], y[y >= 8][:10])
    >>> adapted.classes_
    array([8, 9])
    """,
        **_DOC_VALUES,
    )

    def _support_summary(self, z_support, y_support, n_classes):
        return z_support, y_support, n_classes

    def _query_logits(self, summary, z_query):
        z_support, y_support, n_classes = summary
        return -_nearest_sample_distances(z_query, z_support, y_support, n_classes)
