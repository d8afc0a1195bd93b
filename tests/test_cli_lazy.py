"""The CLI registers the estimator's commands by name alone unless one of them runs (fast `list`, `--help`)."""

import argparse

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
