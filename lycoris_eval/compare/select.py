"""Reading comparisons back: pick A and B by name, get the entries oriented A − B.

Shared by the API (``GET /runs/{id}/compare?a=…&b=…``), the tab's Compare view and the
CLI's ``compare`` command. A side is a checkpoint name, an adapter name, a weight, or
``baseline`` (no adapter); ``checkpoint:``, ``adapter:`` or ``weight:`` in front settles
a name that is more than one of these.
"""

from __future__ import annotations

from typing import Any

from lycoris_eval.compare.on_demand import missing_entries
from lycoris_eval.compare.paired import STATUS_A, STATUS_B
from lycoris_eval.compare.plan import KINDS, is_complete
from lycoris_eval.errors import InputError, SpecError

BASELINE_WORDS = ("baseline", "none", "no adapter", "(no adapter)")


def conditions(document: dict[str, Any]) -> dict[str, list[Any]]:
    """The checkpoints, adapters and weights a document's comparisons are about."""
    out: dict[str, set] = {"checkpoint": set(), "adapter": set(), "weight": set()}
    section = document.get("comparisons", {})
    sides = [side for e in section.get("entries", []) for side in (e["a"], e["b"])]
    if section and not all(is_complete(section, kind) for kind in KINDS):
        sides += document.get("cells", [])  # a partly stored table: the cells name every condition
    for side in sides:
        if side["checkpoint"] is not None:
            out["checkpoint"].add(side["checkpoint"])
        if side["adapter"] is not None:
            out["adapter"].add(side["adapter"])
            if side["weight"] is not None:
                out["weight"].add(side["weight"])
    return {k: sorted(v, key=lambda x: (isinstance(x, str), x)) for k, v in out.items()}


def choices(document: dict[str, Any]) -> list[str]:
    """Every side a user can pick, as text (for dropdowns)."""
    known = conditions(document)
    out = [f"checkpoint:{c}" for c in known["checkpoint"]]
    out += [f"adapter:{a}" for a in known["adapter"]] + (["baseline"] if known["adapter"] else [])
    out += [f"weight:{w:g}" for w in known["weight"]]
    return out


def parse_side(document: dict[str, Any], text: str, field: str) -> tuple[str, Any]:
    """``text`` -> (dimension, value); a clear error naming the choices otherwise."""
    raw = (text or "").strip()
    if not raw:
        raise SpecError(field, "give a checkpoint, an adapter, a weight or 'baseline'")
    if raw.lower() in BASELINE_WORDS:
        return "adapter", None
    known = conditions(document)
    prefix, _, rest = raw.partition(":")
    if prefix in known and rest:
        dims, name = [prefix], rest.strip()
    else:
        dims, name = list(known), raw
    found: list[tuple[str, Any]] = []
    for dim in dims:
        if dim == "weight":
            try:
                value = float(name)
            except ValueError:
                continue
            found += [("weight", w) for w in known["weight"] if f"{w:g}" == f"{value:g}"]
        elif name in known[dim]:
            found.append((dim, name))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise SpecError(field, f"{raw!r} is both {' and '.join(d for d, _ in found)}; write e.g. checkpoint:{raw}")
    raise SpecError(field, f"{raw!r} is not in this run; choose one of: {', '.join(choices(document)) or 'none'}")


def flip(entry: dict[str, Any]) -> dict[str, Any]:
    """The same comparison read B − A."""
    out = dict(entry)
    out["a"], out["b"] = entry["b"], entry["a"]
    out["diff"] = None if entry["diff"] is None else -entry["diff"]
    out["ci"] = None if entry["ci"] is None else [-entry["ci"][1], -entry["ci"][0]]
    out["a_wins"], out["b_wins"] = entry["b_wins"], entry["a_wins"]
    if entry["b_wins"] is not None and entry["n"]:
        out["a_better_share"] = entry["b_wins"] / entry["n"]
    out["better"] = {"a": "b", "b": "a"}.get(entry["better"])
    out["status"] = {STATUS_A: STATUS_B, STATUS_B: STATUS_A}.get(entry["status"], entry["status"])
    return out


def select(document: dict[str, Any], a: str, b: str, filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The comparisons of A against B (every context they share, every metric)."""
    metric = (filters or {}).get("metric")
    known = document.get("metrics") or {}
    if metric is not None and known and metric not in known:
        raise SpecError("metric", f"{metric!r} is not scored here; scored: {', '.join(known) or 'none'}")
    section = document.get("comparisons")
    if not section:
        version = document.get("schema_version", 1)
        raise InputError(
            f"these scores (schema version {version}) have no comparisons; evaluate the run again "
            "(cached features make it quick)"
        )
    dim_a, val_a = parse_side(document, a, "a")
    dim_b, val_b = parse_side(document, b, "b")
    if dim_a != dim_b:
        raise InputError(
            f"a is {_an(dim_a)} and b {_an(dim_b)}: compare two of the same kind (or an adapter with baseline)"
        )
    if val_a == val_b:
        raise InputError(f"a and b are the same {dim_a}: {val_a!r}")
    rows = []
    computed, family = missing_entries(document, dim_a, val_a, val_b)
    for entry in section["entries"] + computed:
        oriented = _orient(entry, dim_a, val_a, val_b)
        if oriented is not None and _keep(oriented, filters or {}):
            rows.append(oriented)
    kind = "baseline" if dim_a == "adapter" and None in (val_a, val_b) else dim_a
    return {
        "on_demand": sum(1 for e in rows if e.get("on_demand")),
        "on_demand_tests": family,
        "a": a,
        "b": b,
        "kind": kind,
        "method": section.get("method", {}),
        "table": section.get("tables", {}).get(kind, {}),
        "entries": rows,
    }


def _an(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _orient(entry: dict[str, Any], dim: str, x: Any, y: Any) -> dict[str, Any] | None:
    ea, eb = entry["a"][dim], entry["b"][dim]
    if dim == "adapter" and None in (x, y):
        if entry["kind"] != "baseline":
            return None
    elif entry["kind"] != dim:
        return None
    if (ea, eb) == (x, y):
        return entry
    if (ea, eb) == (y, x):
        return flip(entry)
    return None


def _keep(entry: dict[str, Any], filters: dict[str, Any]) -> bool:
    for key, value in filters.items():
        if value is None or value == "":
            continue
        if key == "metric":
            if entry["metric"] != value:
                return False
        elif key == "weight":
            if float(value) not in (entry["a"]["weight"], entry["b"]["weight"]):
                return False
        elif value not in (entry["a"][key], entry["b"][key]):
            return False
    return True
