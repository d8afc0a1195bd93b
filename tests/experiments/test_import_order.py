"""Every experiments module imports on its own, first in a fresh interpreter (no import-order cycles)."""
import pkgutil
import subprocess
import sys

import pytest

import sparsenet.experiments as experiments

MODULES = sorted(m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_first(name):
    proc = subprocess.run([sys.executable, "-c", f"import sparsenet.experiments.{name}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
