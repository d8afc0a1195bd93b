"""The public API: names exported, docstrings that match signatures (numpydoc), reproducibility."""

import inspect
import subprocess
import sys

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


_BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for the test: ' + name)
sys.meta_path.insert(0, Block())
"""


def _run_python(code, blocked=()):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _BLOCKER.format(blocked=set(blocked)) + code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_import_sparsenet_loads_nothing_heavy():
    # `import sparsenet` imports no submodule, not even numpy: names load on first use.
    out = _run_python("import sys, sparsenet; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                      "('numpy', 'scipy', 'sklearn', 'matplotlib', 'numba', 'sparsenet')))")
    assert out.strip() == "['sparsenet']"


def test_core_works_with_sklearn_and_matplotlib_blocked():
    # The core needs numpy and scipy alone: init + IHT training + metrics, with the two libraries unimportable.
    code = """
import sparsenet
prob = sparsenet.make_planted(1500, 8, 3, thresh_gt=0.15, random_state=0)
W0, v0 = sparsenet.tensor_init(prob.X, prob.y, 3, random_state=0)
res = sparsenet.train_iht(prob.X, prob.y, W0, v0, sparsifier=sparsenet.Threshold(0.075), epochs=2, random_state=0)
err = sparsenet.recovery_error(res.W, res.v, prob.W, prob.v)
print(res.W.shape, err < 1.0)
try:
    sparsenet.SparseNetRegressor
except ImportError as exc:
    print('estimator needs', exc)
"""
    out = _run_python(code, blocked=("sklearn", "matplotlib"))
    assert "(8, 3) True" in out
    assert "estimator needs blocked for the test: sklearn" in out  # the blocker was active


def test_cli_list_and_help_do_not_load_the_estimator():
    code = """
import sys, io, contextlib
from sparsenet import cli
with contextlib.redirect_stdout(io.StringIO()) as buf:
    cli.main(['list'])
assert 'fig04' in buf.getvalue()
try:
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(['--help'])
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'matplotlib', 'numba', 'scipy')
             or m in ('sparsenet.estimator', 'sparsenet.cli_model', 'sparsenet.train')))
"""
    assert _run_python(code, blocked=("sklearn", "matplotlib")).strip().endswith("[]")


def test_public_names_survive_importing_their_submodules():
    # `from sparsenet.tensor_init import ...` binds the submodule on the package; the public
    # function of the same name must still be what `sparsenet.tensor_init` means.
    code = (
        "import importlib, sparsenet\n"
        "mods = {m: importlib.import_module('sparsenet.' + m) for m in set(sparsenet._LAZY.values())}\n"
        "bad = [n for n, m in sparsenet._LAZY.items() if getattr(sparsenet, n) is not getattr(mods[m], n)]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
