"""Precision, memory layout and batch-size measurements (issue #12, "Ready for a GPU").

    .venv/bin/python benchmarks/gpu_ready.py speed [--small] [--rounds 3] [--out FILE]
    .venv/bin/python benchmarks/gpu_ready.py batchmem [--out FILE]

* ``speed``     images/s per encoder and precision (and VGG memory layout), every variant
                on the same images in the same batches, alternating rounds, medians. On
                the CPU: fp32 and bf16 (contiguous and channels_last for VGG); on CUDA also
                fp16 and the batch chosen from free memory.
* ``batchmem``  peak bytes one more image keeps alive during a forward pass (batch 2 minus
                batch 1), full-size encoders, against ``encoders/batching.py``'s estimate.
                On the CPU a tensor-lifetime tracker counts them (fp32); on CUDA
                ``torch.cuda.max_memory_allocated`` in the default precision.

Random weights throughout: speed and memory do not depend on weight values. A variant an
encoder refuses (bf16 for the VGG Gram encoders) is reported as refused, not timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import weakref
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from helpers import pattern  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from lycoris_eval.scoring.encoders import EncoderOptions, make_encoder  # noqa: E402
from lycoris_eval.scoring.encoders.base import Encoder, pick_device  # noqa: E402
from lycoris_eval.scoring.encoders.batching import image_bytes  # noqa: E402

FULL = {
    "vgg19-gram": {},
    "vgg19-tutorial-gram": {},
    "openclip": {"model_name": "ViT-L-14"},
    "dinov2": {"arch": "vitl14"},
    "inception": {},
}
SMALL = {"openclip": {"model_name": "ViT-S-32"}, "dinov2": {"arch": "vits14"}}


def _encoder(name: str, precision: str, small: bool, batch: int = 8, channels_last: bool | None = None) -> Encoder:
    kwargs = (SMALL if small else {}).get(name, FULL[name])
    options = EncoderOptions(device="auto", random_weights=True, batch_size=batch, precision=precision)
    encoder = make_encoder(name, options, **kwargs)
    if channels_last is not None:
        encoder.channels_last = channels_last  # type: ignore[attr-defined]
    return encoder


def _variants(name: str, device: str) -> list[tuple[str, str, bool | None]]:
    """(label, precision, channels_last) to time: each precision, and for VGG fp32 also
    in the contiguous layout (channels_last is its default)."""
    precisions = ["fp32", "fp16", "bf16"] if device.startswith("cuda") else ["fp32", "bf16"]
    variants: list[tuple[str, str, bool | None]] = [(p, p, None) for p in precisions]
    if name.startswith("vgg19"):
        variants.insert(0, ("fp32 contiguous", "fp32", False))
    return variants


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_speed(small: bool, rounds: int, images: int) -> dict[str, Any]:
    device = pick_device("auto")
    out: dict[str, Any] = {}
    for name in ("vgg19-gram", "vgg19-tutorial-gram", "dinov2", "openclip"):
        encoders: dict[str, Encoder] = {}
        for label, precision, layout in _variants(name, device):
            encoder = _encoder(name, precision, small, channels_last=layout)
            if encoder.precision_note:
                out.setdefault(name, {})[label] = {"refused": encoder.precision_note}
                continue
            encoders[label] = encoder
        tensors = [next(iter(encoders.values())).preprocess(pattern(i, (96, 96))) for i in range(images)]
        times: dict[str, list[float]] = {label: [] for label in encoders}
        for encoder in encoders.values():
            encoder.encode(tensors[:2])  # load and warm up
        for _ in range(rounds):
            for label, encoder in encoders.items():
                _sync()
                start = time.perf_counter()
                encoder.encode(tensors)
                _sync()
                times[label].append(time.perf_counter() - start)
        for label, encoder in encoders.items():
            median = statistics.median(times[label])
            entry = {"precision": encoder.precision, "seconds": times[label], "images_per_s": round(images / median, 3)}
            entry["batch"] = encoder.batch_for(tuple(tensors[0].shape))
            out.setdefault(name, {})[label] = entry
            encoder.release()
        print(name, json.dumps(out[name], default=str), flush=True)
    return {"device": device, "images": images, "rounds": rounds, "small": small, "encoders": out}


class _LiveTensors(TorchDispatchMode):
    """Peak bytes of tensor storages created inside the mode and still referenced."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage pointer -> [bytes, tensors alive]
        self.current = self.peak = 0

    def _drop(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key in self.live:
                self.live[key][1] += 1
            else:
                self.live[key] = [storage.nbytes(), 1]
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            weakref.finalize(tensor, self._drop, key)
        return out


def _peak_bytes(encoder: Encoder, batch: int) -> int:
    x = encoder.prepare_batch(torch.stack([encoder.preprocess(pattern(i)) for i in range(batch)]))
    with torch.inference_mode(), encoder.autocast():
        if encoder.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            encoder.forward(x)
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - base
        tracker = _LiveTensors()
        with tracker:
            encoder.forward(x)
        return tracker.peak


def bench_batchmem() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FULL:
        encoder = _encoder(name, "auto", small=False)
        encoder.load()
        size = tuple(encoder.preprocess(pattern(0)).shape[-2:])
        per_image = _peak_bytes(encoder, 2) - _peak_bytes(encoder, 1)
        estimate = image_bytes(name, size)  # type: ignore[arg-type]
        out[name] = {
            "input": list(size),
            "precision": encoder.precision,
            "measured_mib": round(per_image / 2**20, 1),
            "estimate_mib": round(estimate / 2**20, 1),
            "estimate_over_measured": round(estimate / max(per_image, 1), 2),
        }
        print(name, out[name], flush=True)
        encoder.release()
    return {"device": pick_device("auto"), "encoders": out}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=("speed", "batchmem"))
    parser.add_argument("--small", action="store_true", help="ViT-S CLIP/DINOv2 for speed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = bench_speed(args.small, args.rounds, args.images) if args.which == "speed" else bench_batchmem()
    result["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
