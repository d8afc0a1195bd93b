"""Command line: ``sparsenet reproduce | run | report | list`` (plus ``fit``/``predict`` when available).

Examples
--------
::

    sparsenet list
    sparsenet reproduce --scale quick --out results --jobs 2
    sparsenet run my_sweep.toml --out results
    sparsenet report results
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

DEFAULT_OUT = "results"


def _jobs_default():
    return os.cpu_count() or 1


def _wait_seconds(text):
    """argparse type of --wait: seconds >= 0, or inf."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 or inf. Got {text!r} instead.")
    return value


def _scheduler_address(text):
    """argparse type of --scheduler: local:N (N >= 1) or [SCHEME://]HOST[:PORT] with a numeric port."""
    import re

    text = text.strip()
    local = re.fullmatch(r"local(?::(\d+))?", text)
    if (local and (local.group(1) is None or int(local.group(1)) >= 1)) or \
            (not local and not text.startswith("local:")
             and re.fullmatch(r"([a-z][a-z0-9+.-]*://)?(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+)(:\d+)?", text)):
        return text
    raise argparse.ArgumentTypeError(
        f"must be local:N (a LocalCluster of N >= 1 worker processes) or a scheduler address such as "
        f"tcp://HOST:8786. Got {text!r} instead.")


def _out_of_memory(result):
    """Runs of this call that failed with MemoryError: stored as failed, but the sweep is incomplete."""
    oom = [f for f in result.failed if (f[2] or "").startswith("MemoryError")]
    if oom:
        print(f"sparsenet: {len(oom)} runs ran out of memory (MemoryError) and are stored as failed; the results "
              "are incomplete. Lower n, d or --jobs, then rerun with --retry-failed.", file=sys.stderr)
    return bool(oom)


def _add_run_options(p, *, default_scale):
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output folder: results store runs.sqlite, figures/ and REPORT.md (default: {DEFAULT_OUT})")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"worker processes; 1 runs in this process (default: all cores, here {_jobs_default()})")
    p.add_argument("--scale", choices=("quick", "paper"), default=default_scale,
                   help="quick: every swept value, fewer trials and epochs; paper: the report's sizes "
                        f"(5 trials, 25 epochs) (default: {default_scale})")
    p.add_argument("--force", action="store_true",
                   help="recompute runs already in the store and overwrite them (default: off, stored runs are skipped)")
    p.add_argument("--retry-failed", action="store_true",
                   help="recompute runs stored as failed (default: off)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    p.add_argument("--wait", type=_wait_seconds, default=float("inf"), metavar="SECONDS",
                   help="after its own runs, wait up to SECONDS for runs that another process on the same "
                        "--out is computing (taking over those of a process that dies), so that the store and "
                        "report are complete; 0 leaves them to that process (default: inf, wait until done)")
    _add_svg_option(p)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", type=_scheduler_address,
                   help="run on Dask instead of the local pool: a scheduler address (tcp://HOST:8786) or "
                        "local:N (a LocalCluster of N worker processes); needs pip install \"sparsenet[dask]\" "
                        "(default: off, local process pool; --jobs is then ignored)")


def _add_svg_option(p):
    p.add_argument("--svg", action="store_true",
                   help="also write every figure as SVG (about doubles the figures' time; the report uses the PNGs) "
                        "(default: PNG only)")


# Commands of the estimator (sparsenet.cli_model), registered by name alone unless one of them runs,
# so that `sparsenet list` and `sparsenet --help` do not import numpy and the estimator.
_MODEL_COMMANDS = {
    "fit": "fit a sparse network regressor on a CSV file and save it",
    "predict": "predict with a saved model; writes CSV to stdout",
}


def _command_of(argv):
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv=None):
    """The argument parser; with ``argv``, the estimator's commands are loaded only when ``argv`` runs one."""
    parser = argparse.ArgumentParser(
        prog="sparsenet",
        description="Sparse one-hidden-layer networks: tensor initialization + IHT. Reproduce the "
                    "experiments of Agrawal & Kar and run your own sweeps.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("reproduce", help="run every shipped figure experiment, then write figures and the report",
                       description="Run every shipped experiment (figures 3-15 and the extra sweeps), skipping runs "
                                   "already stored, then write figures/ and REPORT.md/REPORT.html under --out. "
                                   "Ctrl-C stops cleanly; rerun the same command to resume.")
    _add_run_options(p, default_scale="quick")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("run", help="run the sweep of one or more TOML experiment definitions",
                       description="Run one or more experiment definitions (see docs/EXPERIMENT_SCHEMA.md), "
                                   "skipping runs already stored. Ctrl-C stops cleanly; rerun to resume.")
    p.add_argument("configs", nargs="+", metavar="CONFIG.toml",
                   help="experiment definition(s); a shipped experiment may be named by its name, e.g. fig04")
    _add_run_options(p, default_scale="paper")
    p.add_argument("--report", action="store_true",
                   help="also write figures and the report for these experiments (default: off)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("report", help="write figures and REPORT.md/REPORT.html from a results folder",
                       description="Rebuild figures and the report from the store of DIR alone (nothing is rerun).")
    p.add_argument("out", metavar="DIR", help="a results folder written by reproduce or run")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"processes drawing the figures; 1 draws in this process (default: all cores, here "
                        f"{_jobs_default()})")
    _add_svg_option(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("list", help="list the shipped experiments",
                       description="List the shipped experiment definitions with their figure, sweep and size.")
    p.add_argument("--scale", choices=("quick", "paper"), default="paper",
                   help="scale used to count runs (default: paper)")
    p.set_defaults(func=_cmd_list)

    # Optional commands of the estimator (fit/predict), when that module is installed.
    if importlib.util.find_spec("sparsenet.cli_model") is not None:
        if argv is None or _command_of(argv) in _MODEL_COMMANDS:
            from sparsenet import cli_model

            cli_model.add_commands(sub)
        else:
            for name, text in _MODEL_COMMANDS.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


# --------------------------------------------------------------------------------------------------


def _resolve_config(name):
    from sparsenet.experiments.config import CONFIG_DIR

    path = Path(name)
    if path.exists():
        return path
    shipped = CONFIG_DIR / f"{name}.toml"
    if shipped.exists():
        return shipped
    raise SystemExit(f"sparsenet: no such experiment file or shipped experiment: {name!r} (see `sparsenet list`)")


def _load(paths, scale):
    from sparsenet.experiments.config import ConfigError, load_config

    try:
        return [load_config(p, scale=scale) for p in paths]
    except ConfigError as exc:
        raise SystemExit(f"sparsenet: {exc}") from None


def _sweep(configs, args):
    from sparsenet.experiments.runner import run_experiments
    from sparsenet.experiments.store import open_store

    if getattr(args, "scheduler", None):
        from sparsenet.experiments.dask_backend import run_on_dask

        result = run_on_dask(configs, args.out, args.scheduler, force=args.force,
                             retry_failed=args.retry_failed, progress=not args.no_progress,
                             wait_others=args.wait)
    else:
        with open_store(args.out) as store:
            result = run_experiments(configs, store, jobs=args.jobs, force=args.force,
                                     retry_failed=args.retry_failed, progress=not args.no_progress,
                                     wait_others=args.wait)
    print(f"{result.done} runs computed, {result.skipped} already stored, {result.total} in all "
          f"({result.wall_time:.1f} s); store: {Path(args.out) / 'runs.sqlite'}")
    if result.failed:  # grouped by protocol and cause, then experiment and method (issue 11)
        from sparsenet.experiments.aggregate import failure_summary

        print("\n".join(failure_summary(configs, result.failed)), file=sys.stderr)
    for host, pid, n in getattr(result, "busy", ()):  # claimed by another live process (store.claim)
        print(f"{n} runs are being computed by another process on this store (pid {pid} on {host}): left to it, "
              "not computed twice; rerun this command once it has finished to include them.", file=sys.stderr)
    if result.interrupted:
        print("Interrupted: finished runs are stored; rerun the same command to resume.", file=sys.stderr)
    return result


def _write_report(out, experiments, **kwargs):
    try:
        from sparsenet.experiments.report import write_report
    except ImportError as exc:
        raise SystemExit(
            f"sparsenet: cannot write the report: sparsenet.experiments.report is unavailable ({exc}). "
            "The runs are stored; run `sparsenet report DIR` once it is installed."
        ) from None
    md, html = write_report(out, experiments, **kwargs)
    print(f"report: {md} and {html}")


def _records(configs, out):
    from sparsenet.experiments.store import open_store

    with open_store(out) as store:
        return [(c, store.records(c)) for c in configs]


def _report_order(config):
    """Sections of a shipped report: the report's figures by number, then the other experiments by name
    (`reproduce` and `report` on its folder write the same REPORT.md)."""
    return config.figure is None, config.figure or 0, config.name


def _cmd_reproduce(args):
    from sparsenet.experiments.config import shipped_configs

    start = time.perf_counter()
    configs = _load(shipped_configs(reproduce_only=True), args.scale)
    result = _sweep(configs, args)
    if result.interrupted:
        return 130
    t_report = time.perf_counter()
    parts = {}
    # The report's header states the time spent computing runs; a resumed call that computed none has none.
    _write_report(args.out, sorted(_records(configs, args.out), key=lambda e: _report_order(e[0])),
                  scale=args.scale, wall_time=(t_report - start) if result.done else None, jobs=args.jobs,
                  svg=args.svg, timings=parts)
    _print_breakdown(result, runs_s=t_report - start, report_s=time.perf_counter() - t_report,
                     total_s=time.perf_counter() - start, parts=parts)
    return 1 if _out_of_memory(result) else 0


def _print_breakdown(result, *, runs_s, report_s, total_s, parts=None, top=5):
    """Where the time of `reproduce` went: runs, figures, report, and the slowest experiments."""
    if result.done:
        runs = (f"{runs_s:.1f} s for {result.done} runs in {result.tasks} tasks"
                + (f" ({result.skipped} already stored)" if result.skipped else ""))
    else:
        runs = f"{runs_s:.1f} s (nothing to compute: all {result.total} runs already stored)"
    detail = ""
    if parts:  # with --jobs > 1 the claims are decided while other processes draw the figures
        rest = report_s - parts["figures"] - parts["document"] - (0.0 if parts["parallel"] else parts["claims"])
        detail = (f" (figures {parts['figures']:.1f} s, claims {parts['claims']:.1f} s"
                  f"{' meanwhile' if parts['parallel'] else ''}, tables and files {parts['document']:.1f} s, "
                  f"loading the runs {rest:.1f} s)")
    print(f"time: runs {runs}; figures and report {report_s:.1f} s{detail}; total {total_s:.1f} s")
    slow = sorted(result.experiment_time.items(), key=lambda kv: -kv[1])[:top]
    if slow:
        print("slowest experiments (CPU s of the runs computed): "
              + ", ".join(f"{name} {seconds:.1f}" for name, seconds in slow))


def _cmd_run(args):
    configs = _load([_resolve_config(c) for c in args.configs], args.scale)
    result = _sweep(configs, args)
    if result.interrupted:
        return 130
    if args.report:
        _write_report(args.out, _records(configs, args.out), scale=args.scale, jobs=args.jobs, svg=args.svg)
    # Failed runs are results too (stored with their error, listed above), unless they ran out of memory.
    return 1 if _out_of_memory(result) else 0


def _cmd_report(args):
    from sparsenet.experiments.config import ConfigError, parse_config
    from sparsenet.experiments.store import STORE_NAME, open_store

    import tomllib

    if not (Path(args.out) / STORE_NAME).exists():
        raise SystemExit(f"sparsenet: no results store {Path(args.out) / STORE_NAME}; run `sparsenet reproduce` first")
    with open_store(args.out) as store:
        configs = []
        for row in store.experiments():
            try:
                configs.append(parse_config(tomllib.loads(row["source"]), row["path"], scale=row["scale"],
                                            source=row["source"]))
            except (ConfigError, tomllib.TOMLDecodeError) as exc:
                print(f"sparsenet: skipping stored experiment {row['name']}: {exc}", file=sys.stderr)
        configs.sort(key=_report_order)
        experiments = [(c, store.records(c)) for c in configs]
    scales = sorted({c.scale for c in configs})
    _write_report(args.out, experiments, scale=", ".join(scales) or None, jobs=args.jobs, svg=args.svg)
    return 0


def _cmd_list(args):
    from sparsenet.experiments.config import ConfigError, count_runs, load_config, shipped_configs

    configs = []
    for path in shipped_configs():
        try:
            configs.append(load_config(path, scale=args.scale))
        except ConfigError as exc:
            print(f"sparsenet: {exc}", file=sys.stderr)
    print(f"{'name':<10} {'fig':>3}  {'swept':<13} {'values':>6} {'runs':>5}  title")
    for c in configs:
        n_runs = count_runs(c)
        fig = "" if c.figure is None else str(c.figure)
        swept = c.x if c.y is None else f"{c.x} x {c.y}"  # a 2-D sweep: values counts grid points
        points = len(c.values) * max(len(c.y_values), 1)
        print(f"{c.name:<10} {fig:>3}  {swept:<13} {points:>6} {n_runs:>5}  {c.title}")
    return 0


def main(argv=None):
    """Entry point of the ``sparsenet`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1. Got {args.jobs}.")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sparsenet list | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    except ValueError as exc:  # user error reported by the library (bad store, bad setting): no traceback
        print(f"sparsenet: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("sparsenet: out of memory (MemoryError); use smaller n, d or fewer --jobs.", file=sys.stderr)
        return 1
    except OSError as exc:  # a file that cannot be written (read-only folder, full disk, file-size limit)
        where = exc.filename or (f"into {args.out}" if getattr(args, "out", None) else "a file")
        print(f"sparsenet: cannot write {where}: {exc.strerror or exc}. The results store is intact.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
