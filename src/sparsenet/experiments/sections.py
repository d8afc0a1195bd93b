"""Layer 4 of the report: one section (a list of document blocks) per experiment.

The section of an experiment is chosen by its ``[experiment] section`` key (:data:`SECTION_KINDS`;
default ``"sweep"``, or ``"phase_transition"`` for a 2-D sweep), never by its name:

* ``sweep``: the figure, the report's claim, each claim's verdict per protocol (decided by
  :mod:`~sparsenet.experiments.claims` for the whole report), and per metric a table of the median
  and interquartile range over trials with the failed runs counted; where recovery error is shown,
  the success probability P(exact recovery) with its Wilson 95 % interval;
* ``methods``: the same, plus a methods x settings summary and conclusions read from the numbers;
* ``activations``: the same, plus the initialization error before and after training per activation;
* ``phase_transition``: a success-probability heat map, the 50 % contours of every method (two or more
  methods) and a table with Wilson intervals.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from sparsenet.experiments.aggregate import (
    Stat,
    _fmt,
    _fmt_x,
    _get,
    _xkey,
    _xsort,
    aggregate,
    config_field,
    experiment_methods,
    experiment_protocols,
    init_not_applicable,
    is_history_metric,
    per_trial,
    resolution,
    run_counts,
)
from sparsenet.experiments.claims import wilson_interval
from sparsenet.experiments.document import Bullets, Heading, Image, Paragraph, Table
from sparsenet.experiments.config import SECTION_KINDS  # the kinds of section ([experiment] section)

__all__ = ["SECTION_KINDS", "build_section", "figure_blocks", "section_kind", "experiment_section", "methods_summary",
           "methods_conclusions", "is_oracle", "heading_text"]



def section_kind(config) -> str:
    """The experiment's ``section`` key; default ``"phase_transition"`` for a 2-D sweep, else ``"sweep"``."""
    kind = config_field(config, "section")
    if kind:
        return str(kind)
    return "phase_transition" if config_field(config, "y") else "sweep"


def build_section(config, records, fig_dir: Path, verdicts=None, *, svg: bool = False, figures=None) -> list:
    """The blocks of one experiment; ``verdicts`` = ``[(claim, {protocol: Verdict})]`` (decided).

    ``figures``: the experiment's :func:`figure_blocks`, already drawn (e.g. by another process);
    by default they are drawn here, to ``fig_dir`` as PNG, and as SVG too with ``svg``.
    """
    kind = section_kind(config)
    builder = {"sweep": experiment_section, "methods": _methods_section,
               "activations": _activations_section, "phase_transition": _phase_transition_section}.get(kind)
    if builder is None:
        raise ValueError(f"The 'section' key of an experiment must be one of {', '.join(SECTION_KINDS)}. "
                         f"Got {kind!r} instead.")
    if figures is None:
        figures = figure_blocks(config, records, fig_dir, svg=svg)
    return builder(config, records, verdicts, figures)


def figure_blocks(config, records, fig_dir: Path, *, svg: bool = False) -> list:
    """Draw the figures of one experiment into ``fig_dir``; return their :class:`Image` blocks.

    The costly part of a section, and independent of the verdicts: the report draws the figures of
    all experiments in parallel while it decides the claims. No figure without records.
    """
    from sparsenet.experiments import plots

    records = list(records)
    if section_kind(config) == "phase_transition":
        table = plots.success_probability(config, records)[2]
        if not table:
            return []
        fig = plots.plot_phase_transition(config, records)
        stem = _phase_stem(config)
        png, _ = plots.save_figure(fig, fig_dir, stem, svg=svg)
        threshold = float(config_field(config, "success_threshold", 1e-2))
        return [Image(png, heading_text(config),
                      f"Fraction of trials with recovery error < {threshold:g} (failed runs count as "
                      "failures); white line: 50% contour.")] \
            + _contour_figures(config, records, table, fig_dir, stem, threshold, svg)
    if not records:
        return []
    fig = plots.plot_experiment(config, records)
    png, _ = plots.save_figure(fig, fig_dir, plots.figure_stem(config), svg=svg)
    sides = " | ".join(f"column {i + 1}: {p} protocol" for i, p in enumerate(experiment_protocols(config, records)))
    return [Image(png, heading_text(config),
                  "Every run is a point (a history: a thin curve); line: median over trials, "
                  "band: interquartile range, a failed or infinite run counting as the worst "
                  f"value; ▼n✗ at the top edge: n such runs; dashed: the metric's resolution; "
                  f"{sides}.")]


def _phase_stem(config) -> str:
    return f"{config_field(config, 'name', 'experiment')}_success_vs_{config_field(config, 'x')}_" \
           f"{config_field(config, 'y')}"


def _own_verdicts(config, records):
    from sparsenet.experiments.claims import evaluate_claims

    out: dict = {}
    for _, claim, protocol, v in evaluate_claims([(config, records)]):
        out.setdefault(id(claim), (claim, {}))[1][protocol] = v
    return list(out.values())


def _disagreement(claim) -> str:
    if _get(claim, "source", "report") == "expected":
        return "Our measurement does not match the expected behaviour (not a claim of the report)."
    return "Our measurement disagrees with the report here."


def heading_text(config) -> str:
    """``Figure N: title`` or ``title (name)``."""
    figure = config_field(config, "figure")
    title = config_field(config, "title", config_field(config, "name", "experiment"))
    name = config_field(config, "name", "")
    return f"Figure {int(figure)}: {title}" if figure is not None else f"{title} ({name})"


def _table_x(xs: list, history: bool) -> list:
    """The x values shown in a table: all of a sweep, a few epochs of a history."""
    if not history or len(xs) <= 8:
        return xs
    keep = sorted({0, 1, 2, 3, 5, len(xs) // 2, len(xs) - 1})
    return [xs[i] for i in keep if i < len(xs)]



def experiment_section(config, records, verdicts=None, figures=()) -> list:
    """The ``sweep`` section: figure, the report's claim, verdicts per protocol, per-metric tables."""
    records = list(records)
    blocks: list = [Heading(2, heading_text(config))]
    protocols = experiment_protocols(config, records)
    if records:
        blocks += figures
    else:
        blocks.append(Paragraph("**No records**: this experiment has not been run yet."))

    claim_line = config_field(config, "claim")
    if claim_line:
        blocks.append(Paragraph(f"**The report's claim:** {claim_line}"))
    if verdicts is None:
        verdicts = _own_verdicts(config, records)
    if not verdicts:
        blocks.append(Paragraph("No measurable claim is attached to this experiment."))
    for claim, by_protocol in verdicts:
        text = _get(claim, "text") or f"{_get(claim, 'kind')} claim on {_get(claim, 'metric')}"
        items = []
        for protocol, v in by_protocol.items():
            item = f"**{protocol} protocol: {v.word}** — {v.summary}"
            if v.holds is False:
                item += " **" + _disagreement(claim) + "**"
            items.append(item)
        blocks += [Paragraph(f"Claim: “{text}”"), Bullets(items)]

    x_name = str(config_field(config, "x", "x"))
    methods = experiment_methods(config, records)
    order = [_xkey(v) for v in config_field(config, "values", []) or []]
    for metric in config_field(config, "metrics", []) or []:
        history = is_history_metric(metric, config)
        for protocol in protocols:
            mine = [r for r in records if r.get("protocol") == protocol]
            table = aggregate(mine, metric, history=history, config=config)
            xs = sorted({k[2] for k in table},
                        key=lambda x: (order.index(x) if x in order else len(order), _xsort(x)))
            xs = _table_x(xs, history)
            if not xs:
                continue
            label = "epoch" if history else x_name
            counts = run_counts(mine, metric, history=history, config=config)
            rows = []
            for m in methods:
                if not any(k[1] == m for k in table):
                    continue
                if history:  # a run is one curve: count its exclusion once, by the method
                    c = counts.get((protocol, m))
                    note = f" ({c.text(metric)})" if c is not None and c.excluded else ""
                    cells = [f"{_fmt(table[(protocol, m, x)].median)} [{_fmt(table[(protocol, m, x)].q1)}, "
                             f"{_fmt(table[(protocol, m, x)].q3)}]"
                             if (protocol, m, x) in table else "—" for x in xs]
                    rows.append([m + note] + cells)
                else:
                    rows.append([m] + [str(table[(protocol, m, x)]) if (protocol, m, x) in table
                                       else "—" for x in xs])
            if metric == "recovery_error" and not history:
                rows += _success_rows(mine, methods, xs, protocol, config)
            res = resolution(config, metric)
            blocks.append(Paragraph(
                f"`{metric}`, {protocol} protocol: median [interquartile range] over trials, a failed "
                f"or infinite run counting as the worst value (their number in parentheses); "
                f"resolution {res:g}" + (
                    f". *P(exact)*: runs with error ≤ {res:g} and exact support / runs, with the "
                    "Wilson 95 % interval" if metric == "recovery_error" and not history else "")))
            blocks.append(Table([f"method \\ {label}"] + [_fmt_x(x) for x in xs], rows))
    return blocks


def _success_rows(records, methods, xs, protocol, config) -> list:
    """One row per method: exact recoveries / runs at each x with the Wilson 95 % interval."""
    runs = per_trial(records, "exact_recovery", config=config)
    rows = []
    for m in methods:
        pts = runs.get((protocol, m), {})
        if not pts:
            continue
        cells = []
        for x in xs:
            vals = [v for (px, _), v in pts.items() if px == x]
            if not vals:
                cells.append("—")
                continue
            k = sum(v == 1.0 for v in vals)
            lo, hi = wilson_interval(k, len(vals))
            cells.append(f"{k}/{len(vals)} [{lo:.2f}, {hi:.2f}]")
        rows.append([f"{m}: *P(exact)*"] + cells)
    return rows


def _phase_transition_section(config, records, verdicts=None, figures=()):
    """Report section of a 2-D sweep: the heat map and a success-probability table per method."""
    from sparsenet.experiments.plots import success_probability

    records = list(records)
    blocks = [Heading(2, heading_text(config))]
    description = config_field(config, "description") or config_field(config, "claim")
    if description:
        blocks.append(Paragraph(str(description)))
    xs, ys, table = success_probability(config, records)
    if not table:
        return blocks + [Paragraph("**No records**: this experiment has not been run yet.")]
    threshold = float(config_field(config, "success_threshold", 1e-2))
    blocks += figures
    x, y = config_field(config, "x"), config_field(config, "y")
    for (protocol, method), (P, N) in table.items():
        blocks.append(Paragraph(f"`success` = P(recovery error < {threshold:g}), {method}, {protocol} protocol "
                                "(successes / runs) [95% Wilson interval]"))
        rows = [[f"{yv:g}"] + [("—" if N[i, j] == 0 else _success_cell(P[i, j], N[i, j]))
                               for j in range(len(xs))] for i, yv in enumerate(ys)]
        blocks.append(Table([f"{y} \\ {x}"] + [f"{v:g}" for v in xs], rows[::-1]))
    return blocks


def _success_cell(p, n) -> str:
    """``"p (k/n) [lo, hi]"``: a success fraction, its counts and its 95 % Wilson interval."""
    k = int(round(p * n))
    lo, hi = wilson_interval(k, int(n))
    return f"{p:.2f} ({k}/{int(n)}) [{lo:.2f}, {hi:.2f}]"


def _contour_figures(config, records, table, fig_dir, stem, threshold, svg=False) -> list:
    """One figure per protocol with two or more methods: every method's 50 % success contour."""
    from sparsenet.experiments.plot_contours import plot_success_contours
    from sparsenet.experiments.plots import save_figure

    protocols = list(dict.fromkeys(p for p, _ in table))
    blocks = []
    for protocol in protocols:
        if sum(p == protocol for p, _ in table) < 2:
            continue
        fig = plot_success_contours(config, records, protocol=protocol)
        suffix = f"_{protocol}" if len(protocols) > 1 else ""
        png, _ = save_figure(fig, fig_dir, f"{stem}_contours{suffix}", svg=svg)
        blocks.append(Image(png, f"{heading_text(config)}: 50% success contours ({protocol} protocol)",
                            f"Each method's 50% contour of P(recovery error < {threshold:g}) (solid) and the "
                            "50% contours of its 95% Wilson bounds (dashed): outside the dashed band the "
                            "fraction differs significantly from 50% point by point."))
    return blocks




# --------------------------------------------------------------------------- issue 8 sections
_ORACLE = re.compile(r"oracle", re.I)

#: the metrics of the methods summary: (metric, column title, lower is better)
_SUMMARY_METRICS = (("recovery_error", "recovery error", True),
                    ("exact_support", "exact support", False),
                    ("test_mse", "test MSE", True))


def is_oracle(label) -> bool:
    """Whether a method label names an oracle (it is given the truth: a bound, never a "best")."""
    return bool(_ORACLE.search(str(label)))


def _best(cells: dict, lower: bool):
    """The method of the best cell among non-oracle methods, or None.

    A cell with fewer excluded runs (failed, infinite) always ranks first, so a method that fails
    in some runs cannot win by the mean of the runs that survived; ties leave no winner.
    """
    ranked = [(s.n_excluded / max(s.n_runs, 1), s.mean if lower else -s.mean, m)
              for m, s in cells.items() if not is_oracle(m) and s.n_ok and math.isfinite(s.mean)]
    if not ranked:
        return None
    ranked.sort(key=lambda t: t[:2])
    return ranked[0][2]


def _best_set(cells: dict, lower: bool) -> set:
    """Every non-oracle method tied with the best cell (see :func:`_best`)."""
    top = _best(cells, lower)
    if top is None:
        return set()
    key = (cells[top].n_excluded / max(cells[top].n_runs, 1), cells[top].mean)
    return {m for m, s in cells.items() if not is_oracle(m) and s.n_ok
            and (s.n_excluded / max(s.n_runs, 1), s.mean) == key}


def _summary_cell(s: Stat | None, metric: str) -> str:
    if s is None:
        return "—"
    if not s.n_ok:
        if s.n_nonfinite and not s.n_failed and "recovery" in metric:
            return f"∞ [{s.n_nonfinite}/{s.n_runs} sign failures]"
        return f"n/a [{s.excluded_text()}]" if s.n_excluded else "n/a"
    text = f"{s.mean:.2f}" if metric == "exact_support" else _fmt(s.mean)
    if s.n_excluded:
        short = []
        if s.n_failed:
            short.append(f"{s.n_failed}/{s.n_runs} failed")
        if s.n_nonfinite:
            short.append(f"{s.n_nonfinite}/{s.n_runs} ∞")
        text += f" [{', '.join(short)}]"
    return text


def methods_summary(config, records, protocol: str | None = None):
    """The methods × settings summary of a methods experiment, from stored records.

    Returns ``(header, rows, tables)``: ``rows`` are table rows (method label, then one cell per
    (metric, x), then the mean wall time when recorded) with the best non-oracle cell of each
    column in bold; ``tables`` maps each metric to its :func:`aggregate` table.
    """
    records = [r for r in records if protocol is None or r.get("protocol") == protocol]
    protocol = protocol or (experiment_protocols(config, records) or ["blind"])[0]
    records = [r for r in records if r.get("protocol") == protocol]
    methods = [m for m in experiment_methods(config, records) if any(r.get("method") == m for r in records)]
    order = [_xkey(v) for v in config_field(config, "values", []) or []]
    xs = sorted({_xkey(r.get("x")) for r in records},
                key=lambda x: (order.index(x) if x in order else len(order), _xsort(x)))
    x_name = str(config_field(config, "x", "x"))
    tables = {metric: aggregate(records, metric) for metric, _, _ in _SUMMARY_METRICS}
    wall = aggregate(records, "wall_time")
    has_wall = any(s.n_ok for s in wall.values())
    header = ["method"] + [f"{title} @ {x_name}={_fmt_x(x)}" for _, title, _ in _SUMMARY_METRICS for x in xs]
    columns = []  # one list of cells per column, then the best method of it
    for metric, _, lower in _SUMMARY_METRICS:
        for x in xs:
            cells = {m: tables[metric][(protocol, m, x)] for m in methods if (protocol, m, x) in tables[metric]}
            columns.append(([_summary_cell(cells.get(m), metric) for m in methods], _best_set(cells, lower)))
    if has_wall:
        header.append("wall time per run (s, mean over settings)")
        means = {}
        for m in methods:
            vals = [s.mean for k, s in wall.items() if k[1] == m and s.n_ok]
            means[m] = Stat(float(np.mean(vals)), 0.0, len(vals), 0) if vals else None
        best = _best_set({m: s for m, s in means.items() if s is not None}, True)
        columns.append(([_fmt(means[m].mean) if means[m] else "—" for m in methods], best))
    rows = []
    for i, m in enumerate(methods):
        label = f"{m} (ORACLE: lower bound, not ranked)" if is_oracle(m) and "lower bound" not in m else m
        row = [label]
        for cells, best in columns:
            row.append(f"**{cells[i]}**" if m in best else cells[i])
        rows.append(row)
    return header, rows, tables, methods, xs, protocol


def methods_conclusions(config, records, protocol: str | None = None) -> str:
    """One paragraph of conclusions drawn from the measured numbers of a methods experiment."""
    _, _, tables, methods, xs, protocol = methods_summary(config, records, protocol)
    x_name = str(config_field(config, "x", "x"))
    rec = tables["recovery_error"]
    sentences = []
    wins: dict[str, list] = {}
    ratios: dict[str, list] = {}
    for x in xs:
        cells = {m: rec[(protocol, m, x)] for m in methods if (protocol, m, x) in rec}
        best = _best(cells, True)
        if best is None:
            continue
        wins.setdefault(best, []).append(x)
        others = [s.mean for m, s in cells.items() if m != best and not is_oracle(m) and s.n_ok
                  and s.n_excluded == 0 and math.isfinite(s.mean)]
        if others and cells[best].mean > 0:
            ratios.setdefault(best, []).append(min(others) / cells[best].mean)
    if wins:
        parts = []
        for m, at in sorted(wins.items(), key=lambda t: -len(t[1])):
            where = ", ".join(_fmt_x(x) for x in at)
            text = f"**{m}** at {len(at)} of {len(xs)} {x_name} values ({where})"
            if ratios.get(m):
                text += (f", with a recovery error {_fmt(float(np.median(ratios[m])))}× lower than the "
                         "next method with no excluded run (median over those values)")
            parts.append(text)
        sentences.append("Lowest recovery error (oracle excluded): " + "; ".join(parts) + ".")
    # the oracle gap
    oracle = [m for m in methods if is_oracle(m)]
    if oracle and wins:
        gaps = []
        for x in xs:
            cells = {m: rec[(protocol, m, x)] for m in methods if (protocol, m, x) in rec}
            best = _best(cells, True)
            o = cells.get(oracle[0])
            if best and o is not None and o.n_ok and o.mean > 0 and math.isfinite(o.mean):
                gaps.append(cells[best].mean / o.mean)
        if gaps:
            sentences.append(f"The oracle (true support given, a lower bound) is {_fmt(min(gaps))}× to "
                             f"{_fmt(max(gaps))}× below the best method's recovery error.")
    # sign failures and failed runs
    counts = run_counts(records_for(records, protocol), "recovery_error")
    bad = [(m, counts[(protocol, m)]) for m in methods
           if (protocol, m) in counts and counts[(protocol, m)].excluded and not is_oracle(m)]
    sign = [f"{m} in {c.nonfinite} of {c.runs} runs" for m, c in bad if c.nonfinite]
    if sign:
        sentences.append("Sign failures (the learned network matches W* only up to signs the output "
                         "layer cannot undo: infinite recovery error, left out of the means): "
                         + "; ".join(sign) + ".")
    failed = [f"{m} in {c.failed} of {c.runs} runs" for m, c in bad if c.failed]
    if failed:
        sentences.append("Failed runs (raised or diverged): " + "; ".join(failed) + ".")
    # exact support
    ex = tables["exact_support"]
    always = [m for m in methods if not is_oracle(m) and
              all((protocol, m, x) in ex and ex[(protocol, m, x)].n_ok and ex[(protocol, m, x)].mean >= 1.0
                  for x in xs)]
    never = [m for m in methods if not is_oracle(m) and
             all((protocol, m, x) in ex and ex[(protocol, m, x)].n_ok and ex[(protocol, m, x)].mean <= 0.0
                 for x in xs)]
    if always:
        sentences.append("Exact support in every run at every " + x_name + ": " + ", ".join(always) + ".")
    if never:
        sentences.append("Exact support in no run at any " + x_name + ": " + ", ".join(never) + ".")
    mse = tables["test_mse"]
    mwins: dict[str, int] = {}
    for x in xs:
        best = _best({m: mse[(protocol, m, x)] for m in methods if (protocol, m, x) in mse}, True)
        if best:
            mwins[best] = mwins.get(best, 0) + 1
    if mwins:
        top = max(mwins, key=mwins.get)
        sentences.append(f"Lowest test MSE: {top} at {mwins[top]} of {len(xs)} {x_name} values.")
    if not sentences:
        return "No successful run: nothing can be concluded yet."
    return " ".join(sentences)


def records_for(records, protocol):
    return [r for r in records if r.get("protocol") == protocol]


def _methods_section(config, records, verdicts=None, figures=()) -> list:
    """Issue 8: the default section plus the methods × settings summary and its conclusions."""
    records = list(records)
    blocks = experiment_section(config, records, verdicts, figures)
    if not records:
        return blocks
    extra: list = []
    for protocol in experiment_protocols(config, records):
        if not records_for(records, protocol):
            continue
        header, rows, *_ = methods_summary(config, records, protocol)
        extra.append(Heading(3, f"Methods summary ({protocol} protocol)"))
        extra.append(Paragraph(
            "Mean over trials of each method at each setting. **Bold**: the best non-oracle method of "
            "the column (lowest recovery error and test MSE, highest exact-support rate); a cell with "
            "fewer excluded runs ranks first. The ORACLE row is given the true support: it is a lower "
            "bound, shown for reference and never ranked. [k/n ∞]: k of the n runs had an infinite "
            "recovery error (sign failure), left out of the mean; [k/n failed]: runs that raised or "
            "diverged."))
        extra.append(Table(header, rows))
        extra.append(Paragraph("**Conclusions (from the numbers above):** "
                               + methods_conclusions(config, records, protocol)))
    # after the figure and its caption, before the claims and detailed tables
    return blocks[:2] + extra + blocks[2:]



def _activations_section(config, records, verdicts=None, figures=()) -> list:
    """Issue 8: initialization error before and after training per activation, in words where
    the initialization cannot apply."""
    records = list(records)
    blocks = experiment_section(config, records, verdicts, figures)
    if not records:
        return blocks
    extra: list = []
    order = [_xkey(v) for v in config_field(config, "values", []) or []]
    for protocol in experiment_protocols(config, records):
        mine = records_for(records, protocol)
        if not mine:
            continue
        methods = [m for m in experiment_methods(config, mine) if any(r.get("method") == m for r in mine)]
        xs = sorted({_xkey(r.get("x")) for r in mine},
                    key=lambda x: (order.index(x) if x in order else len(order), _xsort(x)))
        before, after = aggregate(mine, "init_recovery_error"), aggregate(mine, "recovery_error")
        rows = []
        for x in xs:
            row = [_fmt_x(x)]
            for m in methods:
                runs = [r for r in mine if r.get("method") == m and _xkey(r.get("x")) == x
                        and r.get("status") != "missing"]
                reasons = {init_not_applicable(r.get("error")) for r in runs if r.get("status", "ok") != "ok"}
                reasons.discard(None)
                if runs and all(r.get("status", "ok") != "ok" for r in runs) and reasons:
                    text = "init not applicable: " + "; ".join(sorted(reasons))
                    row += [text, text]
                    continue
                for table in (before, after):
                    s = table.get((protocol, m, x))
                    cell = _summary_cell(s, "recovery_error")
                    if reasons:
                        cell += " (init not applicable in some runs: " + "; ".join(sorted(reasons)) + ")"
                    row.append(cell)
            rows.append(row)
        header = ["activation"] + [f"{m}: {when}" for m in methods
                                   for when in ("init error (before training)", "error after training")]
        extra += [Heading(3, f"Initialization error before and after training ({protocol} protocol)"),
                  Paragraph("Relative recovery error ‖W − W*‖_F / ‖W*‖_F of the initialization "
                            "(`init_recovery_error`) and after training (`recovery_error`), mean over "
                            "trials. Where the initialization cannot apply (a moment it needs is zero "
                            "for that activation) the cell says so instead of a number."),
                  Table(header, rows)]
    return blocks[:2] + extra + blocks[2:]
