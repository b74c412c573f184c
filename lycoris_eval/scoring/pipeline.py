"""The evaluation pipeline: folders of images in, a scores document out.

Owns the orchestration — scan → features → per-image values → aggregate → document —
and the steps that touch files, encoders and the feature cache. Aggregation (cells,
summaries, ranks, trust) lives in :mod:`.aggregate`, the document's descriptive sections
(``run``, ``adapters``, ``verdicts``) in :mod:`.document`, the settings in :mod:`lycoris_eval.config`;
this module must not grow its own statistics, and :mod:`.aggregate` must not import it.

The passes that encode images live in :mod:`.passes`. Order of work, chosen so memory stays bounded and nothing is computed twice:

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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lycoris_eval.compare.epoch_verdicts import training_runs_section
from lycoris_eval.compare.paired import PairedData, compare_all
from lycoris_eval.compare.plan import coverage_notes, make_plan
from lycoris_eval.config import EvalConfig, build_config
from lycoris_eval.errors import METRICS_NEED_REFERENCE, InputError, MissingWeightsError
from lycoris_eval.grid.store import generation_failures, run_store_records
from lycoris_eval.inputs.grouping import ImageMeta, describe, group_cells
from lycoris_eval.inputs.scan import ScannedSet, no_readable_image, scan_folder
from lycoris_eval.scoring.aggregate import TRUST_METRICS, ImageTable, cell_dict, clean_json, metric_info
from lycoris_eval.scoring.aggregate import summaries as summarise_groups
from lycoris_eval.scoring.aggregate import trust as trust_results
from lycoris_eval.scoring.cache import FeatureCache, NullCache
from lycoris_eval.scoring.document import (
    RANDOM_WEIGHTS_WARNING,
    SCHEMA,
    SCHEMA_VERSION,
    adapter_homes,
    adapters_section,
    checkpoint_families,
    host_section,
    run_manifest,
    run_section,
    training_runs_of,
    verdicts_section,
)
from lycoris_eval.scoring.encoders import Encoder, EncoderOptions, make_encoder, pooled, release_pool
from lycoris_eval.scoring.features import FeatureExtractor
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.passes import (
    ProgressFn,
    RunLog,
    generated_pass,
    reference_features,
    set_metric_fn,
    text_alignment,
)

__all__ = ["TRUST_METRICS", "EvalConfig", "Evaluation", "evaluate", "generation_failures", "scan_folder"]

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
            raise InputError(METRICS_NEED_REFERENCE, field="reference")
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
                missing += exc.details
        if missing:
            raise MissingWeightsError(missing)
        return encoders

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
        log.tick(0, f"read {log.total} images; loading the scoring models")
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
            log.tick(0, "text alignment (prompts through CLIP)")
            text_alignment(table, extractor, metrics, log, c.trigger)
            cells = group_cells(scored)
            target_dino = target.get("dinov2") if target is not None else None
            cell_dicts = [cell_dict(table, cell, metrics, c.vendi_q, target_dino) for cell in cells]
            rows = summarise_groups(table, cells, cell_dicts, metrics, set_metric_fn(extractor, metas, target))
            manifest = run_manifest(self.images_dir)  # read once: adapters, checkpoint families, training runs
            host = host_section(manifest)
            adapters = adapters_section(host, c, scored, log.notes)
            runs = training_runs_of(manifest, c, scored, log.notes)
            homes, home_source = adapter_homes(adapters, scored, c.trained_on, log.notes, checkpoint_families(host))
            paired = PairedData.build(scored, {id(m): table.index(m) for m in scored}, table.values, table.dino)
            checkpoints = {cond[0] for cond in paired.by_condition}  # None: images naming no checkpoint
            plan = make_plan(checkpoints, homes, c.compare_to, c.all_pairs_up_to, log.notes)
            log.tick(0, "comparisons (paired bootstrap intervals)")
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
        run = run_section(
            self.images_dir,
            c,
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
            "verdicts": verdicts_section(comparisons, scored, homes, home_source),
            "training_runs": training_runs_section(runs, paired, metrics, c.vendi_q, list(c.trigger), homes),
        }
        return clean_json(document)


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
    return Evaluation(images_dir, config or build_config(), progress).run()
