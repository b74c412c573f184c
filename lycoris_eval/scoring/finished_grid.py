"""Scoring a finished grid: the one path of every front end that scores a run (the Script's
"score when finished" and the API's grid jobs through it, the tab's Evaluate of a run and
its "add seeds", the API's ``POST /evaluate`` of a run, the sweep's ``--score``).

:func:`score_finished_run` evaluates ``<run>/images`` and writes the same files, always, into
the run's report folder (:attr:`lycoris_eval.grid.store.RunStore.report_dir`):
``scores.json``, ``scores.csv`` and ``comparisons.csv``
(:func:`lycoris_eval.report.outputs.write_reports`), then ``report.md`` and the figures
(:func:`lycoris_eval.report.outputs.write_report_files`), the report read with the run's
manifest (adapter types and training bases, as the host recorded them). So the same run
with the same config gives the same files whichever front end asked. What a front end still
decides is the request (the config: metrics, reference and distractor sets, marked homes)
and how it waits (``hold``: the WebUI's queue lock) and talks (``progress``, ``words``).

The sweep computes the image features elsewhere (a Ray pool): ``features`` is that hook, a
:data:`FeatureProvider` that fills the config's feature cache before the evaluation, which
then finds every image feature there and computes the same numbers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lycoris_eval.config import EvalConfig
from lycoris_eval.grid.store import RunStore
from lycoris_eval.report.outputs import write_report_files, write_reports
from lycoris_eval.report.sections import report_tables
from lycoris_eval.scoring.passes import ProgressFn
from lycoris_eval.scoring.pipeline import evaluate

# (images folder, config) -> None: fills the config's feature cache with every image feature
# the evaluation of that folder will ask for (the sweep's Ray pool; a plain callable in tests)
FeatureProvider = Callable[[Path, EvalConfig], Any]


@dataclass
class ScoredRun:
    """What scoring wrote: the document, the report's tables, and every file by name."""

    document: dict[str, Any]
    tables: dict[str, Any]
    out_dir: Path
    reports: dict[str, Path]  # json, csv, comparisons
    figures: dict[str, Path]  # markdown, then verdicts, heatmap-METRIC, weights-METRIC

    @property
    def paths(self) -> dict[str, Path]:
        return {**self.reports, **self.figures}


def score_finished_run(
    run: RunStore | Path,
    config: EvalConfig,
    progress: ProgressFn | None = None,
    features: FeatureProvider | None = None,
    *,
    hold: Callable[[], AbstractContextManager[Any]] = nullcontext,
    words: Callable[[str], str] | None = None,
) -> ScoredRun:
    """Score the run (a :class:`RunStore`, or its folder) and write every report file into
    its report folder. A run still being written (or interrupted) is scored as far as it
    goes, with a note saying so."""
    store = run if isinstance(run, RunStore) else RunStore(Path(run).parent, Path(run).name)
    manifest = store.read_manifest()
    notes = []
    done, failed = len(store.finished()), len(store.failures())
    total = int(manifest.get("total_images") or 0)
    if done + failed < total:
        notes.append(
            f"run {store.run_id} is incomplete ({done} of {total} images finished): it is still being written "
            "or was interrupted; the finished images were scored"
        )
    return score_images(
        store.images_dir,
        store.report_dir,
        config,
        manifest=manifest,
        progress=progress,
        features=features,
        hold=hold,
        words=words,
        notes=notes,
    )


def score_images(
    images_dir: Path,
    out_dir: Path,
    config: EvalConfig,
    *,
    manifest: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    features: FeatureProvider | None = None,
    hold: Callable[[], AbstractContextManager[Any]] = nullcontext,
    words: Callable[[str], str] | None = None,
    notes: Iterable[str] = (),
) -> ScoredRun:
    """Evaluate ``images_dir`` and write every report file into ``out_dir`` (a run's report
    folder, or a folder's ``lycoris-eval/``).

    ``hold``: held while the images are read and encoded (the WebUI's queue lock), not while
    the reports are written; ``words``: how ``report.md``'s warning names the switches of the
    page that asked (the tab's form fields instead of the command line's flags; ``scores.json``
    is never reworded); ``notes``: appended to the document's ``run.notes``.
    """
    notify = progress or (lambda done, total, message: None)
    with hold():
        notify(0, 0, "reading the images and loading the scoring models")
        document = _evaluate(Path(images_dir), config, progress, features)
    document["run"]["notes"].extend(notes)
    notify(0, 0, "writing the reports and plots")
    reports = write_reports(document, out_dir)
    tables = report_tables(document, manifest)
    if words is not None and tables.get("warning"):
        tables["warning"] = words(tables["warning"])
    figures = write_report_files(tables, out_dir)
    return ScoredRun(document, tables, Path(out_dir), reports, figures)


def _evaluate(
    images_dir: Path, config: EvalConfig, progress: ProgressFn | None, features: FeatureProvider | None
) -> dict[str, Any]:
    """``evaluate``, after ``features`` filled the feature cache (a private one when the
    config has none: the provider hands its vectors over through it)."""
    if features is None:
        return evaluate(images_dir, config, progress)
    scratch = None
    if not config.use_cache:
        scratch = tempfile.mkdtemp(prefix="lycoris-eval-features-")
        config = replace(config, use_cache=True, cache_dir=Path(scratch))
    try:
        features(images_dir, config)
        return evaluate(images_dir, config, progress)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
