"""Scoring a sweep's run folder: the encoders' image features computed by a Ray Data map
over the images, with an actor pool holding the encoders (a GPU each where Ray sees
GPUs, a CPU otherwise), then the single-machine aggregation.

The pool's vectors go into the feature cache under the same keys
:func:`lycoris_eval.scoring.pipeline.evaluate` uses (encoder fingerprint + image content hash);
``evaluate`` then runs unchanged on the run folder and finds every image feature there.
So ``scores.json`` is the single-machine document, computed by the same code; only the
encoder forward passes moved, and they see the same batches: a pool row is one of the
chunks ``evaluate`` would encode together, and CPU actors use the driver's torch thread
count (CPU kernels round differently, about 1e-8 relative, for another batch composition
or thread count; the same bits need the same kind of processor). What still runs on the driver: decoding baseline/adapter
pairs for PSNR/SSIM, encoding the prompts (CLIP text), and the set statistics.

A pool row carries the chunk's image paths, sizes and content hashes, never the bytes: an
actor that sees the run folder (same machine, or a shared file system: the file is there,
its size and SHA-256 match) reads the files itself; one that does not asks a reader actor
pinned on the driver's node for the bytes of that row only. Rows go to Ray Data in windows
of at most ``window_images`` images, one dataset after another, so neither the driver nor
the object store ever holds a whole run's rows (3.5 M images: 1.4 TB of PNGs).

The pool is a feature provider (:data:`lycoris_eval.scoring.finished_grid.FeatureProvider`):
:func:`score_run` hands it to :func:`~lycoris_eval.scoring.finished_grid.score_finished_run`,
the path every front end scores a run by, so a swept run gets the same files as a run the
WebUI scored. :func:`encode_in_process` is the same work without Ray (the same rows through
one :class:`EncodeActor` here). Ray is imported only where the pool runs: this module
loads in an environment without it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lycoris_eval.config import EvalConfig
from lycoris_eval.grid.store import run_store_records
from lycoris_eval.inputs.grouping import describe
from lycoris_eval.inputs.images import ImageRecord
from lycoris_eval.scoring.cache import FeatureCache
from lycoris_eval.scoring.finished_grid import FeatureProvider, ScoredRun, score_finished_run
from lycoris_eval.scoring.metrics import METRICS
from lycoris_eval.scoring.passes import generated_chunks
from lycoris_eval.scoring.pipeline import Evaluation

# images in one Ray Data window: bounds the rows in the driver and in flight (paths only)
WINDOW_IMAGES = 16384


class FileReader:
    """Runs on the driver's node, where the run folder is: the bytes of a row, for an actor that cannot see the files."""

    def read(self, paths: list[str]) -> list[bytes]:
        return [Path(p).read_bytes() for p in paths]


def load_row(
    paths: Iterable[str], sizes: Iterable[int], shas: Iterable[str], fetch: Callable[[list[str]], list[bytes]]
) -> tuple[list[bytes], str]:
    """A row's image bytes and where they came from: ``"path"`` when this process sees every
    file (there, same size, same SHA-256: the same image whatever the mount), else
    ``"bytes"`` from ``fetch`` (the driver's node)."""
    paths = [str(p) for p in paths]
    datas: list[bytes] = []
    try:
        for path, size, sha in zip(paths, sizes, shas):
            if os.stat(path).st_size != int(size):
                break
            data = Path(path).read_bytes()
            if hashlib.sha256(data).hexdigest() != str(sha):
                break
            datas.append(data)
        else:
            return datas, "path"
    except OSError:
        pass
    return list(fetch(paths)), "bytes"


class EncodeActor:
    """Holds the encoders (loaded once per actor); encodes one chunk per row, as ``evaluate`` would."""

    def __init__(self, config: EvalConfig, metrics: list[str], threads: int | None = None, reader: Any = None) -> None:
        from lycoris_eval.scoring.cache import NullCache  # lazy: cache imports numpy at its top

        # lazy: features imports numpy at its top
        from lycoris_eval.scoring.features import FeatureExtractor

        if threads:  # CPU kernels also round differently for another thread count
            import torch

            torch.set_num_threads(threads)

        encoders = Evaluation(Path("."), config)._make_encoders(metrics)
        self.extractor = FeatureExtractor(encoders, NullCache())
        self.reader = reader

    def _fetch(self, paths: list[str]) -> list[bytes]:
        if self.reader is None:
            raise FileNotFoundError(f"{paths[0]}: not visible here, and no reader on the driver's node")
        import ray  # lazy: Ray only in the sweep's environment, where the pool runs

        return ray.get(self.reader.read.remote(paths))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, list[Any]] = {"shas": [], "vectors": [], "fingerprints": [], "source": []}
        for names, files, shas, paths, sizes in zip(
            batch["names"], batch["files"], batch["shas"], batch["paths"], batch["sizes"]
        ):
            datas, source = load_row(paths, sizes, shas, self._fetch)
            records = [ImageRecord(Path(str(f)), str(h), d, 0, 0, "RGB", None) for f, h, d in zip(files, shas, datas)]
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
            out["source"].append(source)
        return out


def _chunk_rows(images_dir: Path, config: EvalConfig, metrics: list[str], names: list[str]) -> Iterator[dict[str, Any]]:
    """The chunks a single-machine ``evaluate`` encodes together (reference and distractor sets
    in slices of ``chunk_images``, generated images in whole pair groups), one row each: the
    images' paths, sizes and hashes (the actors read the files)."""
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
    for chunk_names, records in chunks:
        yield {
            "names": chunk_names,
            "files": [r.path.name for r in records],
            "shas": [r.sha256 for r in records],
            "paths": [str(r.path.resolve()) for r in records],
            "sizes": [r.path.stat().st_size for r in records],
        }


def windows(rows: Iterable[dict[str, Any]], size: int = WINDOW_IMAGES) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in lists of at most ``size`` images (a row larger than that alone)."""
    window: list[dict[str, Any]] = []
    images = 0
    for row in rows:
        if window and images + len(row["shas"]) > size:
            yield window
            window, images = [], 0
        window.append(row)
        images += len(row["shas"])
    if window:
        yield window


@dataclass
class PoolReport:
    """What the pool did: chunks encoded, Ray Data windows, rows whose files the actors read
    themselves (``from_paths``) or got from the driver's node (``from_bytes``)."""

    chunks: int = 0
    windows: int = 0
    from_paths: int = 0
    from_bytes: int = 0


@dataclass
class _Work:
    """What the evaluation will encode: its metrics and, per encoder, its fingerprint."""

    metrics: list[str]
    fingerprints: dict[str, str]


def _work(images_dir: Path, config: EvalConfig) -> _Work:
    evaluation = Evaluation(images_dir, config)
    metrics = evaluation._select_metrics(config.reference_dir is not None, [])
    encoders = evaluation._make_encoders(metrics)
    return _Work(metrics, {name: encoder.fingerprint() for name, encoder in encoders.items()})


def _pending_rows(images_dir: Path, config: EvalConfig, work: _Work, cache: FeatureCache) -> Iterator[dict[str, Any]]:
    """The chunks with an image feature the cache does not hold yet."""
    return (
        row
        for row in _chunk_rows(images_dir, config, work.metrics, list(work.fingerprints))
        if any(cache.get(work.fingerprints[n], h) is None for n in row["names"] for h in row["shas"])
    )


def _keep(cache: FeatureCache, row: dict[str, Any], report: PoolReport) -> None:
    """One encoded row's vectors into the cache, where ``evaluate`` looks them up."""
    for fingerprint, vectors in zip(row["fingerprints"], row["vectors"]):
        for sha, vector in zip(row["shas"], vectors):
            if vector:
                cache.put(str(fingerprint), str(sha), np.frombuffer(vector, dtype=np.float32))
    report.from_paths += row["source"] == "path"
    report.from_bytes += row["source"] == "bytes"


def encode_features(
    images_dir: Path, config: EvalConfig, actors: int | None = None, window_images: int = WINDOW_IMAGES
) -> PoolReport:
    """Fill ``config``'s feature cache for every image the evaluation will encode (Ray started)."""
    work = _work(images_dir, config)
    report = PoolReport()
    if not work.fingerprints:
        return report
    import ray  # lazy: Ray only in the sweep's environment, where the pool runs
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # lazy: as ray

    cache = FeatureCache(config.cache_dir)
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    reader = ray.remote(num_cpus=0)(FileReader).options(scheduling_strategy=here).remote()
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        kwargs = {"config": config, "metrics": work.metrics, "threads": None if gpus else _threads(), "reader": reader}
        for window in windows(_pending_rows(images_dir, config, work, cache), window_images):
            dataset = ray.data.from_items(window).map_batches(
                EncodeActor,
                fn_constructor_kwargs=kwargs,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(actors or max(1, gpus), len(window))),
                num_gpus=1 if gpus else 0,
                num_cpus=0 if gpus else 1,
            )
            for row in dataset.iter_rows():
                _keep(cache, row, report)
            report.chunks += len(window)
            report.windows += 1
        return report
    finally:
        ray.kill(reader)
        cache.close()


def encode_in_process(images_dir: Path, config: EvalConfig, window_images: int = WINDOW_IMAGES) -> PoolReport:
    """:func:`encode_features` without Ray: the same rows, encoded in this process by one
    :class:`EncodeActor` (a :data:`FeatureProvider` for a machine without Ray, and the
    tests' stand-in for the pool)."""
    work = _work(images_dir, config)
    report = PoolReport()
    if not work.fingerprints:
        return report
    cache = FeatureCache(config.cache_dir)
    actor = EncodeActor(config, work.metrics)
    try:
        for window in windows(_pending_rows(images_dir, config, work, cache), window_images):
            for row in window:  # a batch of one row, as the pool's map_batches(batch_size=1) hands it
                out = actor({key: [value] for key, value in row.items()})
                _keep(cache, {key: values[0] for key, values in out.items()}, report)
            report.chunks += len(window)
            report.windows += 1
        return report
    finally:
        if not config.keep_models_loaded:
            for encoder in actor.extractor.encoders.values():
                encoder.release()
        cache.close()


def _threads() -> int:
    """The driver's torch thread count: CPU actors use the same, so their features are the driver's bits."""
    import torch  # lazy: torch loads only when a model does

    return torch.get_num_threads()


def ray_features(
    actors: int | None = None, ray_address: str | None = None, num_cpus: int | None = None
) -> FeatureProvider:
    """The pool as a feature provider: in the Ray already started, else one started for the call."""

    def provide(images_dir: Path, config: EvalConfig) -> PoolReport:
        import ray  # lazy: Ray only in the sweep's environment, where the pool runs

        own = not ray.is_initialized()
        if own:
            ray.init(address=ray_address, num_cpus=num_cpus, log_to_driver=False)
        try:
            return encode_features(images_dir, config, actors)
        finally:
            if own:
                ray.shutdown()

    return provide


def score_run(
    run_dir: Path,
    config: EvalConfig,
    actors: int | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    features: FeatureProvider | None = None,
) -> ScoredRun:
    """The run scored as every front end scores one (every report file into its report
    folder), the image features computed by ``features``: the Ray pool unless given."""
    return score_finished_run(run_dir, config, features=features or ray_features(actors, ray_address, num_cpus))
