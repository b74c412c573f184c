"""The evaluation pipeline: folders of images in, a scores document out.

Order of work, chosen so memory stays bounded and nothing is computed twice:

1. read every file once (hash, size, infotext; pixels not decoded), group into cells;
2. reference and distractor sets: Gram vectors are folded into streaming statistics
   (never kept), DINOv2 vectors kept (1024 floats each);
3. generated images, one pair group (a baseline and everything paired to it) at a
   time: each image decoded at most once, every encoder fed from that decode, per-image
   values computed at once and the Gram vectors dropped;
4. prompts encoded by CLIP (cached by text), cells, summaries, ranks, trust.
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
from .cache import FeatureCache, NullCache
from .encoders import Encoder, EncoderOptions, make_encoder, pooled, release_pool
from .encoders.inception import FEATURES as INCEPTION_FEATURES
from .errors import BadImageError, InputError, MetricError, MissingWeightsError
from .features import FeatureExtractor
from .grouping import Cell, ImageMeta, describe, find_baselines, group_cells, pair_groups
from .images import ImageRecord, list_image_files, read_image_file
from .metrics import DEFAULT_METRICS, METRICS
from .metrics.fidelity import cosine_to_set, fidelity, normalised_centroid
from .metrics.frechet import KID_SEED, frechet_distance, inception_score, kid, reliability_note
from .metrics.pixel import psnr_ssim
from .metrics.ranks import rank_normalise
from .metrics.style import SetStats, distance_to_set, pair_style_loss
from .metrics.text import clip_score, pair_cosine
from .metrics.trust import trust_check
from .metrics.vendi import vendi_score
from .prompts import clean_prompt

ProgressFn = Callable[[int, int, str], None]
SCHEMA = "lycoris-eval/scores"
SCHEMA_VERSION = 1
RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: encoders were randomly initialised (--random-weights); "
    "these numbers test the pipeline and mean nothing about the images."
)
GRAM_ENCODERS = ("vgg19-gram", "vgg19-tutorial-gram")
# metric -> (encoder, higher_is_better) for the per-image distance used by the trust check
TRUST_METRICS = {
    "style_loss_ref": ("vgg19-gram", False),
    "style_loss_tutorial": ("vgg19-tutorial-gram", False),
    "image_similarity": ("dinov2", True),
}


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
    batch_size: int = 8
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
    # checked between chunks of images: True stops early and the scores say "partial"
    should_stop: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    # adapter name -> detected type and training metadata (the WebUI knows its adapters'
    # files); recorded in scores.json so every report can show type and "trained on"
    adapter_info: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise InputError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        if not self.metrics:
            raise InputError("no metric selected")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        if self.distractor_dirs and self.reference_dir is None:
            raise InputError("distractor sets need a target reference set (--reference)")


# --------------------------------------------------------------------------------------
# reading


@dataclass
class ScannedSet:
    label: str
    folder: Path
    records: list[ImageRecord]
    problems: list[dict[str, str]]
    unreadable: list[str] = field(default_factory=list)  # why image files could not be read


def first_reasons(reasons: list[str], limit: int = 3) -> str:
    """The first few reasons on one line (a folder of 1000 broken files gives a short message)."""
    shown = [" ".join(r.split()) for r in reasons[:limit]]
    more = len(reasons) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def no_readable_image(label: str, folder: Path, reasons: list[str]) -> InputError:
    return InputError(f"{label} folder {folder}: no image is readable ({first_reasons(reasons)})")


def scan_folder(folder: Path, label: str) -> ScannedSet:
    paths, skipped = list_image_files(folder)
    records: list[ImageRecord] = []
    problems = [{"set": label, "file": p.name, "error": reason} for p, reason in skipped]
    unreadable: list[str] = []
    for path in paths:
        try:
            record = read_image_file(path)
        except BadImageError as exc:
            problems.append({"set": label, "file": path.name, "error": str(exc)})
            unreadable.append(str(exc))
            continue
        record.release_bytes()  # re-read at decode time; keeps RAM flat on big folders
        records.append(record)
    if not records:
        raise no_readable_image(label, folder, unreadable)
    return ScannedSet(label, Path(folder), records, problems, unreadable)


# --------------------------------------------------------------------------------------
# helpers


def _clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy -> python: the JSON never holds NaN."""
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def summarise(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(finite, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else None, "n": int(arr.size)}


def set_metric(
    fn: Callable[[np.ndarray, np.ndarray], float], generated: list[np.ndarray], reference: np.ndarray, is_fd: bool
) -> dict[str, Any]:
    """A set-level metric as ``{mean, std, n}`` with a ``note`` when missing or unreliable."""
    entry: dict[str, Any] = {"mean": None, "std": None, "n": len(generated)}
    if not generated:
        entry["note"] = "no images"
        return entry
    try:
        entry["mean"] = fn(np.stack(generated), reference)
    except MetricError as exc:
        entry["note"] = str(exc)
        return entry
    note = reliability_note(len(generated), len(reference), reference.shape[1]) if is_fd else None
    if note:
        entry["note"] = note
    return entry


def generation_failures(images_dir: Path) -> list[dict[str, Any]]:
    """Images a grid run could not make (from its run store), so reports can show them."""
    from .run_store import CELLS, MANIFEST, RunStore

    run_dir = Path(images_dir).parent
    if not (run_dir / MANIFEST).is_file() or not (run_dir / CELLS).is_file():
        return []
    store = RunStore(run_dir.parent, run_dir.name)
    keys = ("key", "checkpoint", "adapter", "weight", "prompt", "prompt_type", "seed", "error")
    return [{k: record.get(k) for k in keys} for record in store.failures().values()]


def run_store_records(images_dir: Path) -> dict[str, dict[str, Any]]:
    """For a run made by the extension (``<run>/images``): image file name -> its finished
    line in ``cells.jsonl`` (checkpoint, adapter, weight, prompt, type, seed). Empty for
    any other folder, whose images are described from their infotext."""
    from .run_store import CELLS, MANIFEST, RunStore

    run_dir = Path(images_dir).parent
    if Path(images_dir).name != "images" or not (run_dir / MANIFEST).is_file() or not (run_dir / CELLS).is_file():
        return {}
    try:
        store = RunStore(run_dir.parent, run_dir.name)
    except InputError:
        return {}
    return {str(data["image"]): data for data in store.finished().values() if data.get("image")}


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


class Evaluation:
    def __init__(self, images_dir: Path, config: EvalConfig, progress: ProgressFn | None = None) -> None:
        config.validate()
        self.images_dir = Path(images_dir)
        self.config = config
        self.progress = progress or (lambda done, total, message: None)
        self.notes: list[str] = []
        self.metrics = list(dict.fromkeys(config.metrics))
        self.values: dict[int, dict[str, float]] = {}  # meta index -> metric -> value
        self.distractor_values: dict[str, dict[str, dict[int, float]]] = {}  # set -> metric -> idx -> v
        self.dino: dict[int, np.ndarray] = {}
        self.clip_image: dict[int, np.ndarray] = {}
        self.inception: dict[int, np.ndarray] = {}
        self.problems: list[dict[str, str]] = []
        self.partial: dict[str, int] | None = None
        self._done = 0
        self._total = 0

    # -- setup -----------------------------------------------------------------------
    def _select_metrics(self, has_reference: bool) -> None:
        dropped = [m for m in self.metrics if METRICS[m].needs == "reference" and not has_reference]
        if dropped:
            self.notes.append(f"no reference set given: skipped {', '.join(dropped)}")
            self.metrics = [m for m in self.metrics if m not in dropped]
        if not self.metrics:
            raise InputError("every selected metric needs a reference set; pass --reference DIR")

    def _make_encoders(self) -> dict[str, Encoder]:
        c = self.config
        options = EncoderOptions(c.device, c.weights_dir, c.random_weights, c.allow_download, c.batch_size)
        kwargs: dict[str, dict[str, Any]] = {
            "vgg19-gram": {"image_size": c.vgg_size},
            "vgg19-tutorial-gram": {
                "layers": c.tutorial_layers,
                "random_count": c.tutorial_random_layers,
                "seed": c.tutorial_seed,
                "image_size": c.tutorial_size,
            },
            "openclip": {"model_name": c.clip_model, "pretrained": c.clip_pretrained, "resize_mode": c.clip_resize},
            "dinov2": {"arch": c.dinov2_arch},
            "inception": {},
        }
        names = sorted({METRICS[m].encoder for m in self.metrics if METRICS[m].encoder})
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

    def _tick(self, n: int, message: str) -> None:
        self._done += n
        self.progress(self._done, self._total, message)

    # -- reference sets ------------------------------------------------------------------
    def _reference_features(self, scanned: ScannedSet, extractor: FeatureExtractor) -> dict[str, Any]:
        wanted = {METRICS[m].encoder for m in self.metrics if METRICS[m].needs == "reference"}
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
                self.problems.append({"set": scanned.label, "file": chunk[index].path.name, "error": reason})
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
            self._tick(len(chunk), f"encoding {scanned.label} images")
        n_ok = max([s.n for s in stats.values()] + [len(dino), len(inception), 0])
        if n_ok == 0:
            raise InputError(f"{scanned.label} set {scanned.folder}: no image could be encoded")
        if n_ok == 1:
            self.notes.append(
                f"{scanned.label} set has a single image: style loss and similarity use it alone; "
                "Fréchet distance and KID need at least 2 images and are left empty"
            )
        failed = {p["file"] for p in self.problems if p["set"] == scanned.label}
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
        target: dict[str, Any] | None,
        distractors: dict[str, dict[str, Any]],
    ) -> None:
        baselines = find_baselines(metas)
        index_of = {id(m): i for i, m in enumerate(metas)}
        want_pixels = any(m in self.metrics for m in ("psnr_base", "ssim_base"))
        want_base_style = "style_loss_base" in self.metrics
        names = list(extractor.encoders)
        groups = pair_groups(metas, baselines)
        pixel_fp = "pixel-v1"
        chunk: list[ImageMeta] = []
        processed = 0
        for g_index, group in enumerate(groups):
            if self.config.should_stop is not None and self.config.should_stop() and not chunk:
                self.partial = {"images_scored": processed, "images_total": len(metas)}
                self.notes.append(f"cancelled after {processed} of {len(metas)} images: partial results")
                return
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
                    hit = extractor.cache.get(pixel_fp, f"{records[a].sha256}-{records[b].sha256}")
                    if hit is None:
                        need_pixels.update((a, b))
                    else:
                        cached_pixels[a] = hit
            result = extractor.run(records, names, need_pixels)
            for p, reason in result.failed.items():
                self.problems.append({"set": "images", "file": records[p].path.name, "error": reason})
            for p, m in enumerate(chunk):
                if p in result.failed:
                    continue
                idx = index_of[id(m)]
                vals = self.values.setdefault(idx, {})
                feats = {n: result.features[n].get(p) for n in names}
                if feats.get("dinov2") is not None:
                    self.dino[idx] = feats["dinov2"]
                if feats.get("openclip") is not None:
                    self.clip_image[idx] = feats["openclip"]
                if feats.get("inception") is not None:
                    self.inception[idx] = feats["inception"]
                self._per_image_reference(idx, feats, vals, target, distractors)
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
                            extractor.cache.put(pixel_fp, f"{records[p].sha256}-{records[base].sha256}", pixel)
                        except MetricError as exc:
                            self.notes.append(f"{records[p].path.name}: {exc}")
                    if pixel is not None:
                        vals["psnr_base"], vals["ssim_base"] = float(pixel[0]), float(pixel[1])
            self._tick(len(chunk), "encoding images")
            processed += len(chunk)
            chunk = []

    def _per_image_reference(
        self,
        idx: int,
        feats: dict[str, np.ndarray | None],
        vals: dict[str, float],
        target: dict[str, Any] | None,
        distractors: dict[str, dict[str, Any]],
    ) -> None:
        sets = ([("__target__", target)] if target else []) + list(distractors.items())
        for label, ref in sets:
            out: dict[str, float] = {}
            for metric, encoder in (("style_loss_ref", "vgg19-gram"), ("style_loss_tutorial", "vgg19-tutorial-gram")):
                if metric in self.metrics and feats.get(encoder) is not None and encoder in ref["stats"]:
                    out[metric] = float(distance_to_set(feats[encoder], ref["stats"][encoder])[0])
            if "image_similarity" in self.metrics and feats.get("dinov2") is not None and "dinov2_centroid" in ref:
                out["image_similarity"] = float(cosine_to_set(feats["dinov2"][None, :], ref["dinov2_centroid"])[0])
            if label == "__target__":
                vals.update(out)
            else:
                for metric, value in out.items():
                    self.distractor_values.setdefault(label, {}).setdefault(metric, {})[idx] = value

    # -- text ------------------------------------------------------------------------------
    def _text_alignment(self, metas: list[ImageMeta], extractor: FeatureExtractor) -> None:
        if not any(m in self.metrics for m in ("text_alignment", "clip_score")):
            return
        encoder = extractor.encoders["openclip"]
        fingerprint = extractor.fingerprints["openclip"] + "/text"
        prompts: dict[int, str] = {}
        for idx, meta in enumerate(metas):
            raw = meta.raw_prompt
            if raw and idx in self.clip_image:
                cleaned = clean_prompt(raw, self.config.trigger)
                if cleaned:
                    prompts[idx] = cleaned
        if not prompts:
            self.notes.append("no prompts found (no infotext or .txt captions): text alignment skipped")
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
            np.stack([self.clip_image[i] for i in indices]), np.stack([text_features[prompts[i]] for i in indices])
        )
        for i, c in zip(indices, cos):
            self.values.setdefault(i, {})["text_alignment"] = float(c)
            self.values[i]["clip_score"] = float(clip_score(np.array([c]))[0])

    # -- aggregation -----------------------------------------------------------------------
    def _cell_dict(self, cell: Cell, metas_index: dict[int, int], target: dict[str, Any] | None) -> dict[str, Any]:
        indices = [metas_index[id(m)] for m in cell.images if metas_index[id(m)] in self.values]
        metrics: dict[str, Any] = {}
        for name in self.metrics:
            info = METRICS[name]
            if info.level == "image":
                vals = [self.values[i][name] for i in indices if name in self.values[i]]
                if vals:
                    metrics[name] = summarise(vals)
        dino = [self.dino[i] for i in indices if i in self.dino]
        if dino and "vendi" in self.metrics:
            metrics["vendi"] = {"mean": vendi_score(np.stack(dino), q=self.config.vendi_q), "std": None, "n": len(dino)}
        if dino and target is not None and "centroid_distance" in self.metrics and "dinov2" in target:
            _, dist = fidelity(np.stack(dino), target["dinov2"])
            metrics["centroid_distance"] = {"mean": dist, "std": None, "n": len(dino)}
        seeds = sorted({m.seed for m in cell.images if m.seed is not None})
        return {
            "checkpoint": cell.checkpoint,
            "adapter": cell.adapter,
            "weight": cell.weight,
            "baseline": cell.is_baseline and cell.prompt is not None,
            "prompt": cell.prompt,
            "prompt_type": cell.prompt_type,
            "group": cell.group,
            "seeds": seeds,
            "images": [m.record.path.name for m in cell.images],
            "image_seeds": [m.seed for m in cell.images],
            "metrics": metrics,
        }

    def _summaries(
        self,
        cells: list[Cell],
        cell_dicts: list[dict[str, Any]],
        metas_index: dict[int, int],
        target: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        groups: dict[tuple, list[int]] = {}
        for i, cell in enumerate(cells):
            groups.setdefault((cell.checkpoint, cell.adapter, cell.weight, cell.group), []).append(i)
        rows = []
        for (checkpoint, adapter, weight, group), members in groups.items():
            metrics: dict[str, Any] = {}
            for name in self.metrics:
                if METRICS[name].level == "group":
                    continue
                means = [cell_dicts[i]["metrics"][name]["mean"] for i in members if name in cell_dicts[i]["metrics"]]
                means = [m for m in means if m is not None]
                if means:
                    metrics[name] = summarise(means)
                    metrics[name]["n_cells"] = metrics[name].pop("n")
            indices = [metas_index[id(m)] for i in members for m in cells[i].images]
            dino = [self.dino[i] for i in indices if i in self.dino]
            if target is not None and "dinov2" in target:
                for name, fn in (("fd_dinov2", frechet_distance), ("kid_dinov2", kid)):
                    if name in self.metrics:
                        used = [i for i in indices if i in self.dino]
                        metrics[name] = self._set_metric(name, "dinov2", fn, used, dino, target, "dinov2")
            self._inception_metrics(metrics, indices, target)
            rows.append(
                {
                    "checkpoint": checkpoint,
                    "adapter": adapter,
                    "weight": weight,
                    "group": group,
                    "baseline": adapter is None and any(cell_dicts[i]["baseline"] for i in members),
                    "n_images": len(indices),
                    "prompts": len(members),
                    "metrics": metrics,
                }
            )
        # ranks within each checkpoint, adapters × weights compete; the baseline is not ranked
        by_checkpoint: dict[Any, list[int]] = {}
        for i, row in enumerate(rows):
            row["ranks"] = {}
            if not row["baseline"]:
                by_checkpoint.setdefault(row["checkpoint"], []).append(i)
        for members in by_checkpoint.values():
            for name in self.metrics:
                vals = [rows[i]["metrics"].get(name, {}).get("mean") for i in members]
                for i, r in zip(members, rank_normalise(vals, METRICS[name].higher_is_better)):
                    if rows[i]["metrics"].get(name) is not None:
                        rows[i]["ranks"][name] = r
        for row in rows:
            ranked = [r for r in row["ranks"].values() if r is not None]
            row["overall_rank"] = float(np.mean(ranked)) if ranked else None
            row["ranked"] = bool(ranked)
        return rows

    def _inception_metrics(self, metrics: dict[str, Any], indices: list[int], target: dict[str, Any] | None) -> None:
        vectors = [self.inception[i] for i in indices if i in self.inception]
        if "inception_score" in self.metrics and vectors:
            probs = np.stack(vectors)[:, INCEPTION_FEATURES:]
            mean, std = inception_score(probs, splits=10 if len(vectors) >= 100 else 1)
            metrics["inception_score"] = {"mean": mean, "std": std, "n": len(vectors)}
        if "fid_inception" in self.metrics and target is not None and "inception" in target:
            features = [v[:INCEPTION_FEATURES] for v in vectors]
            used = [i for i in indices if i in self.inception]
            metrics["fid_inception"] = self._set_metric(
                "fid_inception", "inception", frechet_distance, used, features, target, "inception"
            )

    def _set_metric(
        self,
        name: str,
        encoder: str,
        fn: Callable[[np.ndarray, np.ndarray], float],
        used: list[int],
        generated: list[np.ndarray],
        target: dict[str, Any],
        target_key: str,
    ) -> dict[str, Any]:
        """Set-level metrics are cached too: sqrtm of a 1024×1024 product costs seconds."""
        key = _digest(
            [name, self.extractor.fingerprints[encoder], target["identity"], sorted(self.sha[i] for i in used)]
        )
        hit = self.cache.get_json("set-metric-v1", key)
        if hit is not None:
            return hit
        entry = set_metric(fn, generated, target[target_key], name != "kid_dinov2")
        self.cache.put_json("set-metric-v1", key, _clean_json(entry))
        return entry

    def _trust(self, metas: list[ImageMeta]) -> list[dict[str, Any]]:
        out = []
        adapters = sorted({m.adapter for m in metas if m.adapter is not None})
        scopes: list[tuple[str | None, list[int]]] = []
        all_adapter = [i for i, m in enumerate(metas) if m.adapter is not None and i in self.values]
        if not all_adapter:  # no adapter images (e.g. a plain folder): judge on all images
            all_adapter = [i for i in range(len(metas)) if i in self.values]
        scopes.append((None, all_adapter))
        if len(adapters) > 1:
            for name in adapters:
                scopes.append((name, [i for i in all_adapter if metas[i].adapter == name]))
        for label, per_metric in self.distractor_values.items():
            for metric, (_encoder, higher) in TRUST_METRICS.items():
                if metric not in per_metric:
                    continue
                for adapter, indices in scopes:
                    usable = [i for i in indices if metric in self.values.get(i, {}) and i in per_metric[metric]]
                    if not usable:
                        continue
                    res = trust_check(
                        np.array([self.values[i][metric] for i in usable]),
                        np.array([per_metric[metric][i] for i in usable]),
                        higher,
                        metric,
                        label,
                    )
                    entry = res.as_dict()
                    entry["adapter"] = adapter
                    out.append(entry)
        return out

    def _adapters(self, metas: list[ImageMeta]) -> dict[str, dict[str, Any]]:
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
        for name in sorted({m.adapter for m in metas if m.adapter}):
            info = known.get(name)
            if info is None and self.config.adapter_info is not None:
                try:
                    info = self.config.adapter_info(name)
                except Exception as exc:  # noqa: BLE001 - a label, never a reason to fail scoring
                    self.notes.append(f"adapter {name}: type not detected ({exc})")
            if info:
                out[name] = {k: info.get(k) for k in ("type", "trained_on", "base_model_version", "rank")}
        return out

    # -- main ------------------------------------------------------------------------------
    def _scored(self, metas: list[ImageMeta], failures: list[str]) -> list[ImageMeta]:
        """The images that were scored: only these make cells, counts and seeds; the others
        are under ``run.skipped``. None scored (every image failed to decode or encode) is
        bad input, unless the run was cancelled before the first image."""
        scored = [m for i, m in enumerate(metas) if i in self.values]
        if not scored and self.partial is None:
            raise no_readable_image("images", self.images_dir, failures)
        return scored

    def run(self) -> dict[str, Any]:
        c = self.config
        generated = scan_folder(self.images_dir, "images")
        self.problems.extend(generated.problems)
        reference = scan_folder(c.reference_dir, "reference") if c.reference_dir else None
        distractor_sets: list[ScannedSet] = []
        seen_labels: set[str] = set()
        for folder in c.distractor_dirs:
            label = Path(folder).name or str(folder)
            while label in seen_labels:
                label += "'"
            seen_labels.add(label)
            distractor_sets.append(scan_folder(folder, label))
        for s in ([reference] if reference else []) + distractor_sets:
            self.problems.extend(s.problems)
        self._select_metrics(reference is not None)
        encoders = self._make_encoders()
        cache: FeatureCache | NullCache = FeatureCache(c.cache_dir) if c.use_cache else NullCache()
        extractor = FeatureExtractor(encoders, cache)
        self.extractor, self.cache = extractor, cache
        by_image = run_store_records(self.images_dir)
        metas = [describe(r, by_image.get(r.path.name)) for r in generated.records]
        self.sha = {i: m.record.sha256 for i, m in enumerate(metas)}
        for m in metas:
            if m.infotext_error:
                self.notes.append(f"{m.record.path.name}: {m.infotext_error}")
        self._total = len(generated.records) + sum(
            len(s.records) for s in ([reference] if reference else []) + distractor_sets
        )
        try:
            target = self._reference_features(reference, extractor) if reference else None
            distractors = {s.label: self._reference_features(s, extractor) for s in distractor_sets}
            before = len(self.problems)
            self._generated_pass(metas, extractor, target, distractors)
            scored = self._scored(metas, generated.unreadable + [p["error"] for p in self.problems[before:]])
            self._text_alignment(metas, extractor)
            cells = group_cells(scored)
            metas_index = {id(m): i for i, m in enumerate(metas)}
            cell_dicts = [self._cell_dict(cell, metas_index, target) for cell in cells]
            summaries = self._summaries(cells, cell_dicts, metas_index, target)
        finally:
            if not c.keep_models_loaded:
                for encoder in encoders.values():
                    encoder.release()
            cache.close()
        trust = self._trust(metas) if distractors else []
        if c.random_weights:
            self.notes.insert(0, RANDOM_WEIGHTS_WARNING)
        run = {
            "tool": "sd-webui-lycoris-eval",
            "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "images_dir": str(self.images_dir),
            "reference_dir": str(c.reference_dir) if c.reference_dir else None,
            "distractor_dirs": [str(d) for d in c.distractor_dirs],
            "metrics": self.metrics,
            "trigger": dict(c.trigger),
            "device": next(iter(encoders.values())).device if encoders else "cpu",
            "random_weights": c.random_weights,
            "warning": RANDOM_WEIGHTS_WARNING if c.random_weights else None,
            "versions": library_versions(),
            "encoders": {name: enc.describe() for name, enc in encoders.items()},
            "kid_seed": KID_SEED,
            "vendi_q": c.vendi_q,
            "n_images": len(scored),
            "n_files": len(generated.records) + len(generated.problems),
            "partial": self.partial,
            "n_reference": target["n"] if target else 0,
            "n_cells": len(cells),
            "encoded": dict(extractor.encoded),
            "cache": {"hits": cache.hits, "misses": cache.misses, "dir": str(getattr(cache, "directory", "")) or None},
            "skipped": self.problems,
            "generation_failures": generation_failures(self.images_dir),
            "notes": self.notes,
        }
        metric_info = {
            name: {
                "title": METRICS[name].title,
                "higher_is_better": METRICS[name].higher_is_better,
                "level": METRICS[name].level,
                "source": METRICS[name].source,
            }
            for name in self.metrics
        }
        document = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run": run,
            "adapters": self._adapters(scored),
            "metrics": metric_info,
            "cells": cell_dicts,
            "summaries": summaries,
            "trust": trust,
        }
        return _clean_json(document)


def evaluate(images_dir: Path, config: EvalConfig | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Score a folder of images; see ``docs/scores-schema.md`` for the document."""
    return Evaluation(images_dir, config or EvalConfig(), progress).run()
