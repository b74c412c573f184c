"""The JSON header of a ``.safetensors`` file: the 8-byte length, then the header, and never
the tensors (adapter types and model families are read from it alone)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100 * 1024 * 1024


def read_safetensors_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError("file shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise ValueError(f"header of {length} bytes is implausible")
        raw = handle.read(length)
    if len(raw) != length:
        raise ValueError("truncated safetensors header")
    header = json.loads(raw.decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not an object")
    return header
