"""Settings and paths: the extension's options (Settings → LyCORIS Eval), where its
files live, and the one builder of :class:`~lycoris_eval.config.EvalConfig` from them
(Script, API and tab all score with the same configuration).

v1.10.1 counterparts: ``modules/shared.py`` (``opts``), ``modules/options.py``
(``OptionInfo``), ``modules/paths.py`` (``data_path``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modules import shared

from lycoris_eval.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLIP_MODEL,
    DEFAULT_DEVICE,
    DEFAULT_DINOV2_ARCH,
    DEFAULT_GRID_LIMIT,
    DEFAULT_PRECISION,
    build_config,
)
from lycoris_eval.scoring.metrics import DEFAULT_METRICS, METRICS
from lycoris_eval.webui.memory import make_room

SETTINGS_SECTION = ("lycoris_eval", "LyCORIS Eval")


def opt(name: str, default: Any) -> Any:
    return getattr(shared.opts, f"lycoris_eval_{name}", default)


def _data_path() -> Path:
    try:
        from modules import paths  # lazy: the host's modules exist only inside a running WebUI

        return Path(paths.data_path)
    except (ImportError, AttributeError):
        return Path.cwd()


def outputs_root() -> Path:
    root = Path(opt("outdir", "outputs/lycoris-eval"))
    return root if root.is_absolute() else _data_path() / root


def weights_dir() -> Path:
    folder = Path(opt("weights_dir", "models/lycoris-eval"))
    return folder if folder.is_absolute() else _data_path() / folder


def on_ui_settings() -> None:
    section = SETTINGS_SECTION
    options = {
        "lycoris_eval_weights_dir": ("models/lycoris-eval", "Folder of scoring weights (VGG19, OpenCLIP, DINOv2)"),
        "lycoris_eval_outdir": ("outputs/lycoris-eval", "Run store folder"),
        "lycoris_eval_grid_limit": (DEFAULT_GRID_LIMIT, "Largest grid run without confirmation (images)"),
        "lycoris_eval_batch_size": (DEFAULT_BATCH_SIZE, "Scoring batch size"),
        "lycoris_eval_device": (DEFAULT_DEVICE, "Scoring device (auto, cpu, cuda, mps)"),
        "lycoris_eval_precision": (
            DEFAULT_PRECISION,
            "Scoring precision (auto: fp16 on CUDA, fp32 elsewhere; fp32, fp16, bf16)",
        ),
        "lycoris_eval_keep_models": (False, "Keep scoring models loaded between evaluations"),
        "lycoris_eval_clip_model": (
            DEFAULT_CLIP_MODEL,
            f"OpenCLIP model for text alignment (paper: {DEFAULT_CLIP_MODEL})",
        ),
        "lycoris_eval_dinov2_arch": (
            DEFAULT_DINOV2_ARCH,
            f"DINOv2 architecture (paper: {DEFAULT_DINOV2_ARCH}; vits14 for small GPUs)",
        ),
        "lycoris_eval_offline": (False, "Never download scoring weights"),
        "lycoris_eval_random_weights": (False, "Dry run: random scoring weights (numbers mean nothing)"),
        "lycoris_eval_allowed_roots": ("", "Extra folders the API and the Evaluate tab may read (one per line)"),
        "lycoris_eval_default_metrics": (",".join(DEFAULT_METRICS), "Default metrics (comma-separated)"),
    }
    for key, (default, label) in options.items():
        shared.opts.add_option(key, shared.OptionInfo(default, label, section=section))


def default_metrics() -> list[str]:
    """The "Default metrics" setting, checked: unknown names are dropped with a warning."""

    names = [m.strip() for m in str(opt("default_metrics", ",".join(DEFAULT_METRICS))).split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        print(f"[lycoris-eval] setting 'Default metrics': unknown {', '.join(unknown)} ignored", file=sys.stderr)
    known = [m for m in names if m in METRICS]
    return known or list(DEFAULT_METRICS)


def grid_runner(host: Any, cross_family: str = "refuse") -> Any:
    """A :class:`~lycoris_eval.grid.runner.GridRunner` into the run store folder, with the
    grid size limit setting (the Script, the API's check and its job all use this); the
    Script skips cross-family cells (``"skip"``), the API refuses them."""
    from lycoris_eval.grid.runner import GridRunner  # lazy: runner imports PIL at its top

    return GridRunner(
        host, outputs_root(), grid_limit=int(opt("grid_limit", DEFAULT_GRID_LIMIT)), cross_family=cross_family
    )


def eval_config_from_settings() -> Any:
    """The WebUI settings as the config builder's base (Script, API, tab, X/Y/Z)."""
    # lazy: host needs the host's modules (only inside a running WebUI)
    from lycoris_eval.webui.host import adapter_info

    return build_config(
        {
            "metrics": tuple(default_metrics()),
            "device": opt("device", DEFAULT_DEVICE),
            "weights_dir": weights_dir(),
            "batch_size": int(opt("batch_size", DEFAULT_BATCH_SIZE)),
            "precision": str(opt("precision", DEFAULT_PRECISION)),
            "keep_models_loaded": bool(opt("keep_models", False)),
            "clip_model": str(opt("clip_model", DEFAULT_CLIP_MODEL)),
            "dinov2_arch": str(opt("dinov2_arch", DEFAULT_DINOV2_ARCH)),
            "allow_download": not bool(opt("offline", False)),
            "random_weights": bool(opt("random_weights", False)),
            "adapter_info": adapter_info,
            "make_room": make_room,
        }
    )


def allowed_roots() -> list[Path]:
    roots = [outputs_root(), _data_path() / "outputs"]
    for key in ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples"):
        value = getattr(shared.opts, key, "")
        if value:
            roots.append(Path(value) if Path(value).is_absolute() else _data_path() / value)
    roots += [Path(line.strip()) for line in str(opt("allowed_roots", "")).splitlines() if line.strip()]
    return roots
