"""Model family of an adapter or a checkpoint, from its safetensors header alone (key names
and shapes; never the tensors, never unpickled), with the training metadata as a cross-check.

Families: ``sd1`` (SD 1.x), ``sd2`` (SD 2.x), ``sd1/sd2`` (the shared SD1/SD2 UNet layout
when neither the shapes nor the metadata tell them apart), ``sdxl`` (SDXL and its
fine-tunes: Pony, Illustrious, NoobAI — the same architecture), ``sdxl-refiner``, ``sd3``,
``flux`` and ``unknown``.

What tells them apart (key layouts as kohya sd-scripts, LyCORIS, diffusers/PEFT and the
LDM/SGM checkpoints write them):

* Flux: ``double_blocks`` / ``single_blocks`` (BFL and kohya names) or
  ``single_transformer_blocks`` (diffusers).
* SD3: ``joint_blocks`` (SAI/kohya) or a diffusers ``transformer.transformer_blocks``
  without single blocks.
* SDXL: two text encoders (``lora_te1_`` + ``lora_te2_``, ``text_encoder_2.``,
  ``conditioner.embedders.1.``), the SGM UNet names kohya uses for SDXL
  (``lora_unet_input_blocks_…``), or a cross-attention context of 2048.
* SD1 vs SD2: the cross-attention context (``attn2.to_k`` input) is 768 for SD1 and 1024
  for SD2; an SD2 checkpoint's text encoder is OpenCLIP (``cond_stage_model.model.``), an
  SD1 one's is CLIP (``cond_stage_model.transformer.``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lycoris_eval.inputs.safetensors_header import read_safetensors_header

FAMILY_TITLES = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x",
    "sd1/sd2": "SD 1.x/2.x",
    "sdxl": "SDXL (incl. Pony, Illustrious, NoobAI)",
    "sdxl-refiner": "SDXL refiner",
    "sd3": "SD 3",
    "flux": "Flux",
    "unknown": "unknown",
}
_CONTEXT_DIM = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


@dataclass
class Family:
    family: str  # one of FAMILY_TITLES
    evidence: str  # what decided it, in words
    metadata_family: str | None = None  # what the training metadata says, when it says
    conflict: str | None = None  # tensors and metadata disagree: both named, never hidden

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "family_evidence": self.evidence,
            "family_metadata": self.metadata_family,
            "family_conflict": self.conflict,
        }


def metadata_family(metadata: dict[str, Any]) -> str | None:
    """The family kohya (``ss_base_model_version``, ``ss_v2``) or modelspec
    (``modelspec.architecture``) metadata names, if any."""
    text = " ".join(str(metadata.get(k) or "") for k in ("ss_base_model_version", "modelspec.architecture")).lower()
    if "flux" in text:
        return "flux"
    if "refiner" in text:
        return "sdxl-refiner"
    if "xl" in text:
        return "sdxl"
    if re.search(r"\bsd3|v3\b|-v3-|sd_v3|stable-diffusion-3", text):
        return "sd3"
    if "v2" in text or str(metadata.get("ss_v2", "")).lower() == "true":
        return "sd2"
    if "v1" in text:
        return "sd1"
    return None


def _tensors(header: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def _context_dims(tensors: dict[str, Any]) -> set[int]:
    """Input width of the cross-attention keys/values (the text context), read from the
    tensor that multiplies the input: LoRA down/A, LoHa ``w*_b``, LoKr ``w1 ⊗ w2`` widths,
    a checkpoint's own ``attn2.to_k.weight``."""
    dims: set[int] = set()
    widths: dict[str, dict[str, int]] = {}
    for key, entry in tensors.items():
        flat = key.replace(".", "_")
        if "attn2_to_k" not in flat and "attn2_to_v" not in flat:
            continue
        shape = entry.get("shape") or []
        if len(shape) < 2:
            continue
        if key.endswith(("lora_down.weight", "lora_A.weight", "hada_w1_b", "to_k.weight", "to_v.weight")):
            dims.add(int(shape[1]))
        elif key.endswith(("lokr_w1", "lokr_w1_b", "lokr_w2", "lokr_w2_b")):
            module = key.rsplit(".", 1)[0]
            part = "w1" if "lokr_w1" in key else "w2"
            widths.setdefault(module, {})[part] = int(shape[1])
    for parts in widths.values():
        if "w1" in parts and "w2" in parts:
            dims.add(parts["w1"] * parts["w2"])
    return dims


def _from_tensors(tensors: dict[str, Any]) -> tuple[str, str]:
    keys = list(tensors)
    joined = "\n".join(keys)
    if re.search(r"double_blocks|single_blocks|single_transformer_blocks", joined):
        return "flux", "Flux double/single transformer blocks"
    if "joint_blocks" in joined or (
        re.search(r"^(?:lora_)?transformer[._]transformer_blocks", joined, re.M) and "unet" not in joined
    ):
        return "sd3", "SD3 joint transformer blocks"
    dims = _context_dims(tensors)
    by_dim = {_CONTEXT_DIM[d] for d in dims if d in _CONTEXT_DIM}
    two_encoders = (
        ("lora_te1_" in joined and "lora_te2_" in joined)
        or "text_encoder_2." in joined
        or "conditioner.embedders.1." in joined
    )
    if two_encoders:
        return "sdxl", "two text encoders (SDXL's CLIP-L and OpenCLIP-bigG)"
    if len(by_dim) == 1:
        family = next(iter(by_dim))
        width = next(d for d in dims if _CONTEXT_DIM.get(d) == family)
        return family, f"cross-attention context of {width}"
    if "conditioner.embedders.0.model." in joined:
        return "sdxl-refiner", "a single OpenCLIP-bigG text encoder (SGM layout)"
    if re.search(r"^(?:lora|oft)_unet_(?:input_blocks|output_blocks|middle_block)_", joined, re.M):
        return "sdxl", "kohya's SDXL UNet names (input_blocks/output_blocks; LoRA or OFT)"
    if "cond_stage_model.model.transformer.resblocks" in joined:
        return "sd2", "an OpenCLIP text encoder (SD 2.x)"
    if "cond_stage_model.transformer.text_model" in joined and "model.diffusion_model.input_blocks" in joined:
        return "sd1", "a CLIP-L text encoder and the LDM UNet (SD 1.x)"
    if re.search(r"down_blocks|up_blocks|mid_block|lora_te_text_model|^text_encoder\.", joined, re.M):
        return "sd1/sd2", "the SD 1.x/2.x UNet layout"
    return "unknown", "no known key layout"


def family_of(header: dict[str, Any]) -> Family:
    """The family of a safetensors file (adapter or checkpoint) from its header."""
    metadata = header.get("__metadata__") or {}
    family, evidence = _from_tensors(_tensors(header))
    meta = metadata_family(metadata)
    result = Family(family, evidence, meta)
    if meta is None:
        return result
    if family == "unknown":
        result.family, result.evidence = meta, "training metadata only"
    elif family == "sd1/sd2" and meta in ("sd1", "sd2"):
        result.family, result.evidence = meta, f"{evidence}; {FAMILY_TITLES[meta]} by its training metadata"
    elif compatible(family, meta) is False:
        result.conflict = (
            f"the tensors say {FAMILY_TITLES[family]} ({evidence}) but the training metadata says "
            f"{FAMILY_TITLES[meta]}; the tensors are trusted"
        )
    return result


def compatible(adapter: str | None, checkpoint: str | None) -> bool | None:
    """Whether an adapter of one family can apply to a checkpoint of another; ``None``
    when either is unknown (nothing is refused on a guess)."""
    if not adapter or not checkpoint or "unknown" in (adapter, checkpoint):
        return None
    return bool(set(adapter.split("/")) & set(checkpoint.split("/")))


def cross_family_message(adapter: str, adapter_family: str, checkpoint: str, checkpoint_family: str) -> str:
    """The one wording of a refused (checkpoint, adapter) cell, for every front end."""
    return (
        f"adapter {adapter!r} is for {FAMILY_TITLES.get(adapter_family, adapter_family)} but checkpoint "
        f"{checkpoint!r} is {FAMILY_TITLES.get(checkpoint_family, checkpoint_family)}: it cannot apply there "
        "and every image would equal the baseline; remove the pair from the grid or pick a checkpoint "
        "of the adapter's family"
    )


_CHECKPOINTS: dict[tuple[str, int, int], Family] = {}


def checkpoint_family(path: str | None) -> Family:
    """Family of a checkpoint file from its safetensors header (memoised per path, size and
    mtime: a WebUI may list hundreds); ``.ckpt``/``.pt`` files are never unpickled: unknown."""
    if not path or not str(path).lower().endswith(".safetensors"):
        return Family("unknown", "not a safetensors file (never unpickled)")
    try:
        stat = Path(path).stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _CHECKPOINTS:
            _CHECKPOINTS[key] = family_of(read_safetensors_header(Path(path)))
        return _CHECKPOINTS[key]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return Family("unknown", f"unreadable safetensors header: {exc}")
