"""Command line: ``python -m lycoris_eval evaluate IMAGES_DIR [options]``.

Every problem with the user's input ends in one line on stderr, ``lycoris-eval: error: …``,
and exit code 2; the checks that need no model run before any encoding work, so a typo in
``--out`` costs nothing and writes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .comparison_plan import ALL_PAIRS_UP_TO
from .errors import InputError, LycorisEvalError
from .metrics import DEFAULT_METRICS
from .precision import PRECISIONS

if TYPE_CHECKING:
    from .config import EvalConfig

UI_PACKAGES = ("gradio", "pandas")  # the `ui` extra of pyproject.toml
UI_EXTRA_HINT = 'install the `ui` extra: pip install "sd-webui-lycoris-eval[ui]" (or run: bash tools/setup.sh)'


def _metric_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    from .config import unknown_metrics

    problem = unknown_metrics(names)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return names


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x.strip().removeprefix("conv_")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"layers must look like 1,2,3 or conv_1,conv_2; got {text!r}") from None


def add_encoder_options(ev: argparse.ArgumentParser) -> None:
    """The scoring options ``evaluate`` and ``sweep`` share (metrics, device, weights, cache, encoders)."""
    ev.add_argument(
        "--trained-on",
        action="append",
        default=[],
        metavar="ADAPTER=CHECKPOINT",
        help="the checkpoint an adapter was trained on, for the transfer verdicts (wins over its metadata)",
    )
    ev.add_argument(
        "--compare-to",
        metavar="CHECKPOINT",
        help="with more checkpoints than --all-pairs-up-to: the checkpoint the others are compared with "
        "(an adapter's home checkpoint still wins for that adapter)",
    )
    ev.add_argument(
        "--all-pairs-up-to",
        type=int,
        default=ALL_PAIRS_UP_TO,
        metavar="N",
        help=f"compare every pair of checkpoints (adapters, weights) up to N of them (default {ALL_PAIRS_UP_TO}); "
        "beyond, against an anchor, the rest on demand with 'compare'",
    )
    ev.add_argument(
        "--metrics",
        type=_metric_list,
        default=DEFAULT_METRICS,
        help=f"comma-separated; default: {','.join(DEFAULT_METRICS)}",
    )
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    ev.add_argument("--weights-dir", type=Path, help="folder holding the encoders' weights files")
    ev.add_argument(
        "--random-weights",
        action="store_true",
        help="use randomly initialised encoders (pipeline test only; reports say so)",
    )
    ev.add_argument("--offline", action="store_true", help="never try to download weights")
    ev.add_argument(
        "--batch-size", type=int, default=8, help="most images per forward pass (on CUDA: less if memory is short)"
    )
    ev.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: fp16 autocast on CUDA, fp32 elsewhere; fp16 needs CUDA; bf16 (CPU or CUDA) is refused by "
        "the VGG style encoders, which then run fp32 and say so (docs/precision.md)",
    )
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
        "--out", type=Path, help="output folder for scores.json and scores.csv (default: IMAGES/lycoris-eval)"
    )
    add_encoder_options(ev)
    ev.add_argument("--quiet", action="store_true", help="no progress bar or table")
    cmp = sub.add_parser("compare", help="A against B from a scores.json: differences, 95%% intervals, verdicts")
    cmp.add_argument("scores", type=Path, help="scores.json, or the folder holding it")
    cmp.add_argument("a", help="a checkpoint, adapter, weight or 'baseline' (checkpoint:NAME to be explicit)")
    cmp.add_argument("b", help="the same kind as A")
    cmp.add_argument("--metric", help="only this metric")
    from .sweep.cli import add_sweep_parser

    add_sweep_parser(sub, add_encoder_options)
    ui = sub.add_parser("ui", help="serve the Evaluate tab on 127.0.0.1 (folders and runs, no generation)")
    ui.add_argument("roots", type=Path, nargs="*", help="folders the UI may read (default: the current folder)")
    ui.add_argument("--port", type=int, default=7861)
    ui.add_argument("--device", default="auto")
    ui.add_argument("--precision", choices=PRECISIONS, default="auto", help="as for evaluate")
    ui.add_argument("--weights-dir", type=Path)
    ui.add_argument("--random-weights", action="store_true", help="dry run with random encoders (reports say so)")
    ui.add_argument("--offline", action="store_true")
    return parser


# --------------------------------------------------------------------------------------
# checks that run before any work


def check_images_folder(folder: Path) -> None:
    """IMAGES_DIR exists, is a folder and holds image files (not yet whether they decode)."""
    from .images import list_image_files

    list_image_files(folder)


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (``Path.exists`` is False under a file)."""
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that cannot take the reports, creating nothing: an existing file,
    a path under a file, or a place where no file can be created (probed with an anonymous
    temporary file, since ``os.access`` says yes to root on read-only folders)."""
    existing = _nearest_existing(out)
    if not existing.is_dir():
        where = "is a file" if existing == out else f"is under {existing}, which is a file"
        raise InputError(f"--out {out} {where}; give a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create files in {existing} ({exc.strerror or exc})") from None


def check_roots(roots: Sequence[Path]) -> None:
    for root in roots:
        if not root.exists():
            raise InputError(f"root folder not found: {root}")
        if not root.is_dir():
            raise InputError(f"root {root} is not a folder")


def check_port(port: int) -> None:
    """The port is valid and free on 127.0.0.1, so Gradio's own ``OSError`` never shows."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port}: a port is a whole number from 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as the server will: a port left in TIME_WAIT is free (on Windows this would steal it)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise InputError(
                f"--port {port}: 127.0.0.1:{port} is not free ({exc.strerror or exc}); choose another --port"
            ) from None


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or a module entry without a spec
        return False


def check_ui_packages() -> None:
    missing = [name for name in UI_PACKAGES if not _module_available(name)]
    if missing:
        raise InputError(f"the standalone app needs {' and '.join(missing)}; {UI_EXTRA_HINT}")


# --------------------------------------------------------------------------------------
# commands


def base_config(args: argparse.Namespace) -> EvalConfig:
    """The encoder options of :func:`add_encoder_options` as a config (no request fields yet)."""
    from .config import EvalConfig

    return EvalConfig(
        device=args.device,
        weights_dir=args.weights_dir,
        random_weights=args.random_weights,
        allow_download=not args.offline,
        batch_size=args.batch_size,
        precision=args.precision,
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
        all_pairs_up_to=args.all_pairs_up_to,
        compare_to=args.compare_to,
    )


def _config(args: argparse.Namespace) -> EvalConfig:
    from .config import with_request

    base = base_config(args)
    # the request's own fields, checked as the API and the WebUI check theirs
    return with_request(
        base,
        metrics=args.metrics,
        reference=args.reference,
        distractors=args.distractor,
        trigger=args.trigger,
        trained_on=args.trained_on,
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .evaluate import evaluate
    from .report import text_table, write_reports

    config = _config(args)
    config.validate()
    out = args.out or (args.images / "lycoris-eval")
    check_images_folder(args.images)
    check_out_dir(out)
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
    except BaseException:
        for bar in bars:
            bar.leave = False  # the error line takes the bar's place: stderr ends in one line
        raise
    finally:
        for bar in bars:
            bar.close()
    try:
        paths = write_reports(document, out)
    except OSError as exc:
        raise LycorisEvalError(f"--out {out}: cannot write the reports ({exc.strerror or exc})") from None
    if not args.quiet:
        print(text_table(document))
    print(f"wrote {paths['json']} and {paths['csv']}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from .compare_report import text_comparison
    from .compare_view import select

    path = args.scores / "scores.json" if args.scores.is_dir() else args.scores
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read scores ({exc})") from None
    print(text_comparison(select(document, args.a, args.b, {"metric": args.metric}), document))
    return 0


def run_ui(args: argparse.Namespace) -> int:
    check_roots(args.roots)
    check_port(args.port)
    check_ui_packages()
    from .evaluate import EvalConfig
    from .tab import launch_standalone

    config = EvalConfig(
        device=args.device,
        precision=args.precision,
        weights_dir=args.weights_dir,
        random_weights=args.random_weights,
        allow_download=not args.offline,
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
            from .sweep.cli import run_sweep_command

            return run_sweep_command(args)
    except LycorisEvalError as exc:
        print(f"lycoris-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2
