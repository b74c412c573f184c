"""Adapter type detection from a safetensors header alone.

Reads the 8-byte length and the JSON header of a ``.safetensors`` file: never the
tensors, and never unpickles ``.pt``/``.ckpt`` files (those are "type unknown").
Classifies from key suffixes, following the LyCORIS / kohya naming:

LoRA (``lora_up``/``lora_down``, ``lora_A``/``lora_B``), LoCon (LoRA keys on conv layers
with a kernel larger than 1×1), LoHa (``hada_w1_a``…), LoKr (``lokr_w1``…), IA3
(``on_input``), OFT/BOFT (``oft_blocks``, ``oft_diag``), GLoRA (``a1``/``a2``/``b1``/``b2``),
full (``diff``), norm (``w_norm``/``b_norm``), DoRA (``dora_scale``, a modifier on top of
another type), mixed (several). Rank and alpha where readable, and from kohya/modelspec
metadata the training base model and the network module/algo.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .families import family_of
from .safetensors_header import read_safetensors_header


@dataclass
class AdapterInfo:
    type: str  # "LoRA", "LoCon", "LoHa", ... "mixed", "unknown"
    components: list[str] = field(default_factory=list)
    dora: bool = False
    rank: int | None = None
    alpha: float | None = None
    n_modules: int = 0
    trained_on: str | None = None
    base_model_version: str | None = None
    architecture: str | None = None
    network_module: str | None = None
    algo: str | None = None
    note: str | None = None
    family: str = "unknown"  # model family from the tensors (families.py), metadata as cross-check
    family_evidence: str | None = None
    family_metadata: str | None = None
    family_conflict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SUFFIXES = [
    ("LoHa", ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")),
    ("LoKr", ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")),
    ("OFT", ("oft_blocks", "oft_diag", "oft_r")),
    ("BOFT", ("boft_blocks", "boft_m")),
    ("IA3", ("on_input",)),
    ("GLoRA", ("a1.weight", "a2.weight", "b1.weight", "b2.weight")),
    ("full", ("diff", "diff_b")),
    ("norm", ("w_norm", "b_norm")),
]
_LORA = ("lora_up.weight", "lora_down.weight", "lora_A.weight", "lora_B.weight", "lora_mid.weight")


def _component(key: str) -> str | None:
    for name, suffixes in _SUFFIXES:
        if any(key.endswith("." + s) for s in suffixes):
            return name
    if key.endswith(_LORA):
        return "LoRA"
    return None


def classify(header: dict[str, Any]) -> AdapterInfo:
    metadata = header.get("__metadata__") or {}
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    counts: Counter[str] = Counter()
    modules: set[str] = set()
    rank = None
    conv = False
    dora = False
    for key, entry in tensors.items():
        if key.endswith("dora_scale"):
            dora = True
            continue
        if key.endswith(".alpha"):
            continue
        component = _component(key)
        if component is None:
            continue
        counts[component] += 1
        modules.add(key.rsplit(".", 2)[0] if key.endswith(".weight") else key.rsplit(".", 1)[0])
        shape = entry.get("shape") or []
        if component == "LoRA" and key.endswith(("lora_down.weight", "lora_A.weight")):
            rank = rank or (shape[0] if shape else None)
            if len(shape) == 4 and (shape[2] > 1 or shape[3] > 1):
                conv = True
        if component == "LoHa" and key.endswith("hada_w1_a") and len(shape) >= 2:
            rank = rank or shape[1]
        if component == "LoKr" and key.endswith("lokr_w2_a") and len(shape) >= 2:
            rank = rank or shape[1]
        if component == "OFT" and key.endswith("oft_blocks") and len(shape) == 4:
            counts[component] -= 1  # LyCORIS stores butterfly OFT as 4-d oft_blocks
            counts["BOFT"] += 1
    if "LoRA" in counts and conv:
        counts["LoCon"] = counts.pop("LoRA")
    counts = Counter({k: v for k, v in counts.items() if v > 0})
    components = sorted(counts)
    if not components:
        kind = "unknown"
    elif len(components) == 1:
        kind = components[0]
    else:
        kind = "mixed"
    info = AdapterInfo(
        type=kind,
        components=components,
        dora=dora,
        rank=_int(metadata.get("ss_network_dim")) or rank,
        alpha=_float(metadata.get("ss_network_alpha")),  # per-module alphas live in tensor data: not read
        n_modules=len(modules),
        trained_on=metadata.get("ss_sd_model_name") or metadata.get("modelspec.title_base") or None,
        base_model_version=metadata.get("ss_base_model_version") or None,
        architecture=metadata.get("modelspec.architecture") or None,
        network_module=metadata.get("ss_network_module") or None,
        algo=_algo(metadata),
    )
    family = family_of(header)
    info.family, info.family_evidence = family.family, family.evidence
    info.family_metadata, info.family_conflict = family.metadata_family, family.conflict
    if dora and kind != "unknown":
        info.type = f"{kind}+DoRA" if kind != "mixed" else "mixed+DoRA"
    return info


_DETECTED: dict[tuple[str, int, int], AdapterInfo] = {}


def detect(path: Path) -> AdapterInfo:
    """Type of one adapter file; memoised per (path, size, mtime): a WebUI may hold hundreds."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return _detect(path)
    if key not in _DETECTED:
        _DETECTED[key] = _detect(path)
    return AdapterInfo(**_DETECTED[key].as_dict())


def _detect(path: Path) -> AdapterInfo:
    if path.suffix.lower() != ".safetensors":
        return AdapterInfo(
            type="unknown", note=f"{path.suffix or 'no extension'} files are not inspected (never unpickled)"
        )
    try:
        return classify(read_safetensors_header(path))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return AdapterInfo(type="unknown", note=f"unreadable safetensors header: {exc}")


def _algo(metadata: dict[str, Any]) -> str | None:
    raw = metadata.get("ss_network_args")
    if not raw:
        return None
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return str(args.get("algo")) if isinstance(args, dict) and args.get("algo") else None


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
