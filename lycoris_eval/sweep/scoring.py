"""Scoring a sweep's run folder: the encoders' image features computed by a Ray Data map
over the images, with an actor pool holding the encoders (a GPU each where Ray sees
GPUs, a CPU otherwise), then the single-machine aggregation.

The pool's vectors go into the feature cache under the same keys
:func:`lycoris_eval.evaluate.evaluate` uses (encoder fingerprint + image content hash);
``evaluate`` then runs unchanged on the run folder and finds every image feature there.
So ``scores.json`` is the single-machine document, computed by the same code; only the
encoder forward passes moved. What still runs on the driver: decoding baseline/adapter
pairs for PSNR/SSIM, encoding the prompts (CLIP text), and the set statistics.

The driver reads the image bytes (the run folder is on its disk) and ships them with the
rows, so pool actors on other machines need no shared file system.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import ray

from ..cache import FeatureCache
from ..config import EvalConfig
from ..evaluate import Evaluation, evaluate
from ..images import ImageRecord
from ..metrics import METRICS
from ..scan import scan_folder


class EncodeActor:
    """Holds the encoders (loaded once per actor); encodes one batch of rows."""

    def __init__(self, config: EvalConfig, metrics: list[str]) -> None:
        from ..cache import NullCache
        from ..features import FeatureExtractor

        self.names = sorted({METRICS[m].encoder for m in metrics if METRICS[m].encoder})
        encoders = Evaluation(Path("."), config)._make_encoders(metrics)
        self.extractor = FeatureExtractor(encoders, NullCache())

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        records = [
            ImageRecord(Path(str(name)), str(sha), bytes(data), 0, 0, "RGB", None)
            for name, sha, data in zip(batch["name"], batch["sha"], batch["data"])
        ]
        result = self.extractor.run(records, self.names)
        out: dict[str, Any] = {"sha": list(batch["sha"])}
        for name in self.names:
            vectors = result.features.get(name, {})
            out[name] = [
                np.asarray(vectors[i], dtype=np.float32).tobytes() if i in vectors else b"" for i in range(len(records))
            ]
        return out


def _rows(config: EvalConfig, images_dir: Path) -> list[dict[str, Any]]:
    """One row per distinct image (generated, reference, distractors), with its bytes."""
    folders = [images_dir, *([config.reference_dir] if config.reference_dir else []), *config.distractor_dirs]
    rows: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for record in scan_folder(Path(folder), "images").records:
            rows.setdefault(record.sha256, {"sha": record.sha256, "name": record.path.name, "path": record.path})
    return list(rows.values())


def encode_features(images_dir: Path, config: EvalConfig, actors: int | None = None, batch: int = 16) -> int:
    """Fill ``config``'s feature cache for every image the evaluation will need; how many were encoded."""
    evaluation = Evaluation(images_dir, config)
    metrics = evaluation._select_metrics(config.reference_dir is not None, [])
    encoders = evaluation._make_encoders(metrics)
    fingerprints = {name: encoder.fingerprint() for name, encoder in encoders.items()}
    cache = FeatureCache(config.cache_dir)
    try:
        todo = [
            r for r in _rows(config, images_dir) if any(cache.get(fp, r["sha"]) is None for fp in fingerprints.values())
        ]
        if not todo or not fingerprints:
            return 0
        for row in todo:
            row["data"] = Path(row.pop("path")).read_bytes()
        gpus = int(ray.cluster_resources().get("GPU", 0))
        size = actors or max(1, gpus)
        dataset = ray.data.from_items(todo).map_batches(
            EncodeActor,
            fn_constructor_kwargs={"config": replace(config, device="auto" if gpus else "cpu"), "metrics": metrics},
            batch_size=batch,
            compute=ray.data.ActorPoolStrategy(size=size),
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,
        )
        for row in dataset.iter_rows():
            for name, fingerprint in fingerprints.items():
                if row[name]:
                    cache.put(fingerprint, row["sha"], np.frombuffer(row[name], dtype=np.float32))
        return len(todo)
    finally:
        cache.close()


def score_run(run_dir: Path, config: EvalConfig, actors: int | None = None) -> dict[str, Any]:
    """``evaluate(run_dir/images, config)`` with the image features computed by the Ray pool."""
    images_dir = Path(run_dir) / "images"
    scratch = None
    if not config.use_cache:  # the pool hands its vectors over through a cache: a private one here
        scratch = tempfile.mkdtemp(prefix="lycoris-eval-sweep-")
        config = replace(config, use_cache=True, cache_dir=Path(scratch))
    try:
        encode_features(images_dir, config, actors)
        return evaluate(images_dir, config)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
