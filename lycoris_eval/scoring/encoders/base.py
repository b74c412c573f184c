"""What every encoder shares: lazy loading, device choice, batching, fingerprints.

An encoder owns its preprocessing (PIL image -> tensor), its weights identity and a
fingerprint that changes whenever its numbers could change (architecture, weights,
preprocessing, precision). The fingerprint is computed without loading the model so a
fully cached evaluation never loads one.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lycoris_eval.config import DEFAULT_BATCH_SIZE
from lycoris_eval.errors import InputError
from lycoris_eval.scoring.encoders.batching import batch_size_for
from lycoris_eval.scoring.precision import BF16, FP16, FP32, device_type, resolve_precision
from lycoris_eval.scoring.weights import WeightsSpec, file_identity, load_into, load_state_dict, resolve_weights

RANDOM_SEED = 0
LOADED: dict[str, str] = {}  # encoder name -> device, for status reports (GET /encoders)
# Encoders kept loaded between evaluations ("keep models loaded"), by what makes them equal.
_POOL: dict[tuple[Any, ...], Encoder] = {}


def pooled(encoder: Encoder) -> Encoder:
    """The kept instance equal to ``encoder`` (same class, config, weights source, device),
    or ``encoder`` itself, now kept. A second evaluation reuses the loaded model."""
    key = encoder.pool_key()
    kept = _POOL.get(key)
    if kept is not None:
        return kept
    for other_key in [k for k in _POOL if k[0] == key[0]]:  # one model per encoder name
        _POOL.pop(other_key).release()
    _POOL[key] = encoder
    return encoder


def release_pool() -> int:
    """Free every kept encoder; returns how many there were."""
    count = len(_POOL)
    for encoder in _POOL.values():
        encoder.release()
    _POOL.clear()
    return count


def pool_status() -> dict[str, dict[str, Any]]:
    """What the kept encoders hold, by encoder name: device and parameter + buffer memory
    (MiB), for ``GET /encoders`` and the tab. Nothing is loaded to answer."""
    out: dict[str, dict[str, Any]] = {}
    for encoder in _POOL.values():
        if encoder.model is not None:
            out[encoder.name] = {"device": encoder.device, "memory_mib": round(encoder.memory_bytes() / 2**20, 1)}
    return out


def is_pooled(encoder: Encoder) -> bool:
    return _POOL.get(encoder.pool_key()) is encoder


def _no_accelerator_possible() -> bool:
    """True where no GPU can be present (no NVIDIA or ROCm device node, not macOS), so
    "auto" is the CPU without importing torch (1–2 s): a fully cached re-evaluation never
    needs it."""
    if sys.platform == "darwin":
        return False
    nodes = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")
    return not any(os.path.exists(node) for node in nodes)


def pick_device(requested: str = "auto") -> str:
    if requested in ("cpu", "auto") and (requested == "cpu" or _no_accelerator_possible()):
        return "cpu"
    import torch  # lazy: torch loads only when a model does

    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device {requested!r} requested but CUDA is not available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@dataclass
class EncoderOptions:
    device: str = "auto"
    weights_dir: Path | None = None
    random_weights: bool = False
    allow_download: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    # called with the device just before a model is built and moved there (not when every
    # feature is cached, not for a kept, loaded model): the host frees VRAM then
    before_load: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    precision: str = "auto"  # auto, fp32, fp16, bf16: see lycoris_eval/scoring/precision.py


class Encoder(ABC):
    """Base of image encoders. Subclasses define ``name``, ``spec``, ``config`` and the model."""

    name: str = "encoder"
    version: int = 1  # bump when this code changes numbers
    max_batch: int | None = None  # caps the batch where activations are large (CPU: host RAM)
    # mode ("fp16", "bf16") -> why this encoder runs fp32 instead
    refused_precisions: ClassVar[dict[str, str]] = {}

    def __init__(self, options: EncoderOptions | None = None) -> None:
        self.options = options or EncoderOptions()
        self.device = pick_device(self.options.device)
        self.model: Any = None
        self._weights_identity: str | None = None
        self._weights_path: Path | None = None
        self._mode, self.precision_note = resolve_precision(
            self.options.precision, self.device, self.name, self.refused_precisions
        )
        if self._mode == BF16 and device_type(self.device) == "cuda":
            import torch  # lazy: torch loads only when a model does

            if not torch.cuda.is_bf16_supported():
                raise InputError(
                    f"precision bf16 needs a GPU with bf16 support (Ampere or newer); {self.device} has none"
                )

    # --- identity -------------------------------------------------------------------
    @abstractmethod
    def weights_spec(self) -> WeightsSpec: ...

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything besides weights that changes the numbers (arch, preprocessing)."""

    @property
    def precision(self) -> str:
        """The effective precision (``fp32``, ``fp16-autocast``, ``bf16-autocast``), part of
        the fingerprint; subclasses add what else changes their numbers with it."""
        return self._mode

    def weights_identity(self) -> str:
        if self._weights_identity is None:
            if self.options.random_weights:
                self._weights_identity = f"random-weights(seed={RANDOM_SEED})"
            else:
                self._weights_path = resolve_weights(
                    self.weights_spec(), self.options.weights_dir, self.options.allow_download
                )
                self._weights_identity = file_identity(self._weights_path)
        return self._weights_identity

    def fingerprint(self) -> str:
        payload = {
            "encoder": self.name,
            "version": self.version,
            "config": self.config(),
            "weights": self.weights_identity(),
            "precision": self.precision,
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
        return f"{self.name}-{digest}"

    def pool_key(self) -> tuple[Any, ...]:
        """What must be equal for two instances to share one loaded model (no loading)."""
        o = self.options
        return (
            self.name,
            json.dumps(self.config(), sort_keys=True, default=str),
            self.device,
            self.precision,
            o.random_weights,
            str(o.weights_dir),
            o.allow_download,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "weights": self.weights_identity(),
            "random_weights": self.options.random_weights,
            "config": self.config(),
            "precision": self.precision,
            "precision_setting": self.options.precision,
            "precision_note": self.precision_note,
        }

    def memory_bytes(self) -> int:
        """Bytes held by the loaded model's parameters and buffers (0 when not loaded)."""
        if self.model is None:
            return 0
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return int(sum(t.numel() * t.element_size() for t in tensors))

    # --- model ------------------------------------------------------------------------
    @abstractmethod
    def build(self) -> Any:
        """The architecture with freshly initialised parameters."""

    def load(self) -> None:
        if self.model is not None:
            return
        if self.options.before_load is not None:
            self.options.before_load(self.device)
        import torch  # lazy: torch loads only when a model does

        if self.options.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                model = self.build()
        else:
            self.weights_identity()
            assert self._weights_path is not None
            model = self.build()
            self.load_weights(model, self._weights_path)
        self.model = model.eval().requires_grad_(False).to(self.device)
        LOADED[self.name] = self.device

    def load_weights(self, model: Any, path: Path) -> None:
        load_into(model, self.convert_state_dict(load_state_dict(path)), self.name, path)

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def release(self) -> None:
        """Free the model (VRAM and RAM). On CPU only ``gc.collect()`` frees anything."""
        if self.model is None:
            return
        self.model = None
        LOADED.pop(self.name, None)
        gc.collect()
        try:
            import torch  # lazy: torch loads only when a model does

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass

    # --- encoding ---------------------------------------------------------------------
    @abstractmethod
    def preprocess(self, image: Any) -> Any:
        """PIL RGB image -> float tensor (C, H, W)."""

    @abstractmethod
    def forward(self, batch: Any) -> Any:
        """(B, C, H, W) on device -> (B, D) features."""

    def autocast(self) -> Any:
        """The context the forward passes run in, for the effective precision."""
        import torch  # lazy: torch loads only when a model does

        if self._mode == FP16:
            return torch.autocast(device_type(self.device), dtype=torch.float16)
        if self._mode == BF16:
            return torch.autocast(device_type(self.device), dtype=torch.bfloat16)
        if device_type(self.device) == "cuda":
            return strict_fp32()
        return nullcontext()

    def fp32_region(self) -> Any:
        """Autocast switched off inside the forward pass: for sums that must stay fp32
        (the Gram matrices: autocast would run their ``bmm`` in fp16/bf16)."""
        if self._mode == FP32:
            return nullcontext()
        import torch  # lazy: torch loads only when a model does

        return torch.autocast(device_type(self.device), enabled=False)

    @property
    def batch_size(self) -> int:
        """The most images handed to one :meth:`encode` call: the configured batch, on the
        CPU capped by ``max_batch`` where activations are large (host RAM). On CUDA
        :meth:`encode` lowers it further to what free device memory holds."""
        if device_type(self.device) == "cuda":
            return max(1, self.options.batch_size)
        return max(1, min(self.options.batch_size, self.max_batch or self.options.batch_size))

    def batch_for(self, shape: tuple[int, ...]) -> int:
        """The batch for preprocessed tensors of ``shape`` (C, H, W): :attr:`batch_size`,
        on CUDA from the free memory (``torch.cuda.mem_get_info``) after the model loaded."""
        if device_type(self.device) != "cuda":
            return self.batch_size
        import torch  # lazy: torch loads only when a model does

        free, _total = torch.cuda.mem_get_info(torch.device(self.device))
        # autocast casts weights to half precision on the fly: room for those copies too
        reserve = self.memory_bytes() // 2 if self._mode != FP32 else 0
        return batch_size_for(self.name, (int(shape[-2]), int(shape[-1])), free, self.batch_size, reserve_bytes=reserve)

    def prepare_batch(self, batch: Any) -> Any:
        """The stacked batch, moved to the device (subclasses may change its layout)."""
        return batch.to(self.device)

    def encode(self, tensors: Sequence[Any]) -> np.ndarray:
        """Encode preprocessed tensors; same-size tensors are batched together."""
        import torch  # lazy: torch loads only when a model does

        self.load()
        out: list[np.ndarray | None] = [None] * len(tensors)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            by_shape.setdefault(tuple(tensor.shape), []).append(index)
        with torch.inference_mode(), self.autocast():
            for shape, indices in by_shape.items():
                batch_size, start = self.batch_for(shape), 0
                while start < len(indices):
                    chunk = indices[start : start + batch_size]
                    out_of_memory = False
                    try:
                        batch = self.prepare_batch(torch.stack([tensors[i] for i in chunk]))
                        features = self.forward(batch).float().cpu().numpy()
                    except torch.cuda.OutOfMemoryError:
                        if batch_size == 1:
                            raise
                        out_of_memory = True  # the estimate was short: halve and retry
                    if out_of_memory:  # outside the except: its traceback held the activations
                        batch_size = max(1, batch_size // 2)
                        torch.cuda.empty_cache()
                        continue
                    for row, index in zip(features, chunk):
                        out[index] = row
                    start += len(chunk)
        return np.stack(out).astype(np.float32, copy=False)  # type: ignore[arg-type]


@contextmanager
def strict_fp32() -> Any:
    """TF32 off for our forward passes on CUDA, restored afterwards: "fp32" means IEEE
    fp32, also in a WebUI that turns TF32 on for its own models (A1111 does)."""
    import torch  # lazy: torch loads only when a model does

    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
