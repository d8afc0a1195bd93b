"""The CLI registers the estimator's commands by name alone unless one of them runs (fast `list`, `--help`)."""

import argparse

import pytest

from sparsenet import cli


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {c.dest: c.help for c in action._choices_actions}


def test_placeholders_carry_the_real_help_text():
    real = _subcommands(cli.build_parser())  # argv None: everything loaded
    lazy = _subcommands(cli.build_parser(["list"]))
    assert real == lazy
    assert {"fit", "predict"} <= set(lazy)


def test_model_command_gets_its_real_options():
    args = cli.build_parser(["predict", "m.npz", "d.csv"]).parse_args(["predict", "m.npz", "d.csv"])
    assert args.model == "m.npz" and args.data == "d.csv"


def test_reproduce_breakdown_names_runs_report_and_slowest(capsys):
    from sparsenet.experiments.runner import SweepResult

    result = SweepResult(total=10, skipped=4, done=6, failed=[], tasks=3,
                         experiment_time={"fig04": 2.0, "fig10": 5.0, "noise": 1.0})
    cli._print_breakdown(result, runs_s=7.25, report_s=3.5, total_s=10.75, top=2)
    out = capsys.readouterr().out
    assert "runs 7.2 s for 6 runs in 3 tasks (4 already stored)" in out
    assert "figures and report 3.5 s; total 10.8 s" in out
    assert "fig10 5.0, fig04 2.0" in out and "noise" not in out


@pytest.mark.parametrize("parallel", [True, False])
def test_reproduce_breakdown_splits_figures_claims_and_files(capsys, parallel):
    from sparsenet.experiments.runner import SweepResult

    parts = {"figures": 2.0, "claims": 0.75, "document": 0.25, "parallel": parallel}
    cli._print_breakdown(SweepResult(total=1, skipped=0, done=1, failed=[], tasks=1), runs_s=1.0, report_s=3.5,
                         total_s=4.5, parts=parts)
    out = capsys.readouterr().out
    # what is left of the report's time is loading the runs; serial claims are a part of their own
    rest = 3.5 - 2.0 - 0.25 - (0.0 if parallel else 0.75)
    claims = "claims 0.8 s meanwhile" if parallel else "claims 0.8 s,"
    assert f"figures and report 3.5 s (figures 2.0 s, {claims}" in out
    assert f"tables and files 0.2 s, loading the runs {rest:.1f} s); total 4.5 s" in out


def test_resumed_reproduce_says_nothing_was_computed(capsys):
    from sparsenet.experiments.runner import SweepResult

    cli._print_breakdown(SweepResult(total=10, skipped=10, done=0, failed=[]), runs_s=0.2, report_s=3.0, total_s=3.2)
    out = capsys.readouterr().out
    assert "nothing to compute: all 10 runs already stored" in out
    assert "slowest" not in out


def test_list_imports_no_numpy():
    """`sparsenet list` validates and counts every shipped config without numpy (it answers at once)."""
    import subprocess
    import sys

    code = ("import sys; from sparsenet.cli import main; main(['list']); "
            "print(sorted(m for m in ('numpy', 'scipy', 'sklearn', 'matplotlib', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "phase_transition" in out  # the table was printed
    assert out.strip().splitlines()[-1] == "[]"
