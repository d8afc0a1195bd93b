"""The statistics layer on synthetic per-trial tables with known answers (scipy/statsmodels as oracles)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sparsenet.experiments.claims import ALPHA, CLAIM_KINDS, Verdict, _tau_b, adjust, evaluate_claim, holm, \
    evaluate_claims, wilson_interval

CFG = {"experiment": {"name": "figXX", "x": "thresh_train", "resolution": {"recovery_error": 1e-4}}}
XS = [0.025, 0.05, 0.075, 0.1, 0.125]


def rec(method, x, value, trial, *, status="ok", protocol="blind", seed=None, metric="recovery_error"):
    return {"run_key": f"{protocol}-{method}-{x}-{trial}", "protocol": protocol, "method": method, "x": x,
            "trial": trial, "seed": trial if seed is None else seed, "status": status,
            "metrics": {} if value is None else {metric: value}, "history": {}}


def table(values):
    """records from {method: {(x, trial): value}} (None = a failed run)."""
    return [rec(m, x, v, t, status="ok" if v is not None else "failed")
            for m, cells in values.items() for (x, t), v in cells.items()]


COMPARE = {"kind": "compare", "metric": "recovery_error", "better": "A", "worse": "B", "text": "A < B"}
ARGMIN = {"kind": "argmin", "metric": "recovery_error", "method": "A", "expect": 0.075, "tolerance": 0.025,
          "text": "min near 0.075"}


def trend(direction="decreasing"):
    return {"kind": "trend", "metric": "recovery_error", "method": "A", "direction": direction, "text": "t"}


# --------------------------------------------------------------------------------------------------
# compare
def test_equal_at_the_noise_floor_is_never_does_not_hold():
    rng = np.random.default_rng(0)
    vals = {m: {(x, t): float(10 ** rng.uniform(-8, -5)) for x in XS for t in range(5)} for m in "AB"}
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "inconclusive"
    assert "equal within the resolution" in v.why
    assert "equal in 25" in v.detail


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(1e-9, 9e-5), min_size=10, max_size=10),
       st.lists(st.floats(1e-9, 9e-5), min_size=10, max_size=10))
def test_noise_floor_property(a, b):
    vals = {"A": {(XS[i % 5], i // 5): a[i] for i in range(10)},
            "B": {(XS[i % 5], i // 5): b[i] for i in range(10)}}
    assert evaluate_claim(COMPARE, table(vals), "blind", config=CFG).outcome != "does not hold"


def test_tenfold_improvement_in_every_trial_holds_with_scipy_p_value():
    rng = np.random.default_rng(1)
    base = {(x, t): float(10 ** rng.uniform(-3, 0)) for x in XS for t in range(5)}
    vals = {"B": base, "A": {k: v / 10 for k, v in base.items()}}
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "holds"
    keys = sorted(base)
    d = np.array([base[k] - base[k] / 10 for k in keys])
    assert v.p_value == pytest.approx(stats.wilcoxon(d, zero_method="zsplit").pvalue)
    assert v.n_trials == 5 and v.n_failed == 0
    assert "lower in 25 pairs" in v.detail and "95 % bootstrap CI" in v.detail
    # the converse claim is refuted by the same data
    flipped = dict(COMPARE, better="B", worse="A")
    assert evaluate_claim(flipped, table(vals), "blind", config=CFG).outcome == "does not hold"


def test_a_difference_only_pairing_detects():
    rng = np.random.default_rng(2)
    # trials differ by orders of magnitude; A is 5 % lower than B within every (x, trial)
    base = {(x, t): float(10.0 ** t * rng.uniform(0.5, 1.5)) for x in XS for t in range(5)}
    vals = {"B": base, "A": {k: 0.95 * v for k, v in base.items()}}
    a = np.array([vals["A"][k] for k in sorted(base)])
    b = np.array([vals["B"][k] for k in sorted(base)])
    assert stats.mannwhitneyu(a, b).pvalue > 0.5  # unpaired, the difference is invisible
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "holds" and v.p_value < 1e-4


def test_failed_runs_count_as_the_worst_outcome_never_dropped():
    vals = {"A": {(x, t): 0.5 for x in XS for t in range(5)},
            "B": {(x, t): None for x in XS for t in range(5)}}  # B fails in every run
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "holds" and v.n_failed == 25
    assert "difference ('A' − 'B') −∞" in v.detail  # a failure is infinitely worse, not a number
    both = {"A": vals["B"], "B": vals["B"]}
    assert evaluate_claim(COMPARE, table(both), "blind", config=CFG).outcome == "inconclusive"


def test_too_few_trials_say_why():
    vals = {"A": {(0.1, t): 0.1 for t in range(3)}, "B": {(0.1, t): 0.2 for t in range(3)}}
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "inconclusive" and "smallest two-sided p-value" in v.why


def test_no_data():
    vals = {"A": {(0.1, t): 0.1 for t in range(3)}}
    v = evaluate_claim(COMPARE, table(vals), "blind", config=CFG)
    assert v.outcome == "no data" and "'B'" in v.why


# --------------------------------------------------------------------------------------------------
# trend
def test_monotone_trend_with_one_outlier_trial_holds_with_kendall_p_value():
    xs = [2000.0, 4000.0, 6000.0, 8000.0, 10000.0]
    rng = np.random.default_rng(3)
    vals = {(x, t): float(100.0 / x * rng.uniform(0.9, 1.1)) for x in xs for t in range(4)}
    vals.update({(x, 4): float(rng.uniform(0.01, 0.1)) for x in xs})  # the outlier trial
    cfg = {"experiment": {"x": "n"}}
    v = evaluate_claim(trend(), table({"A": vals}), "blind", config=cfg)
    keys = sorted(vals)
    tau = stats.kendalltau([k[0] for k in keys], [vals[k] for k in keys])
    assert v.outcome == "holds"
    assert v.p_value == pytest.approx(tau.pvalue) and f"{tau.statistic:+.2f}" in v.detail
    assert evaluate_claim(trend("increasing"), table({"A": vals}), "blind", config=cfg).outcome == "does not hold"


def test_flat_curve_at_the_resolution_is_inconclusive_not_refuted():
    vals = {(x, t): 1e-6 * (1 + x) for x in XS for t in range(5)}  # rising, but all below 1e-4
    v = evaluate_claim(trend("decreasing"), table({"A": vals}), "blind", config=CFG)
    assert v.outcome == "inconclusive" and "flat" in v.why


def test_vectorized_tau_b_equals_scipy():
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = np.repeat(np.arange(5.0), 4)
        y = np.round(rng.random(20), 1)
        assert _tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)


def test_tau_b_of_resamples_equals_the_pairwise_formula_to_the_bit():
    """_tau_b's counts of repeated pairs against the sum over every pair of every resample."""
    rng = np.random.default_rng(11)
    for n, levels in ((5, 3), (20, 4), (25, 1000), (7, 1)):
        x = np.repeat(np.arange(5.0), -(-n // 5))[:n]
        y = np.round(rng.random(n) * levels) / levels
        idx = rng.integers(0, n, (300, n))
        xs, ys = x[idx], y[idx]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])
        sy = np.sign(ys[:, :, None] - ys[:, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            pairwise = (sx * sy).sum((-1, -2)) / np.sqrt(np.abs(sx).sum((-1, -2)) * np.abs(sy).sum((-1, -2)))
        np.testing.assert_array_equal(_tau_b(xs, ys), pairwise)  # NaN where a resample is constant
        np.testing.assert_array_equal(_tau_b(xs.T, ys.T, axis=0), pairwise)
    assert np.isnan(_tau_b([1.0, 2.0, np.nan], [1.0, 2.0, 3.0]))


def test_tau_b_orders_infinite_values():
    """±inf are ordered values (scipy's kendalltau ranks them): τ-b equals scipy's, and equals τ-b of a
    finite sample in the same order to the bit (it was NaN: inf − inf in the pairwise signs)."""
    rng = np.random.default_rng(12)
    for n in (5, 9, 20):
        x = np.repeat(np.arange(4.0), -(-n // 4))[:n]
        y = np.round(rng.normal(size=n), 1)
        y[rng.choice(n, 3, replace=False)] = [np.inf, -np.inf, np.inf]
        finite = np.where(np.isposinf(y), 1e6, np.where(np.isneginf(y), -1e6, y))
        assert _tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, rel=1e-12)
        assert _tau_b(x, y) == _tau_b(x, finite) and _tau_b(y, x) == _tau_b(finite, x)
        idx = rng.integers(0, n, (50, n))
        np.testing.assert_array_equal(_tau_b(x[idx], y[idx]), _tau_b(x[idx], finite[idx]))


# --------------------------------------------------------------------------------------------------
# argmin
def test_flat_noisy_curve_is_a_flat_optimum_or_inconclusive():
    rng = np.random.default_rng(5)
    vals = {(x, t): float(rng.uniform(0.3, 0.5)) for x in XS for t in range(5)}
    v = evaluate_claim(ARGMIN, table({"A": vals}), "blind", config=CFG)
    assert v.outcome == "inconclusive"
    assert "not significantly worse than it" in v.detail


def test_sharp_minimum_inside_holds_outside_does_not():
    rng = np.random.default_rng(6)
    xs = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2]
    for x_min, outcome in ((0.075, "holds"), (0.175, "does not hold")):
        vals = {(x, t): float(0.01 + (x - x_min) ** 2 * 100 + 1e-3 * rng.random()) for x in xs for t in range(5)}
        v = evaluate_claim(ARGMIN, table({"A": vals}), "blind", config=CFG)
        assert v.outcome == outcome, v.summary
        assert f"Lowest median recovery_error at thresh_train = {x_min:g}" in v.detail


def test_exact_recovery_over_a_range_is_a_flat_optimum():
    vals = {(x, t): (1e-6 if 0.025 <= x <= 0.15 else 0.1) for x in
            [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2] for t in range(5)}
    v = evaluate_claim(ARGMIN, table({"A": vals}), "blind", config=CFG)
    assert v.outcome == "inconclusive" and "flat optimum" in v.why
    assert "{0.025, 0.05, 0.075, 0.1, 0.125, 0.15}" in v.detail


# --------------------------------------------------------------------------------------------------
# invariance (hypothesis)
def _random_table(seed):
    rng = np.random.default_rng(seed)
    xs = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15]
    shift = rng.uniform(-0.05, 0.05)
    return {m: {(x, t): (None if rng.random() < 0.08 else
                         float(abs(x - 0.075 - shift) * rng.uniform(0.5, 2.0) + k * rng.uniform(0, 0.02)))
                for x in xs for t in range(5)} for k, m in enumerate("AB")}


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.permutations(range(5)))
def test_verdicts_invariant_to_trial_order_and_monotone_relabelling(seed, perm):
    vals = _random_table(seed)
    permuted = {m: {(x, perm[t]): v for (x, t), v in cells.items()} for m, cells in vals.items()}
    f = lambda x: 3.0 * x + 1.0  # noqa: E731 - affine: the argmin window maps to expect ± tolerance
    g = lambda x: math.exp(20 * x)  # noqa: E731 - any increasing map for compare and trend
    claims = [COMPARE, trend("increasing"), ARGMIN]
    base = [evaluate_claim(c, table(vals), "blind", config=CFG).outcome for c in claims]
    assert base == [evaluate_claim(c, table(permuted), "blind", config=CFG).outcome for c in claims]
    for h, argmin in ((g, None), (f, dict(ARGMIN, expect=f(0.075), tolerance=3.0 * 0.025))):
        relabelled = {m: {(h(x), t): v for (x, t), v in cells.items()} for m, cells in vals.items()}
        got = [evaluate_claim(c, table(relabelled), "blind", config=CFG).outcome for c in claims[:2]]
        assert got == base[:2]
        if argmin:
            assert evaluate_claim(argmin, table(relabelled), "blind", config=CFG).outcome == base[2]


# --------------------------------------------------------------------------------------------------
# the report's family: Holm, Wilson, the kinds config.py reads
def _multipletests_holm(ps):
    """statsmodels' multipletests(ps, alpha=ALPHA, method="holm"), the oracle, without the gc.collect()
    it runs on every call (~0.1 s in a test process; it does not touch the result)."""
    from unittest import mock

    from statsmodels.stats.multitest import multipletests

    with mock.patch("gc.collect"):
        return multipletests(ps, alpha=ALPHA, method="holm")


def test_holm_matches_statsmodels_and_decides_the_family():
    ps = [0.001, 0.02, 0.04, 0.3]
    raw = [Verdict("inconclusive", "d", p_value=p, p_adjusted=p, sign=1) for p in ps]
    out = adjust(raw)
    expected = _multipletests_holm(ps)[1]
    assert [v.p_adjusted for v in out] == pytest.approx(expected)
    assert [v.outcome for v in out] == ["holds" if p <= ALPHA else "inconclusive" for p in expected]
    assert out[2].outcome == "inconclusive"  # 0.04 alone would hold; not in a family of four


def test_holm_equals_statsmodels_to_the_bit():
    """claims.holm against statsmodels' multipletests on random families: ties, values near 1, one p."""

    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 17, 60):
        for _ in range(20):
            ps = rng.choice([rng.uniform(0, 1), rng.uniform(0, 0.01), 1.0, 0.5], size=m) \
                if rng.uniform() < 0.3 else rng.uniform(0, 1, m) ** 3
            np.testing.assert_array_equal(holm(ps), _multipletests_holm(ps)[1])


def test_holm_decisions_equal_statsmodels_reject_at_alpha():
    """A claim leaning the claimed way holds exactly where statsmodels' multipletests(method="holm")
    rejects at α, including adjusted p-values equal to α (a level-α test rejects at p ≤ α)."""

    rng = np.random.default_rng(8)
    families = [[0.05], [0.05, 0.025], [0.0125] * 4, [0.025, 0.05, 0.5], [0.0, 1.0, 0.05]]
    families += [list(rng.choice([0.0, 0.01, 0.0125, 0.025, 0.05, 0.05 / 3, 0.5, 1.0], size=m))
                 for m in (1, 2, 3, 4, 6) for _ in range(4)]
    for ps in families:
        raw = [Verdict("inconclusive", "d", p_value=p, p_adjusted=p, sign=1) for p in ps]
        reject = _multipletests_holm(ps)[0]
        assert [v.outcome for v in adjust(raw)] == ["holds" if r else "inconclusive" for r in reject], ps


def test_evaluate_claims_adjusts_across_experiments():
    rng = np.random.default_rng(7)
    base = {(x, t): float(rng.uniform(0.1, 1)) for x in XS for t in range(5)}
    good = {"B": base, "A": {k: v / 2 for k, v in base.items()}}
    cfg = dict(CFG, claims=[COMPARE], experiment=dict(CFG["experiment"], protocols=["blind"]))
    rows = evaluate_claims([(cfg, table(good)), (cfg, table(good))])
    assert len(rows) == 2
    p = rows[0][3].p_value
    assert rows[0][3].p_adjusted == pytest.approx(min(1.0, 2 * p))
    assert "Holm-adjusted" in rows[0][3].summary and "α = 0.05" in rows[0][3].summary


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 5), (2, 5), (5, 5), (17, 40)):
        assert wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_wilson_interval_closed_form_equals_scipy_to_the_bit():
    from scipy.stats import binomtest

    for n in range(1, 61):
        for k in range(n + 1):
            for confidence in (0.95, 0.9):
                ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
                assert wilson_interval(k, n, confidence) == (ci.low, ci.high), (k, n, confidence)


def test_config_reads_the_claim_kinds_from_the_claims_module():
    from sparsenet.experiments.config import ConfigError, parse_config

    doc = {"experiment": {"name": "t", "x": "thresh_train", "values": [0.1, 0.2], "metrics": ["recovery_error"]},
           "methods": [{"label": "A", "method": "iht"}],
           "claims": [{"kind": "argmin", "metric": "recovery_error", "method": "A", "text": "t"}]}
    assert set(CLAIM_KINDS) == {"argmin", "trend", "compare"}
    with pytest.raises(ConfigError, match="Missing required key 'expect'"):
        parse_config(doc)
    doc["claims"][0]["kind"] = "median"
    with pytest.raises(ConfigError, match="'kind' key"):
        parse_config(doc)


def test_one_trial_is_written_in_the_singular():
    """A claim decided from one trial says "1 trial" (and "of 1 trial"), never "1 trials"."""
    vals = {"A": {(x, 0): 0.1 * (i + 1) for i, x in enumerate([0.1, 0.2, 0.3])},
            "B": {(x, 0): 0.5 * (i + 1) for i, x in enumerate([0.1, 0.2, 0.3])}}
    for claim in (COMPARE, trend("increasing")):
        v = evaluate_claim(claim, table(vals), "blind", config=CFG)
        text = f"{v.why} {v.summary}"
        assert "1 trials" not in text and "1 trial" in text, text


def test_normal_quantile_table_equals_scipy_and_spares_its_import():
    """The tabulated Φ⁻¹ values equal scipy.special.ndtri to the bit, and the 95 % Wilson intervals the
    figures draw (claims' and plot_contours') do not import scipy.special in a fresh process (the
    report's parent imports both modules before forking its figure workers)."""
    import subprocess
    import sys

    from scipy.special import ndtri

    from sparsenet.experiments import claims

    for q, z in claims._NORMAL_QUANTILES.items():
        assert z == float(ndtri(q)), q
    code = ("import sys; from sparsenet.experiments.claims import wilson_interval; wilson_interval(3, 7); "
            "from sparsenet.experiments.plot_contours import wilson_bounds; wilson_bounds(0.5, 4); "
            "print('scipy.special' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
