"""The evaluation pipeline: folders of images in, a scores document out.

Owns the orchestration — scan → features → per-image values → aggregate → document —
and the steps that touch files, encoders and the feature cache. Aggregation (cells,
summaries, ranks, trust) lives in :mod:`.aggregate`, the settings in :mod:`.config`;
this module must not grow its own statistics, and :mod:`.aggregate` must not import it.

The passes that encode images live in :mod:`.feature_passes`. Order of work, chosen so memory stays bounded and nothing is computed twice:

1. read every file once (hash, size, infotext; pixels not decoded), group into cells;
2. reference and distractor sets: Gram vectors are folded into streaming statistics
   (never kept), DINOv2 vectors kept (1024 floats each);
3. generated images, one pair group (a baseline and everything paired to it) at a
   time: each image decoded at most once, every encoder fed from that decode, per-image
   values computed at once and the Gram vectors dropped;
4. prompts encoded by CLIP (cached by text), then cells, summaries, ranks, trust.

Every step gets what it needs as arguments and returns what it made: nothing one step
leaves on ``self`` is read by a later one.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .aggregate import TRUST_METRICS, ImageTable, cell_dict, clean_json, metric_info
from .aggregate import summaries as summarise_groups
from .aggregate import trust as trust_results
from .cache import FeatureCache, NullCache
from .comparison_plan import coverage_notes, make_plan
from .comparisons import PairedData, compare_all
from .config import EvalConfig
from .encoders import Encoder, EncoderOptions, make_encoder, pooled, release_pool
from .errors import InputError, MissingWeightsError
from .feature_passes import ProgressFn, RunLog, generated_pass, reference_features, set_metric_fn, text_alignment
from .features import FeatureExtractor
from .grouping import ImageMeta, describe, group_cells
from .metrics import METRICS
from .metrics.frechet import KID_SEED
from .scan import ScannedSet, generation_failures, no_readable_image, run_store_records, scan_folder
from .verdicts import RULE, home_checkpoints
from .verdicts import verdicts as transfer_verdicts

__all__ = ["TRUST_METRICS", "EvalConfig", "Evaluation", "evaluate", "generation_failures", "scan_folder"]

SCHEMA = "lycoris-eval/scores"
SCHEMA_VERSION = 2  # 2: per-image values in cells, `comparisons`, `verdicts` (1 is still read)
RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: encoders were randomly initialised (--random-weights); "
    "these numbers test the pipeline and mean nothing about the images."
)


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version(), "lycoris_eval": __version__}
    for package in ("torch", "torchvision", "open-clip-torch", "numpy", "scipy", "scikit-image", "clean-fid", "Pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


# --------------------------------------------------------------------------------------
# the pipeline


@dataclass
class Inputs:
    generated: ScannedSet
    reference: ScannedSet | None
    distractors: list[ScannedSet]

    def all_sets(self) -> list[ScannedSet]:
        return [self.generated, *([self.reference] if self.reference else []), *self.distractors]


class Evaluation:
    def __init__(self, images_dir: Path, config: EvalConfig, progress: ProgressFn | None = None) -> None:
        config.validate()
        self.images_dir = Path(images_dir)
        self.config = config
        self.progress = progress or (lambda done, total, message: None)

    # -- setup -----------------------------------------------------------------------
    def _scan(self) -> Inputs:
        c = self.config
        generated = scan_folder(self.images_dir, "images")
        reference = scan_folder(c.reference_dir, "reference") if c.reference_dir else None
        distractor_sets: list[ScannedSet] = []
        seen_labels: set[str] = set()
        for folder in c.distractor_dirs:
            label = Path(folder).name or str(folder)
            while label in seen_labels:
                label += "'"
            seen_labels.add(label)
            distractor_sets.append(scan_folder(folder, label))
        return Inputs(generated, reference, distractor_sets)

    def _select_metrics(self, has_reference: bool, notes: list[str]) -> list[str]:
        metrics = list(dict.fromkeys(self.config.metrics))
        dropped = [m for m in metrics if METRICS[m].needs == "reference" and not has_reference]
        if dropped:
            notes.append(f"no reference set given: skipped {', '.join(dropped)}")
            metrics = [m for m in metrics if m not in dropped]
        if not metrics:
            raise InputError("every selected metric needs a reference set; pass --reference DIR")
        return metrics

    def _make_encoders(self, metrics: list[str] | None = None) -> dict[str, Encoder]:
        """The encoders the metrics need (default: the config's), weights resolved now."""
        c = self.config
        metrics = list(dict.fromkeys(c.metrics)) if metrics is None else metrics
        options = EncoderOptions(
            c.device, c.weights_dir, c.random_weights, c.allow_download, c.batch_size, _once(c.make_room), c.precision
        )
        kwargs = c.encoder_kwargs()
        names = sorted({METRICS[m].encoder for m in metrics if METRICS[m].encoder})
        encoders = {name: make_encoder(name, options, **kwargs[name]) for name in names}
        if c.keep_models_loaded:  # a kept, already loaded instance is reused
            encoders = {name: pooled(encoder) for name, encoder in encoders.items()}
        else:
            release_pool()  # the setting was turned off: free what an earlier evaluation kept
        missing = []
        for encoder in encoders.values():
            try:
                encoder.fingerprint()  # resolves weights now: a missing file stops us before any work
            except MissingWeightsError as exc:
                missing.append(str(exc))
        if missing:
            raise MissingWeightsError("\n".join(dict.fromkeys(missing)))
        return encoders

    def _adapters(self, scored: list[ImageMeta], notes: list[str]) -> dict[str, dict[str, Any]]:
        """Type and training base of each adapter: from the run's manifest, else the host."""
        from .run_store import MANIFEST

        known: dict[str, dict[str, Any]] = {}
        manifest = self.images_dir.parent / MANIFEST
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                known = {a["name"]: a.get("info") or {} for a in data.get("host", {}).get("adapters", [])}
            except (OSError, ValueError, KeyError, TypeError):
                known = {}
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({m.adapter for m in scored if m.adapter}):
            info = known.get(name)
            if info is None and self.config.adapter_info is not None:
                try:
                    info = self.config.adapter_info(name)
                except Exception as exc:  # noqa: BLE001 - a label, never a reason to fail scoring
                    notes.append(f"adapter {name}: type not detected ({exc})")
            if info:
                keys = ("type", "trained_on", "base_model_version", "rank", "family", "family_conflict")
                out[name] = {k: info.get(k) for k in keys}
        return out

    def _verdicts(
        self,
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

    # -- main ------------------------------------------------------------------------------
    def _scored(self, table: ImageTable, partial: dict[str, int] | None, failures: list[str]) -> list[ImageMeta]:
        """The images that were scored: only these make cells, counts and seeds; the others
        are under ``run.skipped``. None scored (every image failed to decode or encode) is
        bad input, unless the run was cancelled before the first image."""
        scored = table.scored()
        if not scored and partial is None:
            raise no_readable_image("images", self.images_dir, failures)
        return scored

    def run(self) -> dict[str, Any]:
        c = self.config
        log = RunLog(self.progress)
        inputs = self._scan()
        for s in inputs.all_sets():
            log.problems.extend(s.problems)
        metrics = self._select_metrics(inputs.reference is not None, log.notes)
        encoders = self._make_encoders(metrics)
        cache: FeatureCache | NullCache = FeatureCache(c.cache_dir) if c.use_cache else NullCache()
        extractor = FeatureExtractor(encoders, cache)
        by_image = run_store_records(self.images_dir)
        metas = [describe(r, by_image.get(r.path.name)) for r in inputs.generated.records]
        log.notes.extend(f"{m.record.path.name}: {m.infotext_error}" for m in metas if m.infotext_error)
        log.total = sum(len(s.records) for s in inputs.all_sets())
        try:
            target = (
                reference_features(inputs.reference, extractor, metrics, log, c.chunk_images)
                if inputs.reference
                else None
            )
            distractors = {
                s.label: reference_features(s, extractor, metrics, log, c.chunk_images) for s in inputs.distractors
            }
            sets: dict[str | None, dict[str, Any]] = {**({None: target} if target else {}), **distractors}
            before = len(log.problems)
            table, partial = generated_pass(metas, extractor, metrics, sets, log, c.chunk_images, c.should_stop)
            failures = inputs.generated.unreadable + [p["error"] for p in log.problems[before:]]
            scored = self._scored(table, partial, failures)
            text_alignment(table, extractor, metrics, log, c.trigger)
            cells = group_cells(scored)
            target_dino = target.get("dinov2") if target is not None else None
            cell_dicts = [cell_dict(table, cell, metrics, c.vendi_q, target_dino) for cell in cells]
            rows = summarise_groups(table, cells, cell_dicts, metrics, set_metric_fn(extractor, metas, target))
            adapters = self._adapters(scored, log.notes)
            homes, home_source = adapter_homes(adapters, scored, c.trained_on, log.notes)
            paired = PairedData.build(scored, {id(m): table.index(m) for m in scored}, table.values, table.dino)
            checkpoints = {cond[0] for cond in paired.by_condition}  # None: images naming no checkpoint
            plan = make_plan(checkpoints, homes, c.compare_to, c.all_pairs_up_to, log.notes)
            comparisons = compare_all(paired, metrics, rows, target_dino, c.vendi_q, plan)
            log.notes.extend(coverage_notes(comparisons["coverage"], ("adapter", "weight")))
            if paired.duplicates:
                log.notes.append(
                    f"{paired.duplicates} image(s) repeat the checkpoint, adapter, weight, prompt and seed of another "
                    "(e.g. a variation-seed axis): comparisons pair only the first of each"
                )
        finally:
            if not c.keep_models_loaded:
                for encoder in encoders.values():
                    encoder.release()
            cache.close()
        trust = trust_results(table) if distractors else []
        if c.random_weights:
            log.notes.insert(0, RANDOM_WEIGHTS_WARNING)
        if c.precision != "auto":  # an asked-for precision an encoder refused: said, never silent
            log.notes.extend(e.precision_note for e in encoders.values() if e.precision_note)
        run = self._run_section(
            inputs,
            metrics,
            encoders,
            extractor,
            log,
            n_images=len(scored),
            partial=partial,
            n_reference=target["n"] if target else 0,
            n_cells=len(cells),
        )
        document = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run": run,
            "adapters": adapters,
            "metrics": metric_info(metrics),
            "cells": cell_dicts,
            "summaries": rows,
            "trust": trust,
            "comparisons": comparisons,
            "verdicts": self._verdicts(comparisons, scored, homes, home_source),
        }
        return clean_json(document)

    def _run_section(
        self,
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
        c = self.config
        cache = extractor.cache
        return {
            "tool": "sd-webui-lycoris-eval",
            "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "images_dir": str(self.images_dir),
            "reference_dir": str(c.reference_dir) if c.reference_dir else None,
            "distractor_dirs": [str(d) for d in c.distractor_dirs],
            "metrics": metrics,
            "trigger": dict(c.trigger),
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
            "generation_failures": generation_failures(self.images_dir),
            "notes": log.notes,
        }


def _once(hook: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``hook`` at most once per evaluation, whichever encoder loads first."""
    if hook is None:
        return None
    done: list[bool] = []

    def call(device: str) -> None:
        if not done:
            done.append(True)
            hook(device)

    return call


def evaluate(images_dir: Path, config: EvalConfig | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Score a folder of images; see ``docs/scores-schema.md`` for the document."""
    return Evaluation(images_dir, config or EvalConfig(), progress).run()


def adapter_homes(
    adapters: dict[str, dict[str, Any]], scored: list[ImageMeta], marked: dict[str, str], notes: list[str]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each adapter's home checkpoint (the one it was trained on) and where that came from."""
    names = sorted({m.adapter for m in scored if m.adapter})
    checkpoints = sorted({m.checkpoint for m in scored if m.checkpoint})
    info = {name: adapters.get(name, {}) for name in names}
    homes, source, home_notes = home_checkpoints(info, checkpoints, marked)
    notes.extend(home_notes)
    unknown = [a for a in names if homes.get(a) is None]
    if unknown and len(checkpoints) > 1:
        notes.append(
            f"no verdicts for {', '.join(unknown)}: the checkpoint it was trained on is unknown "
            "(mark it with --trained-on ADAPTER=CHECKPOINT)"
        )
    return homes, source
