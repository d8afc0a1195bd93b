"""Aggregates, claim verdicts and the written report, computed from stored records only.

Records and configs follow docs/EXPERIMENT_SCHEMA.md.  A config is the parsed TOML dict (with its
``[experiment]`` table) or any object with the same fields, flat or under ``experiment``;
:func:`config_field` reads both.

The report is built as a list of small blocks (heading, paragraph, image, table, bullets) rendered
twice, to Markdown and to self-contained HTML.  Each experiment becomes one section; a new kind of
section (a methods summary table, an activations figure) is a function returning blocks, registered
with :func:`register_section` under the experiment name it handles.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import math
import multiprocessing as mp
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as _stats

__all__ = [
    "Stat",
    "RunCounts",
    "run_counts",
    "init_not_applicable",
    "Verdict",
    "aggregate",
    "evaluate_claim",
    "write_report",
    "register_section",
    "config_field",
    "Heading",
    "Paragraph",
    "Image",
    "Table",
    "Bullets",
]

HISTORY_METRICS = frozenset({"train_loss", "test_loss"})
_EPOCH_SERIES = frozenset({"nnz"})
_MISSING = object()


# --------------------------------------------------------------------------- config / record access
def _get(obj, key, default=None):
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def config_field(config, key: str, default=None):
    """``config[key]``, ``config.key``, or the same under ``experiment``; else ``default``."""
    for source in (config, _get(config, "experiment")):
        value = _get(source, key, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return default


def is_history_metric(metric: str, config=None) -> bool:
    """Whether ``metric`` is read per epoch from ``record["history"]`` (x = epoch)."""
    if metric in HISTORY_METRICS:
        return True
    # other per-epoch series (history["nnz"]) only when the experiment is plotted against epoch
    return config_field(config, "x") == "epoch" and metric in _EPOCH_SERIES


def experiment_methods(config, records) -> list[str]:
    """Method labels in config order, then any other label found in the records."""
    labels = [str(_get(m, "label", _get(m, "method"))) for m in config_field(config, "methods", [])]
    for r in records:
        if r.get("method") not in labels and r.get("method") is not None:
            labels.append(r["method"])
    return labels


def experiment_protocols(config, records) -> list[str]:
    """Protocols in config order (default blind, report), plus any other found in the records."""
    protocols = list(config_field(config, "protocols", []) or [])
    for r in records:
        if r.get("protocol") not in protocols and r.get("protocol") is not None:
            protocols.append(r["protocol"])
    return protocols or ["blind", "report"]


def _xkey(x):
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    return None if x is None else str(x)


def _xsort(x):
    return (0, x, "") if isinstance(x, float) else (1, 0.0, "" if x is None else str(x))


def _fmt_x(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3g}"


_NOT_APPLICABLE = (
    (re.compile(r"no usable Hermite moment for j\d \(order >= (\d)\)", re.I),
     "every Hermite moment of order >= {0} it needs is zero"),
    (re.compile(r"no usable Hermite moment", re.I), "a Hermite moment it needs is zero"),
    (re.compile(r"no usable odd \(l1\) and no usable even", re.I),
     "Hermite moments m_1..m_4 unusable (weight norms not identifiable)"),
    (re.compile(r"Hermite constant (m_\d)\S* changes sign", re.I), "Hermite constant {0} changes sign"),
    (re.compile(r"not strictly increasing", re.I), "moment not invertible (weight norms not identifiable)"),
    (re.compile(r"Degenerate tensor decomposition", re.I), "degenerate tensor decomposition"),
    (re.compile(r"moment[^.;:]*(?:zero|vanish|degenerate)", re.I), "a needed moment is zero"),
)


def init_not_applicable(error) -> str | None:
    """Short reason when a run's error says the initialization cannot apply, else ``None``.

    The tensor initialization needs non-zero Hermite moments of the activation (e.g. m_3 = 0 for an
    even activation) and a non-degenerate decomposition; such a run fails with a message naming
    the moment, which is shortened here for figures and tables.
    """
    if not error:
        return None
    for pattern, reason in _NOT_APPLICABLE:
        m = pattern.search(str(error))
        if m:
            return reason.format(*m.groups())
    return None


# --------------------------------------------------------------------------- aggregation
@dataclass(frozen=True)
class Stat:
    """Summary of one (protocol, method, x) cell over trials.

    ``mean`` and ``std`` use only the ``n_ok`` finite values (``std`` with ddof=1, 0 for a single
    value, NaN for none); ``n_failed`` counts runs whose status is not ``"ok"`` and ``n_nonfinite``
    the successful runs whose value is infinite or NaN (an infinite recovery error is a sign failure).
    """

    mean: float
    std: float
    n_ok: int
    n_failed: int
    n_nonfinite: int = 0

    @property
    def n_excluded(self) -> int:
        return self.n_failed + self.n_nonfinite

    @property
    def n_runs(self) -> int:
        return self.n_ok + self.n_failed + self.n_nonfinite

    def excluded_text(self) -> str:
        """``"1 of 2 runs failed"``, ``"2 of 2 runs infinite"``, ... or ``""`` when none is excluded."""
        return _excluded_words(self.n_failed, self.n_nonfinite, self.n_runs)

    def __str__(self) -> str:
        text = f"{_fmt(self.mean)} ± {_fmt(self.std)}" if self.n_ok else "n/a"
        if self.n_excluded:
            text += f" ({self.excluded_text()})"
        return text


def _excluded_words(failed: int, nonfinite: int, runs: int, *, sign: bool = False) -> str:
    """``"1 of 2 runs failed"``, ``"9 of 10 runs infinite (sign failure)"``, or both joined."""
    parts = []
    if failed:
        parts.append(f"{failed} of {runs} runs failed")
    if nonfinite:
        parts.append(f"{nonfinite} of {runs} runs infinite" + (" (sign failure)" if sign else ""))
    return ", ".join(parts)


@dataclass(frozen=True)
class RunCounts:
    """Distinct runs of one (protocol, method): how many, how many failed, how many non-finite.

    Unlike summing :class:`Stat` cells (a failed run of a history metric is counted at every
    epoch), each run is counted once; ``nonfinite`` counts the successful runs with any infinite
    or NaN value of the metric (for a history metric: anywhere on the curve).
    """

    runs: int
    failed: int
    nonfinite: int

    @property
    def excluded(self) -> int:
        return self.failed + self.nonfinite

    def text(self, metric: str | None = None) -> str:
        return _excluded_words(self.failed, self.nonfinite, self.runs,
                               sign=bool(metric) and "recovery_error" in str(metric))


def run_counts(records, metric: str, *, history: bool | None = None) -> dict[tuple, RunCounts]:
    """Distinct-run exclusion counts of ``metric`` keyed by ``(protocol, method)``.

    Records with status ``"missing"`` are ignored; a run is identified by its ``run_key`` (or the
    record itself when it has none), so a record seen twice counts once.
    """
    if history is None:
        history = metric in HISTORY_METRICS
    seen: dict[tuple, dict] = {}
    for r in records:
        if r.get("status") == "missing":
            continue
        key = (r.get("protocol"), r.get("method"))
        rid = r.get("run_key") or id(r)
        if r.get("status", "ok") != "ok":
            state = "failed"
        else:
            if history:
                vals = list(_get(r.get("history") or {}, metric, None) or [])
            else:
                v = _record_value(r, metric)
                vals = [] if v is _MISSING or v is None else [v]
            if not vals:
                continue  # the metric is not recorded for this run: neither kept nor excluded
            state = "ok" if all(math.isfinite(float(v)) for v in vals) else "nonfinite"
        seen.setdefault(key, {})[rid] = state
    out = {}
    for key, states in seen.items():
        values = list(states.values())
        out[key] = RunCounts(len(values), values.count("failed"), values.count("nonfinite"))
    return out


def _record_value(record, metric):
    value = _get(record.get("metrics") or {}, metric, _MISSING)
    if value is _MISSING:
        value = record.get(metric)  # e.g. wall_time lives at the top level of a record
    return value


def aggregate(records, metric: str, *, history: bool | None = None) -> dict[tuple, Stat]:
    """Mean ± std of ``metric`` over trials, keyed by ``(protocol, method, x)``.

    For a history metric (``train_loss``, ``test_loss``, or ``history=True``) ``x`` is the epoch,
    the index into ``record["history"][metric]`` (0 = at initialization); a failed run is then
    counted at every epoch of its (protocol, method).  Failed runs and non-finite values are left
    out of the mean and counted (see :class:`Stat`).
    """
    if history is None:
        history = metric in HISTORY_METRICS
    values: dict[tuple, list[float]] = {}
    failed: dict[tuple, int] = {}
    nonfinite: dict[tuple, int] = {}
    failed_groups: dict[tuple, int] = {}
    for r in records:
        protocol, method = r.get("protocol"), r.get("method")
        if r.get("status") == "missing":  # not run yet: neither a success nor a failure
            continue
        if r.get("status", "ok") != "ok":
            if history:
                failed_groups[(protocol, method)] = failed_groups.get((protocol, method), 0) + 1
            else:
                key = (protocol, method, _xkey(r.get("x")))
                failed[key] = failed.get(key, 0) + 1
            continue
        if history:
            curve = list(_get(r.get("history") or {}, metric, None) or [])
            points = [((protocol, method, float(i)), v) for i, v in enumerate(curve)]
        else:
            points = [((protocol, method, _xkey(r.get("x"))), _record_value(r, metric))]
        for key, v in points:
            if v is _MISSING or v is None:
                continue
            v = float(v)
            values.setdefault(key, [])
            if math.isfinite(v):
                values[key].append(v)
            else:
                nonfinite[key] = nonfinite.get(key, 0) + 1
    for (protocol, method), n in failed_groups.items():
        epochs = [k for k in values if k[:2] == (protocol, method)] or [(protocol, method, 0.0)]
        for key in epochs:
            failed[key] = failed.get(key, 0) + n
    out = {}
    for key in sorted(set(values) | set(failed),
                      key=lambda k: (str(k[0]), str(k[1]), _xsort(k[2]))):
        vals = np.asarray(values.get(key, []), dtype=float)
        n = vals.size
        mean = float(vals.mean()) if n else math.nan
        std = float(vals.std(ddof=1)) if n > 1 else (0.0 if n == 1 else math.nan)
        out[key] = Stat(mean, std, n, failed.get(key, 0), nonfinite.get(key, 0))
    return out


# --------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """``holds`` is True / False, or None when the data cannot decide; ``summary`` gives the numbers."""

    holds: bool | None
    summary: str

    @property
    def word(self) -> str:
        return {True: "holds", False: "does not hold", None: "cannot be decided"}[self.holds]


def _series(table, protocol, method):
    return sorted(((k[2], s) for k, s in table.items()
                   if k[0] == protocol and k[1] == method and s.n_ok > 0),
                  key=lambda t: _xsort(t[0]))


def _nothing(table, protocol, method, metric, counts=None) -> Verdict:
    cells = [s for k, s in table.items() if k[0] == protocol and k[1] == method]
    c = (counts or {}).get((protocol, method))
    if not cells:
        why = "no record of this method under this protocol"
    elif c is not None:  # distinct runs, not one count per x or per epoch
        why = (f"every run excluded ({c.failed} of {c.runs} runs failed, {c.nonfinite} of "
               f"{c.runs} infinite/NaN {metric})")
    else:
        failed = sum(s.n_failed for s in cells)
        nonfinite = sum(s.n_nonfinite for s in cells)
        why = f"every run excluded ({failed} failed, {nonfinite} infinite/NaN {metric})"
    return Verdict(None, f"cannot be decided for '{method}': {why}.")


def _listing(series, x_name) -> str:
    return ", ".join(f"{x_name}={_fmt_x(x)}: {_fmt(s.mean)}" for x, s in series)


def evaluate_claim(claim, records, protocol: str, *, history: bool | None = None,
                   x_name: str = "x") -> Verdict:
    """Measured verdict of one ``[[claims]]`` entry under ``protocol``.

    - ``argmin``: the x with the lowest mean ``metric`` of ``method`` lies within ``tolerance``
      (default 0) of ``expect``.
    - ``trend``: ``direction`` ("increasing" / "decreasing") holds when the Spearman rank
      correlation of the means with x has that sign *and* the last mean is beyond the first.
    - ``compare``: ``better`` has a lower mean than ``worse`` by more than ``margin`` (default 0):
      at every one of ``at_epochs`` when given, else at more than half of the x both share.

    Returns a :class:`Verdict` with ``holds=None`` when no successful run can decide.
    """
    kind = _get(claim, "kind")
    metric = _get(claim, "metric")
    if metric is None:
        raise ValueError(f"The claim {claim!r} has no 'metric'.")
    mine = [r for r in records if r.get("protocol") == protocol]
    table = aggregate(mine, metric, history=history)
    if history is None:
        history = metric in HISTORY_METRICS
    counts = run_counts(mine, metric, history=history)
    if history:
        x_name = "epoch"

    if kind == "argmin":
        method = _get(claim, "method")
        series = _series(table, protocol, method)
        if not series:
            return _nothing(table, protocol, method, metric, counts)
        expect = float(_get(claim, "expect"))
        tol = float(_get(claim, "tolerance", 0.0) or 0.0)
        x_best, best = min(series, key=lambda t: t[1].mean)
        # A flat minimum: x values whose mean equals the lowest to 0.1% (e.g. thresholds that zero the
        # same weights give identical runs) attain it equally; the claim holds if one of them is near.
        tied = [x for x, st in series if isinstance(x, float) and st.mean <= best.mean * 1.001 + 1e-300]
        holds = any(abs(x - expect) <= tol + 1e-12 for x in tied)
        where = (f"lowest at {x_name} = {_fmt_x(x_best)} ({best})" if len(tied) <= 1 else
                 f"lowest, equally (to 0.1%), on {x_name} ∈ [{_fmt_x(min(tied))}, {_fmt_x(max(tied))}] "
                 f"({len(tied)} values; {best} at {_fmt_x(x_best)}) — a flat minimum, not a sharp optimum")
        return Verdict(holds, f"mean {metric} of '{method}' is {where}; the report puts the minimum at "
                       f"{expect:g} ± {tol:g}. Means: {_listing(series, x_name)}.")

    if kind == "trend":
        method = _get(claim, "method")
        direction = _get(claim, "direction")
        if direction not in ("increasing", "decreasing"):
            raise ValueError("The 'direction' of a trend claim must be 'increasing' or "
                             f"'decreasing'. Got {direction!r} instead.")
        series = [(x, s) for x, s in _series(table, protocol, method) if isinstance(x, float)]
        if len(series) < 2:
            if not series:
                return _nothing(table, protocol, method, metric, counts)
            return Verdict(None, f"cannot be decided for '{method}': only one {x_name} value "
                           "has a successful run.")
        xs = np.array([x for x, _ in series])
        means = np.array([s.mean for _, s in series])
        rho = float(_stats.spearmanr(xs, means).statistic) if np.ptp(means) > 0 else 0.0
        sign = 1.0 if direction == "increasing" else -1.0
        holds = bool(sign * rho > 0 and sign * (means[-1] - means[0]) > 0)
        return Verdict(holds, f"mean {metric} of '{method}' goes from {_fmt(means[0])} at "
                       f"{x_name} = {_fmt_x(xs[0])} to {_fmt(means[-1])} at {_fmt_x(xs[-1])} "
                       f"(Spearman ρ = {rho:+.2f}); the report says it is {direction}. "
                       f"Means: {_listing(series, x_name)}.")

    if kind == "compare":
        better, worse = _get(claim, "better"), _get(claim, "worse")
        margin = float(_get(claim, "margin", 0.0) or 0.0)
        sb, sw = dict(_series(table, protocol, better)), dict(_series(table, protocol, worse))
        if not sb:
            return _nothing(table, protocol, better, metric, counts)
        if not sw:
            return _nothing(table, protocol, worse, metric, counts)
        at = _get(claim, "at_epochs")
        wanted = [_xkey(e) for e in at] if at else sorted(set(sb) & set(sw), key=_xsort)
        points = [x for x in wanted if x in sb and x in sw]
        if not points:
            return Verdict(None, f"cannot be decided: '{better}' and '{worse}' share no "
                           f"{x_name} with successful runs.")
        if at and len(points) < len(wanted):
            missing = ", ".join(_fmt_x(x) for x in wanted if x not in points)
            return Verdict(None, f"cannot be decided: no successful run at {x_name} {missing}.")
        wins = [x for x in points if sw[x].mean - sb[x].mean > margin]
        holds = len(wins) == len(points) if at else 2 * len(wins) > len(points)
        rule = "all of them" if at else "more than half"
        mb = float(np.mean([sb[x].mean for x in points]))
        mw = float(np.mean([sw[x].mean for x in points]))
        detail = "; ".join(f"{x_name}={_fmt_x(x)}: {_fmt(sb[x].mean)} vs {_fmt(sw[x].mean)}"
                           for x in points[:9])
        extra = f" by more than {margin:g}" if margin else ""
        return Verdict(holds, f"'{better}' has the lower mean {metric}{extra} at {len(wins)} of "
                       f"{len(points)} {x_name} values (needs {rule}); average {_fmt(mb)} vs "
                       f"{_fmt(mw)} for '{worse}'. {detail}.")

    raise ValueError("The 'kind' of a claim must be one of {'argmin', 'trend', 'compare'}. "
                     f"Got {kind!r} instead.")


# --------------------------------------------------------------------------- report blocks
@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str  # may use **bold** and `code`


@dataclass
class Image:
    path: Path
    alt: str
    caption: str = ""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # cells may use **bold**


@dataclass
class Bullets:
    items: list[str] = field(default_factory=list)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks, base: Path) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Image):
            rel = Path(b.path).resolve().relative_to(base.resolve()).as_posix()
            out.append(f"![{b.alt}]({rel})" + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        else:
            raise TypeError(f"Unknown report block {b!r}.")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    text = _html.escape(str(text), quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}img{max-width:100%;height:auto;border:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figcaption{font-style:italic;color:#555}code{background:#f4f4f4;padding:0 .2em}"""


def _to_html(blocks, title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Image):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            cap = f"<figcaption>{_inline_html(b.caption)}</figcaption>" if b.caption else ""
            out.append(f'<figure><img alt="{_html.escape(b.alt)}" '
                       f'src="data:image/png;base64,{data}">{cap}</figure>')
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        else:
            raise TypeError(f"Unknown report block {b!r}.")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- sections
#: experiment name -> function(config, records, fig_dir) -> list of blocks.
SECTION_BUILDERS: dict[str, Callable] = {}


def register_section(name: str):
    """Register a section builder for the experiment called ``name`` (e.g. ``"methods"``).

    The builder is called as ``builder(config, records, fig_dir)`` and returns a list of
    :class:`Heading` / :class:`Paragraph` / :class:`Image` / :class:`Table` / :class:`Bullets`.
    Experiments with no registered builder get :func:`experiment_section`.
    """
    def decorator(func):
        SECTION_BUILDERS[name] = func
        return func
    return decorator


def _claims(config) -> list:
    return list(config_field(config, "claims", []) or [])


def _claim_verdicts(config, records) -> list[tuple[object, dict[str, Verdict]]]:
    out = []
    x_name = str(config_field(config, "x", "x"))
    for claim in _claims(config):
        metric = _get(claim, "metric")
        history = is_history_metric(metric, config) if metric else None
        verdicts = {}
        for protocol in experiment_protocols(config, records):
            try:
                verdicts[protocol] = evaluate_claim(claim, records, protocol, history=history,
                                                    x_name=x_name)
            except (ValueError, TypeError) as exc:
                verdicts[protocol] = Verdict(None, f"cannot be evaluated: {exc}")
        out.append((claim, verdicts))
    return out


def _disagreement(claim) -> str:
    if _get(claim, "source", "report") == "expected":
        return "Our measurement does not match the expected behaviour (not a claim of the report)."
    return "Our measurement disagrees with the report here."


def _heading_text(config) -> str:
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


def experiment_section(config, records, fig_dir: Path) -> list:
    """The default section: figure, the report's claim, verdict per protocol, mean ± std tables."""
    from sparsenet.experiments.plots import figure_stem, plot_experiment, save_figure

    import matplotlib.pyplot as plt

    records = list(records)
    blocks: list = [Heading(2, _heading_text(config))]
    protocols = experiment_protocols(config, records)
    if records:
        fig = plot_experiment(config, records)
        png, _ = save_figure(fig, fig_dir, figure_stem(config))
        plt.close(fig)
        sides = " | ".join(f"column {i + 1}: {p} protocol" for i, p in enumerate(protocols))
        blocks.append(Image(png, _heading_text(config),
                            f"Mean ± standard deviation over trials; {sides}."))
    else:
        blocks.append(Paragraph("**No records**: this experiment has not been run yet."))

    claim_line = config_field(config, "claim")
    if claim_line:
        blocks.append(Paragraph(f"**The report's claim:** {claim_line}"))
    verdicts = _claim_verdicts(config, records)
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
    for metric in config_field(config, "metrics", []) or []:
        history = is_history_metric(metric, config)
        for protocol in protocols:
            table = aggregate([r for r in records if r.get("protocol") == protocol], metric,
                              history=history)
            order = [_xkey(v) for v in config_field(config, "values", []) or []]
            xs = sorted({k[2] for k in table},
                        key=lambda x: (order.index(x) if x in order else len(order), _xsort(x)))
            xs = _table_x(xs, history)
            if not xs:
                continue
            label = "epoch" if history else x_name
            counts = run_counts([r for r in records if r.get("protocol") == protocol], metric,
                                history=history)
            rows = []
            for m in methods:
                if not any(k[1] == m for k in table):
                    continue
                if history:  # a run is one curve: count its exclusion once, by the method
                    c = counts.get((protocol, m))
                    note = f" ({c.text(metric)})" if c is not None and c.excluded else ""
                    cells = [f"{_fmt(table[(protocol, m, x)].mean)} ± "
                             f"{_fmt(table[(protocol, m, x)].std)}"
                             if (protocol, m, x) in table and table[(protocol, m, x)].n_ok
                             else ("n/a" if (protocol, m, x) in table else "—") for x in xs]
                    rows.append([m + note] + cells)
                else:
                    rows.append([m] + [str(table[(protocol, m, x)]) if (protocol, m, x) in table
                                       else "—" for x in xs])
            blocks.append(Paragraph(f"`{metric}`, {protocol} protocol (mean ± std over trials; "
                                    "failed runs and infinite values are left out of the mean "
                                    "and counted in distinct runs)"))
            blocks.append(Table([f"method \\ {label}"] + [_fmt_x(x) for x in xs], rows))
    return blocks


def _phase_transition_section(config, records, fig_dir: Path) -> list:
    """A 2-D sweep (``y`` set): success-probability heat map, see plots.phase_transition_section."""
    from sparsenet.experiments.plots import phase_transition_section

    return phase_transition_section(config, records, fig_dir)


def _summary_blocks(experiments) -> list:
    rows, disagreements = [], []
    for config, records in experiments:
        records = list(records)
        for claim, by_protocol in _claim_verdicts(config, records):
            text = _get(claim, "text") or str(_get(claim, "kind"))
            name = config_field(config, "name", "")
            cells = [f"{p}: {v.word}" for p, v in by_protocol.items()]
            rows.append([str(name), text, "; ".join(cells)])
            for p, v in by_protocol.items():
                if v.holds is False and _get(claim, "source", "report") != "expected":
                    disagreements.append(f"**{name}** ({p} protocol): {text} — {v.summary}")
    blocks: list = [Heading(2, "Summary of verdicts")]
    if rows:
        blocks.append(Table(["experiment", "the report's claim", "measured verdict"], rows))
    else:
        blocks.append(Paragraph("No experiment carries a measurable claim."))
    if disagreements:
        blocks += [Paragraph("**Where our results disagree with the report:**"),
                   Bullets(disagreements)]
    elif rows:
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


_SECTION_TASKS: list = []  # (builder, config, records, fig_dir) of the running _build_sections


def _section_task(i: int) -> list:
    builder, config, records, fig_dir = _SECTION_TASKS[i]
    return builder(config, records, fig_dir)


def _default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _build_sections(experiments, fig_dir: Path, jobs: int | None) -> list[list]:
    """Every experiment's section, in order; drawn by ``jobs`` forked processes when > 1.

    Drawing the figures is nearly all of the report's time, and the figures are independent;
    the processes are forked (the configs hold read-only mappings, which do not pickle) and
    only each section's blocks travel back.
    """
    tasks = []
    for config, records in experiments:
        builder = SECTION_BUILDERS.get(
            str(config_field(config, "name", "")),
            _phase_transition_section if config_field(config, "y") else experiment_section)
        tasks.append((builder, config, records, fig_dir))
    jobs = _default_jobs() if jobs is None else max(1, int(jobs))
    jobs = min(jobs, len(tasks))
    if jobs > 1 and "fork" in mp.get_all_start_methods():
        global _SECTION_TASKS
        _SECTION_TASKS = tasks
        try:
            with mp.get_context("fork").Pool(jobs) as pool:
                # the costliest sections (most records) first, so no process idles at the end
                order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i][2]))
                done = dict(zip(order, pool.map(_section_task, order, chunksize=1)))
            return [done[i] for i in range(len(tasks))]
        finally:
            _SECTION_TASKS = []
    return [builder(config, records, fig_dir) for builder, config, records, fig_dir in tasks]


def write_report(out_dir, experiments, *, date=None, version: str | None = None,
                 scale: str | None = None, wall_time: float | None = None,
                 jobs: int | None = None,
                 title: str = "Reproduction of Agrawal & Kar, "
                              "“Training One-Hidden-Layer Sparse Neural Networks”"
                 ) -> tuple[Path, Path]:
    """Write every figure, ``REPORT.md`` and a self-contained ``REPORT.html`` under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Output folder; figures go to ``out_dir/figures`` (PNG + SVG).
    experiments : list of (config, records)
        Each experiment definition with its stored records.
    date, version, scale, wall_time : optional
        Shown in the header; ``date`` defaults to today, ``version`` to the installed package's.
    jobs : int, optional
        Processes drawing the figures (default: the usable cores, at most 8; 1 draws in this
        process).

    Returns
    -------
    (md_path, html_path)
    """
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    experiments = [(config, list(records)) for config, records in experiments]
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
    blocks += _summary_blocks(experiments)
    for section in _build_sections(experiments, fig_dir, jobs):
        blocks += section
    md_path, html_path = out / "REPORT.md", out / "REPORT.html"
    md_path.write_text(_to_markdown(blocks, out), encoding="utf-8")
    html_path.write_text(_to_html(blocks, title), encoding="utf-8")
    return md_path, html_path


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


def _methods_section(config, records, fig_dir: Path) -> list:
    """Issue 8: the default section plus the methods × settings summary and its conclusions."""
    records = list(records)
    blocks = experiment_section(config, records, fig_dir)
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


register_section("methods")(_methods_section)
register_section("methods_noise")(_methods_section)


def _activations_section(config, records, fig_dir: Path) -> list:
    """Issue 8: initialization error before and after training per activation, in words where
    the initialization cannot apply."""
    records = list(records)
    blocks = experiment_section(config, records, fig_dir)
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


register_section("activations")(_activations_section)
