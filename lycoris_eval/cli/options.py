"""The command line's options and the checks that run before any work: encoder options
shared by ``evaluate`` and ``sweep``, folder/port/package checks, and the evaluation config
built from the parsed arguments (through :mod:`lycoris_eval.config`'s one builder)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lycoris_eval.config import (
    ALL_PAIRS_UP_TO,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_CLIP_RESIZE,
    DEFAULT_DEVICE,
    DEFAULT_DINOV2_ARCH,
    DEFAULT_PRECISION,
    DEFAULT_VENDI_Q,
    DINOV2_ARCHS,
    EvalConfig,
    build_config,
    unknown_metrics,
)
from lycoris_eval.errors import InputError
from lycoris_eval.inputs.images import list_image_files
from lycoris_eval.scoring.metrics import DEFAULT_METRICS
from lycoris_eval.scoring.precision import PRECISIONS

UI_PACKAGES = ("gradio", "pandas")  # the `ui` extra of pyproject.toml


UI_EXTRA_HINT = 'install the `ui` extra: pip install "sd-webui-lycoris-eval[ui]" (or run: bash tools/setup.sh)'


def _metric_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())

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
        "--training-run",
        action="append",
        default=[],
        metavar="RUN=ADAPTER,ADAPTER,...",
        help="group these adapters, in this order (earliest first), as one training run; wins over "
        "what their metadata and file names say (default: grouped from those)",
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
    ev.add_argument("--device", default=DEFAULT_DEVICE, help="auto, cpu, cuda, cuda:1, mps (default %(default)s)")
    ev.add_argument(
        "--weights-dir",
        type=Path,
        help="folder holding the encoders' weights files (default: the torch hub and Hugging Face caches)",
    )
    ev.add_argument(
        "--random-weights",
        action="store_true",
        help="use randomly initialised encoders (pipeline test only; reports say so)",
    )
    ev.add_argument("--offline", action="store_true", help="never try to download weights")
    ev.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="most images per forward pass (on CUDA: less if memory is short; default %(default)s)",
    )
    ev.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="auto: fp16 autocast on CUDA, fp32 elsewhere; fp16 needs CUDA; bf16 (CPU or CUDA) is refused by "
        "the VGG style encoders, which then run fp32 and say so (docs/precision.md); default %(default)s",
    )
    ev.add_argument("--cache-dir", type=Path, help="feature cache folder (default ~/.cache/lycoris-eval)")
    ev.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    ev.add_argument("--clip-model", default=DEFAULT_CLIP_MODEL, help="open_clip model name (the paper's: %(default)s)")
    ev.add_argument(
        "--clip-pretrained", default=DEFAULT_CLIP_PRETRAINED, help="open_clip pretrained tag (default %(default)s)"
    )
    ev.add_argument(
        "--clip-resize",
        choices=("resize", "crop"),
        default=DEFAULT_CLIP_RESIZE,
        help="resize: the paper's 224x224 stretch; crop: open_clip's resize + center crop (default %(default)s)",
    )
    ev.add_argument(
        "--dinov2-arch",
        default=DEFAULT_DINOV2_ARCH,
        choices=DINOV2_ARCHS,
        help="DINOv2 size for fidelity and diversity (the paper's: %(default)s; vits14 for small GPUs)",
    )
    ev.add_argument("--tutorial-layers", type=_layers, help="tutorial style loss layers, e.g. 1,2,3,4,5 (conv_N)")
    ev.add_argument("--tutorial-random-layers", type=int, help="pick this many conv layers at random (seeded)")
    ev.add_argument("--tutorial-seed", type=int, default=0, help="seed of --tutorial-random-layers (default 0)")
    ev.add_argument(
        "--vendi-q", type=float, default=DEFAULT_VENDI_Q, help="order q of the Vendi score, > 0 (default %(default)s)"
    )


def check_images_folder(folder: Path) -> None:
    """IMAGES_DIR exists, is a folder and holds image files (not yet whether they decode)."""

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


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The encoder options of :func:`add_encoder_options` as config settings (no request fields)."""
    return {
        "device": args.device,
        "weights_dir": args.weights_dir,
        "random_weights": args.random_weights,
        "allow_download": not args.offline,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "cache_dir": args.cache_dir,
        "use_cache": not args.no_cache,
        "clip_model": args.clip_model,
        "clip_pretrained": args.clip_pretrained,
        "clip_resize": args.clip_resize,
        "dinov2_arch": args.dinov2_arch,
        "tutorial_layers": args.tutorial_layers,
        "tutorial_random_layers": args.tutorial_random_layers,
        "tutorial_seed": args.tutorial_seed,
        "vendi_q": args.vendi_q,
        "all_pairs_up_to": args.all_pairs_up_to,
        "compare_to": args.compare_to,
    }


def _config(args: argparse.Namespace) -> EvalConfig:

    # the request's own fields, checked as the API and the WebUI check theirs
    return build_config(
        settings_from_args(args),
        metrics=args.metrics,
        reference=args.reference,
        distractors=args.distractor,
        trigger=args.trigger,
        trained_on=args.trained_on,
        training_runs=args.training_run,
    )
