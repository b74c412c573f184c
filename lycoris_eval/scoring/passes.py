"""The feature passes of an evaluation: reference sets, generated images, prompts.

Each pass is a function that gets the encoders (through a :class:`FeatureExtractor`),
the images and a :class:`RunLog`, and returns or fills what it made; nothing is kept
between passes except through arguments. Owns decoding each image at most once and
computing its per-image values (style losses, similarity, PSNR/SSIM, text alignment)
as soon as its features exist, so Gram vectors are never stored. Statistics over
cells belong to :mod:`.aggregate`; files and settings to :mod:`.pipeline`.
Must not import the WebUI's ``modules``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lycoris_eval.errors import InputError, MetricError
from lycoris_eval.inputs.grouping import ImageMeta, find_baselines, pair_groups
from lycoris_eval.inputs.prompts import clean_prompt
from lycoris_eval.inputs.scan import ScannedSet
from lycoris_eval.scoring.aggregate import ImageTable, SetMetricFn, clean_json, set_metric_entry
from lycoris_eval.scoring.encoders.inception import FEATURES as INCEPTION_FEATURES
from lycoris_eval.scoring.features import FeatureExtractor
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.metrics.fidelity import cosine_to_set, normalised_centroid
from lycoris_eval.scoring.metrics.frechet import frechet_distance, kid
from lycoris_eval.scoring.metrics.pixel import psnr_ssim
from lycoris_eval.scoring.metrics.style import SetStats, distance_to_set, pair_style_loss
from lycoris_eval.scoring.metrics.text import clip_score, pair_cosine

ProgressFn = Callable[[int, int, str], None]

GRAM_ENCODERS = ("vgg19-gram", "vgg19-tutorial-gram")
# set-level metric -> (encoder and target key of its vectors, function)
SET_METRIC_SOURCES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    "fd_dinov2": ("dinov2", frechet_distance),
    "kid_dinov2": ("dinov2", kid),
    "fid_inception": ("inception", frechet_distance),
}
PIXEL_FINGERPRINT = "pixel-v1"


def _digest(value: Any) -> str:

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


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


def reference_values(feats: dict[str, np.ndarray | None], ref: dict[str, Any], metrics: list[str]) -> dict[str, float]:
    """One generated image's distances to a reference set (style losses, DINOv2 cosine)."""
    out: dict[str, float] = {}
    for metric, encoder in (("style_loss_ref", "vgg19-gram"), ("style_loss_tutorial", "vgg19-tutorial-gram")):
        if metric in metrics and feats.get(encoder) is not None and encoder in ref["stats"]:
            out[metric] = float(distance_to_set(feats[encoder], ref["stats"][encoder])[0])
    if "image_similarity" in metrics and feats.get("dinov2") is not None and "dinov2_centroid" in ref:
        out["image_similarity"] = float(cosine_to_set(feats["dinov2"][None, :], ref["dinov2_centroid"])[0])
    return out


# -- reference sets ------------------------------------------------------------------
def reference_features(
    scanned: ScannedSet, extractor: FeatureExtractor, metrics: list[str], log: RunLog, chunk_images: int
) -> dict[str, Any]:
    """A reference or distractor set's statistics: Gram vectors folded into streaming
    statistics (never kept), DINOv2 vectors and their centroid, Inception features."""
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
    size = chunk_images
    for start in range(0, len(scanned.records), size):
        chunk = scanned.records[start : start + size]

        def within(share: float, n: int = len(chunk)) -> None:  # never the chunk's end: that is its tick
            log.progress(log.done + min(n - 1, int(n * share)), log.total, f"encoding {scanned.label} images")

        result = extractor.run(chunk, names, on_batch=within)
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
def generated_pass(
    metas: list[ImageMeta],
    extractor: FeatureExtractor,
    metrics: list[str],
    sets: dict[str | None, dict[str, Any]],
    log: RunLog,
    chunk_images: int,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[ImageTable, dict[str, int] | None]:
    """Encode the generated images chunk by chunk (whole pair groups per chunk) and fill
    the table; ``sets`` maps None to the target set and labels to distractor sets.
    Returns the table and, when stopped early, how far it got."""
    table = ImageTable(metas)
    baselines = find_baselines(metas)
    want_pixels = any(m in metrics for m in ("psnr_base", "ssim_base"))
    want_base_style = "style_loss_base" in metrics
    names = list(extractor.encoders)
    processed = 0
    for chunk in generated_chunks(metas, chunk_images, baselines):
        if should_stop is not None and should_stop():
            log.notes.append(f"cancelled after {processed} of {len(metas)} images: partial results")
            return table, {"images_scored": processed, "images_total": len(metas)}
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

        def within(share: float, n: int = len(chunk)) -> None:  # never the chunk's end: that is its tick
            log.progress(log.done + min(n - 1, int(n * share)), log.total, "encoding images")

        result = extractor.run(records, names, need_pixels, on_batch=within)
        for p, reason in result.failed.items():
            log.problems.append({"set": "images", "file": records[p].path.name, "error": reason})
        for p, m in enumerate(chunk):
            if p in result.failed:
                continue
            idx = table.index(m)
            vals = table.values.setdefault(idx, {})
            feats = {n: result.features[n].get(p) for n in names}
            _store_features(table, idx, feats)
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
    return table, None


def generated_chunks(
    metas: list[ImageMeta], chunk_images: int, baselines: dict[Any, ImageMeta] | None = None
) -> list[list[ImageMeta]]:
    """The chunks :func:`generated_pass` encodes together: whole pair groups, gathered until
    ``chunk_images``. The sweep's encoder pool encodes the same chunks, so every forward pass
    sees the same batches (CPU kernels round differently for other batch compositions)."""
    groups = pair_groups(metas, find_baselines(metas) if baselines is None else baselines)
    chunks: list[list[ImageMeta]] = []
    chunk: list[ImageMeta] = []
    for g_index, group in enumerate(groups):
        chunk.extend(group)
        if len(chunk) < chunk_images and g_index < len(groups) - 1:
            continue
        chunks.append(chunk)
        chunk = []
    return chunks


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
def text_alignment(
    table: ImageTable, extractor: FeatureExtractor, metrics: list[str], log: RunLog, trigger: dict[str, Any]
) -> None:
    """Adds ``text_alignment`` and ``clip_score`` to the table's values."""
    if not any(m in metrics for m in ("text_alignment", "clip_score")):
        return
    encoder = extractor.encoders["openclip"]
    fingerprint = extractor.fingerprints["openclip"] + "/text"
    prompts: dict[int, str] = {}
    for idx, meta in enumerate(table.metas):
        raw = meta.raw_prompt
        if raw and idx in table.clip_image:
            cleaned = clean_prompt(raw, trigger)
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
def set_metric_fn(
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
