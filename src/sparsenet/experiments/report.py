"""The written report: every claim decided together, one section per experiment, REPORT.md and REPORT.html.

The data flow one way through small layers, each importing only those before it:

``aggregate`` (records -> per-trial values, medians) -> ``claims`` (tests, Holm, verdicts) ->
``plots`` (figures) -> ``sections`` (blocks per experiment) -> ``document`` (Markdown / HTML) ->
``report`` (this module: the summary and the files).

Files are written under a temporary name and renamed (figures too), so a kill mid-write never leaves
a truncated report.
"""

from __future__ import annotations

import datetime as _dt
import gc
import multiprocessing as mp
import os
import time
from pathlib import Path

from sparsenet.experiments.aggregate import _get, config_field, trials_text
from sparsenet.experiments.claims import ALPHA, evaluate_claims, methods_text
from sparsenet.experiments.document import Bullets, Heading, Paragraph, Table, to_html, to_markdown, write_atomic
from sparsenet.experiments.sections import build_section, figure_blocks

__all__ = ["write_report", "summary_rows", "summary_table_of", "SUMMARY_HEADER"]

SUMMARY_HEADER = ["experiment", "the report's claim", "blind", "report protocol"]


def _short(v) -> str:
    """``holds (p_Holm = 2e-05, 5 trials, 1 failed)`` — the verdict word with its key numbers."""
    if v.outcome == "no data":
        return "no data"
    parts = []
    if v.p_adjusted == v.p_adjusted:  # not NaN
        parts.append(f"Holm p = {v.p_adjusted:.2g}")
    parts.append(trials_text(v.n_trials))
    if v.n_failed:
        parts.append(f"{v.n_failed} failed/∞ runs")
    why = ""
    if v.outcome == "inconclusive" and v.why:
        why = ": " + v.why.split(":")[0].split(" (")[0].split(";")[0]
    return f"{v.outcome}{why} ({', '.join(parts)})"


def summary_rows(decided) -> list[list[str]]:
    """Rows of the verdict table: experiment, claim text, then the blind and report verdicts."""
    rows: dict = {}
    for config, claim, protocol, v in decided:
        key = (str(config_field(config, "name", "")), id(claim))
        row = rows.setdefault(key, [key[0], str(_get(claim, "text") or _get(claim, "kind")), "—", "—"])
        row[2 if protocol == "blind" else 3] = _short(v)
    return list(rows.values())


def _summary_blocks(decided) -> list:
    rows = summary_rows(decided)
    blocks: list = [Heading(2, "Summary of verdicts"), Paragraph(methods_text(ALPHA))]
    if not rows:
        return blocks + [Paragraph("No experiment carries a measurable claim.")]
    blocks.append(Table(SUMMARY_HEADER, rows))
    disagree = [f"**{config_field(c, 'name', '')}** ({p} protocol): {_get(cl, 'text')} — {v.summary}"
                for c, cl, p, v in decided
                if v.outcome == "does not hold" and _get(cl, "source", "report") != "expected"]
    if disagree:
        blocks += [Paragraph("**Where our results disagree with the report:**"), Bullets(disagree)]
    else:
        blocks.append(Paragraph("No measured verdict contradicts the report."))
    return blocks


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("sparsenet")
    except Exception:  # not installed: fall back to the module attribute
        try:
            from sparsenet import __version__

            return str(__version__)
        except Exception:
            return "unknown"


_FIGURE_TASKS: list = []  # in a worker of _draw_figures: every (config, records, fig_dir, svg)


def _worker_init(tasks) -> None:
    global _FIGURE_TASKS
    _FIGURE_TASKS = tasks
    # Drawing makes many short-lived container objects (artists, transforms, property dicts): collect
    # the youngest generation every 50,000 allocations instead of 700 (a figure's garbage is freed
    # all the same; see _draw_figures for the objects inherited from the parent).
    gc.set_threshold(50_000, 20, 100)


def _figure_task(i: int) -> list:
    config, records, fig_dir, svg = _FIGURE_TASKS[i]
    return figure_blocks(config, records, fig_dir, svg=svg)


def _default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _draw_figures(tasks, jobs: int | None, meanwhile, start_method: str = "fork"):
    """Every experiment's figure blocks, in order, drawn by ``jobs`` processes when > 1; returns
    ``(figures, meanwhile(), parallel)`` (``parallel``: drawn by other processes while ``meanwhile`` ran).

    Drawing is nearly all of the report's time, and the figures are independent of each other and
    of the verdicts: ``meanwhile`` (deciding the claims) runs in this process while the workers draw.
    The workers are forked after this process has imported the plotting modules, so that none of
    them imports matplotlib again (a spawned one pays ~1-2 s of CPU for it); where fork is
    unavailable, or with ``jobs`` = 1, everything runs here, one after the other.
    """
    jobs = _default_jobs() if jobs is None else max(1, int(jobs))
    jobs = min(jobs, len(tasks))
    if jobs > 1 and start_method in mp.get_all_start_methods():
        import sparsenet.experiments.plot_contours  # noqa: F401  (imported once, before the fork)
        import sparsenet.experiments.plots  # noqa: F401

        # a forked worker inherits the tasks; only indices and the figures' blocks travel.  Every object
        # alive now (the records, the imported modules) lives as long as the workers: frozen, the
        # garbage collector of each worker (and of this process, deciding the claims meanwhile) stops
        # traversing them at every full collection.
        gc.freeze()
        try:
            with mp.get_context(start_method).Pool(jobs, initializer=_worker_init, initargs=(tasks,)) as pool:
                # the costliest figures (most records) first, so no process idles at the end
                order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i][1]))
                pending = pool.map_async(_figure_task, order, chunksize=1)
                result = meanwhile()
                done = dict(zip(order, pending.get()))
        finally:
            gc.unfreeze()
        return [done[i] for i in range(len(tasks))], result, True
    result = meanwhile()
    return [figure_blocks(*task[:3], svg=task[3]) for task in tasks], result, False


def write_report(out_dir, experiments, *, date=None, version: str | None = None,
                 scale: str | None = None, wall_time: float | None = None,
                 jobs: int | None = None, svg: bool = False,
                 title: str = "Reproduction of Agrawal & Kar, "
                              "“Training One-Hidden-Layer Sparse Neural Networks”",
                 timings: dict | None = None) -> tuple[Path, Path]:
    """Write every figure, ``REPORT.md`` and a self-contained ``REPORT.html`` under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Output folder; figures go to ``out_dir/figures`` (PNG; SVG too with ``svg``).
    experiments : list of (config, records)
        Each experiment definition with its stored records.
    date : str, optional
        Shown in the header; default today.
    version : str, optional
        Shown in the header; default the installed package's.
    scale : str, optional
        Shown in the header.
    wall_time : float, optional
        Shown in the header, in seconds.
    jobs : int, optional
        Processes drawing the figures (default: the usable cores, at most 8; 1 draws in this
        process). The report is the same for every ``jobs``.
    svg : bool, default=False
        Also write each figure as SVG (about as costly again as its PNG; the report itself links
        and inlines the PNGs only).
    title : str, optional
        The report's title.
    timings : dict, optional
        Filled with the wall seconds of each part: ``"figures"`` (drawing and saving every figure),
        ``"claims"`` (deciding the verdicts, done meanwhile in this process, so it overlaps the
        figures when they are drawn by other processes: ``"parallel"``) and ``"document"`` (the tables
        and the two files).

    Returns
    -------
    md_path, html_path : Path
        The two files written (each through a temporary file and an atomic rename).
    """
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    experiments = [(config, list(records)) for config, records in experiments]
    clock = {"start": time.perf_counter()}

    def claims():
        t0 = time.perf_counter()
        decided = evaluate_claims(experiments)
        clock["claims"] = time.perf_counter() - t0
        return decided

    figures, decided, parallel = _draw_figures(
        [(config, records, fig_dir, svg) for config, records in experiments], jobs, claims)
    done_drawing = time.perf_counter()
    header = [f"**Date:** {date or _dt.date.today().isoformat()}",
              f"**sparsenet version:** {version or _package_version()}"]
    if scale is not None:
        header.append(f"**Scale:** {scale}")
    if wall_time is not None:
        header.append(f"**Wall time:** {wall_time:.1f} s ({wall_time / 60:.1f} min)")
    header.append(f"**Experiments:** {len(experiments)}, "
                  f"{sum(len(r) for _, r in experiments)} stored runs")
    blocks: list = [Heading(1, title), Bullets(header),
                    Paragraph("Protocols: **blind** — only (X, y) reach the algorithms; "
                              "**report** — the report's own code path (v fixed to v*, paper "
                              "sample split, no sparsification after the last epoch).")]
    blocks += _summary_blocks(decided)
    for (config, records), images in zip(experiments, figures):
        mine: dict = {}
        for c, claim, protocol, v in decided:
            if c is config:
                mine.setdefault(id(claim), (claim, {}))[1][protocol] = v
        blocks += build_section(config, records, fig_dir, list(mine.values()), figures=images)
    md_path = write_atomic(out / "REPORT.md", to_markdown(blocks, out))
    html_path = write_atomic(out / "REPORT.html", to_html(blocks, title))
    if timings is not None:
        # drawn in this process: the claims ran first, inside the same interval
        timings.update(figures=done_drawing - clock["start"] - (0.0 if parallel else clock["claims"]),
                       claims=clock["claims"], document=time.perf_counter() - done_drawing, parallel=parallel)
    return md_path, html_path


def summary_table_of(report_md: str) -> str:
    """The verdict table of a written ``REPORT.md`` (the README copies it; a test compares them)."""
    head = "| " + " | ".join(SUMMARY_HEADER) + " |"
    start = report_md.index(head)
    lines = []
    for line in report_md[start:].splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    return "\n".join(lines)

