"""Layer 1 of the report: stored records -> per-trial values and per-cell summaries (no statistics tests).

Records and configs follow docs/EXPERIMENT_SCHEMA.md.  A config is the parsed TOML dict (with its
``[experiment]`` table), an :class:`~sparsenet.experiments.config.ExperimentConfig`, or any object
with the same fields, flat or under ``experiment``; :func:`config_field` reads all of them.

Data flow of the report, imports pointing one way:
``aggregate`` (this module) -> ``claims`` (tests and verdicts) -> ``plots`` (figures) ->
``sections`` (one section per experiment) -> ``document`` (Markdown / HTML) -> ``report`` (the files).

Two rules of this layer are used everywhere above it:

* **Resolution.** Each metric has a resolution (``[experiment] resolution = {metric = value}`` in the
  TOML, else :data:`DEFAULT_RESOLUTION`): a value at or below it is exact (0 for the statistics) and two
  values closer than it are equal.  Recovery errors below 1e-4 are float noise of an exact recovery.
* **exact_recovery** (success) is derived when reading, never taken from the store: recovery error
  below its resolution *and* the exact support (:func:`sparsenet.metrics.is_exact_recovery`); a failed
  run is not a success.  It follows the declared resolution and works on stores written before it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sparsenet.experiments.config import EPOCH_LOSS_METRICS

__all__ = [
    "DEFAULT_RESOLUTION",
    "HIGHER_IS_BETTER",
    "HISTORY_METRICS",
    "Stat",
    "RunCounts",
    "aggregate",
    "config_field",
    "experiment_methods",
    "experiment_protocols",
    "failure_cause",
    "failure_summary",
    "init_not_applicable",
    "is_history_metric",
    "lower_is_better",
    "per_trial",
    "record_value",
    "resolution",
    "run_counts",
    "trial_of",
]

#: Resolution of a metric when the experiment declares none: values at or below it are exact, and
#: values closer than it compare equal.  Metrics not listed: 0 (only identical values are equal).
DEFAULT_RESOLUTION = {
    "recovery_error": 1e-4,       # relative; an exact recovery ends at ~1e-6 (float noise of SGD)
    "init_recovery_error": 1e-4,
    "train_loss": 1e-10,          # MSE in units of y²
    "test_loss": 1e-10,
    "test_mse": 1e-10,
    "test_rel_mse": 1e-10,
    "pct_true_negative": 1e-9,    # percentages of counts: only float noise is below this
    "pct_true_positive": 1e-9,
}

#: Metrics where a higher value is better (every other metric: lower is better).
HIGHER_IS_BETTER = frozenset({"exact_support", "exact_recovery", "pct_true_negative",
                              "pct_true_positive", "tp", "tn"})


def trials_text(n) -> str:
    """``"1 trial"`` or ``"n trials"`` (report texts)."""
    return f"{n} trial" if n == 1 else f"{n} trials"


def lower_is_better(metric: str) -> bool:
    """Whether a lower value of ``metric`` is better (a failed run is then the highest value)."""
    return metric not in HIGHER_IS_BETTER


def resolution(config, metric: str) -> float:
    """The declared resolution of ``metric`` in ``config``, else :data:`DEFAULT_RESOLUTION`, else 0."""
    declared = config_field(config, "resolution", None) or {}
    if not isinstance(declared, Mapping):
        declared = dict(declared)  # ExperimentConfig keeps sorted (metric, value) pairs
    if metric in declared:
        return float(declared[metric])
    return float(DEFAULT_RESOLUTION.get(metric, 0.0))


HISTORY_METRICS = EPOCH_LOSS_METRICS  # per-epoch losses; config records them only for experiments that read them
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
    ``median``, ``q1`` and ``q3`` are over *every* run, a failed or non-finite one counting as the
    worst value (``+inf`` when lower is better, ``-inf`` otherwise): nothing is dropped from them.
    """

    mean: float
    std: float
    n_ok: int
    n_failed: int
    n_nonfinite: int = 0
    median: float = math.nan
    q1: float = math.nan
    q3: float = math.nan

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
        """``median [q1, q3]`` over every run, then the runs that failed or are infinite."""
        text = f"{_fmt(self.median)} [{_fmt(self.q1)}, {_fmt(self.q3)}]" if self.n_runs else "n/a"
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


def run_counts(records, metric: str, *, history: bool | None = None,
               config=None) -> dict[tuple, RunCounts]:
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
                v = _record_value(r, metric, config)
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


def record_value(record, metric, config=None):
    """The value of ``metric`` in one successful record (``None`` when not recorded).

    ``exact_recovery`` is derived from ``recovery_error`` and ``exact_support`` with the declared
    resolution of ``recovery_error`` (module docstring); ``wall_time`` may live at the top level.
    """
    metrics = record.get("metrics") or {}
    if metric == "exact_recovery":
        from sparsenet.metrics import is_exact_recovery

        err, support = _get(metrics, "recovery_error"), _get(metrics, "exact_support")
        if err is None or support is None:
            return _get(metrics, metric)
        return float(is_exact_recovery(err, support, resolution(config, "recovery_error")))
    value = _get(metrics, metric, _MISSING)
    if value is _MISSING:
        value = record.get(metric)  # e.g. wall_time lives at the top level of a record
    return value


def _record_value(record, metric, config=None):
    value = record_value(record, metric, config)
    return _MISSING if value is None else value


def trial_of(record) -> int:
    """The trial index of a record (``trial``; older records and tests give ``seed`` only)."""
    trial = record.get("trial")
    return int(record.get("seed", 0) if trial is None else trial)


def per_trial(records, metric: str, *, history: bool | None = None, config=None) -> dict[tuple, dict]:
    """Every run's value of ``metric``: ``(protocol, method) -> {(x, trial): value}``.

    Nothing is dropped: a failed run (status not ``"ok"``) has the value ``nan`` (for a history
    metric at every epoch any run of the same protocol reached) and a non-finite value is kept as
    stored; the statistics layer decides what they count as.  Records with status ``"missing"``
    and runs that do not record the metric are left out.  ``x`` is the epoch for a history metric.
    """
    if history is None:
        history = metric in HISTORY_METRICS
    out: dict[tuple, dict] = {}
    failed: list = []
    epochs: dict = {}
    for r in records:
        if r.get("status") == "missing":
            continue
        key, trial = (r.get("protocol"), r.get("method")), trial_of(r)
        if r.get("status", "ok") != "ok":
            failed.append((key, _xkey(r.get("x")), trial))
            continue
        if history:
            curve = list(_get(r.get("history") or {}, metric, None) or [])
            epochs[key[0]] = max(epochs.get(key[0], 0), len(curve))
            points = [(float(i), v) for i, v in enumerate(curve)]
        else:
            points = [(_xkey(r.get("x")), record_value(r, metric, config))]
        for x, v in points:
            if v is not None:
                out.setdefault(key, {})[(x, trial)] = float(v)
    for key, x, trial in failed:
        xs = [float(i) for i in range(max(epochs.get(key[0], 0), 1))] if history else [x]
        for x_ in xs:
            out.setdefault(key, {})[(x_, trial)] = math.nan
    return out


def aggregate(records, metric: str, *, history: bool | None = None,
              config=None) -> dict[tuple, Stat]:
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
            points = [((protocol, method, _xkey(r.get("x"))), _record_value(r, metric, config))]
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
        n_bad = failed.get(key, 0) + nonfinite.get(key, 0)
        quart = _quartiles(vals, n_bad, lower_is_better(metric))
        out[key] = Stat(mean, std, n, failed.get(key, 0), nonfinite.get(key, 0), *quart)
    return out


def _quartiles(finite, n_worst: int, lower: bool) -> tuple[float, float, float]:
    """Median and quartiles of ``finite`` plus ``n_worst`` runs at the worst end (±inf)."""
    if finite.size + n_worst == 0:
        return math.nan, math.nan, math.nan
    worst = math.inf if lower else -math.inf
    # a finite stand-in beyond every value; a quantile that reaches past the finite values (it lies
    # between a finite run and a worst one) is the worst value: a midpoint with a failure means nothing
    big = 2.0 * float(np.max(np.abs(finite), initial=1.0)) + 1.0
    vals = np.concatenate([finite, np.full(n_worst, big if lower else -big)])
    q = np.quantile(vals, [0.5, 0.25, 0.75])
    if finite.size == 0:
        return worst, worst, worst
    lo, hi = float(finite.min()), float(finite.max())
    return tuple(worst if (v > hi if lower else v < lo) else float(v) for v in q)




# --------------------------------------------------------------------------- failures at the end of a run
#: failure causes each protocol documents (docs/EXPERIMENT_SCHEMA.md, "Protocols"): expected there
EXPECTED_FAILURES = {
    "report": ("training diverged", "degenerate tensor decomposition"),
    "blind": ("init not applicable",),
}


def failure_cause(error) -> str:
    """A short cause of a failed run from its stored error message."""
    text = str(error or "").strip().splitlines()[0] if error else "no error message"
    if re.search(r"diverged", text, re.I):
        return "training diverged"
    reason = init_not_applicable(text)
    if reason == "degenerate tensor decomposition":
        return reason
    if reason:
        return f"init not applicable ({reason})"
    return text[:80]


def failure_summary(configs, failed, *, limit: int = 8) -> list[str]:
    """A few lines grouping failed runs by protocol and cause, then experiment and method.

    ``failed`` holds ``(run_key, label, error)`` as returned by the runner; ``configs`` map each run
    key to its experiment, method and protocol (a run shared by two experiments is named under
    both).  Each line says whether the cause is one its protocol documents (expected) or not.
    """
    from sparsenet.experiments.config import expand

    where: dict = {}
    for config in configs:
        for run in expand(config):
            where.setdefault(run.key, []).append((run.experiment, run.label, run.protocol))
    groups: dict = {}
    runs: dict = {}
    for key, label, error in failed:
        cause = failure_cause(error)
        for experiment, method, protocol in where.get(key, [("?", label, "?")]):
            per = groups.setdefault((protocol, cause), {})
            per[(experiment, method)] = per.get((experiment, method), 0) + 1
            runs.setdefault((protocol, cause), set()).add(key)
    lines = [f"{len(failed)} runs failed; each is stored with its error and counted in REPORT.md as the "
             "worst value of its cell (verdicts, tables, and ▼n✗ marks on the figures):"]
    for (protocol, cause), per in sorted(groups.items(), key=lambda t: -sum(t[1].values()))[:limit]:
        expected = any(cause.startswith(c) for c in EXPECTED_FAILURES.get(protocol, ()))
        by_exp: dict = {}
        for (experiment, method), n in per.items():
            by_exp.setdefault(experiment, []).append(f"{method} ×{n}")
        detail = "; ".join(f"{e}: {', '.join(ms)}" for e, ms in sorted(by_exp.items()))
        if len(detail) > 160:
            detail = detail[:157] + "…"
        tag = ("expected for this protocol (docs/EXPERIMENT_SCHEMA.md)" if expected
               else "NOT expected for this protocol")
        n, shown = len(runs[(protocol, cause)]), sum(per.values())
        count = f"{n} runs" + (f" ({shown} counting each figure that shows them)" if shown != n else "")
        lines.append(f"  {protocol} protocol, {cause}: {count} [{tag}] — {detail}")
    if len(groups) > limit:
        lines.append(f"  … and {len(groups) - limit} more groups (every failed run is in runs.sqlite with its error)")
    return lines
