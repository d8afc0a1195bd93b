"""Experiments: TOML definitions, a resumable SQLite results store and a parallel batched runner.

Names are imported on first use (PEP 562), so that ``import sparsenet.experiments.config`` (what
``sparsenet list`` needs) does not load the runner, the methods or the estimator.
"""

import importlib

_LAZY = {
    "ConfigError": "config",
    "ExperimentConfig": "config",
    "Run": "config",
    "expand": "config",
    "load_config": "config",
    "shipped_configs": "config",
    "execute_task": "runner",
    "make_tasks": "runner",
    "run_experiments": "runner",
    "Store": "store",
    "open_store": "store",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sparsenet.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
