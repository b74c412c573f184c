"""What one evaluation is asked to do: every default (once), :class:`EvalConfig`, and
:func:`build_config`, the one builder every front end calls (CLI, Script, tab, API, X/Y/Z,
sweep).

A front end hands :func:`build_config` its base settings (the CLI's options, the WebUI's
settings) and one request's own fields; every field is checked, with a
:class:`~lycoris_eval.errors.SpecError` naming the field at fault. An :class:`EvalConfig`
is frozen and checks itself when it is made, so it is validated exactly once and never
changed after it is built (a change is a new config, :func:`dataclasses.replace`).

Must not import torch, the encoders, or anything that reads files: building a config is
cheap and happens before any work (``tests/test_packaging.py`` checks the import cost).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lycoris_eval.errors import DISTRACTORS_NEED_REFERENCE, InputError, SpecError  # SpecError: grid.spec re-exports it
from lycoris_eval.inputs.prompts import parse_trigger_mapping
from lycoris_eval.scoring.metrics import DEFAULT_METRICS, METRICS
from lycoris_eval.scoring.precision import PRECISIONS

# -- every default, once: front ends, settings and encoders read them from here ------------
DEFAULT_DEVICE = "auto"
DEFAULT_PRECISION = "auto"  # auto, fp32, fp16, bf16: lycoris_eval/scoring/precision.py, docs/precision.md
DEFAULT_BATCH_SIZE = 8  # the most images per forward pass; on CUDA lowered to what free memory holds
DEFAULT_CHUNK_IMAGES = 32  # images decoded and encoded between two progress/stop checks
DEFAULT_CLIP_MODEL = "ViT-L-14"  # the paper's
DEFAULT_CLIP_PRETRAINED = "datacomp_xl_s13b_b90k"
DEFAULT_CLIP_RESIZE = "resize"
DEFAULT_DINOV2_ARCH = "vitl14"  # the paper's; vits14 for small GPUs
DINOV2_ARCHS = ("vits14", "vitb14", "vitl14")
DEFAULT_VGG_SIZE = 224
DEFAULT_TUTORIAL_SIZE = 512
DEFAULT_VENDI_Q = 1.0
ALL_PAIRS_UP_TO = 12  # 66 pairs per table context; beyond, anchors (lycoris_eval/compare/plan.py)
DEFAULT_GRID_LIMIT = 500  # images a grid may have without confirm_large
DEFAULT_SWEEP_CHUNK = 8  # cells handed to one WebUI at once in a sweep
DEFAULT_UI_PORT = 7861  # the standalone app
SYNC_EVALUATE_LIMIT = 32  # POST /evaluate with more images than this becomes a job


@dataclass(frozen=True)
class EvalConfig:
    metrics: tuple[str, ...] = DEFAULT_METRICS
    reference_dir: Path | None = None
    distractor_dirs: tuple[Path, ...] = ()
    trigger: dict[str, str] = field(default_factory=dict)
    device: str = DEFAULT_DEVICE
    weights_dir: Path | None = None
    random_weights: bool = False
    allow_download: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = DEFAULT_PRECISION
    cache_dir: Path | None = None
    use_cache: bool = True
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED
    clip_resize: str = DEFAULT_CLIP_RESIZE
    dinov2_arch: str = DEFAULT_DINOV2_ARCH
    vgg_size: int = DEFAULT_VGG_SIZE
    tutorial_layers: tuple[int, ...] | None = None
    tutorial_random_layers: int | None = None
    tutorial_seed: int = 0
    tutorial_size: int = DEFAULT_TUTORIAL_SIZE
    vendi_q: float = DEFAULT_VENDI_Q
    keep_models_loaded: bool = False
    chunk_images: int = DEFAULT_CHUNK_IMAGES
    # adapter name -> the checkpoint it was trained on, as the user marks it (wins over the
    # adapter's metadata): the "home" the transfer verdicts compare against
    trained_on: dict[str, str] = field(default_factory=dict)
    # the comparison tables hold every pair up to this many checkpoints (adapters, weights);
    # beyond, each checkpoint is compared with an anchor: its adapter's home, else
    # ``compare_to`` (lycoris_eval/compare/plan.py); the rest are computed on demand
    all_pairs_up_to: int = ALL_PAIRS_UP_TO
    compare_to: str | None = None
    # training run name -> its adapters in step order, as the user groups them (replaces
    # what the files' metadata and names say: lycoris_eval/inputs/training_runs.py)
    training_runs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # checked between chunks of images: True stops early and the scores say "partial"
    should_stop: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    # adapter name -> detected type and training metadata (the WebUI knows its adapters'
    # files); recorded in scores.json so every report can show type and "trained on"
    adapter_info: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    # called with the scoring device once, just before the first encoder model loads (never
    # on a fully cached run): in the WebUI it moves the host's own models out of VRAM the
    # host's way (they come back on the next image)
    make_room: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checked when the config is made; a config that exists is a valid one."""
        problem = unknown_metrics(self.metrics)
        if problem:
            raise InputError(problem)
        if not self.metrics:
            raise InputError("no metric selected")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.all_pairs_up_to < 2:
            raise InputError(f"all pairs up to: at least 2, got {self.all_pairs_up_to}")
        if self.distractor_dirs and self.reference_dir is None:
            raise SpecError("distractors", DISTRACTORS_NEED_REFERENCE)
        problem = device_problem(self.device)
        if problem:
            raise InputError(problem)
        if self.dinov2_arch not in DINOV2_ARCHS:
            raise InputError(
                f"unknown DINOv2 architecture {self.dinov2_arch!r}; choose one of {', '.join(DINOV2_ARCHS)}"
            )
        if not self.vendi_q > 0:
            raise InputError(f"Vendi order q must be positive, got {self.vendi_q}")
        if self.chunk_images < 1:
            raise InputError(f"chunk of images must be at least 1, got {self.chunk_images}")

    def encoder_kwargs(self) -> dict[str, dict[str, Any]]:
        """Encoder name -> the keyword arguments this config gives its constructor."""
        return {
            "vgg19-gram": {"image_size": self.vgg_size},
            "vgg19-tutorial-gram": {
                "layers": self.tutorial_layers,
                "random_count": self.tutorial_random_layers,
                "seed": self.tutorial_seed,
                "image_size": self.tutorial_size,
            },
            "openclip": {
                "model_name": self.clip_model,
                "pretrained": self.clip_pretrained,
                "resize_mode": self.clip_resize,
            },
            "dinov2": {"arch": self.dinov2_arch},
            "inception": {},
        }


def device_problem(device: Any) -> str | None:
    """The message for a device name torch would not take (one wording for the config and
    every request), or None."""
    if isinstance(device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        return None
    return f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps"


def unknown_metrics(names: Iterable[str]) -> str | None:
    """The message for metric names that do not exist (one wording for every front end), or None."""
    unknown = [m for m in names if m not in METRICS]
    return f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}" if unknown else None


def build_config(settings: EvalConfig | Mapping[str, Any] | None = None, /, **request: Any) -> EvalConfig:
    """The one config builder of every front end.

    ``settings``: the front end's base (the CLI's encoder options, the WebUI's settings) as
    :class:`EvalConfig` field names, or a config already built from them; ``request``: one
    request's own fields, see :func:`_with_request`. Returns a new, validated config;
    ``settings`` is never changed.
    """
    base = settings if isinstance(settings, EvalConfig) else EvalConfig(**dict(settings or {}))
    return _with_request(base, **request) if request else base


def _with_request(
    config: EvalConfig,
    *,
    metrics: Iterable[str] | None = None,
    reference: Path | str | None = None,
    distractors: Iterable[Path | str] = (),
    trigger: Mapping[str, str] | Iterable[str] | None = None,
    trained_on: Mapping[str, str] | Iterable[str] | None = None,
    compare_to: str | None = None,
    all_pairs_up_to: int | None = None,
    training_runs: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    device: str | None = None,
    vendi_q: float | None = None,
    chunk_images: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EvalConfig:
    """A copy of ``config`` with one request's fields applied; ``config`` is not changed.

    ``metrics``: names to score (``None`` keeps the config's, e.g. the front end's default);
    ``reference``/``distractors``: the request's folders, already resolved by the caller
    (``None``/empty: none); ``trigger``: ``{word: text}`` or ``WORD=TEXT`` items (``None``:
    no mapping); ``trained_on``: ``{adapter: checkpoint}`` or ``ADAPTER=CHECKPOINT`` items
    (``None``: keep the config's); ``training_runs``: ``{run: [adapters in order]}`` or
    ``RUN=ADAPTER,ADAPTER,…`` items (``None``: keep the config's); ``compare_to``: the checkpoint others are compared with
    in runs with many checkpoints, ``all_pairs_up_to``: how many checkpoints (adapters,
    weights) are compared pairwise before anchors are used (``None``: keep the config's);
    ``device`` (``None`` or ``"settings"``: keep), ``vendi_q`` (``None``: keep),
    ``chunk_images`` (``None``: keep; never more than the config's chunk or batch size), ``should_stop``
    (checked between chunks). Raises :class:`SpecError` whose ``field`` is the keyword at fault.
    """
    changes: dict[str, Any] = {}
    if metrics is not None:
        if isinstance(metrics, str):
            raise SpecError("metrics", "must be a list of metric names")
        names = tuple(metrics)
        if not names or not all(isinstance(m, str) for m in names):
            raise SpecError("metrics", "must be a non-empty list of metric names")
        problem = unknown_metrics(names)
        if problem:
            raise SpecError("metrics", problem)
        changes["metrics"] = names
    changes["trigger"] = _trigger_mapping(trigger)
    if trained_on is not None:
        changes["trained_on"] = parse_trained_on(trained_on)
    if training_runs is not None:
        changes["training_runs"] = parse_training_runs(training_runs)
    if compare_to is not None:
        if not isinstance(compare_to, str) or not compare_to.strip():
            raise SpecError("compare_to", "must be a checkpoint name")
        changes["compare_to"] = compare_to.strip()
    if all_pairs_up_to is not None:
        if isinstance(all_pairs_up_to, bool) or not isinstance(all_pairs_up_to, int) or all_pairs_up_to < 2:
            raise SpecError("all_pairs_up_to", f"must be a whole number of at least 2, got {all_pairs_up_to!r}")
        changes["all_pairs_up_to"] = all_pairs_up_to
    if device is not None and device != "settings":
        device = device.strip() if isinstance(device, str) else device
        problem = device_problem(device)
        if problem:
            raise SpecError("device", problem)
        changes["device"] = device
    if vendi_q is not None:
        if isinstance(vendi_q, bool) or not isinstance(vendi_q, (int, float)) or not vendi_q > 0:
            raise SpecError("vendi_q", f"must be a positive number, got {vendi_q!r}")
        changes["vendi_q"] = float(vendi_q)
    if chunk_images is not None:
        changes["chunk_images"] = max(1, min(int(chunk_images), config.chunk_images, config.batch_size))
    if should_stop is not None:
        changes["should_stop"] = should_stop
    changes["reference_dir"] = Path(reference) if reference is not None else None
    if isinstance(distractors, (str, Path)):
        raise SpecError("distractors", "must be a list of folders")
    changes["distractor_dirs"] = tuple(Path(d) for d in distractors)
    if changes["distractor_dirs"] and changes["reference_dir"] is None:
        raise SpecError("distractors", DISTRACTORS_NEED_REFERENCE)
    return dataclasses.replace(config, **changes)


def _assignments(value: Mapping[str, Any] | Iterable[str], field_name: str, form: str) -> list[tuple[Any, Any]]:
    """``(name, value)`` pairs from a mapping or ``NAME=VALUE`` items (a list, or one per line
    in a text box; blank ones skipped); :class:`SpecError` on ``field_name`` otherwise."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, str):
        value = value.splitlines()
    items = []
    for item in value:
        if not isinstance(item, str):
            raise SpecError(field_name, f"must be {form} items or a mapping")
        if not item.strip():
            continue
        name, sep, rest = item.partition("=")
        if not sep:
            raise SpecError(field_name, f"{item!r} is not {form}")
        items.append((name, rest))
    return items


def parse_training_runs(value: Mapping[str, Iterable[str]] | Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``{run: (adapters in step order)}`` from a mapping or ``RUN=ADAPTER,ADAPTER,…`` items
    (one per line in a text box); :class:`SpecError` on field ``training_runs`` otherwise."""
    pairs = [
        (name, adapters.split(","))
        if isinstance(adapters, str) and not isinstance(value, Mapping)
        else (name, adapters)
        for name, adapters in _assignments(value, "training_runs", "RUN=ADAPTER,ADAPTER,...")
    ]
    out: dict[str, tuple[str, ...]] = {}
    for name, adapters in pairs:
        if isinstance(adapters, str) or not all(isinstance(a, str) for a in adapters):
            raise SpecError("training_runs", f"{name}: must list adapter names")
        names = tuple(a.strip() for a in adapters if a.strip())
        if not isinstance(name, str) or not name.strip():
            raise SpecError("training_runs", "a training run needs a name")
        if len(names) < 2:
            raise SpecError("training_runs", f"{name.strip()}: a training run needs at least two adapters")
        if len(set(names)) != len(names):
            raise SpecError("training_runs", f"{name.strip()}: an adapter is listed twice")
        out[name.strip()] = names
    return out


def parse_trained_on(value: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """``{adapter: checkpoint}`` from a mapping or ``ADAPTER=CHECKPOINT`` items (one per
    line in a text box); :class:`SpecError` on field ``trained_on`` otherwise."""
    items = _assignments(value, "trained_on", "ADAPTER=CHECKPOINT")
    out: dict[str, str] = {}
    for adapter, checkpoint in items:
        if not isinstance(adapter, str) or not isinstance(checkpoint, str):
            raise SpecError("trained_on", "must map adapter names to checkpoint names")
        if not adapter.strip() or not checkpoint.strip():
            raise SpecError("trained_on", f"{adapter}={checkpoint}: both names are needed")
        out[adapter.strip()] = checkpoint.strip()
    return out


def _trigger_mapping(trigger: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    if trigger is None:
        return {}
    if isinstance(trigger, Mapping):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in trigger.items()):
            raise SpecError("trigger", "must map words to replacement text")
        return dict(trigger)
    if isinstance(trigger, str):
        raise SpecError("trigger", "must be WORD=TEXT items or a mapping of words to text")
    items = list(trigger)
    if not all(isinstance(item, str) for item in items):
        raise SpecError("trigger", "must be WORD=TEXT items or a mapping of words to text")
    try:
        return parse_trigger_mapping(items)
    except InputError as exc:
        raise SpecError("trigger", str(exc)) from None
