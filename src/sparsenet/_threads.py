"""One BLAS thread around small products (the one helper every module uses).

OpenBLAS starts its worker threads for products of any size; on the small and thin products of this
package (minibatch steps, k-sized tensor algebra, the solvers' fits on a few hundred parameters) the
threads only add start-up and contention: measured up to 2× slower minibatch training, 4× slower tensor
decompositions and a 50× slower L-BFGS-B on a loaded 2-core machine.  Finding the loaded BLAS libraries
(reading the process's memory map) costs ~1.3–2.5 ms per call, the limit itself ~0.02 ms, so the
libraries found are kept (a ``threadpoolctl.ThreadpoolController``) until a module is imported.
"""

import contextlib
import sys

__all__ = ["one_blas_thread"]

_CONTROLLER = [None, -1]  # threadpoolctl controller, len(sys.modules) when it was made
_DEPTH = [0]  # one_blas_thread limits in force (nested ones are no-ops: the outer one holds the limit)


def one_blas_thread(enabled=True):
    """Context manager limiting BLAS to one thread (a no-op when ``enabled`` is false, inside another
    ``one_blas_thread``, or when threadpoolctl, an optional dependency, is missing)."""
    if not enabled or _DEPTH[0]:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional dependency (installed with scikit-learn)
        return contextlib.nullcontext()
    n_modules = len(sys.modules)  # a new import may have loaded another BLAS
    if _CONTROLLER[1] != n_modules:
        _CONTROLLER[:] = [ThreadpoolController(), n_modules]
    return _held(_CONTROLLER[0].limit(limits=1, user_api="blas"))


@contextlib.contextmanager
def _held(limit):
    _DEPTH[0] += 1
    try:
        with limit:
            yield
    finally:
        _DEPTH[0] -= 1
