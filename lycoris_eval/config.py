"""What one evaluation is asked to do: :class:`EvalConfig` and the per-request builder.

Owns the settings of a run (metrics, reference and distractor sets, trigger mapping,
encoder options) and :func:`with_request`, the one place a front end (CLI, API, WebUI)
applies a request's own fields to its base config, checked, with a
:class:`~lycoris_eval.errors.SpecError` naming the bad field.

Must not import torch, the encoders, or anything that reads files: building a config is
cheap and happens before any work (``tests/test_packaging.py`` checks the import cost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comparison_plan import ALL_PAIRS_UP_TO
from .errors import InputError, SpecError  # the class lycoris_eval.grid_spec re-exports
from .metrics import DEFAULT_METRICS, METRICS
from .precision import PRECISIONS
from .prompts import parse_trigger_mapping


@dataclass
class EvalConfig:
    metrics: tuple[str, ...] = DEFAULT_METRICS
    reference_dir: Path | None = None
    distractor_dirs: tuple[Path, ...] = ()
    trigger: dict[str, str] = field(default_factory=dict)
    device: str = "auto"
    weights_dir: Path | None = None
    random_weights: bool = False
    allow_download: bool = True
    batch_size: int = 8  # the most images per forward pass; on CUDA lowered to what free memory holds
    precision: str = "auto"  # auto, fp32, fp16, bf16: lycoris_eval/precision.py, docs/precision.md
    cache_dir: Path | None = None
    use_cache: bool = True
    clip_model: str = "ViT-L-14"
    clip_pretrained: str = "datacomp_xl_s13b_b90k"
    clip_resize: str = "resize"
    dinov2_arch: str = "vitl14"
    vgg_size: int = 224
    tutorial_layers: tuple[int, ...] | None = None
    tutorial_random_layers: int | None = None
    tutorial_seed: int = 0
    tutorial_size: int = 512
    vendi_q: float = 1.0
    keep_models_loaded: bool = False
    chunk_images: int = 32
    # adapter name -> the checkpoint it was trained on, as the user marks it (wins over the
    # adapter's metadata): the "home" the transfer verdicts compare against
    trained_on: dict[str, str] = field(default_factory=dict)
    # the comparison tables hold every pair up to this many checkpoints (adapters, weights);
    # beyond, each checkpoint is compared with an anchor: its adapter's home, else
    # ``compare_to`` (lycoris_eval/comparison_plan.py); the rest are computed on demand
    all_pairs_up_to: int = ALL_PAIRS_UP_TO
    compare_to: str | None = None
    # checked between chunks of images: True stops early and the scores say "partial"
    should_stop: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    # adapter name -> detected type and training metadata (the WebUI knows its adapters'
    # files); recorded in scores.json so every report can show type and "trained on"
    adapter_info: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    # called with the scoring device once, just before the first encoder model loads (never
    # on a fully cached run): in the WebUI it moves the host's own models out of VRAM the
    # host's way (they come back on the next image)
    make_room: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
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
            raise InputError("distractor sets need a target reference set (--reference)")

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


def unknown_metrics(names: Iterable[str]) -> str | None:
    """The message for metric names that do not exist (one wording for every front end), or None."""
    unknown = [m for m in names if m not in METRICS]
    return f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}" if unknown else None


def with_request(
    config: EvalConfig,
    *,
    metrics: Iterable[str] | None = None,
    reference: Path | str | None = None,
    distractors: Iterable[Path | str] = (),
    trigger: Mapping[str, str] | Iterable[str] | None = None,
    trained_on: Mapping[str, str] | Iterable[str] | None = None,
    compare_to: str | None = None,
    all_pairs_up_to: int | None = None,
) -> EvalConfig:
    """A copy of ``config`` with one request's fields applied; ``config`` is not changed.

    ``metrics``: names to score (``None`` keeps the config's, e.g. the front end's default);
    ``reference``/``distractors``: the request's folders, already resolved by the caller
    (``None``/empty: none); ``trigger``: ``{word: text}`` or ``WORD=TEXT`` items (``None``:
    no mapping); ``trained_on``: ``{adapter: checkpoint}`` or ``ADAPTER=CHECKPOINT`` items
    (``None``: keep the config's); ``compare_to``: the checkpoint others are compared with
    in runs with many checkpoints, ``all_pairs_up_to``: how many checkpoints (adapters,
    weights) are compared pairwise before anchors are used (``None``: keep the config's). Raises :class:`SpecError` whose ``field`` is the keyword at fault.
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
    if compare_to is not None:
        if not isinstance(compare_to, str) or not compare_to.strip():
            raise SpecError("compare_to", "must be a checkpoint name")
        changes["compare_to"] = compare_to.strip()
    if all_pairs_up_to is not None:
        if isinstance(all_pairs_up_to, bool) or not isinstance(all_pairs_up_to, int) or all_pairs_up_to < 2:
            raise SpecError("all_pairs_up_to", f"must be a whole number of at least 2, got {all_pairs_up_to!r}")
        changes["all_pairs_up_to"] = all_pairs_up_to
    changes["reference_dir"] = Path(reference) if reference is not None else None
    if isinstance(distractors, (str, Path)):
        raise SpecError("distractors", "must be a list of folders")
    changes["distractor_dirs"] = tuple(Path(d) for d in distractors)
    if changes["distractor_dirs"] and changes["reference_dir"] is None:
        raise SpecError("distractors", "distractor sets need a target reference set (reference)")
    return dataclasses.replace(config, **changes)


def parse_trained_on(value: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """``{adapter: checkpoint}`` from a mapping or ``ADAPTER=CHECKPOINT`` items (one per
    line in a text box); :class:`SpecError` on field ``trained_on`` otherwise."""
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        if isinstance(value, str):
            value = value.splitlines()
        items = []
        for item in value:
            if not isinstance(item, str):
                raise SpecError("trained_on", "must be ADAPTER=CHECKPOINT items or a mapping")
            if not item.strip():
                continue
            adapter, sep, checkpoint = item.partition("=")
            if not sep:
                raise SpecError("trained_on", f"{item!r} is not ADAPTER=CHECKPOINT")
            items.append((adapter, checkpoint))
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
