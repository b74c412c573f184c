"""The evaluation pipeline: folders of images in, a scores document out.

Owns the orchestration — scan → features → per-image values → aggregate → document —
and the steps that touch files, encoders and the feature cache. Aggregation (cells,
summaries, ranks, trust) lives in :mod:`.aggregate`, the settings in :mod:`.config`;
this module must not grow its own statistics, and :mod:`.aggregate` must not import it.

Order of work, chosen so memory stays bounded and nothing is computed twice:

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
import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .aggregate import TRUST_METRICS, ImageTable, SetMetricFn, cell_dict, clean_json, metric_info, set_metric_entry
from .aggregate import summaries as summarise_groups
from .aggregate import trust as trust_results
from .cache import FeatureCache, NullCache
from .config import EvalConfig
from .encoders import Encoder, EncoderOptions, make_encoder, pooled, release_pool
from .encoders.inception import FEATURES as INCEPTION_FEATURES
from .errors import InputError, MetricError, MissingWeightsError
from .features import FeatureExtractor
from .grouping import ImageMeta, describe, find_baselines, group_cells, pair_groups
from .metrics import METRICS
from .metrics.fidelity import cosine_to_set, normalised_centroid
from .metrics.frechet import KID_SEED, frechet_distance, kid
from .metrics.pixel import psnr_ssim
from .metrics.style import SetStats, distance_to_set, pair_style_loss
from .metrics.text import clip_score, pair_cosine
from .prompts import clean_prompt
from .scan import ScannedSet, generation_failures, no_readable_image, run_store_records, scan_folder

__all__ = ["TRUST_METRICS", "EvalConfig", "Evaluation", "evaluate", "generation_failures", "scan_folder"]

ProgressFn = Callable[[int, int, str], None]
SCHEMA = "lycoris-eval/scores"
SCHEMA_VERSION = 1
RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: encoders were randomly initialised (--random-weights); "
    "these numbers test the pipeline and mean nothing about the images."
)
GRAM_ENCODERS = ("vgg19-gram", "vgg19-tutorial-gram")
# set-level metric -> (encoder and target key of its vectors, function)
SET_METRIC_SOURCES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    "fd_dinov2": ("dinov2", frechet_distance),
    "kid_dinov2": ("dinov2", kid),
    "fid_inception": ("inception", frechet_distance),
}
PIXEL_FINGERPRINT = "pixel-v1"


# --------------------------------------------------------------------------------------
# reading


# --------------------------------------------------------------------------------------
# helpers


def _digest(value: Any) -> str:

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


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
class RunLog:
    """What one run reports besides numbers (notes, skipped files) and its progress."""

    progress: ProgressFn
    total: int = 0
    done: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def tick(self, n: int, message: str) -> None:
        self.done += n
        self.progress(self.done, self.total, message)


@dataclass
class Inputs:
    generated: ScannedSet
    reference: ScannedSet | None
    distractors: list[ScannedSet]

    def all_sets(self) -> list[ScannedSet]:
        return [self.generated, *([self.reference] if self.reference else []), *self.distractors]


def reference_values(feats: dict[str, np.ndarray | None], ref: dict[str, Any], metrics: list[str]) -> dict[str, float]:
    """One generated image's distances to a reference set (style losses, DINOv2 cosine)."""
    out: dict[str, float] = {}
    for metric, encoder in (("style_loss_ref", "vgg19-gram"), ("style_loss_tutorial", "vgg19-tutorial-gram")):
        if metric in metrics and feats.get(encoder) is not None and encoder in ref["stats"]:
            out[metric] = float(distance_to_set(feats[encoder], ref["stats"][encoder])[0])
    if "image_similarity" in metrics and feats.get("dinov2") is not None and "dinov2_centroid" in ref:
        out["image_similarity"] = float(cosine_to_set(feats["dinov2"][None, :], ref["dinov2_centroid"])[0])
    return out


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
        options = EncoderOptions(c.device, c.weights_dir, c.random_weights, c.allow_download, c.batch_size)
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

    # -- reference sets ------------------------------------------------------------------
    def _reference_features(
        self, scanned: ScannedSet, extractor: FeatureExtractor, metrics: list[str], log: RunLog
    ) -> dict[str, Any]:
        wanted = {METRICS[m].encoder for m in metrics if METRICS[m].needs == "reference"}
        names = [n for n in extractor.encoders if n in wanted]
        if not names:  # no selected metric looks at this set
            return {
                "stats": {},
                "n": len(scanned.records),
                "identity": _digest(sorted(r.sha256 for r in scanned.records)),
            }
        stats = {n: SetStats() for n in names if n in GRAM_ENCODERS}
        dino: list[np.ndarray] = []
        inception: list[np.ndarray] = []
        size = self.config.chunk_images
        for start in range(0, len(scanned.records), size):
            chunk = scanned.records[start : start + size]
            result = extractor.run(chunk, names)
            for index, reason in result.failed.items():
                log.problems.append({"set": scanned.label, "file": chunk[index].path.name, "error": reason})
            for name in stats:
                vectors = [result.features[name][i] for i in sorted(result.features[name])]
                if vectors:
                    stats[name].add(np.stack(vectors))
            if "dinov2" in names:
                dino.extend(result.features["dinov2"][i] for i in sorted(result.features["dinov2"]))
            if "inception" in names:
                inception.extend(
                    result.features["inception"][i][:INCEPTION_FEATURES] for i in sorted(result.features["inception"])
                )
            log.tick(len(chunk), f"encoding {scanned.label} images")
        n_ok = max([s.n for s in stats.values()] + [len(dino), len(inception), 0])
        if n_ok == 0:
            raise InputError(f"{scanned.label} set {scanned.folder}: no image could be encoded")
        if n_ok == 1:
            log.notes.append(
                f"{scanned.label} set has a single image: style loss and similarity use it alone; "
                "Fréchet distance and KID need at least 2 images and are left empty"
            )
        failed = {p["file"] for p in log.problems if p["set"] == scanned.label}
        hashes = sorted(r.sha256 for r in scanned.records if r.path.name not in failed)
        out: dict[str, Any] = {"stats": stats, "n": n_ok, "identity": _digest(hashes)}
        if dino:
            matrix = np.stack(dino)
            out["dinov2"] = matrix
            out["dinov2_centroid"] = normalised_centroid(matrix)
        if inception:
            out["inception"] = np.stack(inception)
        return out

    # -- generated images ------------------------------------------------------------------
    def _generated_pass(
        self,
        metas: list[ImageMeta],
        extractor: FeatureExtractor,
        metrics: list[str],
        sets: dict[str | None, dict[str, Any]],
        log: RunLog,
    ) -> tuple[ImageTable, dict[str, int] | None]:
        """Encode the generated images chunk by chunk (whole pair groups per chunk) and fill
        the table; ``sets`` maps None to the target set and labels to distractor sets.
        Returns the table and, when stopped early, how far it got."""
        table = ImageTable(metas)
        baselines = find_baselines(metas)
        want_pixels = any(m in metrics for m in ("psnr_base", "ssim_base"))
        want_base_style = "style_loss_base" in metrics
        names = list(extractor.encoders)
        groups = pair_groups(metas, baselines)
        chunk: list[ImageMeta] = []
        processed = 0
        for g_index, group in enumerate(groups):
            if self.config.should_stop is not None and self.config.should_stop() and not chunk:
                log.notes.append(f"cancelled after {processed} of {len(metas)} images: partial results")
                return table, {"images_scored": processed, "images_total": len(metas)}
            chunk.extend(group)
            if len(chunk) < self.config.chunk_images and g_index < len(groups) - 1:
                continue
            records = [m.record for m in chunk]
            pos = {id(m): i for i, m in enumerate(chunk)}
            pairs: dict[int, int] = {}  # chunk pos -> chunk pos of its baseline
            for m in chunk:
                key = m.pair_key
                if m.adapter is not None and key is not None and key in baselines and id(baselines[key]) in pos:
                    pairs[pos[id(m)]] = pos[id(baselines[key])]
            need_pixels: set[int] = set()
            cached_pixels: dict[int, np.ndarray] = {}
            if want_pixels:
                for a, b in pairs.items():
                    hit = extractor.cache.get(PIXEL_FINGERPRINT, f"{records[a].sha256}-{records[b].sha256}")
                    if hit is None:
                        need_pixels.update((a, b))
                    else:
                        cached_pixels[a] = hit
            result = extractor.run(records, names, need_pixels)
            for p, reason in result.failed.items():
                log.problems.append({"set": "images", "file": records[p].path.name, "error": reason})
            for p, m in enumerate(chunk):
                if p in result.failed:
                    continue
                idx = table.index(m)
                vals = table.values.setdefault(idx, {})
                feats = {n: result.features[n].get(p) for n in names}
                self._store_features(table, idx, feats)
                for label, ref in sets.items():
                    out = reference_values(feats, ref, metrics)
                    if label is None:
                        vals.update(out)
                    else:
                        for metric, value in out.items():
                            table.distractor_values.setdefault(label, {}).setdefault(metric, {})[idx] = value
                base = pairs.get(p)
                if base is None or base in result.failed:
                    continue
                if want_base_style and feats.get("vgg19-gram") is not None:
                    base_gram = result.features["vgg19-gram"].get(base)
                    if base_gram is not None:
                        vals["style_loss_base"] = float(pair_style_loss(feats["vgg19-gram"], base_gram))
                if want_pixels:
                    pixel = cached_pixels.get(p)
                    if pixel is None and p in result.pixels and base in result.pixels:
                        try:
                            pixel = np.array(psnr_ssim(result.pixels[p], result.pixels[base]), dtype=np.float32)
                            extractor.cache.put(PIXEL_FINGERPRINT, f"{records[p].sha256}-{records[base].sha256}", pixel)
                        except MetricError as exc:
                            log.notes.append(f"{records[p].path.name}: {exc}")
                    if pixel is not None:
                        vals["psnr_base"], vals["ssim_base"] = float(pixel[0]), float(pixel[1])
            log.tick(len(chunk), "encoding images")
            processed += len(chunk)
            chunk = []
        return table, None

    @staticmethod
    def _store_features(table: ImageTable, idx: int, feats: dict[str, np.ndarray | None]) -> None:
        """Keep the vectors aggregation needs (DINOv2, CLIP image, Inception); Grams are dropped."""
        if feats.get("dinov2") is not None:
            table.dino[idx] = feats["dinov2"]
        if feats.get("openclip") is not None:
            table.clip_image[idx] = feats["openclip"]
        vector = feats.get("inception")
        if vector is not None:
            table.inception_features[idx] = vector[:INCEPTION_FEATURES]
            table.inception_probs[idx] = vector[INCEPTION_FEATURES:]

    # -- text ------------------------------------------------------------------------------
    def _text_alignment(self, table: ImageTable, extractor: FeatureExtractor, metrics: list[str], log: RunLog) -> None:
        """Adds ``text_alignment`` and ``clip_score`` to the table's values."""
        if not any(m in metrics for m in ("text_alignment", "clip_score")):
            return
        encoder = extractor.encoders["openclip"]
        fingerprint = extractor.fingerprints["openclip"] + "/text"
        prompts: dict[int, str] = {}
        for idx, meta in enumerate(table.metas):
            raw = meta.raw_prompt
            if raw and idx in table.clip_image:
                cleaned = clean_prompt(raw, self.config.trigger)
                if cleaned:
                    prompts[idx] = cleaned
        if not prompts:
            log.notes.append("no prompts found (no infotext or .txt captions): text alignment skipped")
            return
        unique = sorted(set(prompts.values()))
        text_features: dict[str, np.ndarray] = {}
        todo = []
        for text in unique:
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()
            hit = extractor.cache.get(fingerprint, key)
            if hit is None:
                todo.append(text)
            else:
                text_features[text] = hit
        if todo:
            encoded = encoder.encode_text(todo)
            for text, vector in zip(todo, encoded):
                extractor.cache.put(fingerprint, hashlib.sha256(text.encode("utf-8")).hexdigest(), vector)
                text_features[text] = vector
        indices = sorted(prompts)
        cos = pair_cosine(
            np.stack([table.clip_image[i] for i in indices]), np.stack([text_features[prompts[i]] for i in indices])
        )
        for i, c in zip(indices, cos):
            table.values.setdefault(i, {})["text_alignment"] = float(c)
            table.values[i]["clip_score"] = float(clip_score(np.array([c]))[0])

    # -- aggregation inputs ------------------------------------------------------------------
    @staticmethod
    def _set_metric_fn(
        extractor: FeatureExtractor, metas: list[ImageMeta], target: dict[str, Any] | None
    ) -> SetMetricFn | None:
        """Set-level metrics against the target, cached too: sqrtm of a 1024×1024 product costs seconds."""
        if target is None:
            return None

        def compute(name: str, used: list[int], generated: list[np.ndarray]) -> dict[str, Any] | None:
            encoder, fn = SET_METRIC_SOURCES[name]
            if encoder not in target:
                return None
            key = _digest(
                [
                    name,
                    extractor.fingerprints[encoder],
                    target["identity"],
                    sorted(metas[i].record.sha256 for i in used),
                ]
            )
            hit = extractor.cache.get_json("set-metric-v1", key)
            if hit is not None:
                return hit
            entry = set_metric_entry(fn, generated, target[encoder], name != "kid_dinov2")
            extractor.cache.put_json("set-metric-v1", key, clean_json(entry))
            return entry

        return compute

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
                out[name] = {k: info.get(k) for k in ("type", "trained_on", "base_model_version", "rank")}
        return out

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
            target = self._reference_features(inputs.reference, extractor, metrics, log) if inputs.reference else None
            distractors = {s.label: self._reference_features(s, extractor, metrics, log) for s in inputs.distractors}
            sets: dict[str | None, dict[str, Any]] = {**({None: target} if target else {}), **distractors}
            before = len(log.problems)
            table, partial = self._generated_pass(metas, extractor, metrics, sets, log)
            failures = inputs.generated.unreadable + [p["error"] for p in log.problems[before:]]
            scored = self._scored(table, partial, failures)
            self._text_alignment(table, extractor, metrics, log)
            cells = group_cells(scored)
            target_dino = target.get("dinov2") if target is not None else None
            cell_dicts = [cell_dict(table, cell, metrics, c.vendi_q, target_dino) for cell in cells]
            rows = summarise_groups(table, cells, cell_dicts, metrics, self._set_metric_fn(extractor, metas, target))
        finally:
            if not c.keep_models_loaded:
                for encoder in encoders.values():
                    encoder.release()
            cache.close()
        trust = trust_results(table) if distractors else []
        if c.random_weights:
            log.notes.insert(0, RANDOM_WEIGHTS_WARNING)
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
            "adapters": self._adapters(scored, log.notes),
            "metrics": metric_info(metrics),
            "cells": cell_dicts,
            "summaries": rows,
            "trust": trust,
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


def evaluate(images_dir: Path, config: EvalConfig | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Score a folder of images; see ``docs/scores-schema.md`` for the document."""
    return Evaluation(images_dir, config or EvalConfig(), progress).run()
