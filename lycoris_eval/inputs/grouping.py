"""Group images into cells and find their no-adapter baselines.

A cell is (checkpoint, adapter, weight, prompt, prompt type); its images differ by seed.
The prompt of a cell is the infotext prompt with extra-network tags removed, so an
adapter image and its baseline share it. A baseline pair is found by
(checkpoint, prompt, seed) among images without adapter tags. Images without infotext
form one group (checkpoint, adapter, prompt unknown); their ``.txt`` sidecar caption, if
any, is their prompt for text alignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lycoris_eval.inputs.images import ImageRecord
from lycoris_eval.inputs.infotext import GROUP_KEY, AdapterTag, adapter_tags, parse_infotext, strip_network_tags

PairKey = tuple[str | None, str, int]
CellKey = tuple[str | None, str | None, float | None, str | None, str, str | None]


@dataclass
class ImageMeta:
    record: ImageRecord
    checkpoint: str | None
    adapter: str | None
    weight: float | None
    prompt: str | None  # without network tags; None when unknown
    raw_prompt: str | None  # as generated (for text cleaning)
    prompt_type: str
    seed: int | None
    infotext_error: str | None = None
    group: str | None = None

    @property
    def is_baseline(self) -> bool:
        return self.adapter is None and self.prompt is not None

    @property
    def cell_key(self) -> CellKey:
        return (self.checkpoint, self.adapter, self.weight, self.prompt, self.prompt_type, self.group)

    @property
    def pair_key(self) -> PairKey | None:
        if self.prompt is None or self.seed is None:
            return None
        return (self.checkpoint, self.prompt, self.seed)


@dataclass
class Cell:
    checkpoint: str | None
    adapter: str | None
    weight: float | None
    prompt: str | None
    prompt_type: str
    group: str | None = None
    images: list[ImageMeta] = field(default_factory=list)

    @property
    def is_baseline(self) -> bool:
        return self.adapter is None


def describe(record: ImageRecord, run_record: dict[str, Any] | None = None) -> ImageMeta:
    """What an image is. ``run_record`` is its line in a run store's ``cells.jsonl``: for
    runs made by the extension that is the truth (the host may rewrite the infotext)."""
    if run_record is not None:
        return _from_run_record(record, run_record)
    if not record.infotext:
        return ImageMeta(record, None, None, None, None, record.caption, "unspecified", None)
    try:
        info = parse_infotext(record.infotext)
    except Exception as exc:  # noqa: BLE001 - unreadable infotext: treat as none, say so
        return ImageMeta(
            record, None, None, None, None, record.caption, "unspecified", None, f"unreadable infotext: {exc}"
        )
    tags = adapter_tags(info.prompt)
    hashed = _lora_hash_names(info.params.get("Lora hashes", ""))
    if not tags and hashed:
        # the tags were removed from the prompt (some extensions do), the hashes say which
        adapter, weight = " + ".join(hashed), None
    else:
        adapter, weight = adapter_and_weight(tags)
    prompt = strip_network_tags(info.prompt)
    return ImageMeta(
        record=record,
        checkpoint=info.checkpoint,
        adapter=adapter,
        weight=weight,
        prompt=prompt,
        raw_prompt=info.prompt,
        prompt_type=info.prompt_type or "unspecified",
        seed=info.seed,
        group=info.params.get(GROUP_KEY) or None,
    )


def adapter_and_weight(tags: list[AdapterTag]) -> tuple[str | None, float | None]:
    """The (adapter, weight) a prompt's LoRA/LyCORIS tags make its image's condition."""
    if not tags or all(t.weight == 0 for t in tags):
        # an adapter at weight 0 changes nothing: it is the baseline (X/Y/Z "<lora:x:0>")
        return None, 0.0
    if len(tags) == 1:
        return tags[0].name, tags[0].weight
    adapter = " + ".join(f"{t.name}:{t.weight:g}" if t.weight is not None else t.name for t in tags)
    weights = {t.weight for t in tags}
    return adapter, weights.pop() if len(weights) == 1 else None


def _from_run_record(record: ImageRecord, data: dict[str, Any]) -> ImageMeta:
    raw_prompt = None
    if record.infotext:
        try:
            raw_prompt = parse_infotext(record.infotext).prompt
        except Exception:  # noqa: BLE001 - the run store still says what the image is
            raw_prompt = None
    prompt = str(data.get("prompt") or "")
    adapter = data.get("adapter") or None
    weight = data.get("weight")
    weight = float(weight) if isinstance(weight, (int, float)) else None
    if adapter is not None and weight == 0:
        adapter = None
    seed = data.get("seed")
    return ImageMeta(
        record=record,
        checkpoint=data.get("checkpoint"),
        adapter=adapter,
        weight=0.0 if adapter is None else weight,
        prompt=prompt,
        raw_prompt=raw_prompt or prompt,
        prompt_type=str(data.get("prompt_type") or "unspecified"),
        seed=int(seed) if isinstance(seed, int) else None,
    )


def _lora_hash_names(value: str) -> list[str]:
    """``Lora hashes: "name: 0123abcd, other: 4567ef01"`` -> names."""
    names = []
    for part in value.split(","):
        name = part.split(":", 1)[0].strip()
        if name:
            names.append(name)
    return names


def group_cells(metas: Iterable[ImageMeta]) -> list[Cell]:
    cells: dict[CellKey, Cell] = {}
    for meta in metas:
        key = meta.cell_key
        if key not in cells:
            cells[key] = Cell(meta.checkpoint, meta.adapter, meta.weight, meta.prompt, meta.prompt_type, meta.group)
        cells[key].images.append(meta)

    def order(cell: Cell) -> tuple:
        return (
            cell.checkpoint or "",
            cell.prompt or "",
            cell.adapter is not None,
            cell.adapter or "",
            cell.weight if cell.weight is not None else -1.0,
            cell.prompt_type,
            cell.group or "",
        )

    return sorted(cells.values(), key=order)


def find_baselines(metas: Iterable[ImageMeta]) -> dict[PairKey, ImageMeta]:
    """The first no-adapter image for each (checkpoint, prompt, seed)."""
    baselines: dict[PairKey, ImageMeta] = {}
    for meta in metas:
        key = meta.pair_key
        if meta.is_baseline and key is not None and key not in baselines:
            baselines[key] = meta
    return baselines


def pair_groups(metas: list[ImageMeta], baselines: dict[PairKey, ImageMeta]) -> list[list[ImageMeta]]:
    """Images ordered so each baseline comes with all the images paired to it.

    Processing group by group keeps every pair in memory together while no group is
    larger than (adapters × weights + 1) images.
    """
    groups: dict[object, list[ImageMeta]] = {}
    for meta in metas:
        key = meta.pair_key
        token: object = key if key is not None and key in baselines else ("solo", id(meta))
        groups.setdefault(token, []).append(meta)
    ordered = []
    for members in groups.values():
        members.sort(key=lambda m: not m.is_baseline)
        ordered.append(members)
    return ordered
