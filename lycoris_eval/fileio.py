"""File I/O rules shared by every room: atomic writes (nothing half-written is ever left
behind) and safe paths.

Folder arguments from the outside (HTTP API, standalone UI) may only name folders inside
the allowed roots: the WebUI's outputs folder, the run store, and roots added in
settings. Rules, each with its own message:

1. no ``..`` component (even one that would stay inside a root);
2. a relative path is taken relative to the host's data folder;
3. the real path (symlinks resolved) must lie inside a root's real path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import BinaryIO

from lycoris_eval.errors import PathRefused


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


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on ``path``'s ``.tmp``; on leaving the block: flush, fsync, then rename
    over ``path``, so an interrupted write never leaves half a file (and a failed one leaves
    no ``.tmp`` behind). For content written in pieces (the sweep's merge streams gigabytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_atomic(path: Path, text: str) -> None:
    write_atomic_bytes(path, text.encode("utf-8"))
