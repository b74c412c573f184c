"""The scores document (``scores.json``; schema in docs/scores-schema.md): its schema id and
version, and the sections that describe a run rather than score it — ``run`` (inputs,
settings, versions, counts, notes), ``adapters`` (type, family, trained on) and
``verdicts`` (each adapter's home checkpoint and the transfer verdicts against it).
The pipeline (:mod:`lycoris_eval.scoring.pipeline`) computes the numbers and calls these."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lycoris_eval import __version__
from lycoris_eval.compare.verdicts import RULE, home_checkpoints
from lycoris_eval.compare.verdicts import verdicts as transfer_verdicts
from lycoris_eval.config import EvalConfig
from lycoris_eval.errors import RANDOM_WEIGHTS_WARNING as _RANDOM_WEIGHTS
from lycoris_eval.grid.store import MANIFEST, generation_failures
from lycoris_eval.inputs.grouping import ImageMeta
from lycoris_eval.inputs.training_runs import AdapterFacts, TrainingRun, apply_override, group_training_runs
from lycoris_eval.scoring.metrics.frechet import KID_SEED

if TYPE_CHECKING:  # the pipeline's types, named only in annotations (the pipeline imports this module)
    from lycoris_eval.scoring.encoders import Encoder
    from lycoris_eval.scoring.features import FeatureExtractor
    from lycoris_eval.scoring.passes import RunLog
    from lycoris_eval.scoring.pipeline import Inputs

SCHEMA = "lycoris-eval/scores"
# 2: per-image values in cells, `comparisons`, `verdicts`; 3: `training_runs` (1 and 2 are still read)
SCHEMA_VERSION = 3
# in scores.json in the command line's words (the tab words it for its page from the definition)
RANDOM_WEIGHTS_WARNING = _RANDOM_WEIGHTS.words("cli")


def library_versions() -> dict[str, str]:

    versions = {"python": platform.python_version(), "lycoris_eval": __version__}
    for package in ("torch", "torchvision", "open-clip-torch", "numpy", "scipy", "scikit-image", "clean-fid", "Pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def run_manifest(images_dir: Path) -> dict[str, Any]:
    """The run's manifest (a grid run's images sit in ``<run>/images``), read once per
    evaluation; empty for a plain folder or an unreadable manifest."""
    manifest = images_dir.parent / MANIFEST
    if not manifest.is_file():
        return {}
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def host_section(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``host`` section (the adapters' and checkpoints' facts); empty if none."""
    host = manifest.get("host")
    return host if isinstance(host, dict) else {}


def manifest_host(images_dir: Path) -> dict[str, Any]:
    """The ``host`` section of the run's manifest; empty for a plain folder or an unreadable one."""
    return host_section(run_manifest(images_dir))


def training_runs_of(
    manifest: dict[str, Any], config: EvalConfig, scored: list[ImageMeta], notes: list[str]
) -> list[TrainingRun]:
    """The training runs among the adapters of the images: as the run's manifest recorded
    them (a grid made from a training run), else grouped from the adapters' metadata (the
    manifest's or the running host's) and names; a user's grouping (``config.training_runs``)
    wins over both."""
    names = sorted({m.adapter for m in scored if m.adapter})
    runs: list[TrainingRun] = []
    host = host_section(manifest)
    try:
        runs = [TrainingRun.from_dict(r) for r in manifest.get("training_runs") or []]
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        notes.append(f"training runs in the run's manifest unreadable ({exc}); grouped from the adapters instead")
        runs = []
    if not runs:
        try:
            known = {a["name"]: (a.get("info") or {}).get("training") or {} for a in host.get("adapters", [])}
        except (KeyError, TypeError, AttributeError):
            known = {}
        facts = []
        for name in names:
            metadata = known.get(name)
            if metadata is None and config.adapter_info is not None:
                try:
                    metadata = (config.adapter_info(name) or {}).get("training")
                except Exception:  # noqa: BLE001 - grouping falls back to the file name
                    metadata = None
            facts.append(AdapterFacts(name, metadata or {}))
        runs = group_training_runs(facts)
    if config.training_runs:
        runs = apply_override(runs, config.training_runs)
    present = set(names)
    return [r for r in runs if sum(1 for a in r.adapters if a in present) >= 2]


def checkpoint_families(host: dict[str, Any]) -> dict[str, str]:
    """Checkpoint name -> model family, as the run's manifest (its ``host`` section,
    :func:`manifest_host`) recorded it from the files."""
    out: dict[str, str] = {}
    for c in host.get("checkpoints") or []:
        if isinstance(c, dict) and c.get("family"):
            for key in ("name", "title"):
                if isinstance(c.get(key), str):
                    out[c[key]] = c["family"]
    return out


def adapters_section(
    host: dict[str, Any], config: EvalConfig, scored: list[ImageMeta], notes: list[str]
) -> dict[str, dict[str, Any]]:
    """Type and training base of each adapter: from the run's manifest (its ``host``
    section, :func:`manifest_host`), else the running host."""

    try:
        known = {a["name"]: a.get("info") or {} for a in host.get("adapters", [])}
    except (KeyError, TypeError, AttributeError):
        known = {}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({m.adapter for m in scored if m.adapter}):
        info = known.get(name)
        if info is None and config.adapter_info is not None:
            try:
                info = config.adapter_info(name)
            except Exception as exc:  # noqa: BLE001 - a label, never a reason to fail scoring
                notes.append(f"adapter {name}: type not detected ({exc})")
        if info:
            keys = ("type", "trained_on", "base_model_version", "rank", "family", "family_conflict")
            out[name] = {k: info.get(k) for k in keys}
    return out


def adapter_homes(
    adapters: dict[str, dict[str, Any]],
    scored: list[ImageMeta],
    marked: dict[str, str],
    notes: list[str],
    families: dict[str, str] | None = None,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each adapter's home checkpoint (the one it was trained on, else the run's only
    checkpoint of its family) and where that came from."""
    names = sorted({m.adapter for m in scored if m.adapter})
    checkpoints = sorted({m.checkpoint for m in scored if m.checkpoint})
    info = {name: adapters.get(name, {}) for name in names}
    homes, source, home_notes = home_checkpoints(info, checkpoints, marked, families)
    notes.extend(home_notes)
    unknown = [a for a in names if homes.get(a) is None]
    if unknown and len(checkpoints) > 1:
        notes.append(
            f"no verdicts for {', '.join(unknown)}: the checkpoint it was trained on is unknown "
            "(mark it with --trained-on ADAPTER=CHECKPOINT)"
        )
    return homes, source


def verdicts_section(
    comparisons: dict[str, Any],
    scored: list[ImageMeta],
    homes: dict[str, str | None],
    home_source: dict[str, str],
) -> dict[str, Any]:
    """The ``verdicts`` section: per (adapter, checkpoint), against the adapter's home."""
    names = sorted({m.adapter for m in scored if m.adapter})
    checkpoints = sorted({m.checkpoint for m in scored if m.checkpoint})
    return {
        "rule": RULE,
        "home": homes,
        "home_source": home_source,
        "entries": transfer_verdicts(comparisons, names, checkpoints, homes),
    }


def run_section(
    images_dir: Path,
    c: EvalConfig,
    inputs: Inputs,
    metrics: list[str],
    encoders: dict[str, Encoder],
    extractor: FeatureExtractor,
    log: RunLog,
    *,
    n_images: int,
    partial: dict[str, int] | None,
    n_reference: int,
    n_cells: int,
) -> dict[str, Any]:
    """The document's ``run`` section: inputs, settings, versions, counts, notes."""
    cache = extractor.cache
    return {
        "tool": "sd-webui-lycoris-eval",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "images_dir": str(images_dir),
        "reference_dir": str(c.reference_dir) if c.reference_dir else None,
        "distractor_dirs": [str(d) for d in c.distractor_dirs],
        "metrics": metrics,
        "trigger": dict(c.trigger),
        "training_runs_grouped": {name: list(adapters) for name, adapters in c.training_runs.items()},
        "device": next(iter(encoders.values())).device if encoders else "cpu",
        "random_weights": c.random_weights,
        "warning": RANDOM_WEIGHTS_WARNING if c.random_weights else None,
        "versions": library_versions(),
        "encoders": {name: enc.describe() for name, enc in encoders.items()},
        "kid_seed": KID_SEED,
        "vendi_q": c.vendi_q,
        "n_images": n_images,
        "n_files": len(inputs.generated.records) + len(inputs.generated.problems),
        "partial": partial,
        "n_reference": n_reference,
        "n_cells": n_cells,
        "encoded": dict(extractor.encoded),
        "cache": {"hits": cache.hits, "misses": cache.misses, "dir": str(getattr(cache, "directory", "")) or None},
        "skipped": log.problems,
        "generation_failures": generation_failures(images_dir),
        "notes": log.notes,
    }
