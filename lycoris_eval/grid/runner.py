"""Run a grid through a host (the WebUI, or a fake in tests) into a run store.

The runner knows nothing of the WebUI: it talks to a :class:`Host`. It validates names
before any image is generated, skips images already finished under the same run id,
records failures on their cells (retrying once), stops cleanly on Interrupt, on a full
disk, and restores the user's checkpoint whatever happens.
"""

from __future__ import annotations

import errno
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, PngImagePlugin

from lycoris_eval.config import DEFAULT_GRID_LIMIT
from lycoris_eval.errors import (
    AdapterLoadError,
    AdapterNotAppliedError,
    CheckpointMismatchError,
    HostImageError,
    InputError,
    SpecError,
)
from lycoris_eval.fileio import write_atomic_bytes as _write_file  # module-level name: tests simulate a full disk
from lycoris_eval.grid.base_values import check_prompt_lengths
from lycoris_eval.grid.host import AdapterRef, CheckpointRef, Generated, Host, RunResult
from lycoris_eval.grid.names import match_names
from lycoris_eval.grid.spec import GridJob, GridSpec
from lycoris_eval.grid.store import RunStore, cell_line, new_run_id
from lycoris_eval.grid.training import expand_training_runs, record_training_runs
from lycoris_eval.grid.writer import RunWriter
from lycoris_eval.inputs.families import compatible, cross_family_message
from lycoris_eval.inputs.infotext import PROMPT_TYPE_KEY, adapter_tags

RUN_KEY = "LyCORIS run"
CELL_KEY = "LyCORIS cell"


def resolve_checkpoints(host: Host, names: Sequence[str]) -> list[CheckpointRef]:
    if not names:
        return [host.current_checkpoint()]
    pool: dict[str, CheckpointRef] = {}
    for ref in host.checkpoints():
        pool.setdefault(ref.name, ref)
        pool.setdefault(ref.title, ref)
    return match_names(names, pool, "checkpoint")


def resolve_adapters(host: Host, names: Sequence[str], refs: Sequence[AdapterRef] | None = None) -> list[AdapterRef]:
    """The host's adapters (``refs``, else asked) that ``names`` mean."""
    pool = {ref.name: ref for ref in (host.adapters() if refs is None else refs)}
    return match_names(names, pool, "adapter")


def cross_family_pairs(
    checkpoints: Sequence[CheckpointRef], adapters: Sequence[AdapterRef]
) -> list[tuple[str, str, str]]:
    """``(checkpoint, adapter, message)`` for each pair whose families are both known and
    cannot go together (an SD1.5 LoRA on an SDXL checkpoint changes nothing: its images
    would be a second set of baselines). Unknown families are never refused on a guess."""
    pairs = []
    for adapter in adapters:
        family = (adapter.info or {}).get("family")
        for checkpoint in checkpoints:
            if compatible(family, checkpoint.family) is False:
                message = cross_family_message(adapter.name, family, checkpoint.name, checkpoint.family or "")
                pairs.append((checkpoint.name, adapter.name, message))
    return pairs


def refuse_cross_family(checkpoints: Sequence[CheckpointRef], adapters: Sequence[AdapterRef]) -> None:
    """The API's and the sweep's rule: a grid with any cross-family pair is refused, before
    any image, naming the first pair and how many more there are."""
    refused = cross_family_pairs(checkpoints, adapters)
    if refused:
        more = f" (and {len(refused) - 1} more such pairs)" if len(refused) > 1 else ""
        raise SpecError("adapters", refused[0][2] + more)


def check_adapter_free(spec: GridSpec) -> None:
    """Baselines must be made without any adapter: refuse adapter tags in the base prompt
    (the page's prompt, ``base.prompt_prefix``) and in the grid's prompts."""

    prefix = str(spec.base.get("prompt_prefix", "") or "")
    for where, text in [("base.prompt_prefix", prefix)] + [("prompts", p.text) for p in spec.prompts]:
        tags = adapter_tags(text)
        if tags:
            names = ", ".join(f"<lora:{t.name}:…>" for t in tags)
            raise SpecError(
                where,
                f"contains {names}: the grid adds each adapter itself and keeps its baselines adapter-free; "
                "remove the tag (list the adapter under adapters instead)",
            )


def png_bytes(image: Image.Image, infotext: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


class GridRunner:
    def __init__(
        self,
        host: Host,
        outputs_root: Path,
        grid_limit: int = DEFAULT_GRID_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        cross_family: str = "refuse",
    ) -> None:
        """``cross_family``: what to do with (checkpoint, adapter) pairs whose model families
        cannot go together — ``"refuse"`` the grid before any image (API, sweep), or
        ``"skip"`` their cells, recorded in the run and said on the page (Script)."""
        if cross_family not in ("refuse", "skip"):
            raise ValueError(f"cross_family must be 'refuse' or 'skip', not {cross_family!r}")
        self.cross_family = cross_family
        self.host = host
        self.outputs_root = Path(outputs_root)
        self.grid_limit = grid_limit
        self.clock = clock

    def prepare(self, spec: GridSpec, confirm_large: bool = False) -> tuple[list[CheckpointRef], list[AdapterRef]]:
        """Everything that can fail before an image is generated."""
        check_adapter_free(spec)
        check_prompt_lengths([str(spec.base.get("prompt_prefix", "") or "")] + [p.text for p in spec.prompts])
        checkpoints = resolve_checkpoints(self.host, spec.checkpoints)
        refs = self.host.adapters()
        expand_training_runs(spec, refs)  # a training run becomes its saves, in step order
        adapters = resolve_adapters(self.host, spec.adapters, refs)
        # a name matched ignoring case goes into <lora:…> as the host spells it (its lookup is exact)
        spec.adapters = [ref.name for ref in adapters]
        record_training_runs(spec, refs)
        if self.cross_family == "refuse":
            refuse_cross_family(checkpoints, adapters)
        total = spec.count()
        if total > self.grid_limit and not confirm_large:
            raise InputError(
                f"this grid makes {total} images, over the limit of {self.grid_limit}; "
                "confirm large grids (or raise the limit in settings) to run it"
            )
        return checkpoints, adapters

    def run(self, spec: GridSpec, confirm_large: bool = False) -> RunResult:
        checkpoints, adapters = self.prepare(spec, confirm_large)
        run_id = spec.run_id or new_run_id(spec.run_name)
        store = RunStore(self.outputs_root, run_id)
        host_info = {
            **self.host.info(),
            "checkpoints": [vars(c) for c in checkpoints],
            "adapters": [vars(a) for a in adapters],
            "generation": dict(spec.base),
        }
        store.open(spec, host_info)
        original = self.host.current_checkpoint()
        result = RunResult(run_id=run_id, run_dir=store.dir)
        by_name = {c.name: c for c in checkpoints}
        jobs = spec.plan([c.name for c in checkpoints])
        finished = store.finished()
        todo = [j for j in jobs if j.key not in finished]
        result.skipped_existing = len(jobs) - len(todo)
        # (checkpoint, adapter) -> error; checkpoint None: the file itself fails everywhere
        broken: dict[tuple[str | None, str], str] = {}
        for checkpoint, adapter, message in cross_family_pairs(checkpoints, adapters):
            broken[(checkpoint, adapter)] = message
            result.cross_family.append(message)
        self.host.begin(len(todo))
        start = self.clock()
        # PNG encoding and the durable writes overlap the next image's sampling
        writer = RunWriter(store, lambda path, data: _write_file(path, data), png_bytes)
        try:
            for number, job in enumerate(todo):
                if self.host.interrupted():
                    result.interrupted = True
                    break
                seed_pos = spec.seeds.index(job.seed) + 1
                text = f"{job.checkpoint} · {job.label()} · seed {seed_pos}/{len(spec.seeds)}"
                self.host.progress(number, len(todo), text)
                known = broken.get((None, job.adapter or "")) or broken.get((job.checkpoint, job.adapter or ""))
                if known is not None and known in result.cross_family:
                    writer.append(cell_line(job, "skipped", reason=known))  # never generated
                    continue
                if known is not None:
                    self._record_failure(writer, result, job, known)
                    continue
                outcome = self._generate(job, by_name[job.checkpoint], spec, store)
                if outcome is None or self.host.interrupted():
                    # Interrupt pressed while this image was being made: the sampler returned a
                    # half-denoised latent, so the image is not kept and a resume redoes it
                    result.interrupted = True
                    break
                if isinstance(outcome, AdapterLoadError):
                    # "not applied" is this checkpoint's answer only (its layers); an adapter
                    # the host cannot load at all fails on every checkpoint
                    where = job.checkpoint if isinstance(outcome, AdapterNotAppliedError) else None
                    broken[(where, job.adapter or "")] = str(outcome)
                    self._record_failure(writer, result, job, str(outcome))
                    continue
                if isinstance(outcome, Exception):
                    self._record_failure(writer, result, job, str(outcome))
                    continue
                if self.host.take_skip():
                    result.user_skipped.append(job.key)
                    writer.append({"key": job.key, "status": "skipped", "time": time.time()})
                    continue
                if writer.error is not None:
                    break
                self._save(writer, store, job, by_name[job.checkpoint], outcome)
                if outcome.note:
                    result.notes[job.key] = outcome.note
            self.host.progress(len(todo), len(todo), f"done in {self.clock() - start:.0f} s")
        finally:
            error = writer.close()
            result.generated = writer.written
            self.host.restore_checkpoint(original)
        if error is not None:
            reason = "the disk is full" if error.errno == errno.ENOSPC else f"cannot write images ({error})"
            result.stopped = f"stopped: {reason}; {result.generated} finished images are kept in {store.dir}"
        self._collect(store, jobs, result)
        try:
            result.grids = self._grids(store, spec, jobs, [c.name for c in checkpoints])
        except OSError as exc:
            result.stopped = result.stopped or f"grid images not written ({exc})"
        return result

    # -- steps ---------------------------------------------------------------------------
    def _generate(self, job: GridJob, checkpoint: CheckpointRef, spec: GridSpec, store: RunStore) -> Any:
        prompt = job.prompt_text(str(spec.base.get("prompt_prefix", "")))
        extra = {CELL_KEY: job.key, RUN_KEY: store.run_id}
        if job.prompt.type != "unspecified":
            extra[PROMPT_TYPE_KEY] = job.prompt.type
        last: Exception | None = None
        for _attempt in range(2):  # retried once at most
            try:
                return self.host.generate(job, checkpoint, prompt, extra)
            except (AdapterLoadError, CheckpointMismatchError) as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - the host's NansException, OOM, …: recorded on the cell
                if self.host.interrupted():
                    return None
                last = exc
        return HostImageError(f"{type(last).__name__}: {last}")

    def _record_failure(self, lines: RunWriter, result: RunResult, job: GridJob, error: str) -> None:
        result.failed[job.key] = error
        lines.append(cell_line(job, "failed", error=error))

    def _save(
        self, writer: RunWriter, store: RunStore, job: GridJob, checkpoint: CheckpointRef, gen: Generated
    ) -> None:
        name = store.image_name(job.key)
        extra = {"note": gen.note} if gen.note else {}
        writer.save(
            store.images_dir / name,
            gen.image,
            gen.infotext,
            cell_line(job, "done", image=name, checkpoint_hash=checkpoint.hash, infotext=gen.infotext, **extra),
        )

    def _collect(self, store: RunStore, jobs: list[GridJob], result: RunResult) -> None:
        finished = store.finished()
        for job in jobs:
            record = finished.get(job.key)
            if record:
                result.images.append(store.images_dir / record["image"])
                result.infotexts.append(record.get("infotext", ""))

    def _grids(self, store: RunStore, spec: GridSpec, jobs: list[GridJob], checkpoints: list[str]) -> list[Path]:
        finished = store.finished()
        failures = store.failures()
        paths = []
        for p_index, prompt in enumerate(spec.prompts):
            rows: list[tuple[str | None, float]] = [(None, 0.0)] + [
                (a, w) for a in spec.adapters for w in spec.weights if w != 0
            ]
            cells: dict[tuple[int, int], Image.Image | str] = {}
            for job in jobs:
                if job.prompt_index != p_index:
                    continue
                row = rows.index((job.adapter, job.weight if job.adapter else 0.0))
                col = checkpoints.index(job.checkpoint) * len(spec.seeds) + spec.seeds.index(job.seed)
                record = finished.get(job.key)
                if record:
                    with Image.open(store.images_dir / record["image"]) as im:
                        cells[(row, col)] = im.convert("RGB")
                else:
                    cells[(row, col)] = "failed" if job.key in failures else "missing"
            row_labels = ["baseline" if a is None else f"{a} @{w:g}" for a, w in rows]
            col_labels = [f"{c} · seed {s}" for c in checkpoints for s in spec.seeds]
            grid = draw_grid(cells, row_labels, col_labels, title=prompt.text)
            path = store.dir / "grids" / f"prompt-{p_index}.png"
            path.parent.mkdir(exist_ok=True)
            _write_file(path, png_bytes(grid, f"LyCORIS eval grid: {prompt.text}"))
            paths.append(path)
        return paths


def draw_grid(
    cells: dict[tuple[int, int], Image.Image | str], row_labels: list[str], col_labels: list[str], title: str = ""
) -> Image.Image:
    """A labelled grid: rows × columns of images; failed/missing cells drawn as grey boxes."""
    images = [c for c in cells.values() if isinstance(c, Image.Image)]
    w, h = images[0].size if images else (128, 128)
    left = min(260, 12 + 7 * max((len(r) for r in row_labels), default=8))
    top, title_h = 28, 24 if title else 0
    grid = Image.new("RGB", (left + w * len(col_labels), title_h + top + h * len(row_labels)), "white")
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((6, 6), title[:200], fill="black")
    for c, label in enumerate(col_labels):
        draw.text((left + c * w + 4, title_h + 8), label[: max(8, w // 7)], fill="black")
    for r, label in enumerate(row_labels):
        draw.text((6, title_h + top + r * h + h // 2 - 6), label[:36], fill="black")
        for c in range(len(col_labels)):
            cell = cells.get((r, c), "missing")
            x, y = left + c * w, title_h + top + r * h
            if isinstance(cell, Image.Image):
                grid.paste(cell.resize((w, h)) if cell.size != (w, h) else cell, (x, y))
            else:
                draw.rectangle([x, y, x + w - 1, y + h - 1], fill=(90, 90, 90) if cell == "failed" else (200, 200, 200))
                draw.text((x + 6, y + h // 2 - 6), cell, fill="white")
    return grid
