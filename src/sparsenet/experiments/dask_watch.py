"""A Dask worker plugin that ends a worker process when the process that started it dies.

``sparsenet run --scheduler local:N`` starts a ``LocalCluster`` inside the client process: its nannies
live there and spawn the worker processes.  A kill -9 of the client leaves those workers orphaned,
computing and then idling for ever; with this plugin each worker watches its parent
(:func:`sparsenet.experiments.runner.watch_parent`) and exits within a fraction of a second.
Registered for local clusters only (a remote cluster's lifetime is its owner's business).  Imports
``distributed``: loaded only when Dask is used.
"""

import os

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["ParentWatch"]


class ParentWatch(WorkerPlugin):
    """Worker plugin: exit the worker process when its parent process (the local cluster's) is gone."""

    name = "sparsenet-parent-watch"

    def setup(self, worker):
        from sparsenet.experiments.runner import watch_parent

        watch_parent(os.getppid())
