"""Fixtures of the memory-based learners' tests."""

import pytest


@pytest.fixture(scope="module")
def flat_digits(digits):
    """Sklearn's digits as a tabular pool ``(1797, 64)``."""
    X, y = digits
    return X.reshape(len(X), -1), y
