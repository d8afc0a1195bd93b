"""Run every benchmark in one process, print "case | measured ratio | target | met?" and write
``benchmarks/results.json`` (ratios, date, machine: cores, numpy BLAS, thread pools).

Usage: ``python benchmarks/run_all.py [name ...]`` with names among epoch, batched, init, torch,
training, import, reproduce, memory (default: all).  Run by ``make bench``; not part of ``make test``.
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import case, machine  # noqa: E402

BENCHES = ["epoch", "batched", "init", "torch", "training", "import", "reproduce", "memory"]


def table(rows):
    lines = ["| case | measured ratio | target | met? |", "|---|---|---|---|"]
    for r in rows:
        if r["measured"] is None:
            val, met = "skipped", f"— ({r['skipped']})"
        else:
            val = f"{r['measured']:.3g}"
            met = r["met"] if isinstance(r["met"], str) else "yes" if r["met"] else "NO"
        lines.append(f"| {r['case']} | {val} | {r['target']} | {met} |")
    return "\n".join(lines)


def main(names):
    rows = []
    for name in names:
        t0 = time.perf_counter()
        print(f"== bench_{name} ...", flush=True)
        try:
            mod = importlib.import_module(f"bench_{name}")
            out = mod.run()
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            out = [case(f"bench_{name}", None, 0, "<=", skipped=f"error: {exc!r}"[:300])]
        for r in out:
            r["bench"] = name
            print(f"   {r['case']}: {r['measured']} (target {r['target']})", flush=True)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
        rows.extend(out)
    print()
    print(table(rows))
    info = machine()
    path = os.path.join(HERE, "results.json")
    old = {}
    if os.path.exists(path) and set(names) != set(BENCHES):
        with open(path) as fh:  # partial run: keep the other benchmarks' last figures
            old = {r["case"]: r for r in json.load(fh).get("results", [])}
    for r in rows:
        old[r["case"]] = r
    with open(path, "w") as fh:
        json.dump({"date": info["date"], "machine": info, "results": list(old.values())}, fh, indent=2)
    print(f"\nwritten {path}  ({info['date']}, {info['cores']} cores, BLAS {info.get('numpy_blas')})")
    return rows


def parse_args(argv=None):
    """The benchmark names to run (default: all); an unknown name is an error before anything runs,
    so that a typo (or ``--help``) never overwrites ``results.json`` with a failed row."""
    parser = argparse.ArgumentParser(
        description="Run the benchmarks of benchmarks/ in one process; print each case's measured ratio "
                    "against its target and write benchmarks/results.json (a partial run keeps the other "
                    "benchmarks' last rows).")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, among {', '.join(BENCHES)} (default: all)")
    names = parser.parse_args(argv).names
    unknown = [n for n in names if n not in BENCHES]
    if unknown:  # (argparse's own choices check rejects an empty list with nargs="*" on Python < 3.12)
        parser.error(f"unknown benchmark {unknown[0]!r}; choose among {', '.join(BENCHES)}")
    return names or list(BENCHES)


if __name__ == "__main__":
    main(parse_args())
