"""Command line: ``python -m lycoris_eval evaluate IMAGES_DIR [options]``.

Every problem with the user's input ends in one line on stderr, ``lycoris-eval: error: …``,
and exit code 2; the checks that need no model run before any encoding work, so a typo in
``--out`` costs nothing and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lycoris_eval import __version__
from lycoris_eval.cli.commands import interrupted_message, run_compare, run_evaluate, run_ui
from lycoris_eval.cli.options import add_encoder_options
from lycoris_eval.config import DEFAULT_DEVICE, DEFAULT_PRECISION, DEFAULT_UI_PORT
from lycoris_eval.errors import LycorisEvalError, exit_code
from lycoris_eval.scoring.precision import PRECISIONS
from lycoris_eval.sweep.cli import add_sweep_parser, run_sweep_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lycoris_eval", description="Score LoRA/LyCORIS images with the LyCORIS paper's metrics."
    )
    parser.add_argument("--version", action="version", version=f"lycoris-eval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a folder of images (WebUI infotext groups them into cells)")
    ev.add_argument("images", type=Path, help="folder of generated images")
    ev.add_argument("--reference", type=Path, help="folder of target reference images (the LoRA's training art)")
    ev.add_argument(
        "--distractor", type=Path, action="append", default=[], help="folder of a distractor set (repeatable)"
    )
    ev.add_argument(
        "--trigger",
        action="append",
        default=[],
        metavar="WORD=TEXT",
        help="replace a trigger word by a description for text alignment (WORD= removes it)",
    )
    ev.add_argument(
        "--out", type=Path, help="report folder: scores, CSVs, report.md, figures (default: IMAGES/lycoris-eval)"
    )
    add_encoder_options(ev)
    ev.add_argument("--quiet", action="store_true", help="no progress bar or table")
    cmp = sub.add_parser("compare", help="A against B from a scores.json: differences, 95%% intervals, verdicts")
    cmp.add_argument("scores", type=Path, help="scores.json, or the folder holding it")
    cmp.add_argument("a", help="a checkpoint, adapter, weight or 'baseline' (checkpoint:NAME to be explicit)")
    cmp.add_argument("b", help="the same kind as A")
    cmp.add_argument("--metric", help="only this metric")

    add_sweep_parser(sub, add_encoder_options)
    ui = sub.add_parser("ui", help="serve the Evaluate tab on 127.0.0.1 (folders and runs, no generation)")
    ui.add_argument("roots", type=Path, nargs="*", help="folders the UI may read (default: the current folder)")
    ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help="port on 127.0.0.1 (default %(default)s)")
    ui.add_argument(
        "--device", default=DEFAULT_DEVICE, help="scoring device: auto, cpu, cuda, cuda:N, mps (default %(default)s)"
    )
    ui.add_argument(
        "--precision", choices=PRECISIONS, default=DEFAULT_PRECISION, help="as for evaluate (default %(default)s)"
    )
    ui.add_argument(
        "--weights-dir", type=Path, help="folder holding the encoders' weights files (default: the library caches)"
    )
    ui.add_argument("--random-weights", action="store_true", help="dry run with random encoders (reports say so)")
    ui.add_argument("--offline", action="store_true", help="never try to download weights")
    return parser


# --------------------------------------------------------------------------------------
# checks that run before any work


# --------------------------------------------------------------------------------------
# commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "ui":
            return run_ui(args)
        if args.command == "compare":
            return run_compare(args)
        if args.command == "sweep":
            return run_sweep_command(args)
    except LycorisEvalError as exc:
        print(f"lycoris-eval: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2
