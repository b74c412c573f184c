"""Everything a sweep checks before any image, with no Ray: the spec, every WebUI's
answers (reachable, credentials, checkpoints, adapters, samplers), and the run folder.

A problem ends the sweep here with one message naming the WebUI and the fix; no image is
made and no file written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lycoris_eval.errors import InputError, SpecError, WebUIUnreachable
from lycoris_eval.grid.base_values import check_base_values, check_prompt_lengths
from lycoris_eval.grid.host import AdapterRef, CheckpointRef
from lycoris_eval.grid.runner import check_adapter_free, refuse_cross_family, resolve_adapters, resolve_checkpoints
from lycoris_eval.grid.spec import GridSpec, parse_grid_request
from lycoris_eval.grid.training import expand_training_runs, record_training_runs
from lycoris_eval.sweep.webui_client import WebUIClient, WebUIFacts


@dataclass
class Prepared:
    spec: GridSpec
    run_id: str
    facts: dict[str, WebUIFacts]  # by URL (without credentials)
    checkpoints: list[CheckpointRef]
    adapters: list[AdapterRef]
    given: dict[str, str] = field(default_factory=dict)  # URL -> as given (credentials included)
    # the spec's confirm_large, read as the Script and the API read it; a sweep has no size
    # limit of its own, so it refuses nothing on it (a bad value is refused by read_spec)
    confirm_large: bool = False


def read_spec(path: Path) -> tuple[GridSpec, dict[str, Any], bool]:
    """The grid spec file (the same JSON as ``POST /grid`` and the Script's JSON argument),
    read by the same parser: ``(spec, raw, confirm_large)``; ``raw`` without
    ``confirm_large``, which names no image (the run id is derived from ``raw``)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"spec {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise InputError(f"spec {path}: not valid JSON ({exc})") from None
    spec, confirm = parse_grid_request(raw)
    raw = {k: v for k, v in raw.items() if k != "confirm_large"}
    for key in ("batch_size", "n_iter"):
        if spec.base.get(key, 1) != 1:
            raise SpecError(f"base.{key}", "a sweep makes one image per cell; leave it at 1")
    return spec, raw, confirm


def sweep_run_id(spec: GridSpec, raw: dict[str, Any]) -> str:
    """``run_id`` from the spec, else one derived from the spec itself: the same command
    finds the same run folder, so running it again resumes."""
    if spec.run_id:
        return spec.run_id
    canonical = {k: v for k, v in raw.items() if k not in ("score", "references", "distractors", "trigger")}
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.run_name).strip("-.")[:40]
    return f"sweep-{slug}-{digest}" if slug else f"sweep-{digest}"


def check_webuis(spec: GridSpec, urls: Sequence[str], auth: str | None, timeout: float) -> Prepared:
    """Ask every WebUI what it has; each must know every checkpoint and adapter of the spec
    (with the same file where it says its hash)."""
    if not urls:
        raise InputError("give at least one --webui URL")
    check_adapter_free(spec)
    check_prompt_lengths([str(spec.base.get("prompt_prefix", "") or "")] + [p.text for p in spec.prompts])
    facts: dict[str, WebUIFacts] = {}
    given: dict[str, str] = {}
    names = list(spec.checkpoints)  # empty: the first WebUI's loaded checkpoint, on every WebUI
    resolved: dict[str, tuple[list[CheckpointRef], list[AdapterRef]]] = {}
    for url in urls:
        client = WebUIClient(url, auth, timeout)
        try:
            if client.url in facts:
                raise InputError(f"--webui {client.url} is given twice")
            try:
                found = client.facts()
            except WebUIUnreachable as exc:
                raise InputError(f"{exc}; is it started with --api (and --listen when on another machine)?") from None
        finally:
            client.close()
        facts[client.url] = found
        given[client.url] = url
        try:
            check_base_values(spec.base, found.vocabulary)
            pool = _Pool(found)
            if not resolved:  # a training run is expanded once, by the first WebUI's adapters
                expand_training_runs(spec, found.adapters)
            resolved[client.url] = (resolve_checkpoints(pool, names), resolve_adapters(pool, spec.adapters))
            names = names or [c.name for c in resolved[client.url][0]]
        except SpecError as exc:
            raise SpecError(exc.field, f"{exc.message} (WebUI {client.url})") from None
    first = next(iter(resolved.values()))
    # a name matched ignoring case goes into <lora:…> as the WebUI spells it (as the grid runner does)
    spec.adapters = [ref.name for ref in first[1]]
    record_training_runs(spec, next(iter(facts.values())).adapters)  # the manifest's training_runs
    _same_files(first[0], resolved)
    refuse_cross_family(first[0], first[1])  # families from the files' headers, where readable
    return Prepared(spec, "", facts, first[0], first[1], given)


def _same_files(
    checkpoints: list[CheckpointRef], resolved: dict[str, tuple[list[CheckpointRef], list[AdapterRef]]]
) -> None:
    for url, (theirs, _adapters) in resolved.items():
        for mine, other in zip(checkpoints, theirs):
            if mine.hash and other.hash and mine.hash != other.hash:
                raise InputError(
                    f"checkpoint {mine.name!r} is another file on WebUI {url} (sha256 {other.hash[:10]} "
                    f"vs {mine.hash[:10]}): a sweep's cells must be made with the same weights everywhere"
                )


def host_info(prepared: Prepared) -> dict[str, Any]:
    """The manifest's ``host`` section (what ``evaluate`` reads adapter types from)."""
    return {
        "sweep": True,
        "webuis": [
            {"url": url, "extension": f.extension, "checkpoint_at_start": f.current}
            for url, f in prepared.facts.items()
        ],
        "checkpoints": [vars(c) for c in prepared.checkpoints],
        "adapters": [vars(a) for a in prepared.adapters],
        "generation": dict(prepared.spec.base),
    }


class _Pool:
    """The two host questions ``resolve_checkpoints``/``resolve_adapters`` ask, answered from facts."""

    def __init__(self, facts: WebUIFacts) -> None:
        self.facts = facts

    def checkpoints(self) -> list[CheckpointRef]:
        return self.facts.checkpoints

    def adapters(self) -> list[AdapterRef]:
        return self.facts.adapters

    def current_checkpoint(self) -> CheckpointRef:
        ref = self.facts.loaded()
        if ref is not None:
            return ref
        raise InputError(f"WebUI {self.facts.url}: its loaded checkpoint {self.facts.current!r} is not listed")
