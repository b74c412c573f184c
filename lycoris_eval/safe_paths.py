"""Folder arguments from the outside (HTTP API, standalone UI) may only name folders inside
the allowed roots: the WebUI's outputs folder, the run store, and roots added in
settings. Rules, each with its own message:

1. no ``..`` component (even one that would stay inside a root);
2. a relative path is taken relative to the host's data folder;
3. the real path (symlinks resolved) must lie inside a root's real path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath

from .errors import PathRefused


def resolve_allowed(path: str, roots: Sequence[Path], base: Path) -> Path:
    if not isinstance(path, str) or not path.strip():
        raise PathRefused("empty path")
    if "\x00" in path:
        raise PathRefused(f"{path!r}: contains a NUL byte")
    if ".." in PurePath(path.replace("\\", "/")).parts:
        raise PathRefused(f"{path}: paths must not contain '..'")
    candidate = Path(path) if os.path.isabs(path) else Path(base) / path
    real = Path(os.path.realpath(candidate))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        try:
            if os.path.commonpath([real, real_root]) == str(real_root):
                return real
        except ValueError:  # different drives on Windows
            continue
    names = ", ".join(str(r) for r in roots) or "(none configured)"
    raise PathRefused(
        f"{path}: outside the allowed roots ({names}); symlinks are followed. "
        "Add a root in Settings → LyCORIS Eval → allowed roots."
    )
