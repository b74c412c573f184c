"""On-disk feature cache: image content hash + encoder fingerprint -> float32 vector.

Values are stored as raw float32 bytes (no pickling). The encoder fingerprint covers
architecture, weights, preprocessing and precision, so a changed setting never reads a
stale vector. Gram vectors are 2.4 MB each; the default size limit is generous and
configurable, and diskcache evicts least-recently-used entries past it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZE_LIMIT = 16 * 1024**3


def default_cache_dir() -> Path:
    base = os.environ.get("LYCORIS_EVAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lycoris-eval"
    )
    return Path(base)


class FeatureCache:
    def __init__(self, directory: Path | None = None, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        import diskcache  # lazy: diskcache only when the cache opens

        self.directory = Path(directory) if directory else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit, eviction_policy="least-recently-used")
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(fingerprint: str, content_hash: str) -> str:
        return f"{fingerprint}/{content_hash}"

    def get(self, fingerprint: str, content_hash: str) -> np.ndarray | None:
        raw = self._cache.get(self.key(fingerprint, content_hash))
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return np.frombuffer(raw, dtype=np.float32)

    def put(self, fingerprint: str, content_hash: str, vector: np.ndarray) -> None:
        self._cache.set(self.key(fingerprint, content_hash), np.ascontiguousarray(vector, dtype=np.float32).tobytes())

    def get_json(self, namespace: str, key: str) -> Any:
        raw = self._cache.get(f"{namespace}/{key}")
        return None if raw is None else json.loads(raw.decode("utf-8"))

    def put_json(self, namespace: str, key: str, value: Any) -> None:
        self._cache.set(f"{namespace}/{key}", json.dumps(value, allow_nan=False).encode("utf-8"))

    def close(self) -> None:
        self._cache.close()


class NullCache:
    """Used with ``--no-cache``: never stores anything."""

    hits = 0
    misses = 0

    def get(self, fingerprint: str, content_hash: str) -> np.ndarray | None:
        self.misses += 1
        return None

    def put(self, fingerprint: str, content_hash: str, vector: np.ndarray) -> None:
        return None

    def get_json(self, namespace: str, key: str) -> Any:
        return None

    def put_json(self, namespace: str, key: str, value: Any) -> None:
        return None

    def close(self) -> None:
        return None
