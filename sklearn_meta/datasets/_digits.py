"""scikit-learn's bundled 8x8 digits as a tiny image pool."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

__all__ = ["load_digits_images"]


def load_digits_images(*, return_X_y: bool = False) -> Bunch | tuple[np.ndarray, ...]:
    """Load scikit-learn's 8x8 digits as images, shaped for convolutional models.

    A small, bundled (no download) pool of 1,797 images of 10 classes, handy for
    examples and fast tests of the image learners.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (1797, 1, 8, 8)
            The images, float32 scaled from 0..16 to [0, 1].
        target : ndarray of shape (1797,)
            The digit (0 to 9) of each image, integers.
        DESCR : str
            Description of the dataset (that of
            :func:`sklearn.datasets.load_digits`).

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Examples
    --------
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, X.dtype, y[:5]
    ((1797, 1, 8, 8), dtype('float32'), array([0, 1, 2, 3, 4]))
    """
    digits = load_digits()
    data = (digits.images / 16.0).astype(np.float32)[:, None]
    target = np.asarray(digits.target)
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, DESCR=digits.DESCR)
