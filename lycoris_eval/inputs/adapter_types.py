"""Adapter type detection from a safetensors header alone.

Reads the 8-byte length and the JSON header of a ``.safetensors`` file: never the
tensors, and never unpickles ``.pt``/``.ckpt`` files (those are "type unknown").
Classifies every module (a key minus its format suffix) by the suffixes real tools write
(docs/adapter-formats.md lists them with the tool that writes each):

* LyCORIS / kohya sd-scripts (``lora_unet_…``, ``lora_te1_…``, ``oft_unet_…``): LoRA
  (``lora_up``/``lora_down``, Tucker ``lora_mid``), LoCon (LoRA on k×k convolutions), LoHa
  (``hada_w1_a``…, Tucker ``hada_t1``), LoKr (``lokr_w1``…, Tucker ``lokr_t2``, full matrix
  when ``lokr_w2`` is not factorised), IA3 (``on_input``), (Diag-)OFT (3-d ``oft_blocks``,
  ``oft_diag``; ``rescale``), BOFT (4-d ``oft_blocks``), GLoRA (``a1``/``a2``/``b1``/``b2``),
  full (``diff``/``diff_b``), norm (``w_norm``/``b_norm``), DoRA (``dora_scale``, a modifier
  on another type); DyLoRA and bypass mode write plain LoRA keys (only the metadata says so).
* PEFT / diffusers (dotted module names, ``base_model.model.`` or ``unet.``/``text_encoder.``/
  ``transformer.``): LoRA (``lora_A``/``lora_B``), DoRA (``lora_magnitude_vector``), OFT
  (``oft_R.weight``, older ``oft_r``), BOFT (``boft_R``/``boft_s``), IA3 (``ia3_l``), LoHa, LoKr;
  diffusers' older attention-processor layout (``to_q_lora.down.weight``,
  ``lora_linear_layer.down.weight``, ``lora.down.weight``).

Rank: ``ss_network_dim`` where the training metadata has it, else from the shapes (the most
common across modules; k×k convolutions apart as ``conv_rank``); OFT/BOFT report their
blocks (``oft_blocks`` × ``oft_block_size``), IA3/full/norm no rank. Also from kohya/modelspec metadata: the training
base model and the network module/algo.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lycoris_eval.inputs.families import family_of
from lycoris_eval.inputs.safetensors_header import read_safetensors_header
from lycoris_eval.inputs.training_runs import training_metadata


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
    # the metadata that places the file in a training run (training_runs.TRAINING_KEYS)
    training: dict[str, Any] = field(default_factory=dict)
    # key layout: "kohya" (lora_unet_…, also LyCORIS), "kohya-oft" (oft_unet_…), "peft",
    # "diffusers", "diffusers-legacy" (attention processors); hosts apply some only
    layout: str | None = None
    conv_rank: int | None = None  # rank of the k×k convolution modules, when there are some
    options: list[str] = field(default_factory=list)  # "tucker", "full_matrix", "rescaled", "bypass"
    oft_block_size: int | None = None  # OFT/BOFT: size of each orthogonal block
    oft_blocks: int | None = None  # OFT/BOFT: blocks per module (BOFT: per butterfly factor)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# suffix after "<module>." -> component; longest first where one ends another
_SUFFIXES: dict[str, str] = {
    "lora_up.weight": "LoRA",
    "lora_down.weight": "LoRA",
    "lora_mid.weight": "LoRA",
    "lora_A.weight": "LoRA",
    "lora_B.weight": "LoRA",
    "lora_linear_layer.down.weight": "LoRA",
    "lora_linear_layer.up.weight": "LoRA",
    "lora.down.weight": "LoRA",
    "lora.up.weight": "LoRA",
    "hada_w1_a": "LoHa",
    "hada_w1_b": "LoHa",
    "hada_w2_a": "LoHa",
    "hada_w2_b": "LoHa",
    "hada_t1": "LoHa",
    "hada_t2": "LoHa",
    "lokr_w1": "LoKr",
    "lokr_w1_a": "LoKr",
    "lokr_w1_b": "LoKr",
    "lokr_w2": "LoKr",
    "lokr_w2_a": "LoKr",
    "lokr_w2_b": "LoKr",
    "lokr_t2": "LoKr",
    "oft_blocks": "OFT",  # 4-d: LyCORIS' butterfly OFT (BOFT), decided by shape
    "oft_diag": "OFT",
    "oft_R.weight": "OFT",  # PEFT >= 0.15
    "oft_r": "OFT",  # older PEFT
    "boft_R": "BOFT",
    "boft_blocks": "BOFT",  # named so by older writers; kept
    "boft_m": "BOFT",
    "boft_s": "BOFT",
    "on_input": "IA3",
    "ia3_l": "IA3",
    "a1.weight": "GLoRA",
    "a2.weight": "GLoRA",
    "b1.weight": "GLoRA",
    "b2.weight": "GLoRA",
    "diff": "full",
    "diff_b": "full",
    "w_norm": "norm",
    "b_norm": "norm",
    "q_layer.weight": "T-LoRA",
    "p_layer.weight": "T-LoRA",
    "lambda_layer": "T-LoRA",
}
# parts of a module that mark no type of their own
_AUX = ("alpha", "dora_scale", "lora_magnitude_vector", "rescale", "weight", "bias", "reshape_weight")
_DORA = ("dora_scale", "lora_magnitude_vector")
# diffusers' attention processors: "<…>.processor.to_q_lora.down.weight"
_LEGACY = re.compile(r"^(?P<module>.+_lora)\.(?P<part>down|up)\.weight$")
_CONV_NAME = re.compile(r"(^|[._])(conv\d?|conv_in|conv_out|op)$")
_NO_RANK = {"IA3", "full", "norm", "OFT", "BOFT"}


def _split(key: str) -> tuple[str, str] | None:
    """(module, suffix) of a tensor key, or None when it is not part of an adapter."""
    legacy = _LEGACY.match(key)
    if legacy:
        return legacy.group("module"), f"_lora.{legacy.group('part')}.weight"
    for suffix in _SUFFIXES:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], suffix
    for suffix in _AUX:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], suffix
    return None


def _layout(module: str, suffixes: set[str]) -> str:
    if any(s in ("_lora.down.weight", "_lora.up.weight") or s.startswith("lora_linear_layer.") for s in suffixes):
        return "diffusers-legacy"
    if module.startswith("oft_unet"):
        return "kohya-oft"
    if "." not in module:
        return "kohya"
    if module.startswith("base_model.model."):
        return "peft"
    if module.startswith(("unet.", "text_encoder.", "text_encoder_2.", "transformer.", "text_encoders.")):
        return "diffusers"
    return "peft"


@dataclass
class _Module:
    component: str | None = None
    rank: int | None = None
    conv: bool = False
    options: set[str] = field(default_factory=set)
    dora: bool = False
    blocks: tuple[int, int] | None = None  # (number, size)


def _module(name: str, parts: dict[str, list[int]]) -> _Module:
    m = _Module()
    kinds = {_SUFFIXES[s] for s in parts if s in _SUFFIXES} | ({"LoRA"} if "_lora.down.weight" in parts else set())
    m.dora = any(s in parts for s in _DORA)
    if not kinds:
        return m
    m.component = kinds.pop() if len(kinds) == 1 else "mixed"
    shapes = list(parts.values())
    m.conv = any(len(s) == 4 and (s[2] > 1 or s[3] > 1) for s in shapes) or bool(_CONV_NAME.search(name))
    if m.component == "LoRA":
        down = next((parts[s] for s in ("lora_down.weight", "lora_A.weight", "lora.down.weight",
                                         "lora_linear_layer.down.weight", "_lora.down.weight") if s in parts), None)  # fmt: skip
        m.rank = down[0] if down else None
        if "lora_mid.weight" in parts:
            m.options.add("tucker")
            m.conv = True
    elif m.component == "LoHa":
        m.rank = (parts.get("hada_w1_b") or [None])[0]
        if "hada_t1" in parts:
            m.options.add("tucker")
            m.conv = True
    elif m.component == "LoKr":
        if "lokr_t2" in parts:
            m.rank = parts["lokr_t2"][0]
            m.options.add("tucker")
            m.conv = True
        elif "lokr_w2_b" in parts:
            m.rank = parts["lokr_w2_b"][0]
        elif "lokr_w1_b" in parts:
            m.rank = parts["lokr_w1_b"][0]
        else:
            m.options.add("full_matrix")
    elif m.component == "GLoRA" and len(parts.get("a1.weight") or []) >= 2:
        m.rank = min(parts["a1.weight"][:2])
    elif m.component == "T-LoRA":
        m.rank = (parts.get("q_layer.weight") or [None])[0]
    elif m.component == "OFT":
        blocks = parts.get("oft_blocks") or parts.get("oft_diag") or parts.get("oft_r")
        if blocks and len(blocks) == 4:  # LyCORIS BOFT: (factors, blocks, size, size)
            m.component = "BOFT"
            m.blocks = (blocks[1], blocks[2])
        elif blocks and len(blocks) == 3:
            m.blocks = (blocks[0], blocks[1])
        elif "oft_R.weight" in parts and len(parts["oft_R.weight"]) == 2:  # packed upper triangle
            n, packed = parts["oft_R.weight"]
            m.blocks = (n, round((1 + math.sqrt(1 + 8 * packed)) / 2))
        if "rescale" in parts:
            m.options.add("rescaled")
    elif m.component == "BOFT":
        blocks = parts.get("boft_R") or parts.get("boft_blocks") or []
        m.blocks = (blocks[1], blocks[2]) if len(blocks) == 4 else None
    return m


def _mode(values: list[int]) -> int | None:
    """The most common value; the largest among ties."""
    if not values:
        return None
    counts = Counter(values)
    return max(counts, key=lambda v: (counts[v], v))


def classify(header: dict[str, Any]) -> AdapterInfo:
    metadata = header.get("__metadata__") or {}
    grouped: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for key, entry in header.items():
        if key == "__metadata__" or not isinstance(entry, dict):
            continue
        split = _split(key)
        if split:
            grouped[split[0]][split[1]] = list(entry.get("shape") or [])
    modules = {name: _module(name, parts) for name, parts in grouped.items()}
    typed = {name: m for name, m in modules.items() if m.component}
    counts: Counter[str] = Counter()
    for m in typed.values():
        counts["LoCon" if m.component == "LoRA" and m.conv else m.component] += 1
    if "LoCon" in counts and "LoRA" in counts:  # LoCon is LoRA on the convolutions too
        counts["LoCon"] += counts.pop("LoRA")
    components = sorted(counts)
    kind = "unknown" if not components else components[0] if len(components) == 1 else "mixed"
    dora = any(m.dora for m in modules.values())
    ranks = [m.rank for m in typed.values() if m.rank and not m.conv]
    conv_ranks = [m.rank for m in typed.values() if m.rank and m.conv]
    options = set().union(*(m.options for m in typed.values())) if typed else set()
    if "full_matrix" in options and any(m.component == "LoKr" and m.rank for m in typed.values()):
        options.discard("full_matrix")  # only some small layers kept whole: LyCORIS does so by size
    args = _args(metadata)
    if str(args.get("bypass_mode", "")).lower() == "true":
        options.add("bypass")
    blocks = Counter(m.blocks for m in typed.values() if m.blocks)
    block = max(blocks, key=blocks.get) if blocks else None
    layouts = Counter(_layout(name, set(grouped[name])) for name in typed)
    info = AdapterInfo(
        type=kind,
        components=components,
        dora=dora,
        # the trainer's own dim first (kohya OFT's is its number of blocks); no rank from the
        # shapes of types a rank does not describe
        rank=_int(metadata.get("ss_network_dim")) or (None if kind in _NO_RANK else _mode(ranks) or _mode(conv_ranks)),
        alpha=_float(metadata.get("ss_network_alpha")),  # per-module alphas live in tensor data: not read
        n_modules=len(typed),
        trained_on=metadata.get("ss_sd_model_name") or metadata.get("modelspec.title_base") or None,
        base_model_version=metadata.get("ss_base_model_version") or None,
        architecture=metadata.get("modelspec.architecture") or None,
        network_module=metadata.get("ss_network_module") or None,
        algo=str(args["algo"]) if args.get("algo") else None,
        training=training_metadata(metadata),
        layout=max(layouts, key=layouts.get) if layouts else None,
        conv_rank=_int(args.get("conv_dim")) or _mode(conv_ranks) if conv_ranks else None,
        options=sorted(options),
        oft_blocks=block[0] if block else None,
        oft_block_size=block[1] if block else None,
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


def _args(metadata: dict[str, Any]) -> dict[str, Any]:
    """kohya's ``ss_network_args`` (a JSON object in a string), {} when absent or unreadable."""
    raw = metadata.get("ss_network_args")
    if not raw:
        return {}
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return args if isinstance(args, dict) else {}


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
