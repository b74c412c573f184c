"""Request bodies into configs: ``POST /evaluate``'s folders, sets and fields, checked and
resolved before any work (a :class:`SpecError` names the field at fault)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lycoris_eval.config import EvalConfig, build_config
from lycoris_eval.errors import DISTRACTORS_NEED_REFERENCE, SpecError


def config_from_body(body: dict[str, Any], config: EvalConfig, folder: Callable[[str, str], Path]) -> EvalConfig:
    """The request's fields on the settings' config, through the one builder every front end uses."""
    references = body.get("references") or []
    distractors = body.get("distractors") or []
    for name, value in (("references", references), ("distractors", distractors)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(name, "must be a list of folders")
    if len(references) > 1:
        raise SpecError("references", "one target reference folder (use distractors for the others)")
    if distractors and not references:  # named by the API's own field
        raise SpecError("distractors", DISTRACTORS_NEED_REFERENCE)
    trigger = body.get("trigger")
    if trigger is not None and not isinstance(trigger, (dict, list)):
        raise SpecError("trigger", "must map words to replacement text")
    return build_config(
        config,
        metrics=body.get("metrics"),
        reference=folder(references[0], "references") if references else None,
        distractors=[folder(d, "distractors") for d in distractors],
        trigger=trigger or None,
        trained_on=body.get("trained_on"),
        training_runs=body.get("training_runs"),
        compare_to=body.get("compare_to"),
        all_pairs_up_to=body.get("all_pairs_up_to"),
    )
