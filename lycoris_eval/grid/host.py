"""What the grid runner needs from a host (the WebUI, or a fake in tests): the
:class:`Host` protocol, the references it hands out (:class:`CheckpointRef`,
:class:`AdapterRef`), one :class:`Generated` image, and the :class:`RunResult` a run
returns. ``lycoris_eval/webui/host.py`` implements it for the real WebUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lycoris_eval.grid.spec import GridJob

if TYPE_CHECKING:  # PIL stays off the import path of code that only names the types
    from PIL import Image


@dataclass
class CheckpointRef:
    name: str  # as /sdapi/v1/sd-models "model_name" / the name users type
    title: str  # the host's key for switching
    hash: str | None = None
    family: str | None = None  # model family from the file's header (families.py); None: not read


@dataclass
class AdapterRef:
    name: str
    path: str | None = None
    hash: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Generated:
    image: Image.Image
    infotext: str
    note: str | None = None  # kept, with a caveat the run records on the cell (e.g. unchecked)


class Host(Protocol):
    def checkpoints(self) -> list[CheckpointRef]: ...
    def current_checkpoint(self) -> CheckpointRef: ...
    def adapters(self) -> list[AdapterRef]: ...
    def generate(self, job: GridJob, checkpoint: CheckpointRef, prompt: str, extra: dict[str, str]) -> Generated: ...
    def restore_checkpoint(self, checkpoint: CheckpointRef) -> None: ...
    def begin(self, total: int) -> None: ...
    def progress(self, done: int, total: int, text: str) -> None: ...
    def interrupted(self) -> bool: ...
    def take_skip(self) -> bool: ...
    def info(self) -> dict[str, Any]: ...


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    images: list[Path] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    generated: int = 0
    skipped_existing: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    cross_family: list[str] = field(default_factory=list)  # (checkpoint, adapter) pairs skipped, why
    user_skipped: list[str] = field(default_factory=list)
    interrupted: bool = False
    stopped: str | None = None
