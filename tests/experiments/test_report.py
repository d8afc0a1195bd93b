"""Aggregation, claim verdicts and the written report, on synthetic records with known answers."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from sparsenet.experiments.report import Verdict, aggregate, evaluate_claim, write_report

INF = float("inf")


def rec(method, x, value, *, protocol="blind", seed=0, status="ok", metric="recovery_error",
        history=None):
    return {"run_key": f"{protocol}-{method}-{x}-{seed}", "experiment": "figXX",
            "protocol": protocol, "method": method, "x": x, "seed": seed, "status": status,
            "error": None if status == "ok" else "diverged",
            "metrics": {} if value is None else {metric: value}, "history": history or {},
            "wall_time": 0.5, "params": {}}


def sweep(method, xs, f, trials=3, protocol="blind"):
    return [rec(method, x, f(x) + 0.001 * s, seed=s, protocol=protocol)
            for x in xs for s in range(trials)]


XS = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15]


# --------------------------------------------------------------------------- aggregate
def test_aggregate_matches_numpy_and_excludes_failed_and_infinite():
    vals = [0.3, 0.1, 0.25, INF]
    records = [rec("A", 1, v, seed=i) for i, v in enumerate(vals)]
    records += [rec("A", 1, None, seed=9, status="failed"), rec("A", 2, 0.7, seed=0)]
    records += [rec("A", 1, 5.0, protocol="report")]
    table = aggregate(records, "recovery_error")
    s = table[("blind", "A", 1.0)]
    finite = np.array([0.3, 0.1, 0.25])
    assert s.mean == pytest.approx(finite.mean())
    assert s.std == pytest.approx(finite.std(ddof=1))
    assert (s.n_ok, s.n_failed, s.n_nonfinite) == (3, 1, 1)
    assert table[("blind", "A", 2.0)].n_ok == 1 and table[("blind", "A", 2.0)].std == 0.0
    assert table[("report", "A", 1.0)].mean == 5.0


def test_aggregate_all_failed_cell_has_nan_mean():
    table = aggregate([rec("A", 1, None, status="failed"), rec("A", 1, INF, seed=1)],
                      "recovery_error")
    s = table[("blind", "A", 1.0)]
    assert math.isnan(s.mean) and s.n_ok == 0 and s.n_excluded == 2


def test_aggregate_history_uses_epoch_index():
    curves = [[4.0, 2.0, 1.0], [6.0, 4.0, 3.0]]
    records = [rec("A", None, None, seed=i, history={"train_loss": c})
               for i, c in enumerate(curves)]
    records.append(rec("A", None, None, seed=7, status="failed"))
    table = aggregate(records, "train_loss")
    assert sorted(k[2] for k in table) == [0.0, 1.0, 2.0]
    assert table[("blind", "A", 1.0)].mean == pytest.approx(3.0)
    assert table[("blind", "A", 2.0)].std == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert all(s.n_failed == 1 for s in table.values())


def test_aggregate_reads_top_level_wall_time():
    table = aggregate([rec("A", 1, 0.1)], "wall_time")
    assert table[("blind", "A", 1.0)].mean == 0.5


# --------------------------------------------------------------------------- argmin
ARGMIN = {"kind": "argmin", "metric": "recovery_error", "method": "A", "expect": 0.075,
          "tolerance": 0.025}


@pytest.mark.parametrize("x_min, holds", [(0.075, True), (0.1, True), (0.15, False)])
def test_argmin(x_min, holds):
    records = sweep("A", XS, lambda x: 0.05 + (x - x_min) ** 2)
    v = evaluate_claim(ARGMIN, records, "blind", x_name="thresh_train")
    assert isinstance(v, Verdict) and v.holds is holds
    assert f"thresh_train = {x_min:g}" in v.summary and "0.075" in v.summary


def test_argmin_ignores_infinite_values_and_other_protocol():
    records = sweep("A", XS, lambda x: 0.05 + (x - 0.075) ** 2)
    records += [rec("A", 0.15, -INF, seed=5)]  # would be the minimum if not excluded
    records += sweep("A", XS, lambda x: 0.05 + (x - 0.15) ** 2, protocol="report")
    assert evaluate_claim(ARGMIN, records, "blind").holds is True
    assert evaluate_claim(ARGMIN, records, "report").holds is False


def test_accepts_claim_as_object():
    records = sweep("A", XS, lambda x: 0.05 + (x - 0.075) ** 2)
    assert evaluate_claim(SimpleNamespace(**ARGMIN), records, "blind").holds is True


def test_all_failed_cannot_be_decided():
    records = [rec("A", x, None, status="failed", seed=s) for x in XS for s in range(2)]
    records.append(rec("A", 0.1, INF, seed=9))
    v = evaluate_claim(ARGMIN, records, "blind")
    assert v.holds is None and "failed" in v.summary
    v = evaluate_claim(ARGMIN, [], "blind")
    assert v.holds is None


# --------------------------------------------------------------------------- trend
@pytest.mark.parametrize("direction, f, holds", [
    ("decreasing", lambda n: 1.0 / n, True),
    ("decreasing", lambda n: n / 1e4, False),
    ("increasing", lambda n: n / 1e4, True),
    ("increasing", lambda n: 1.0 / n, False),
])
def test_trend(direction, f, holds):
    claim = {"kind": "trend", "metric": "recovery_error", "method": "A", "direction": direction}
    records = sweep("A", [2000, 4000, 6000, 8000, 10000], f)
    v = evaluate_claim(claim, records, "blind", x_name="n")
    assert v.holds is holds and "ρ" in v.summary and "n = 2000" in v.summary


def test_trend_flat_does_not_hold_and_single_point_is_undecided():
    claim = {"kind": "trend", "metric": "recovery_error", "method": "A", "direction": "increasing"}
    flat = [rec("A", x, 0.2) for x in (1, 2, 3)]
    assert evaluate_claim(claim, flat, "blind").holds is False
    assert evaluate_claim(claim, [rec("A", 1, 0.2)], "blind").holds is None
    with pytest.raises(ValueError, match="direction"):
        evaluate_claim({**claim, "direction": "up"}, flat, "blind")


# --------------------------------------------------------------------------- compare
def test_compare_sweep_majority():
    claim = {"kind": "compare", "metric": "recovery_error", "better": "B", "worse": "W"}
    records = sweep("B", XS, lambda x: 0.1) + sweep("W", XS, lambda x: 0.12)
    assert evaluate_claim(claim, records, "blind").holds is True
    assert evaluate_claim({**claim, "better": "W", "worse": "B"}, records, "blind").holds is False
    assert evaluate_claim({**claim, "margin": 0.05}, records, "blind").holds is False


def test_compare_at_epochs_on_history():
    def curves(method, start):
        return [rec(method, None, None, seed=s,
                    history={"train_loss": [start * 0.5 ** e + 0.01 * s for e in range(6)]})
                for s in range(3)]

    claim = {"kind": "compare", "metric": "train_loss", "better": "tensor", "worse": "random",
             "at_epochs": [1, 2, 3]}
    records = curves("tensor", 1.0) + curves("random", 10.0)
    v = evaluate_claim(claim, records, "blind")
    assert v.holds is True and "3 of 3 epoch" in v.summary
    assert evaluate_claim({**claim, "better": "random", "worse": "tensor"}, records,
                          "blind").holds is False
    # an epoch with no data cannot be decided
    assert evaluate_claim({**claim, "at_epochs": [1, 40]}, records, "blind").holds is None


def test_compare_one_side_all_failed_is_undecided():
    claim = {"kind": "compare", "metric": "recovery_error", "better": "B", "worse": "W"}
    records = sweep("B", XS, lambda x: 0.1)
    records += [rec("W", x, None, status="failed") for x in XS]
    v = evaluate_claim(claim, records, "blind")
    assert v.holds is None and "W" in v.summary


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        evaluate_claim({"kind": "max", "metric": "recovery_error"}, [], "blind")


# --------------------------------------------------------------------------- write_report
def _config(name="fig04", figure=4):
    return {
        "experiment": {"name": name, "figure": figure, "title": "Recovery error vs IHT threshold",
                       "x": "thresh_train", "values": XS, "metrics": ["recovery_error"],
                       "protocols": ["blind", "report"], "trials": 3,
                       "claim": "Lowest near 0.075; pre-training does slightly better."},
        "methods": [{"label": "A"}, {"label": "W"}],
        "claims": [dict(ARGMIN, text="Recovery error is lowest near 0.075."),
                   {"kind": "compare", "metric": "recovery_error", "better": "A", "worse": "W",
                    "text": "Pre-training does slightly better."}],
    }


def _records():
    out = []
    for protocol, x_min in (("blind", 0.075), ("report", 0.15)):
        out += sweep("A", XS, lambda x: 0.05 + (x - x_min) ** 2, protocol=protocol)
        out += sweep("W", XS, lambda x: 0.2, protocol=protocol)
    out.append(rec("A", 0.0, INF, seed=8))
    return out


def test_write_report_markdown_and_self_contained_html(tmp_path):
    md, html = write_report(tmp_path, [(_config(), _records())], date="2024-01-02",
                            version="9.9", scale="quick", wall_time=61.0)
    text = md.read_text()
    for expected in ("2024-01-02", "9.9", "quick", "61.0 s", "Figure 4",
                     "Recovery error is lowest near 0.075.", "holds", "does not hold",
                     "disagrees with the report", "figures/fig04_recovery_error_vs_thresh_train.png",
                     "| A |"):
        assert expected in text, expected
    assert (tmp_path / "figures" / "fig04_recovery_error_vs_thresh_train.svg").exists()
    page = html.read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert 'src="fig' not in page and "<table>" in page and "<strong>" in page


def test_write_report_all_failed_and_extra_sweep(tmp_path):
    cfg = _config(name="noise", figure=None)
    cfg["experiment"]["x"] = "noise_sd"
    records = [rec(m, x, None, status="failed", seed=s, protocol=p)
               for m in ("A", "W") for x in XS for s in range(2) for p in ("blind", "report")]
    md, _ = write_report(tmp_path, [(cfg, records)], date="2024-01-02", version="0")
    text = md.read_text()
    assert "cannot be decided" in text
    assert (tmp_path / "figures" / "noise_recovery_error_vs_noise_sd.png").exists()


def test_missing_runs_are_neither_ok_nor_failed():
    records = [rec("A", 1, 0.2), rec("A", 1, None, status="missing", seed=1)]
    s = aggregate(records, "recovery_error")[("blind", "A", 1.0)]
    assert (s.n_ok, s.n_failed, s.n_nonfinite) == (1, 0, 0)


def test_expected_claim_is_not_called_a_disagreement_with_the_report(tmp_path):
    cfg = _config()
    cfg["claims"] = [dict(ARGMIN, expect=0.0, tolerance=0.0, source="expected", text="ours")]
    md, _ = write_report(tmp_path, [(cfg, _records())], date="2024-01-02", version="0")
    text = md.read_text()
    assert "does not hold" in text and "disagrees with the report" not in text
    assert "expected behaviour" in text
