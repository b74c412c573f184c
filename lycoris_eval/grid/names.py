"""How a name the user typed (a checkpoint, an adapter) is found among the host's: the one
rule of the grid runner, the sweep's preflight and the X/Y/Z adapter axis. Exact first, then
ignoring case; otherwise a :class:`SpecError` on the field (``checkpoints``/``adapters``)
naming up to three close matches."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

from lycoris_eval.errors import SpecError

T = TypeVar("T")


def match_name(name: str, pool: Mapping[str, T], what: str) -> T:
    """The entry of ``pool`` (host name -> what the host has) that ``name`` means."""
    if name in pool:
        return pool[name]
    lowered = {k.lower(): v for k, v in pool.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, list(pool), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SpecError(f"{what}s", f"unknown {what} {name!r}{hint}")


def match_names(names: Iterable[str], pool: Mapping[str, T], what: str) -> list[T]:
    return [match_name(name, pool, what) for name in names]
