"""Comparisons the stored tables do not hold, computed when a user asks for them.

A run with more checkpoints (adapters, weights) than ``all_pairs_up_to`` stores only some
pairs (:mod:`.plan`). Asking for another pair — ``GET /runs/{id}/compare``, the
tab's Compare view, ``python -m lycoris_eval compare`` — computes it here from the per-image
values every schema-2 cell holds, through :func:`.comparisons.compare_families`: the pairs,
the bootstrap and its seed are the ones an evaluation that stored the pair would have used,
so the difference, interval and p-value are the same numbers.

What differs is what needs more than the document:

* **q-value**: a pair picked after the values were seen must not be judged on its own, so
  Benjamini–Hochberg runs over every pair the table could hold: the stored tests, the
  request's, and every pair never computed counted as p = 1 (conservative, and the same
  whatever else was asked; the stored entries keep their own q);
* **Vendi and centroid distance** need the DINOv2 vectors, which the document does not hold:
  those two are left out (evaluate with ``--all-pairs-up-to`` raised to store them).
"""

from __future__ import annotations

from typing import Any

from lycoris_eval.compare import stats
from lycoris_eval.compare.paired import Item, PairedData, compare_families, settle
from lycoris_eval.compare.plan import Condition, cond_order, contexts, is_complete
from lycoris_eval.scoring.metrics import METRICS

DIMS = ("checkpoint", "adapter", "weight")
NOTE = "computed on demand (not stored): q counts every pair of its table as tested"


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
            item = (cell["prompt"], cell.get("prompt_type", "unspecified"), cell.get("group"), seed)
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


def missing_entries(document: dict[str, Any], dim: str, a: Any, b: Any) -> tuple[list[dict[str, Any]], int]:
    """The comparisons of ``a`` with ``b`` (both values of ``dim``) the stored table lacks,
    with q-values and statuses, and the number of tests their q-values count (0 and none
    when the table holds every pair)."""
    section = document.get("comparisons") or {}
    if dim not in DIMS or None in (a, b) or is_complete(section, dim):
        return [], 0  # an adapter against no adapter is the baseline table, always complete
    stored = [e for e in section.get("entries", []) if e["kind"] == dim]
    have = {_key(e["a"], e["b"]) for e in stored}
    data = paired_from_document(document)
    wanted = [
        f
        for f in wanted_pairs(data, dim, a, b)
        if _key(_side(f[1]), _side(f[2])) not in have and _key(_side(f[2]), _side(f[1])) not in have
    ]
    if not wanted:
        return [], 0
    metrics = [m for m in document.get("metrics", {}) if m in METRICS]
    new = compare_families(wanted, data, metrics, document.get("summaries", []), None, 1.0)
    tests = full_family(data, dim, metrics)
    stored_p = [e["p"] for e in stored if e["p"] is not None]
    new_p = [e["p"] for e in new if e["p"] is not None]
    # every pair the table could hold counts as tested; those never computed as p = 1
    padding = [1.0] * max(0, tests - len(stored_p) - len(new_p))
    q = stats.benjamini_hochberg(stored_p + new_p + padding)[len(stored_p) : len(stored_p) + len(new_p)]
    settle(new, q, tests, clear_before=sum(1 for e in stored if e["clear"]))
    for entry in new:
        entry["on_demand"] = True
        entry["note"] = f"{entry['note']}; {NOTE}" if entry.get("note") else NOTE
    return new, tests


def full_family(data: PairedData, kind: str, metrics: list[str]) -> int:
    """Tests the table ``kind`` would hold with every pair stored: pairs × the metrics that
    give a p-value (image-level ones; an upper bound where a pair lacks values)."""
    with_p = sum(1 for m in metrics if METRICS[m].level == "image")
    pairs = sum(len(m) * (len(m) - 1) // 2 for k, m in contexts(sorted(data.by_condition, key=cond_order)) if k == kind)
    return pairs * with_p


def _side(cond: Condition) -> dict[str, Any]:
    return {"checkpoint": cond[0], "adapter": cond[1], "weight": cond[2]}


def _key(a: dict[str, Any], b: dict[str, Any]) -> tuple:
    return (a["checkpoint"], a["adapter"], a["weight"], b["checkpoint"], b["adapter"], b["weight"])
