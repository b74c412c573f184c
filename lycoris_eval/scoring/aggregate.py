"""From a table of per-image values to the parts of the scores document.

Owns the aggregation: :class:`ImageTable` (what the pipeline measured, image by image),
cells (:func:`cell_dict`), summaries per (checkpoint, adapter, weight, group) with their
ranks (:func:`summaries`, :func:`add_ranks`), the trust check (:func:`trust`), the
metric descriptions and the JSON cleaning of the document.

Pure functions of their arguments: must not import torch, the encoders, the feature
cache or anything that reads or writes files. Set-level metrics that are worth caching
(Fréchet distance, KID) come in as a :data:`SetMetricFn` the caller provides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lycoris_eval.errors import MetricError
from lycoris_eval.inputs.grouping import Cell, ImageMeta
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.metrics.fidelity import fidelity
from lycoris_eval.scoring.metrics.frechet import inception_score, reliability_note
from lycoris_eval.scoring.metrics.ranks import rank_normalise
from lycoris_eval.scoring.metrics.trust import trust_check
from lycoris_eval.scoring.metrics.vendi import vendi_score

# metric -> (encoder, higher_is_better) for the per-image distance used by the trust check
TRUST_METRICS = {
    "style_loss_ref": ("vgg19-gram", False),
    "style_loss_tutorial": ("vgg19-tutorial-gram", False),
    "image_similarity": ("dinov2", True),
}

# (name, image indices used, their vectors) -> {mean, std, n[, note]}; None when the
# target set has no vectors for that metric (the metric is then left out)
SetMetricFn = Callable[[str, list[int], list[np.ndarray]], dict[str, Any] | None]


@dataclass
class ImageTable:
    """Everything measured on the generated images, keyed by index into ``metas``.

    An index is in ``values`` once its image was scored (decoded and encoded)."""

    metas: list[ImageMeta]
    values: dict[int, dict[str, float]] = field(default_factory=dict)  # index -> metric -> value
    dino: dict[int, np.ndarray] = field(default_factory=dict)
    clip_image: dict[int, np.ndarray] = field(default_factory=dict)
    inception_features: dict[int, np.ndarray] = field(default_factory=dict)  # pool features (FID)
    inception_probs: dict[int, np.ndarray] = field(default_factory=dict)  # class probabilities (IS)
    # distractor set -> metric -> index -> value
    distractor_values: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    _index: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {id(m): i for i, m in enumerate(self.metas)}

    def index(self, meta: ImageMeta) -> int:
        return self._index[id(meta)]

    def scored(self) -> list[ImageMeta]:
        return [m for i, m in enumerate(self.metas) if i in self.values]


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """``{mean, std, n}`` over the finite values; ``std`` is the sample std (None for one)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(finite, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else None, "n": int(arr.size)}


def cell_dict(
    table: ImageTable, cell: Cell, metrics: Sequence[str], vendi_q: float, target_dino: np.ndarray | None
) -> dict[str, Any]:
    """One cell of the document: image-level metrics summarised over its images, Vendi over
    its DINOv2 vectors, centroid distance to the target set's DINOv2 vectors."""
    indices = [table.index(m) for m in cell.images if table.index(m) in table.values]
    out: dict[str, Any] = {}
    per_image: dict[str, list[float | None]] = {}
    for name in metrics:
        info = METRICS[name]
        if info.level == "image":
            vals = [table.values[i][name] for i in indices if name in table.values[i]]
            if vals:
                out[name] = summarise(vals)
                per_image[name] = [table.values.get(table.index(m), {}).get(name) for m in cell.images]
    dino = [table.dino[i] for i in indices if i in table.dino]
    if dino and "vendi" in metrics:
        out["vendi"] = {"mean": vendi_score(np.stack(dino), q=vendi_q), "std": None, "n": len(dino)}
    if dino and target_dino is not None and "centroid_distance" in metrics:
        _, dist = fidelity(np.stack(dino), target_dino)
        out["centroid_distance"] = {"mean": dist, "std": None, "n": len(dino)}
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
        "metrics": out,
        "values": per_image,
    }


def summaries(
    table: ImageTable,
    cells: Sequence[Cell],
    cell_dicts: Sequence[dict[str, Any]],
    metrics: Sequence[str],
    set_metric: SetMetricFn | None,
) -> list[dict[str, Any]]:
    """One row per (checkpoint, adapter, weight, group): cell means summarised across its
    cells, set-level metrics over all its images, then ranks (:func:`add_ranks`).
    ``set_metric`` is None when there is no target reference set."""
    groups: dict[tuple, list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault((cell.checkpoint, cell.adapter, cell.weight, cell.group), []).append(i)
    rows = []
    for (checkpoint, adapter, weight, group), members in groups.items():
        out: dict[str, Any] = {}
        for name in metrics:
            if METRICS[name].level == "group":
                continue
            means = [cell_dicts[i]["metrics"][name]["mean"] for i in members if name in cell_dicts[i]["metrics"]]
            means = [m for m in means if m is not None]
            if means:
                out[name] = summarise(means)
                out[name]["n_cells"] = out[name].pop("n")
        indices = [table.index(m) for i in members for m in cells[i].images]
        out.update(group_metrics(table, indices, metrics, set_metric))
        rows.append(
            {
                "checkpoint": checkpoint,
                "adapter": adapter,
                "weight": weight,
                "group": group,
                "baseline": adapter is None and any(cell_dicts[i]["baseline"] for i in members),
                "n_images": len(indices),
                "prompts": len(members),
                "metrics": out,
            }
        )
    return add_ranks(rows, metrics)


def group_metrics(
    table: ImageTable, indices: list[int], metrics: Sequence[str], set_metric: SetMetricFn | None
) -> dict[str, Any]:
    """Set-level metrics over the images ``indices``: FD and KID (DINOv2), IS and FID (Inception)."""
    out: dict[str, Any] = {}
    if set_metric is not None:
        for name in ("fd_dinov2", "kid_dinov2"):
            if name in metrics:
                used = [i for i in indices if i in table.dino]
                entry = set_metric(name, used, [table.dino[i] for i in used])
                if entry is not None:
                    out[name] = entry
    probs = [table.inception_probs[i] for i in indices if i in table.inception_probs]
    if "inception_score" in metrics and probs:
        mean, std = inception_score(np.stack(probs), splits=10 if len(probs) >= 100 else 1)
        out["inception_score"] = {"mean": mean, "std": std, "n": len(probs)}
    if "fid_inception" in metrics and set_metric is not None:
        used = [i for i in indices if i in table.inception_features]
        entry = set_metric("fid_inception", used, [table.inception_features[i] for i in used])
        if entry is not None:
            out["fid_inception"] = entry
    return out


def add_ranks(rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rank normalise within each checkpoint (adapters × weights compete; the baseline row
    is not ranked): sets ``ranks``, ``overall_rank`` and ``ranked`` on each row, returns rows."""
    by_checkpoint: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        row["ranks"] = {}
        if not row["baseline"]:
            by_checkpoint.setdefault(row["checkpoint"], []).append(i)
    for members in by_checkpoint.values():
        for name in metrics:
            vals = [rows[i]["metrics"].get(name, {}).get("mean") for i in members]
            for i, r in zip(members, rank_normalise(vals, METRICS[name].higher_is_better)):
                if rows[i]["metrics"].get(name) is not None:
                    rows[i]["ranks"][name] = r
    for row in rows:
        ranked = [r for r in row["ranks"].values() if r is not None]
        row["overall_rank"] = float(np.mean(ranked)) if ranked else None
        row["ranked"] = bool(ranked)
    return rows


def trust(table: ImageTable) -> list[dict[str, Any]]:
    """Per distractor set and trust metric: are the images closer to the target than to the
    distractor? Over all adapter images, and per adapter when there are several."""
    metas, values = table.metas, table.values
    out = []
    adapters = sorted({m.adapter for m in metas if m.adapter is not None})
    scopes: list[tuple[str | None, list[int]]] = []
    all_adapter = [i for i, m in enumerate(metas) if m.adapter is not None and i in values]
    if not all_adapter:  # no adapter images (e.g. a plain folder): judge on all images
        all_adapter = [i for i in range(len(metas)) if i in values]
    scopes.append((None, all_adapter))
    if len(adapters) > 1:
        for name in adapters:
            scopes.append((name, [i for i in all_adapter if metas[i].adapter == name]))
    for label, per_metric in table.distractor_values.items():
        for metric, (_encoder, higher) in TRUST_METRICS.items():
            if metric not in per_metric:
                continue
            for adapter, indices in scopes:
                usable = [i for i in indices if metric in values.get(i, {}) and i in per_metric[metric]]
                if not usable:
                    continue
                res = trust_check(
                    np.array([values[i][metric] for i in usable]),
                    np.array([per_metric[metric][i] for i in usable]),
                    higher,
                    metric,
                    label,
                )
                entry = res.as_dict()
                entry["adapter"] = adapter
                out.append(entry)
    return out


def set_metric_entry(
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


def metric_info(metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The document's ``metrics`` section: title, direction, level and source of each."""
    return {
        name: {
            "title": METRICS[name].title,
            "higher_is_better": METRICS[name].higher_is_better,
            "level": METRICS[name].level,
            "source": METRICS[name].source,
        }
        for name in metrics
    }


def clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy -> python: the JSON never holds NaN."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
