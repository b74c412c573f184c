"""What the API answers with that is shaped from stored data alone (no route, no host):
the epochs view of a scored run."""

from __future__ import annotations

from typing import Any

from lycoris_eval.errors import NO_TRAINING_RUN, InputError, NotFoundError
from lycoris_eval.report.epochs_answer import training_run_answers


def epochs_view(document: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """``GET /runs/{id}/epochs``: the ``training_runs`` section (one run with ``name``) and
    its answer in words."""
    section = document.get("training_runs")
    if section is None:
        version = document.get("schema_version", 1)
        raise InputError(
            f"these scores (schema version {version}) predate training runs; evaluate the run again "
            "(cached features make it quick)"
        )
    runs = section.get("runs") or []
    if name is not None:
        runs = [r for r in runs if r.get("name") == name]
        if not runs:
            known = ", ".join(r.get("name", "?") for r in section.get("runs") or []) or "none"
            raise NotFoundError(f"no training run {name!r} in this run (training runs: {known})", field="name")
    chosen = {**section, "runs": runs}
    note = None if runs else NO_TRAINING_RUN.words("api")
    return {
        "answer": training_run_answers({**document, "training_runs": chosen}),
        "training_runs": chosen,
        "note": note,
    }
