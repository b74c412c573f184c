"""`--help` (issue #23): every option says what it does, and every option with a default
says which."""

from __future__ import annotations

import argparse

from lycoris_eval.cli.main import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_names_its_default():
    missing, no_default = [], []
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(label)
                continue
            shown = action.default not in (None, False, [], ()) and action.option_strings
            if shown and "default" not in action.help:
                no_default.append(label)
    assert missing == []
    assert no_default == []
