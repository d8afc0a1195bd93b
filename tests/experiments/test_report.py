"""Aggregation, claim verdicts and the written report, on synthetic records with known answers."""

import math
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest

from sparsenet.experiments.aggregate import aggregate, init_not_applicable, run_counts
from sparsenet.experiments.claims import Verdict, evaluate_claim
from sparsenet.experiments.report import summary_table_of, write_report
from sparsenet.experiments.sections import methods_conclusions, methods_summary

INF = float("inf")


def rec(method, x, value, *, protocol="blind", seed=0, status="ok", metric="recovery_error",
        history=None):
    return {"run_key": f"{protocol}-{method}-{x}-{seed}", "experiment": "figXX",
            "protocol": protocol, "method": method, "x": x, "seed": seed, "status": status,
            "error": None if status == "ok" else "diverged",
            "metrics": {} if value is None else {metric: value}, "history": history or {},
            "wall_time": 0.5, "params": {}}


def sweep(method, xs, f, trials=3, protocol="blind"):
    """every (x, trial) of ``method``; the trial's spread (0.001·trial) is the same at every x"""
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


# --------------------------------------------------------------------------- claims through records
# (the statistics themselves are tested in test_claims.py; here: records -> verdicts end to end)
ARGMIN = {"kind": "argmin", "metric": "recovery_error", "method": "A", "expect": 0.075,
          "tolerance": 0.025}


@pytest.mark.parametrize("x_min, outcome", [(0.075, "holds"), (0.15, "does not hold")])
def test_argmin(x_min, outcome):
    records = sweep("A", XS, lambda x: 0.05 + (x - x_min) ** 2, trials=5)
    v = evaluate_claim(ARGMIN, records, "blind", x_name="thresh_train")
    assert isinstance(v, Verdict) and v.outcome == outcome, v.summary
    assert f"thresh_train = {x_min:g}" in v.summary and "[0.05, 0.1]" in v.summary


def test_argmin_counts_infinite_values_as_worst_and_keeps_protocols_apart():
    records = sweep("A", XS, lambda x: 0.05 + (x - 0.075) ** 2, trials=5)
    records += [rec("A", 0.15, -INF, seed=5)]  # a non-finite run is the worst, never the minimum
    records += sweep("A", XS, lambda x: 0.05 + (x - 0.15) ** 2, protocol="report", trials=5)
    assert evaluate_claim(ARGMIN, records, "blind").outcome == "holds"
    assert evaluate_claim(ARGMIN, records, "report").outcome == "does not hold"


def test_accepts_claim_as_object():
    records = sweep("A", XS, lambda x: 0.05 + (x - 0.075) ** 2, trials=5)
    assert evaluate_claim(SimpleNamespace(**ARGMIN), records, "blind").holds is True


def test_all_failed_is_inconclusive_and_nothing_is_no_data():
    records = [rec("A", x, None, status="failed", seed=s) for x in XS for s in range(2)]
    v = evaluate_claim(ARGMIN, records, "blind")
    assert v.holds is None and v.n_failed == len(records)
    assert evaluate_claim(ARGMIN, [], "blind").outcome == "no data"


@pytest.mark.parametrize("direction, f, outcome", [
    ("decreasing", lambda n: 1.0 / n, "holds"),
    ("increasing", lambda n: 1.0 / n, "does not hold"),
])
def test_trend(direction, f, outcome):
    claim = {"kind": "trend", "metric": "train_loss", "method": "A", "direction": direction}
    records = [rec("A", n, f(n) * (1 + 0.01 * s), seed=s, metric="train_loss")
               for n in (2000, 4000, 6000, 8000, 10000) for s in range(3)]
    v = evaluate_claim(claim, records, "blind", history=False, x_name="n")
    assert v.outcome == outcome and "τ-b" in v.summary and "n = " not in v.summary
    with pytest.raises(ValueError, match="direction"):
        evaluate_claim({**claim, "direction": "up"}, records, "blind", history=False)


def test_compare_at_epochs_on_history():
    def curves(method, start):
        return [rec(method, None, None, seed=s,
                    history={"train_loss": [start * 0.5 ** e + 0.01 * s for e in range(6)]})
                for s in range(5)]

    claim = {"kind": "compare", "metric": "train_loss", "better": "tensor", "worse": "random",
             "at_epochs": [1, 2, 3]}
    records = curves("tensor", 1.0) + curves("random", 10.0)
    v = evaluate_claim(claim, records, "blind")
    assert v.outcome == "holds" and "15 (epoch, trial) pairs" in v.summary
    assert evaluate_claim({**claim, "better": "random", "worse": "tensor"}, records,
                          "blind").outcome == "does not hold"


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
        out += sweep("A", XS, lambda x: 0.05 + (x - x_min) ** 2, protocol=protocol, trials=5)
        out += sweep("W", XS, lambda x: 0.2, protocol=protocol, trials=5)
    out.append(rec("A", 0.0, INF, seed=8))
    return out


def test_write_report_markdown_and_self_contained_html(tmp_path):
    md, html = write_report(tmp_path, [(_config(), _records())], date="2024-01-02",
                            version="9.9", scale="quick", wall_time=61.0, svg=True)
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
    # every run failed in both methods: they tie (worst vs worst), which decides nothing
    assert "**blind protocol: inconclusive**" in text and "all 14 pairs are equal" in text
    assert (tmp_path / "figures" / "noise_recovery_error_vs_noise_sd.png").exists()


def test_missing_runs_are_neither_ok_nor_failed():
    records = [rec("A", 1, 0.2), rec("A", 1, None, status="missing", seed=1)]
    s = aggregate(records, "recovery_error")[("blind", "A", 1.0)]
    assert (s.n_ok, s.n_failed, s.n_nonfinite) == (1, 0, 0)


def test_expected_claim_is_not_called_a_disagreement_with_the_report(tmp_path):
    cfg = _config()
    cfg["claims"] = [dict(ARGMIN, expect=0.0, tolerance=0.025, source="expected", text="ours")]
    md, _ = write_report(tmp_path, [(cfg, _records())], date="2024-01-02", version="0")
    text = md.read_text()
    assert "**report protocol: does not hold**" in text and "disagrees with the report" not in text
    assert "expected behaviour" in text


# --------------------------------------------------------------------------- distinct failure counts
def test_run_counts_count_each_failed_history_run_once():
    curves = [[4.0, 2.0, 1.0], [6.0, INF, 3.0]]
    records = [rec("A", None, None, seed=i, history={"train_loss": c}) for i, c in enumerate(curves)]
    records.append(rec("A", None, None, seed=7, status="failed"))
    c = run_counts(records, "train_loss")[("blind", "A")]
    assert (c.runs, c.failed, c.nonfinite) == (3, 1, 1)
    assert c.text("train_loss") == "1 of 3 runs failed, 1 of 3 runs infinite"


def test_history_table_names_the_failed_run_once(tmp_path):
    cfg = {"experiment": {"name": "fig03", "figure": 3, "title": "loss", "x": "epoch",
                          "metrics": ["train_loss"], "protocols": ["blind"], "trials": 2},
           "methods": [{"label": "A"}]}
    records = [rec("A", None, None, seed=i, history={"train_loss": [3.0, 2.0, 1.0]}) for i in range(2)]
    records.append(rec("A", None, None, seed=7, status="failed"))
    text = write_report(tmp_path, [(cfg, records)], date="2024-01-02", version="0", jobs=1)[0].read_text()
    assert "| A (1 of 3 runs failed) |" in text
    assert "excl." not in text


def test_all_failed_verdict_counts_distinct_runs():
    records = [rec("A", None, None, seed=i, status="failed") for i in range(2)]
    records.append(rec("B", None, None, seed=0, history={"train_loss": [1.0, 0.5]}))
    claim = {"kind": "compare", "metric": "train_loss", "better": "A", "worse": "B", "at_epochs": [1]}
    v = evaluate_claim(claim, records, "blind")
    # two failed runs of A, each counted once (not once per epoch), as the worst value
    assert v.holds is None and v.n_failed == 1 and "only 1 pair differs" in v.summary
    rows = run_counts(records, "train_loss")
    assert rows[("blind", "A")].failed == 2


# --------------------------------------------------------------------------- issue 8 sections
METHODS = ["Tensor init + IHT", "Random init + IHT", "ORACLE support refit"]


def _methods_config(name="methods"):
    return {"experiment": {"name": name, "title": "Methods", "x": "p_gt", "values": [0.25, 0.75],
                           "metrics": ["recovery_error", "exact_support", "test_mse"],
                           "protocols": ["blind"], "trials": 2, "section": "methods"},
            "methods": [{"label": m} for m in METHODS]}


def _methods_records():
    # (recovery_error, exact_support, test_mse) per method and x; the oracle is the best everywhere
    values = {"Tensor init + IHT": {0.25: (0.01, 1.0, 0.001), 0.75: (0.02, 1.0, 0.004)},
              "Random init + IHT": {0.25: (INF, 0.0, 5.0), 0.75: (0.5, 0.0, 0.002)},
              "ORACLE support refit": {0.25: (0.001, 1.0, 1e-5), 0.75: (0.002, 1.0, 1e-5)}}
    out = []
    for m, by_x in values.items():
        for x, (err, exact, mse) in by_x.items():
            for s in range(2):
                r = rec(m, x, None, seed=s)
                r["metrics"] = {"recovery_error": err, "exact_support": exact, "test_mse": mse}
                out.append(r)
    return out


def test_methods_summary_bolds_the_best_non_oracle_cell():
    records = _methods_records()
    random_075 = [r for r in records if r["method"] == "Random init + IHT" and r["x"] == 0.75]
    random_075[0]["metrics"]["recovery_error"] = INF
    header, rows, *_ = methods_summary(_methods_config(), records, "blind")
    assert header[:3] == ["method", "recovery error @ p_gt=0.25", "recovery error @ p_gt=0.75"]
    by = {row[0].split(" (ORACLE")[0]: row for row in rows}
    tensor, random, oracle = by["Tensor init + IHT"], by["Random init + IHT"], by["ORACLE support refit"]
    assert tensor[1] == "**0.01**" and tensor[2] == "**0.02**"  # oracle lower, but never ranked
    assert not any(c.startswith("**") for c in oracle[1:])
    assert "ORACLE" in [r[0] for r in rows][2] and "lower bound" in [r[0] for r in rows][2]
    assert random[1] == "∞ [2/2 sign failures]" and random[2] == "0.5 [1/2 ∞]"
    assert tensor[3] == "**1.00**" and tensor[4] == "**1.00**" and random[3] == "0.00"
    # test MSE at 0.75: random (0.002) beats tensor (0.004)
    assert random[6] == "**0.002**" and tensor[6] == "0.004"
    assert header[-1].startswith("wall time")


def test_methods_conclusions_state_winner_ratio_and_sign_failures():
    records = _methods_records()
    text = methods_conclusions(_methods_config(), records, "blind")
    assert "**Tensor init + IHT** at 2 of 2 p_gt values" in text
    assert "Random init + IHT in 2 of 4 runs" in text
    assert "oracle" in text.lower()


def test_methods_section_in_written_report(tmp_path):
    md, _ = write_report(tmp_path, [(_methods_config(), _methods_records())], date="2024-01-02",
                         version="0", jobs=1)
    text = md.read_text()
    assert "### Methods summary (blind protocol)" in text
    assert "**Conclusions (from the numbers above):**" in text
    assert "| **0.01** |" in text


def test_init_not_applicable_reason():
    msg = ("Activation 'tanh' has no usable Hermite moment for j3 (order >= 3): m_2..m_4 = [0 0 0] "
           "at σ = 1 (all of m_3, m_4 zero means W is not identifiable from moments)")
    assert init_not_applicable(msg) == "every Hermite moment of order >= 3 it needs is zero"
    assert init_not_applicable("Degenerate tensor decomposition: every ...") == \
        "degenerate tensor decomposition"
    assert init_not_applicable("training diverged (non-finite loss)") is None
    assert init_not_applicable(None) is None


def test_activations_section_says_not_applicable_in_words(tmp_path):
    cfg = {"experiment": {"name": "activations", "title": "Activations", "x": "activation",
                          "values": ["relu2", "tanh"], "metrics": ["init_recovery_error", "recovery_error"],
                          "protocols": ["blind"], "trials": 2, "section": "activations"},
           "methods": [{"label": "Tensor init + IHT"}]}
    records = []
    for s in range(2):
        r = rec("Tensor init + IHT", "relu2", None, seed=s)
        r["metrics"] = {"init_recovery_error": 0.2, "recovery_error": 0.03}
        records.append(r)
        f = rec("Tensor init + IHT", "tanh", None, seed=10 + s, status="failed")
        f["error"] = "Activation 'tanh' has no usable Hermite moment for j3 (order >= 3): m_2..m_4 = [0 0 0]"
        records.append(f)
    md, _ = write_report(tmp_path, [(cfg, records)], date="2024-01-02", version="0", jobs=1)
    text = md.read_text()
    assert "Initialization error before and after training" in text
    row = next(line for line in text.splitlines() if line.startswith("| tanh |"))
    assert row.count("init not applicable: every Hermite moment of order >= 3 it needs is zero") == 2
    assert "| relu2 | 0.2 | 0.03 |" in text


def test_parallel_report_equals_serial(tmp_path):
    experiments = [(_config(), _records()), (_methods_config(), _methods_records())]
    written = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        parts, t0 = {}, time.perf_counter()
        md, html = write_report(out, experiments, date="2024-01-02", version="0", jobs=jobs, timings=parts)
        total = time.perf_counter() - t0
        figures = {p.name: p.read_bytes() for p in sorted((out / "figures").iterdir())}
        written[jobs] = (md.read_text(), html.read_text(), figures)
        # the parts: drawn by other processes (claims meanwhile) only with jobs > 1; together within the call
        assert parts["parallel"] == (jobs > 1) and min(parts["figures"], parts["claims"], parts["document"]) > 0
        assert parts["figures"] + parts["document"] + (0 if parts["parallel"] else parts["claims"]) <= total
    assert written[1][0] == written[2][0]  # REPORT.md
    assert written[1][1] == written[2][1]  # REPORT.html, figures inlined
    assert len(written[1][2]) == 2 and written[1][2] == written[2][2]  # the PNGs, byte for byte
    assert all(name.endswith(".png") for name in written[1][2])  # no SVG unless asked for


def test_parallel_report_leaves_the_garbage_collector_as_it_was(tmp_path, monkeypatch):
    import gc

    # the parent freezes what its forked figure workers inherit, and unfreezes it after, also when
    # drawing fails
    before = gc.get_freeze_count(), gc.get_threshold()
    write_report(tmp_path / "ok", [(_config(), _records())], date="2024-01-02", version="0", jobs=2)
    assert (gc.get_freeze_count(), gc.get_threshold()) == before

    import sparsenet.experiments.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("claims failed")

    monkeypatch.setattr(report, "evaluate_claims", broken)
    with pytest.raises(RuntimeError, match="claims failed"):
        write_report(tmp_path / "bad", [(_config(), _records())], date="2024-01-02", version="0", jobs=2)
    assert (gc.get_freeze_count(), gc.get_threshold()) == before


def test_argmin_flat_minimum_counts_every_tied_value():
    # thresholds that zero the same weights give identical runs: a plateau, not a sharp optimum
    records = sweep("A", XS, lambda x: 1e-6 if 0.02 <= x <= 0.16 else 0.1, trials=5)
    v = evaluate_claim(ARGMIN, records, "blind", x_name="thresh_train")
    assert v.outcome == "inconclusive" and "flat optimum" in v.summary
    assert "{0.025, 0.05, 0.075, 0.1, 0.125, 0.15}" in v.summary
    far = sweep("A", XS, lambda x: 1e-6 if x >= 0.15 else 0.1, trials=5)
    assert evaluate_claim(ARGMIN, far, "blind").outcome == "does not hold"


# --------------------------------------------------------------------------- issue 13 item 6: no half-written report
def test_report_and_figures_are_replaced_atomically(tmp_path, monkeypatch):
    import os

    import sparsenet.experiments.document as document
    import sparsenet.experiments.plots as plots

    write_report(tmp_path, [(_config(), _records())], date="2024-01-02", version="0", jobs=1)
    md, png = tmp_path / "REPORT.md", tmp_path / "figures" / "fig04_recovery_error_vs_thresh_train.png"
    old_md, old_png = md.read_bytes(), png.read_bytes()

    def killed(src, dst):  # the process dies after writing the temporary file, before the rename
        raise KeyboardInterrupt

    for module in (document, plots):
        monkeypatch.setattr(module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, [(_config(), _records()[:20])], date="2099-01-01", version="1", jobs=1)
    assert md.read_bytes() == old_md and png.read_bytes() == old_png  # the old files, whole
    monkeypatch.undo()
    write_report(tmp_path, [(_config(), _records())], date="2099-01-01", version="1", jobs=1)
    assert "2099-01-01" in md.read_text()
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp") and p.name.startswith(".")]
    assert not [n for n in leftovers if "REPORT" in n], leftovers
    assert os.path.getsize(md) > 0


def test_failure_summary_groups_by_protocol_cause_experiment_and_method():
    from sparsenet.experiments.aggregate import failure_summary
    from sparsenet.experiments.config import expand, load_config, shipped_configs

    cfg = load_config([p for p in shipped_configs() if p.stem == "fig04"][0], scale="quick")
    runs = [r for r in expand(cfg) if r.protocol == "report"][:6]
    blind = [r for r in expand(cfg) if r.protocol == "blind"][:1]
    failed = [(r.key, r.label, "training diverged (non-finite loss); try a smaller learning_rate")
              for r in runs] + [(blind[0].key, blind[0].label, "RuntimeError: boom\ntraceback")]
    lines = failure_summary([cfg], failed)
    assert lines[0].startswith("7 runs failed") and "REPORT.md" in lines[0]
    assert len(lines) == 3
    diverged = next(line for line in lines if "training diverged" in line)
    assert "report protocol" in diverged and "6 runs" in diverged and "[expected" in diverged
    assert "fig04:" in diverged and "×" in diverged
    other = next(line for line in lines if "boom" in line)
    assert "blind protocol" in other and "NOT expected" in other
