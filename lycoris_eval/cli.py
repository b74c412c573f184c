"""Command line: ``python -m lycoris_eval evaluate IMAGES_DIR [options]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import LycorisEvalError
from .metrics import DEFAULT_METRICS, METRICS


def _metric_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return names


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x.strip().removeprefix("conv_")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"layers must look like 1,2,3 or conv_1,conv_2; got {text!r}") from None


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
        "--metrics",
        type=_metric_list,
        default=DEFAULT_METRICS,
        help=f"comma-separated; default: {','.join(DEFAULT_METRICS)}",
    )
    ev.add_argument(
        "--out", type=Path, help="output folder for scores.json and scores.csv (default: IMAGES/lycoris-eval)"
    )
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    ev.add_argument("--weights-dir", type=Path, help="folder holding the encoders' weights files")
    ev.add_argument(
        "--random-weights",
        action="store_true",
        help="use randomly initialised encoders (pipeline test only; reports say so)",
    )
    ev.add_argument("--offline", action="store_true", help="never try to download weights")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--cache-dir", type=Path, help="feature cache folder (default ~/.cache/lycoris-eval)")
    ev.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    ev.add_argument("--clip-model", default="ViT-L-14", help="open_clip model name (paper: ViT-L-14)")
    ev.add_argument("--clip-pretrained", default="datacomp_xl_s13b_b90k", help="open_clip pretrained tag")
    ev.add_argument(
        "--clip-resize",
        choices=("resize", "crop"),
        default="resize",
        help="resize: the paper's 224x224 stretch; crop: open_clip's resize + center crop",
    )
    ev.add_argument("--dinov2-arch", default="vitl14", choices=("vits14", "vitb14", "vitl14"))
    ev.add_argument("--tutorial-layers", type=_layers, help="tutorial style loss layers, e.g. 1,2,3,4,5 (conv_N)")
    ev.add_argument("--tutorial-random-layers", type=int, help="pick this many conv layers at random (seeded)")
    ev.add_argument("--tutorial-seed", type=int, default=0)
    ev.add_argument("--vendi-q", type=float, default=1.0)
    ev.add_argument("--quiet", action="store_true", help="no progress bar or table")
    ui = sub.add_parser("ui", help="serve the Evaluate tab on 127.0.0.1 (folders and runs, no generation)")
    ui.add_argument("roots", type=Path, nargs="*", help="folders the UI may read (default: the current folder)")
    ui.add_argument("--port", type=int, default=7861)
    ui.add_argument("--device", default="auto")
    ui.add_argument("--weights-dir", type=Path)
    ui.add_argument("--random-weights", action="store_true", help="dry run with random encoders (reports say so)")
    ui.add_argument("--offline", action="store_true")
    return parser


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .evaluate import EvalConfig, evaluate
    from .prompts import parse_trigger_mapping
    from .report import text_table, write_reports

    config = EvalConfig(
        metrics=args.metrics,
        reference_dir=args.reference,
        distractor_dirs=tuple(args.distractor),
        trigger=parse_trigger_mapping(args.trigger),
        device=args.device,
        weights_dir=args.weights_dir,
        random_weights=args.random_weights,
        allow_download=not args.offline,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        clip_model=args.clip_model,
        clip_pretrained=args.clip_pretrained,
        clip_resize=args.clip_resize,
        dinov2_arch=args.dinov2_arch,
        tutorial_layers=args.tutorial_layers,
        tutorial_random_layers=args.tutorial_random_layers,
        tutorial_seed=args.tutorial_seed,
        vendi_q=args.vendi_q,
    )
    bars: list[Any] = []  # created on the first progress report, so errors before any work stay clean

    def progress(done: int, total: int, message: str) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="img", desc=message, file=sys.stderr))
        bar = bars[0]
        bar.total = total
        bar.n = done
        bar.set_description(message)
        bar.refresh()

    try:
        document = evaluate(args.images, config, progress)
    finally:
        for bar in bars:
            bar.close()
    out = args.out or (args.images / "lycoris-eval")
    paths = write_reports(document, out)
    if not args.quiet:
        print(text_table(document))
    print(f"wrote {paths['json']} and {paths['csv']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "ui":
            from .evaluate import EvalConfig
            from .ui import launch_standalone

            config = EvalConfig(
                device=args.device,
                weights_dir=args.weights_dir,
                random_weights=args.random_weights,
                allow_download=not args.offline,
            )
            launch_standalone(args.roots, args.port, config)
            return 0
    except LycorisEvalError as exc:
        print(f"lycoris-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lycoris-eval: interrupted; features computed so far are in the cache", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2
