"""Comparisons the stored tables do not hold, computed when a user asks for them.

A run with more checkpoints (adapters, weights) than ``all_pairs_up_to`` stores only some
pairs (:mod:`.comparison_plan`). Asking for another pair — ``GET /runs/{id}/compare``, the
tab's Compare view, ``python -m lycoris_eval compare`` — computes it here from the per-image
values every schema-2 cell holds, through :func:`.comparisons.compare_families`: the pairs,
the bootstrap and its seed are the ones an evaluation that stored the pair would have used,
so the difference, interval and p-value are the same numbers.

What differs is what needs more than the document:

* **q-value**: Benjamini–Hochberg over the stored table *plus* the request's own tests (the
  stored entries keep theirs), so a requested pair is judged in the family the run planned
  and never on its own;
* **Vendi and centroid distance** need the DINOv2 vectors, which the document does not hold:
  those two are left out (evaluate with ``--all-pairs-up-to`` raised to store them).
"""

from __future__ import annotations

import copy
from typing import Any

from .comparison_plan import Condition, cond_order, is_complete
from .comparisons import Item, PairedData, apply_fdr, compare_families
from .metrics import METRICS

DIMS = ("checkpoint", "adapter", "weight")
NOTE = "computed on demand: this pair is not stored (many checkpoints); q over the stored table plus this request"


def paired_from_document(document: dict[str, Any]) -> PairedData:
    """The per-image values of a document's cells, paired the way the evaluation paired them
    (images without prompt or seed left out; of two with the same condition and item, the first)."""
    by: dict[Condition, dict[Item, int]] = {}
    values: dict[int, dict[str, float]] = {}
    duplicates = 0
    for cell in document.get("cells", []):
        if cell.get("prompt") is None:
            continue
        adapter = cell.get("adapter")
        cond = (cell.get("checkpoint"), adapter, 0.0 if adapter is None else cell.get("weight"))
        per_metric: dict[str, list[Any]] = cell.get("values") or {}
        slot = by.setdefault(cond, {})
        for n, seed in enumerate(cell.get("image_seeds") or []):
            if seed is None:
                continue
            item = (cell["prompt"], cell.get("prompt_type", "plain"), cell.get("group"), seed)
            if item in slot:
                duplicates += 1
                continue
            index = len(values)
            values[index] = {m: float(v[n]) for m, v in per_metric.items() if n < len(v) and v[n] is not None}
            slot[item] = index
    return PairedData({c: s for c, s in by.items() if s}, values, {}, duplicates)


def wanted_pairs(data: PairedData, dim: str, a: Any, b: Any) -> list[tuple[str, Condition, Condition]]:
    """The (kind, A, B) of every context where A and B differ only in ``dim``, in the
    orientation the stored tables use."""
    at = DIMS.index(dim)
    conds = set(data.by_condition)
    out = []
    for cond in conds:
        if cond[at] != a:
            continue
        other = tuple(b if i == at else v for i, v in enumerate(cond))
        if other in conds:
            first, second = sorted((cond, other), key=cond_order)
            out.append((dim, first, second))
    return sorted(out, key=lambda t: (cond_order(t[1]), cond_order(t[2])))


def missing_entries(document: dict[str, Any], dim: str, a: Any, b: Any) -> list[dict[str, Any]]:
    """The comparisons of ``a`` with ``b`` (both values of ``dim``) the stored table lacks,
    with q-values and statuses; empty when the table holds every pair."""
    section = document.get("comparisons") or {}
    if dim not in DIMS or is_complete(section, dim):
        return []
    stored = [e for e in section.get("entries", []) if e["kind"] == dim]
    have = {_key(e["a"], e["b"]) for e in stored}
    data = paired_from_document(document)
    wanted = [
        f
        for f in wanted_pairs(data, dim, a, b)
        if _key(_side(f[1]), _side(f[2])) not in have and _key(_side(f[2]), _side(f[1])) not in have
    ]
    if not wanted:
        return []
    metrics = [m for m in document.get("metrics", {}) if m in METRICS]
    new = compare_families(wanted, data, metrics, document.get("summaries", []), None, 1.0)
    family = [copy.deepcopy(e) for e in stored if e.get("p") is not None]
    apply_fdr(family + new)  # sets q, status and seeds to add on ``new``; the copies are dropped
    for entry in new:
        entry["on_demand"] = True
        entry["note"] = f"{entry['note']}; {NOTE}" if entry.get("note") else NOTE
    return new


def _side(cond: Condition) -> dict[str, Any]:
    return {"checkpoint": cond[0], "adapter": cond[1], "weight": cond[2]}


def _key(a: dict[str, Any], b: dict[str, Any]) -> tuple:
    return (a["checkpoint"], a["adapter"], a["weight"], b["checkpoint"], b["adapter"], b["weight"])
