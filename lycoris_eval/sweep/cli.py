"""``lycoris-eval sweep SPEC.json --webui URL [--webui URL ...]``: the command's arguments,
checks, progress and summary. Imports Ray only once the command runs (after the checks
that need none), and says how to get it when it is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lycoris_eval.cli.options import check_out_dir, settings_from_args
from lycoris_eval.config import DEFAULT_SWEEP_CHUNK, EvalConfig, build_config
from lycoris_eval.errors import InputError
from lycoris_eval.grid.spec import GridSpec
from lycoris_eval.report.answer import answer_text
from lycoris_eval.report.terminal import text_table

SWEEP_HINT = (
    "the sweep needs Ray, which cannot live in the WebUI's environment: install the `sweep` extra into "
    "its own environment (bash tools/setup.sh --sweep makes .venv-sweep; or pip install 'sd-webui-lycoris-eval[sweep]')"
)


def add_sweep_parser(sub: Any, add_encoder_options: Callable[[argparse.ArgumentParser], None]) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a grid spec across several WebUIs (their HTTP API) through Ray; resumable; optionally scored",
    )
    sw.add_argument("spec", type=Path, help="grid spec JSON (the fields of POST /lycoris-eval/v1/grid)")
    sw.add_argument(
        "--webui",
        action="append",
        default=[],
        metavar="URL",
        required=True,
        help="a WebUI started with --api (repeatable, one Ray actor each); http://USER:PASS@HOST:PORT for --api-auth",
    )
    sw.add_argument(
        "--webui-auth", metavar="USER:PASS", help="credentials for every WebUI (or $LYCORIS_EVAL_WEBUI_AUTH)"
    )
    sw.add_argument(
        "--ray-address", help="join a running Ray cluster (`auto`, or HOST:PORT); default: start a local one"
    )
    sw.add_argument("--num-cpus", type=int, help="CPUs of the local Ray started without --ray-address")
    sw.add_argument(
        "--out", type=Path, default=Path("lycoris-eval-runs"), help="runs folder (default ./lycoris-eval-runs)"
    )
    sw.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_SWEEP_CHUNK,
        help="cells handed to a WebUI at once, one checkpoint each (default %(default)s)",
    )
    sw.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="times a chunk is handed out before its cells fail (default %(default)s)",
    )
    sw.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds one image may take before its WebUI counts as gone (default %(default)s)",
    )
    score = sw.add_mutually_exclusive_group()
    score.add_argument(
        "--score",
        dest="score",
        action="store_true",
        default=None,
        help="score when finished (default: as the spec says)",
    )
    score.add_argument(
        "--no-score",
        dest="score",
        action="store_false",
        help="do not score (overrides the spec; default: as the spec says)",
    )
    sw.add_argument(
        "--score-actors", type=int, help="encoder actors in the scoring pool (default: one per GPU, else 1)"
    )
    add_encoder_options(sw)
    sw.add_argument("--quiet", action="store_true", help="no progress bar")


def check_sweep_args(args: argparse.Namespace) -> None:
    if args.chunk_size < 1:
        raise InputError(f"--chunk-size {args.chunk_size}: give 1 or more")
    if args.max_attempts < 1:
        raise InputError(f"--max-attempts {args.max_attempts}: give 1 or more")
    if not args.spec.is_file():
        raise InputError(f"spec {args.spec}: no such file")


def check_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise InputError(SWEEP_HINT)


def scoring_config(args: argparse.Namespace, spec: GridSpec) -> EvalConfig | None:
    """The sweep's scoring config (None: not scored): the encoder options, ``--metrics`` and
    ``--trained-on``, and what the spec asks for (its reference, distractors, trigger)."""
    if not (spec.score if args.score is None else args.score):
        return None
    return build_config(
        settings_from_args(args), metrics=args.metrics, trained_on=args.trained_on, **spec.scoring_request()
    )


def run_sweep_command(args: argparse.Namespace) -> int:
    # lazy: preflight imports PIL at its top
    from lycoris_eval.sweep.preflight import check_webuis, read_spec, sweep_run_id

    check_sweep_args(args)
    check_out_dir(args.out)
    spec, raw, confirm = read_spec(args.spec)
    check_ray()
    auth = args.webui_auth or os.environ.get("LYCORIS_EVAL_WEBUI_AUTH") or None
    config = scoring_config(args, spec)
    prepared = check_webuis(spec, args.webui, auth, args.timeout)
    prepared.run_id = sweep_run_id(spec, raw)
    prepared.confirm_large = confirm
    # lazy: driver imports ray (only in the sweep's environment)
    from lycoris_eval.sweep.driver import SweepOptions, run_sweep

    options = SweepOptions(
        urls=list(prepared.facts),
        auth=auth,
        runs_root=args.out,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        chunk_size=args.chunk_size,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        progress=not args.quiet,
    )
    try:
        result = run_sweep(prepared, options)
    except KeyboardInterrupt:
        print(
            "lycoris-eval: interrupted; finished images are kept: run the same command again to finish", file=sys.stderr
        )
        return 130
    print(summary_text(result))
    if result.left:
        print(
            f"lycoris-eval: error: {result.left} images not made: no WebUI left to make them; "
            "run the same command again (with working --webui URLs) to finish",
            file=sys.stderr,
        )
        return 2
    if config is not None:
        return _score(result.run_dir, config, args)
    return 0


def _score(run_dir: Path, config: Any, args: argparse.Namespace) -> int:
    from lycoris_eval.sweep.scoring import score_run  # lazy: scoring imports numpy at its top

    scored = score_run(run_dir, config, args.score_actors, args.ray_address, args.num_cpus)
    if not args.quiet:
        answer = answer_text(scored.tables.get("answer") or [])  # the answer first, as evaluate prints it
        print("\n\n".join(part for part in (answer, text_table(scored.document)) if part))
    print(f"wrote {scored.reports['json']} and {scored.reports['csv']}, with report.md and the figures beside them")
    return 0


def summary_text(result: Any) -> str:
    """The final summary: images per WebUI, checkpoint loads, retries, time."""
    lines = [
        f"sweep {result.run_id}: {result.total} cells, {result.done_before} already done, "
        f"{result.generated} made now, {len(result.failed)} failed, {result.retries} chunk retries, "
        f"{result.wall_s:.1f} s (Ray start {result.ray_s:.1f} s)",
        f"run folder: {result.run_dir}",
        f"{'WebUI':<32} {'images':>6} {'failed':>6} {'loads':>5} {'chunks':>6} {'busy s':>7} {'idle s':>7}  state",
    ]
    for stats in result.workers.values():
        idle = max(0.0, result.loop_s - stats.chunk_s)
        lines.append(
            f"{stats.url:<32} {stats.images:>6} {stats.failed:>6} {stats.loads:>5} {stats.chunks:>6} "
            f"{stats.chunk_s:>7.1f} {idle:>7.1f}  {stats.state}{': ' + stats.error if stats.error else ''}"
        )
    for chunk in result.given_up:
        lines.append(f"given up: {chunk['cells']} cells of {chunk['checkpoint']} ({chunk['why']})")
    return "\n".join(lines)
