"""Scoring a sweep's run folder: the encoders' image features computed by a Ray Data map
over the images, with an actor pool holding the encoders (a GPU each where Ray sees
GPUs, a CPU otherwise), then the single-machine aggregation.

The pool's vectors go into the feature cache under the same keys
:func:`lycoris_eval.evaluate.evaluate` uses (encoder fingerprint + image content hash);
``evaluate`` then runs unchanged on the run folder and finds every image feature there.
So ``scores.json`` is the single-machine document, computed by the same code; only the
encoder forward passes moved, and they see the same batches: a pool row is one of the
chunks ``evaluate`` would encode together, and CPU actors use the driver's torch thread
count (CPU kernels round differently, about 1e-8 relative, for another batch composition
or thread count; the same bits need the same kind of processor). What still runs on the driver: decoding baseline/adapter
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
from ..feature_passes import generated_chunks
from ..grouping import describe
from ..images import ImageRecord
from ..metrics import METRICS
from ..scan import run_store_records


class EncodeActor:
    """Holds the encoders (loaded once per actor); encodes one chunk per row, as ``evaluate`` would."""

    def __init__(self, config: EvalConfig, metrics: list[str], threads: int | None = None) -> None:
        from ..cache import NullCache
        from ..features import FeatureExtractor

        if threads:  # CPU kernels also round differently for another thread count
            import torch

            torch.set_num_threads(threads)

        encoders = Evaluation(Path("."), config)._make_encoders(metrics)
        self.extractor = FeatureExtractor(encoders, NullCache())

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, list[Any]] = {"shas": [], "vectors": [], "fingerprints": []}
        for names, files, shas, datas in zip(batch["names"], batch["files"], batch["shas"], batch["data"]):
            records = [
                ImageRecord(Path(str(f)), str(h), bytes(d), 0, 0, "RGB", None) for f, h, d in zip(files, shas, datas)
            ]
            names = [str(n) for n in names]
            result = self.extractor.run(records, names)
            out["shas"].append(list(shas))
            out["vectors"].append(
                [
                    [
                        result.features[n][i].astype(np.float32).tobytes() if i in result.features[n] else b""
                        for i in range(len(records))
                    ]
                    for n in names
                ]
            )
            out["fingerprints"].append([self.extractor.fingerprints[n] for n in names])
        return out


def _chunk_rows(images_dir: Path, config: EvalConfig, metrics: list[str], names: list[str]) -> list[dict[str, Any]]:
    """The chunks a single-machine ``evaluate`` encodes together (reference and distractor sets
    in slices of ``chunk_images``, generated images in whole pair groups), one row each."""
    inputs = Evaluation(images_dir, config)._scan()
    size = config.chunk_images
    wanted = {METRICS[m].encoder for m in metrics if METRICS[m].needs == "reference"}
    ref_names = [n for n in names if n in wanted]
    chunks: list[tuple[list[str], list[ImageRecord]]] = []
    for scanned in [s for s in (inputs.reference, *inputs.distractors) if s is not None]:
        if ref_names:
            chunks += [(ref_names, scanned.records[i : i + size]) for i in range(0, len(scanned.records), size)]
    by_image = run_store_records(images_dir)
    metas = [describe(r, by_image.get(r.path.name)) for r in inputs.generated.records]
    chunks += [(names, [m.record for m in chunk]) for chunk in generated_chunks(metas, size)]
    return [
        {
            "names": chunk_names,
            "files": [r.path.name for r in records],
            "shas": [r.sha256 for r in records],
            "paths": [str(r.path) for r in records],
        }
        for chunk_names, records in chunks
    ]


def encode_features(images_dir: Path, config: EvalConfig, actors: int | None = None) -> int:
    """Fill ``config``'s feature cache for every image the evaluation will encode; how many chunks were encoded."""
    evaluation = Evaluation(images_dir, config)
    metrics = evaluation._select_metrics(config.reference_dir is not None, [])
    encoders = evaluation._make_encoders(metrics)
    fingerprints = {name: encoder.fingerprint() for name, encoder in encoders.items()}
    if not fingerprints:
        return 0
    cache = FeatureCache(config.cache_dir)
    try:
        rows = [
            row
            for row in _chunk_rows(images_dir, config, metrics, list(encoders))
            if any(cache.get(fingerprints[n], h) is None for n in row["names"] for h in row["shas"])
        ]
        if not rows:
            return 0
        for row in rows:  # the driver has the files; actors elsewhere get the bytes
            row["data"] = [Path(p).read_bytes() for p in row.pop("paths")]
        gpus = int(ray.cluster_resources().get("GPU", 0))
        dataset = ray.data.from_items(rows).map_batches(
            EncodeActor,
            fn_constructor_kwargs={"config": config, "metrics": metrics, "threads": None if gpus else _threads()},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors or max(1, gpus)),
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,
        )
        for row in dataset.iter_rows():
            for fingerprint, vectors in zip(row["fingerprints"], row["vectors"]):
                for sha, vector in zip(row["shas"], vectors):
                    if vector:
                        cache.put(str(fingerprint), str(sha), np.frombuffer(vector, dtype=np.float32))
        return len(rows)
    finally:
        cache.close()


def _threads() -> int:
    """The driver's torch thread count: CPU actors use the same, so their features are the driver's bits."""
    import torch

    return torch.get_num_threads()


def score_run(
    run_dir: Path,
    config: EvalConfig,
    actors: int | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
) -> dict[str, Any]:
    """``evaluate(run_dir/images, config)`` with the image features computed by the Ray pool
    (in the Ray already started, else one started here for the call)."""
    images_dir = Path(run_dir) / "images"
    scratch = None
    if not config.use_cache:  # the pool hands its vectors over through a cache: a private one here
        scratch = tempfile.mkdtemp(prefix="lycoris-eval-sweep-")
        config = replace(config, use_cache=True, cache_dir=Path(scratch))
    own = not ray.is_initialized()
    if own:
        ray.init(address=ray_address, num_cpus=num_cpus, log_to_driver=False)
    try:
        encode_features(images_dir, config, actors)
        return evaluate(images_dir, config)
    finally:
        if own:
            ray.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
