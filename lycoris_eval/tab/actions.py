"""The Evaluate tab's work, without any layout: its services (what the host gives it), its
sources (runs, folders, the last X/Y/Z grid), and :func:`run_evaluation`, which returns
plain data (testable without a browser). Gradio is only touched for progress, lazily.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lycoris_eval.config import EvalConfig, build_config
from lycoris_eval.errors import RANDOM_WEIGHTS_WARNING, BusyError, InputError, LycorisEvalError, PathRefused
from lycoris_eval.fileio import resolve_allowed
from lycoris_eval.grid.store import RunStore, list_runs
from lycoris_eval.scoring.finished_grid import ScoredRun, score_finished_run, score_images
from lycoris_eval.scoring.metrics import DEFAULT_METRICS

SOURCE_RUN = "Run"


SOURCE_FOLDER = "Folder"


SOURCE_XYZ = "Last X/Y/Z grid"


NOT_YET = "Nothing evaluated yet: choose a source and press **Evaluate**."


@dataclass
class UiServices:
    outputs_root: Path
    data_path: Path
    allowed_roots: Callable[[], list[Path]]
    eval_config: Callable[[], EvalConfig]
    last_xyz: Callable[[], Path | None] = lambda: None
    lock: Callable[[], AbstractContextManager[Any]] = nullcontext
    default_metrics: Callable[[], list[str]] = lambda: list(DEFAULT_METRICS)
    cancel: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)
    # whose words messages use (lycoris_eval.errors.FRONT_ENDS): "tab" standalone (options
    # are the app's flags, e.g. --random-weights), "webui" inside the WebUI (its settings)
    front: str = "tab"
    # (run id, seeds to add, progress) -> the grid's RunResult: resumes a run with more
    # seeds; None in the standalone app, which cannot generate
    extend_run: Callable[[str, int, Callable[[int, int, str], None]], Any] | None = None


@dataclass
class EvaluationView:
    status: str
    document: dict[str, Any]
    tables: dict[str, Any]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)
    thumbnails: list[tuple[str, str]] = field(default_factory=list)


def run_choices(services: UiServices) -> list[str]:
    out = []
    for run in list_runs(services.outputs_root):
        label = f"{run['run_id']}" + (f" — {run['name']}" if run["name"] else "")
        out.append(f"{label} ({run['done_images']}/{run['total_images']} images)")
    return out


def _run_id(choice: str) -> str:
    return choice.split(" ", 1)[0].strip()


def run_summary(services: UiServices, choice: str) -> str:
    """A run's spec in one glance (shown under the run picker)."""
    if not choice:
        return ""
    try:
        store = RunStore(services.outputs_root, _run_id(choice))
        spec = store.read_manifest()["spec"]
    except (InputError, KeyError):
        return f"run {choice!r} not found"
    seeds = spec.get("seeds", [])
    parts = [
        f"**checkpoints** {', '.join(spec.get('checkpoints') or ['(loaded one)'])}",
        f"**adapters** {', '.join(spec.get('adapters', []))}",
        f"**weights** {', '.join(f'{w:g}' for w in spec.get('weights', []))}",
        f"**prompts** {len(spec.get('prompts', []))}",
        f"**seeds** {len(seeds)}",
    ]
    return " · ".join(parts)


def save_uploads(services: UiServices, files: list[Any] | None) -> Path | None:
    """Reference images uploaded in the tab, copied into the run store (kept for reuse)."""

    if not files:
        return None
    target = services.outputs_root / "uploads" / f"refs-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True, exist_ok=True)
    for item in files:
        source = Path(getattr(item, "name", item))
        shutil.copy(source, target / source.name)
    return target


def filter_cells(frame: Any, prompt_type: str) -> Any:
    if frame is None or not prompt_type or prompt_type == "all":
        return frame
    return frame[frame["prompt type"] == prompt_type]


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def xyz_capture(services: UiServices) -> tuple[Path, int, float] | None:
    """The last X/Y/Z grid's folder, its number of images and the newest image's mtime."""
    folder = services.last_xyz()
    if folder is None:
        return None
    newest, count = 0.0, 0
    for path in Path(folder).glob("*.png"):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:  # replaced by a new plot while we look
            continue
        count += 1
    return (Path(folder), count, newest) if count else None


def xyz_summary(services: UiServices, now: float | None = None) -> str:
    """Which grid "Last X/Y/Z grid" would score: when it was captured and how many images.

    The capture folder survives restarts, so this may be a grid from an earlier session."""
    capture = xyz_capture(services)
    if capture is None:
        return "No X/Y/Z plot grid captured yet: in txt2img choose *Script → X/Y/Z plot* and **Generate**."
    _folder_path, count, newest = capture
    when = _dt.datetime.fromtimestamp(newest).strftime("%Y-%m-%d %H:%M:%S")
    age = _ago((time.time() if now is None else now) - newest)
    return f"**Last X/Y/Z grid:** {count} image{'s' if count != 1 else ''}, captured {when} ({age})"


def _folder(services: UiServices, path: str, what: str) -> Path:
    try:
        resolved = resolve_allowed(path, services.allowed_roots(), services.data_path)
    except PathRefused as exc:
        raise InputError(f"{what}: {exc}") from None
    if not resolved.is_dir():
        raise InputError(f"{what}: not a folder: {path}")
    return resolved


def run_evaluation(
    services: UiServices,
    source: str,
    run_choice: str,
    folder: str,
    references: str,
    distractors: str,
    trigger: str,
    metrics: list[str],
    device: str,
    progress: Callable[[int, int, str], None] | None = None,
    uploaded_references: Path | None = None,
    trained_on: str = "",
    training_runs: str = "",
) -> EvaluationView:
    notify = progress or (lambda done, total, message: None)
    store, source_line = None, None
    if source == SOURCE_RUN:
        if not run_choice:
            raise InputError("choose a run")
        store = RunStore(services.outputs_root, _run_id(run_choice))
        if not store.exists():
            raise InputError(f"unknown run {_run_id(run_choice)!r}")
        images_dir = store.images_dir
    elif source == SOURCE_XYZ:
        captured = services.last_xyz()
        if captured is None:
            raise InputError("no X/Y/Z plot has run since the WebUI started")
        images_dir = captured
        source_line = xyz_summary(services)
    else:
        images_dir = _folder(services, folder, "folder")
    if uploaded_references is not None:
        reference: Path | None = uploaded_references
    elif references.strip():
        reference = _folder(services, references.strip(), "reference folder")
    else:
        reference = None
    settings = services.eval_config()
    config = build_config(
        settings,
        metrics=tuple(metrics) if metrics else DEFAULT_METRICS,
        reference=reference,
        distractors=[
            _folder(services, line.strip(), "distractor folder") for line in distractors.splitlines() if line.strip()
        ],
        trigger=[t for t in trigger.splitlines() if t.strip()],
        trained_on=trained_on,
        training_runs=training_runs,
        device=device or None,
        should_stop=services.cancel.is_set,
        # the default chunk, as every other front end: chunking decides the encoders' batches,
        # and the same run must give the same numbers from the tab, the Script, the API and the CLI
    )
    if not services.busy.acquire(blocking=False):
        raise BusyError("an evaluation is already running; wait for it or press Cancel")
    try:
        services.cancel.clear()
        if services.lock is not nullcontext:
            notify(0, 0, "waiting for the WebUI to finish its current job")
        talk = {
            "progress": notify,
            "hold": services.lock,
            "words": lambda _text: run_warning({"random_weights": True}, services.front),
        }
        if store is not None:  # a grid run: the one path every front end scores a run by
            scored = score_finished_run(store, config, **talk)
        else:  # a folder or the last X/Y/Z grid: the same files, into its lycoris-eval/ folder
            scored = score_images(images_dir, images_dir / "lycoris-eval", config, **talk)
    finally:
        services.busy.release()
    return EvaluationView(
        status=_status(scored.document, scored.out_dir, services, source_line),
        document=scored.document,
        tables=scored.tables,
        out_dir=scored.out_dir,
        files=[scored.reports["json"], scored.reports["csv"], *scored.figures.values()],
        plots=[(str(p), name) for name, p in scored.figures.items() if name != "markdown"],
        thumbnails=thumbnails(scored.document, images_dir),
    )


def rescore_run(services: UiServices, run_dir: Path, previous: dict[str, Any]) -> ScoredRun:
    """Score a run again with the settings its previous scores were made with (after
    "add seeds"): metrics, reference and distractor sets, trigger mapping, marked homes."""
    run = previous.get("run", {})
    verdicts = previous.get("verdicts") or {}
    marked = {
        adapter: home
        for adapter, home in (verdicts.get("home") or {}).items()
        if home and (verdicts.get("home_source") or {}).get(adapter) == "marked"
    }
    config = build_config(
        services.eval_config(),
        metrics=run.get("metrics") or None,
        reference=run.get("reference_dir"),
        distractors=run.get("distractor_dirs") or [],
        trigger=run.get("trigger") or None,
        trained_on=marked,
        training_runs=run.get("training_runs_grouped") or None,
        vendi_q=run.get("vendi_q"),  # encoders, device and precision: the current settings
    )
    return score_finished_run(
        RunStore(run_dir.parent, run_dir.name),
        config,
        hold=services.lock,
        words=lambda _text: run_warning({"random_weights": True}, services.front),
    )


def error_text(exc: LycorisEvalError, services: UiServices) -> str:
    """The one way the tab shows an error: in the words of the page it is shown on."""
    return f"**Error:** {exc.words(services.front)}"


def run_warning(run: dict[str, Any], front: str) -> str | None:
    """A scored run's warning in ``front``'s words: scores.json keeps the command line's; the
    random-weights one is worded again from its definition, by the run's own flag."""
    return RANDOM_WEIGHTS_WARNING.words(front) if run.get("random_weights") else run.get("warning")


def gradio_progress(progress: Callable[..., Any]) -> Callable[[int, int, str], None]:
    """The evaluation's ``(done, total, message)`` callback as ``gr.Progress`` calls:
    ``progress(done/total, desc="encoding images 12/40")``; a message without a count
    (total 0: loading models, writing reports) keeps the bar where it is."""
    fraction = [0.0]

    def report(done: int, total: int, message: str) -> None:
        if total > 0:
            fraction[0] = min(max(done / total, 0.0), 1.0)
            message = f"{message} {done}/{total}"
        progress(fraction[0], desc=message)

    return report


def _status(
    document: dict[str, Any], out_dir: Path, services: UiServices | None = None, source_line: str | None = None
) -> str:
    run = document["run"]
    warning = run_warning(run, services.front if services is not None else "tab")
    lines = []
    if warning:
        lines.append(f"**{warning}**")
    if run.get("partial"):
        part = run["partial"]
        lines.append(f"**Partial results:** cancelled after {part['images_scored']} of {part['images_total']} images.")
    if source_line:
        lines.append(source_line)
    lines.append(f"Scored {run['n_images']} images in {run['n_cells']} cells; reports in `{out_dir}`.")
    lines += [f"* {note}" for note in run.get("notes", []) if note != run.get("warning")]
    if run.get("skipped"):
        lines.append(f"* {len(run['skipped'])} file(s) skipped: " + "; ".join(s["error"] for s in run["skipped"][:5]))
    if run.get("generation_failures"):
        lines.append(f"* {len(run['generation_failures'])} image(s) could not be generated (see the report)")
    kept = kept_models_line()
    if kept:
        lines.append(kept)
    return "\n".join(lines)


def kept_models_line() -> str:
    """The scoring models kept loaded between evaluations (setting "keep models"), with the
    memory they hold; empty when none is kept."""
    # lazy: base imports numpy at its top
    from lycoris_eval.scoring.encoders.base import pool_status

    kept = pool_status()
    if not kept:
        return ""
    parts = [f"{name} ({v['device']}, {v['memory_mib']:,.0f} MiB)" for name, v in sorted(kept.items())]
    total = sum(v["memory_mib"] for v in kept.values())
    return f"* Scoring models kept loaded: {', '.join(parts)}; {total:,.0f} MiB in all."


def thumbnails(document: dict[str, Any], images_dir: Path, per_metric: int = 1) -> list[tuple[str, str]]:
    """Best and worst cell per image-level metric, each next to the baseline at the same seed."""
    baseline: dict[tuple[Any, Any, Any], str] = {}
    for cell in document["cells"]:
        if cell.get("baseline"):
            for name, seed in zip(cell["images"], cell.get("image_seeds", [])):
                baseline[(cell["checkpoint"], cell["prompt"], seed)] = name
    out: list[tuple[str, str]] = []
    for metric, info in document["metrics"].items():
        if info["level"] != "image":
            continue
        scored = [
            c
            for c in document["cells"]
            if not c.get("baseline") and (c["metrics"].get(metric) or {}).get("mean") is not None
        ]
        if len(scored) < 2:
            continue
        scored.sort(key=lambda c: c["metrics"][metric]["mean"], reverse=info["higher_is_better"])
        for tag, cell in (("best", scored[0]), ("worst", scored[-1])):
            name = cell["images"][0]
            seed = (cell.get("image_seeds") or [None])[0]
            label = f"{metric} {tag}: {cell['checkpoint']} · {cell['adapter']} @{cell['weight']}"
            out.append((str(images_dir / name), f"{label} = {cell['metrics'][metric]['mean']:.4g}"))
            base = baseline.get((cell["checkpoint"], cell["prompt"], seed))
            if base:
                out.append((str(images_dir / base), f"{metric} {tag}: baseline, seed {seed}"))
    return out
