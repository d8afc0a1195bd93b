"""Wall time of the whole reproduction, ``sparsenet reproduce --scale paper`` into a fresh folder, with
the breakdown the command prints (runs, figures and report, slowest experiments); ``--scale quick`` too.

Target ≤ 20 s on 2 cores for the paper scale, figures and report included (what ``make reproduce``
runs after the install).  Skipped with a message when the CLI (``sparsenet.cli``) is not there.
"""

import importlib.util
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import case  # noqa: E402

TARGET = {"paper": 20.0, "quick": 8.0}


def _breakdown(stdout):
    out = {}
    m = re.search(r"time: runs ([\d.]+) s.*?figures and report ([\d.]+) s.*?; total ([\d.]+) s", stdout)
    if m:
        out.update(runs_s=float(m.group(1)), figures_and_report_s=float(m.group(2)), total_s=float(m.group(3)))
    m = re.search(r"\(figures ([\d.]+) s, claims ([\d.]+) s.*?tables and files ([\d.]+) s, loading the runs "
                  r"([\d.]+) s\)", stdout)
    if m:
        out.update(figures_s=float(m.group(1)), claims_s=float(m.group(2)), document_s=float(m.group(3)),
                   loading_s=float(m.group(4)))
    m = re.search(r"slowest experiments \(CPU s of the runs computed\): (.*)", stdout)
    if m:
        out["slowest"] = m.group(1).strip()
    return out


def run(scales=("paper", "quick"), timeout=900):
    rows = []
    if importlib.util.find_spec("sparsenet.cli") is None:
        msg = "sparsenet.cli is not there yet; reproduction benchmark skipped"
        return [case("sparsenet reproduce, wall seconds", None, TARGET["paper"], "<=", skipped=msg)]
    for scale in scales:
        name = f"sparsenet reproduce --scale {scale}, fresh folder, wall seconds"
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "sparsenet.cli", "reproduce", "--scale", scale, "--no-progress",
                   "--out", os.path.join(tmp, "out")]
            t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                rows.append(case(name, float("inf"), TARGET[scale], "<=", {"error": f"timed out after {timeout} s"}))
                continue
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU of the command and its workers
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if proc.returncode != 0:
            msg = f"reproduce failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}"
            rows.append(case(name, None, TARGET[scale], "<=", skipped=msg))
            continue
        detail = {"command": " ".join(cmd[2:]), "cpu_s": round(cpu, 1), **_breakdown(proc.stdout)}
        try:
            detail["load_average"] = os.getloadavg()
        except OSError:
            pass
        print(f"   {scale}: {wall:.1f} s wall; {detail}")
        rows.append(case(name, wall, TARGET[scale], "<=", detail))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
