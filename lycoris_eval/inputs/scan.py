"""Reading what an evaluation is given, before any pixel is decoded: folders of images (hash,
size, infotext; unreadable files listed with their reason), and for runs made by the
extension their run store (``cells.jsonl``: what each image is, which images failed).
Imports no encoder or model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lycoris_eval.errors import BadImageError, InputError
from lycoris_eval.inputs.images import ImageRecord, list_image_files, read_image_file


@dataclass
class ScannedSet:
    label: str
    folder: Path
    records: list[ImageRecord]
    problems: list[dict[str, str]]
    unreadable: list[str] = field(default_factory=list)  # why image files could not be read


def first_reasons(reasons: list[str], limit: int = 3) -> str:
    """The first few reasons on one line (a folder of 1000 broken files gives a short message)."""
    shown = [" ".join(r.split()) for r in reasons[:limit]]
    more = len(reasons) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def no_readable_image(label: str, folder: Path, reasons: list[str]) -> InputError:
    return InputError(f"{label} folder {folder}: no image is readable ({first_reasons(reasons)})")


def scan_folder(folder: Path, label: str) -> ScannedSet:
    paths, skipped = list_image_files(folder)
    records: list[ImageRecord] = []
    problems = [{"set": label, "file": p.name, "error": reason} for p, reason in skipped]
    unreadable: list[str] = []
    for path in paths:
        try:
            record = read_image_file(path)
        except BadImageError as exc:
            problems.append({"set": label, "file": path.name, "error": str(exc)})
            unreadable.append(str(exc))
            continue
        record.release_bytes()  # re-read at decode time; keeps RAM flat on big folders
        records.append(record)
    if not records:
        raise no_readable_image(label, folder, unreadable)
    return ScannedSet(label, Path(folder), records, problems, unreadable)
