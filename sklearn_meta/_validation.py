"""Input validation: the one path every sample, label, target and group takes.

Each check returns what it validated in the form the caller uses next (float32
arrays, integer codes), so nothing downstream checks the same input again:
the episode sampler is built from the codes :func:`_check_pool` returns, and an
adapted estimator validates its ``X`` once. Every message says what was
expected, what came, and how to fix it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d, validate_data

from ._data import _lazy_samples, _pool_labels, _Samples

__all__: list[str] = []

#: What sklearn's ``validate_data`` checks of regression targets.
_NUMERIC_TARGETS = {"y_numeric": True, "multi_output": True}


def _check_X(
    estimator,
    X,
    *,
    reset: bool,
    sample_shape: tuple | None = None,
    y=None,
    y_kwargs: dict | None = None,
):
    """Validate samples ``X`` (and ``y``) with sklearn; return float32 arrays.

    Parameters
    ----------
    estimator : estimator instance
        Its ``n_features_in_`` is set (``reset=True``) or checked.
    X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
        Tabular data or images.
    reset : bool
        Whether this is ``fit``'s data (at least 2 samples).
    sample_shape : tuple, default=None
        The shape of one sample the estimator was fitted on; None learns it.
    y : array-like, default=None
        Targets, validated with ``X`` when given.
    y_kwargs : dict, default=None
        Passed on to sklearn's ``validate_data`` with ``y``.

    Returns
    -------
    X : ndarray, C-contiguous float32, or _Samples
        The validated samples (with ``y`` as a tuple when given): samples in
        memory as a float32 array; uint8 images and pools read as batches
        (memmaps, h5py and zarr arrays, image folders, Datasets) as a
        :class:`~sklearn_meta._data._Samples` view, whose values are checked
        as batches are read.
    """
    # A pool to meta-train on needs two samples; a support or query set may
    # have one.
    min_samples = 2 if reset and sample_shape is None else 1
    samples = _lazy_samples(X)
    if samples is not None:
        return _check_samples(estimator, samples, reset, sample_shape, min_samples, y)
    kwargs = dict(dtype=np.float32, allow_nd=True, ensure_min_samples=min_samples)
    # Arrays say their dimensions before conversion: check them first, so that
    # images without a channel axis get this message, not sklearn's count of
    # features (which reads the image height as the number of features).
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 2:
        _check_ndim(shape)
    if y is not None:
        X, y = validate_data(estimator, X, y, reset=reset, **kwargs, **(y_kwargs or {}))
    else:
        X = validate_data(estimator, X, reset=reset, **kwargs)
    _check_ndim(X.shape)
    _check_sample_shape(estimator, X.shape, sample_shape)
    X = np.ascontiguousarray(X)
    return X if y is None else (X, y)


def _check_samples(estimator, samples, reset, sample_shape, min_samples, y):
    """Check what can be checked of samples without reading them: their shape.

    Their values (finite, one shape per sample) are checked as batches are
    read. Returns ``samples`` (with ``y`` as an array when given).
    """
    _check_ndim(samples.shape)
    if len(samples) < min_samples:
        raise ValueError(
            f"Found array with {len(samples)} sample(s) (shape={samples.shape}) while "
            f"a minimum of {min_samples} is required."
        )
    if reset:
        estimator.n_features_in_ = samples.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    _check_sample_shape(estimator, samples.shape, sample_shape)
    if y is None:
        return samples
    y = np.asarray(y)
    _check_length("y", y, len(samples), "label")
    return samples, y


def _check_sample_shape(estimator, shape, sample_shape) -> None:
    """Raise unless samples of ``shape`` match those the estimator was fitted on."""
    if sample_shape is not None and tuple(shape[1:]) != tuple(sample_shape):
        raise ValueError(
            f"X has samples of shape {tuple(shape[1:])}, but "
            f"{type(estimator).__name__} was fitted on samples of shape "
            f"{tuple(sample_shape)}."
        )


def _check_ndim(shape) -> None:
    """Raise unless ``shape`` (None: unknown) is that of tabular data or images.

    Images are channels-first, as torch takes them. A last axis of 1, 3 or 4
    behind two axes larger than 4 is the channels-last layout of PIL, TensorFlow and
    most NumPy image code, which would otherwise be read as that many pixels
    across, so it is refused with the transpose that fixes it.
    """
    if shape is None:
        return
    if len(shape) not in (2, 4):
        hint = (
            " For single-channel images add the channel axis, X[:, None]."
            if len(shape) == 3
            else ""
        )
        raise ValueError(
            "X must be 2-dimensional (n_samples, n_features) for tabular data or "
            "4-dimensional (n_samples, channels, height, width) for images; got "
            f"shape {tuple(shape)}.{hint}"
        )
    if len(shape) == 4 and shape[3] in (1, 3, 4) and min(shape[1:3]) > 4:
        height, width, channels = shape[1:]
        raise ValueError(
            f"X has shape {tuple(shape)}, which looks like channels-last images "
            f"({height}x{width} pixels with {channels} channel(s)); sklearn_meta "
            "takes images channels-first, (n_samples, channels, height, width). "
            "Pass X.transpose(0, 3, 1, 2) (for a torch tensor, X.permute(0, 3, 1, "
            "2))."
        )


def _check_class_labels(y, name: str = "y") -> np.ndarray:
    """Validate class labels as scikit-learn does, with messages that name the fix.

    Labels are numbers or strings, one kind per array. Continuous values,
    labels mixing numbers and strings, and labels that are not scalars (tuples,
    say) are refused, each with what to do instead.
    """
    values = np.asarray(y)
    if values.dtype == object:
        kinds = {
            "string" if isinstance(v, str) else "number" if np.isscalar(v) else "other"
            for v in values.ravel()
        }
        if "other" in kinds:
            odd = next(v for v in values.ravel() if not np.isscalar(v))
            raise ValueError(
                f"{name} holds a label of type {type(odd).__name__} ({odd!r}); class "
                "labels must be numbers or strings. Encode other values as strings "
                "or integer codes first."
            )
        if len(kinds) > 1:
            raise ValueError(
                f"{name} mixes numbers and strings as class labels; use one kind, "
                f"for instance np.asarray({name}).astype(str)."
            )
    if values.dtype.kind == "f" and type_of_target(values) == "continuous":
        examples = ", ".join(f"{v:.4g}" for v in np.unique(values)[:3])
        raise ValueError(
            f"{name} looks continuous ({examples}, ...): classifiers need class "
            "labels. For regression use a regressor (MAMLRegressor, say); if these "
            "values are labels, pass them as integers or strings."
        )
    return values


def _check_length(name: str, values: np.ndarray, n_samples: int, what: str) -> None:
    if len(values) != n_samples:
        raise ValueError(
            f"{name} has {len(values)} entries but X has {n_samples} samples; give "
            f"one {what} per sample."
        )


def _check_labels(y, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate class labels; return the sorted classes and each sample's code."""
    y = column_or_1d(_check_class_labels(y), warn=True)
    _check_length("y", y, n_samples, "label")
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    return classes, codes


def _check_groups(groups, n_samples: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate groups; return the sorted group names and codes (None: no groups)."""
    if groups is None:
        return None
    groups = column_or_1d(np.asarray(groups))
    _check_length("groups", groups, n_samples, "group")
    names, codes = np.unique(groups, return_inverse=True)
    return names, codes


def _check_targets(y, n_samples: int, shape: tuple | None, estimator, name="y"):
    """Validate regression targets; return them as float32.

    ``shape`` is the shape of one target the estimator was fitted on (None in
    ``fit``): a column ``(n, 1)`` is accepted for scalar targets.
    """
    y = np.asarray(y, dtype=np.float32)
    _check_length(name, y, n_samples, "target")
    if shape is not None:
        got = y.shape[1:]
        if got == (1,) and shape == ():
            y, got = y[:, 0], ()
        if got != shape:
            raise ValueError(
                f"{name} has targets of shape {got} per sample, but "
                f"{type(estimator).__name__} was fitted on targets of shape {shape}."
            )
    if not np.isfinite(y).all():
        raise ValueError(
            f"{name} contains NaN or infinity. Remove those samples or impute the "
            "targets."
        )
    return y


class _Pool(NamedTuple):
    """A validated labelled pool.

    ``codes`` are class codes ``0..n_classes-1`` (classification) or task codes
    (regression: the groups, all zero without groups); ``targets`` are the
    regression targets (None for classification); ``classes`` the sorted class
    labels (None for regression); ``groups`` the group codes (None without).
    """

    X: np.ndarray | _Samples
    codes: np.ndarray
    classes: np.ndarray | None
    targets: np.ndarray | None
    groups: np.ndarray | None
    group_names: np.ndarray | None

    def subset(self, rows: np.ndarray) -> _Pool:
        """Return the pool's ``rows`` (an index array)."""
        return self._replace(
            X=self.X[rows],
            codes=self.codes[rows],
            targets=None if self.targets is None else self.targets[rows],
            groups=None if self.groups is None else self.groups[rows],
        )


def _check_pool(
    estimator,
    X,
    y,
    groups,
    *,
    classification: bool,
    reset: bool,
    target_shape: tuple | None = None,
) -> _Pool:
    """Validate a labelled pool: samples, labels or targets, groups.

    The single check of a pool, for ``fit`` (``reset=True``: learns the
    number of features) and for episodic scoring (``reset=False``: checks
    them, and regression targets against ``target_shape``). The episode
    sampler and the meta-validation split take its codes as they are.
    """
    if y is None:
        # Pools that say their labels (torchvision's ``targets``) need no y.
        y = _pool_labels(X)
    if y is None:
        form = "fit(X, y)" if classification else "fit(X, y, groups=...)"
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y "
            f"is None. Pass a labelled pool as {form} or a sequence of Task objects "
            "as fit(tasks)."
        )
    if reset:
        X, y = _check_X(
            estimator,
            X,
            reset=True,
            y=y,
            y_kwargs=None if classification else _NUMERIC_TARGETS,
        )
    else:
        X = _check_X(estimator, X, reset=False, sample_shape=estimator.sample_shape_)
    checked = _check_groups(groups, len(X))
    group_names, group_codes = (None, None) if checked is None else checked
    if classification:
        classes, codes = _check_labels(y, len(X))
        if reset and len(classes) < 2:
            raise ValueError(
                f"y has {len(classes)} class; a classifier needs at least 2 classes "
                "to meta-train on. Pass a pool with at least 2 classes."
            )
        return _Pool(X, codes, classes, None, group_codes, group_names)
    targets = _check_targets(y, len(X), target_shape, estimator)
    codes = np.zeros(len(X), dtype=np.int64) if group_codes is None else group_codes
    return _Pool(X, codes, None, targets, group_codes, group_names)


def _check_finite_outputs(outputs, estimator):
    """Return ``outputs`` (a tensor), or raise if any of them is not finite.

    Finite but huge inputs (``1e30`` is a legal float32) can overflow inside
    a network; a prediction made of NaN or infinity must not pass as an
    answer.
    """
    if not bool(torch.isfinite(outputs).all()):
        raise ValueError(
            f"{type(estimator).__name__} computed non-finite outputs for X: its "
            "values are too large for float32 arithmetic in this network. Scale X "
            "as the training data was scaled."
        )
    return outputs
