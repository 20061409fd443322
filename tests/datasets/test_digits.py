"""Tests of load_digits_images: sklearn's digits as an image pool."""

import numpy as np

from sklearn_meta.datasets import load_digits_images


def test_load_digits_images_shape_and_range():
    """Check that the digits pool is float32 (1797, 1, 8, 8) in [0, 1]."""
    bunch = load_digits_images()
    X, y = load_digits_images(return_X_y=True)
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.issubdtype(y.dtype, np.integer) and set(np.unique(y)) == set(range(10))
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, y)
    assert isinstance(bunch.DESCR, str)
