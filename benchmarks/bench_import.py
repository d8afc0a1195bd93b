"""Start-up: ``python -c "import sparsenet"`` and ``sparsenet list``, wall seconds (best and median of 7).

Each is a fresh interpreter (subprocess), so the time includes Python's own start; that start alone
(``python -c pass``) is reported beside them.  Target ≤ 0.3 s each.
"""

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import case  # noqa: E402

TARGET = 0.3


def _times(cmd, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def run(repeats=7):
    py = sys.executable
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import sparsenet"': [py, "-c", "import sparsenet"],
        "sparsenet list": [py, "-m", "sparsenet.cli", "list"],
        "sparsenet --help": [py, "-m", "sparsenet.cli", "--help"],
    }
    times = {name: _times(cmd, repeats) for name, cmd in cmds.items()}
    rows = []
    for name, ts in times.items():
        detail = {"best_s": min(ts), "median_s": statistics.median(ts), "max_s": max(ts), "repeats": repeats}
        print(f"   {name}: best {min(ts):.3f} s, median {statistics.median(ts):.3f} s, max {max(ts):.3f} s")
        if name != "python -c pass":
            rows.append(case(f"{name}, wall seconds (median of {repeats})", statistics.median(ts), TARGET, "<=",
                             detail))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
