"""What each command does once its arguments are checked: ``evaluate``, ``compare`` and
``ui`` (``sweep`` lives in :mod:`lycoris_eval.sweep.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lycoris_eval.cli.options import (
    UI_EXTRA_HINT,
    UI_PACKAGES,
    _config,
    check_images_folder,
    check_out_dir,
    check_port,
    check_roots,
    check_ui_packages,
)
from lycoris_eval.config import build_config
from lycoris_eval.errors import InputError, LycorisEvalError
from lycoris_eval.report.answer import answer_text
from lycoris_eval.report.terminal import text_comparison, text_table


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # lazy: tqdm only for the CLI's progress bar

    # lazy: the pipeline imports numpy at its top
    from lycoris_eval.scoring.finished_grid import score_images

    config = _config(args)
    out = args.out or (args.images / "lycoris-eval")
    check_images_folder(args.images)
    check_out_dir(out)
    bars: list[Any] = []  # created on the first progress report, so errors before any work stay clean

    def progress(done: int, total: int, message: str) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="img", desc=message, file=sys.stderr, dynamic_ncols=True))
        bar = bars[0]
        if total and total != bar.total:  # a phase message without a count (0, 0) keeps the count
            bar.total = total
        if message != bar.desc:
            bar.set_description_str(message, refresh=False)
        # advanced by what was done since the last report, so tqdm's rate and ETA are per image
        bar.update(max(0, done - bar.n))

    try:
        # the one path every front end scores by: the same files as the tab, the Script and the API
        scored = score_images(args.images, out, config, progress=progress)
    except OSError as exc:
        raise LycorisEvalError(f"--out {out}: cannot write the reports ({exc.strerror or exc})") from None
    except BaseException:
        for bar in bars:
            bar.leave = False  # the error line takes the bar's place: stderr ends in one line
        raise
    finally:
        for bar in bars:
            bar.close()
    document, paths, files = scored.document, scored.reports, scored.figures
    if not args.quiet:
        answer = answer_text(scored.tables["answer"])  # computed once, with the report
        if answer:
            print("The answer\n==========\n" + answer + "\n")
        print(text_table(document))
    figures = sum(1 for name in files if name != "markdown")
    print(f"wrote {out}: {paths['json'].name}, {paths['csv'].name}, comparisons.csv, report.md, {figures} figures")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from lycoris_eval.compare.select import select  # lazy: select imports numpy at its top
    from lycoris_eval.scoring.document import SCHEMA as SCORES_SCHEMA  # lazy: document imports numpy

    path = args.scores / "scores.json" if args.scores.is_dir() else args.scores
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read scores ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCORES_SCHEMA:
        raise InputError(f'{path}: this is not a scores.json of lycoris-eval (no "schema": "{SCORES_SCHEMA}")')
    print(text_comparison(select(document, args.a, args.b, {"metric": args.metric}), document))
    return 0


def run_ui(args: argparse.Namespace) -> int:
    check_roots(args.roots)
    check_port(args.port)
    check_ui_packages()
    from lycoris_eval.tab.ui import launch_standalone  # lazy: ui imports numpy at its top

    config = build_config(
        {
            "device": args.device,
            "precision": args.precision,
            "weights_dir": args.weights_dir,
            "random_weights": args.random_weights,
            "allow_download": not args.offline,
        }
    )
    try:
        launch_standalone(args.roots, args.port, config)
    except ModuleNotFoundError as exc:  # found but not importable (a half-installed extra)
        if (exc.name or "").split(".")[0] not in UI_PACKAGES:
            raise
        raise InputError(f"the standalone app cannot import {exc.name}; {UI_EXTRA_HINT}") from None
    return 0


def interrupted_message(args: argparse.Namespace) -> str:
    """What survives a Ctrl-C: the cache keeps finished features, unless it was turned off."""
    if args.command != "evaluate":
        return "lycoris-eval: interrupted"
    if args.no_cache:
        return "lycoris-eval: interrupted; nothing was kept (--no-cache: features were not cached)"
    return "lycoris-eval: interrupted; features computed so far are in the cache (run again to resume)"
