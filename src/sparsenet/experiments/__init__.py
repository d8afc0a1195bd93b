"""Experiments: TOML definitions, a resumable SQLite results store and a parallel batched runner."""

from sparsenet.experiments.config import ConfigError, ExperimentConfig, Run, expand, load_config, shipped_configs
from sparsenet.experiments.runner import execute_task, make_tasks, run_experiments
from sparsenet.experiments.store import Store, open_store

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "Run",
    "Store",
    "expand",
    "execute_task",
    "load_config",
    "make_tasks",
    "open_store",
    "run_experiments",
    "shipped_configs",
]
