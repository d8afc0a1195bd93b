import numpy as np
import pytest

from sparsenet.data import make_planted


@pytest.fixture(scope="session")
def tiny_problem():
    """A small planted squared-ReLU problem shared by fast tests."""
    return make_planted(400, 6, 3, thresh_gt=0.15, n_test=200, random_state=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
