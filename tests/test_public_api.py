"""The public API: names exported, docstrings that match signatures (numpydoc), reproducibility."""

import inspect

import numpy as np
import pytest
from numpydoc.docscrape import FunctionDoc

import sparsenet

PUBLIC_CALLABLES = [
    name for name in sparsenet.__all__
    if inspect.isfunction(getattr(sparsenet, name)) or inspect.isclass(getattr(sparsenet, name))
]


def test_all_names_exist():
    for name in sparsenet.__all__:
        assert hasattr(sparsenet, name), name
    assert all(isinstance(name, str) for name in sparsenet.__all__)


@pytest.mark.parametrize("name", [n for n in PUBLIC_CALLABLES if inspect.isfunction(getattr(sparsenet, n))])
def test_docstring_parameters_match_signature(name):
    func = getattr(sparsenet, name)
    doc = FunctionDoc(func)
    documented = []
    for param in doc["Parameters"]:
        documented += [p.strip() for p in param.name.split(",")]
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "args", "kwargs")]
    assert documented == params, f"{name}: docstring lists {documented}, signature has {params}"
    assert doc["Returns"], f"{name} documents no return value"


@pytest.mark.parametrize("name", ["Threshold", "TopFraction"])
def test_sparsifier_classes_document_their_parameter(name):
    cls = getattr(sparsenet, name)
    params = [p for p in inspect.signature(cls).parameters]
    doc = inspect.getdoc(cls)
    for p in params:
        assert f"{p} :" in doc


def test_end_to_end_is_bit_reproducible():
    prob = sparsenet.make_planted(1500, 8, 3, thresh_gt=0.15, random_state=4)
    outs = []
    for _ in range(2):
        W0, v0 = sparsenet.tensor_init(prob.X, prob.y, 3, random_state=4)
        res = sparsenet.train_iht(prob.X, prob.y, W0, v0, sparsifier=sparsenet.Threshold(0.075), epochs=2,
                                  random_state=4)
        outs.append((W0, v0, res.W, res.v, res.history["train_loss"]))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
