"""Transfer verdicts: does an adapter work on a checkpoint it was not trained on?

Per (adapter, checkpoint), relative to the adapter's *home* checkpoint — the one it was
trained on, from its metadata (``ss_sd_model_name``/``modelspec.title_base``) or marked
by the user (``--trained-on ADAPTER=CHECKPOINT``, which wins). At each weight the run has
on both checkpoints, from the clear differences of :mod:`.paired`:

* **breaks** — at home the adapter clearly moves the images toward the reference (a
  fidelity metric clearly better than home's no-adapter images), here it does not, and
  fidelity is clearly worse than at home; *or* text alignment is clearly worse than at home
  and clearly worse than this checkpoint's own no-adapter images (the prompt is lost);
* **weaker** — otherwise, any verdict metric clearly worse than at home;
* **transfers** — otherwise, when the adapter clearly moves this checkpoint's images toward
  the reference (fidelity clearly better than its no-adapter images, and no fidelity metric
  clearly worse) and every verdict metric has an interval (enough seeds);
* **not enough evidence** — anything else (too few seeds, differences not clear, no
  reference set to show the adapter works at all).

Verdict metrics: fidelity (``image_similarity``, ``style_loss_ref``), text alignment
(``text_alignment``) and preservation of the checkpoint's own image (``style_loss_base``,
``psnr_base``, ``ssim_base``), whichever the run has. The
verdict of the pair is the best one reached at any weight (transfers > weaker > breaks),
with the weights where it holds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lycoris_eval.inputs.families import FAMILY_TITLES, compatible

FIDELITY = ("image_similarity", "style_loss_ref")
TEXT = ("text_alignment",)
PRESERVATION = ("style_loss_base", "psnr_base", "ssim_base")
VERDICT_METRICS = FIDELITY + TEXT + PRESERVATION
ORDER = ("transfers", "weaker", "breaks", "not enough evidence")
RULE = (
    "At each weight, against the checkpoint the adapter was trained on: 'breaks' when the adapter "
    "works at home (fidelity clearly above home's no-adapter images) but not here and fidelity is "
    "clearly worse than at home, or when text alignment is clearly worse than at home and than this "
    "checkpoint's no-adapter images; 'weaker' when any of fidelity, text alignment or preservation "
    "(style loss, PSNR, SSIM to the checkpoint's own no-adapter image) is "
    "clearly worse than at home; 'transfers' when the adapter clearly moves this checkpoint toward "
    "the reference and nothing is clearly worse, with enough seeds for every interval; otherwise "
    "'not enough evidence'. Clear = Benjamini–Hochberg q ≤ 0.05 and a 95% interval excluding 0. "
    "The pair's verdict is the best reached at any weight, with those weights."
)


def is_checkpoint(trained_on: str | None, checkpoint: str | None) -> bool:
    """Whether a training-metadata model name names this checkpoint (file stem, any case,
    with or without the WebUI's subfolder and ``[hash]`` suffix)."""
    if not trained_on or not checkpoint:
        return False
    stem = re.sub(r"\.(safetensors|ckpt|pt)$", "", Path(trained_on).name, flags=re.I).lower()
    # the WebUI's title: "SDXL/sd_xl_base_1.0.safetensors [31e35c80fc]" (a subfolder, a hash)
    name = Path(re.sub(r"\s*\[[0-9a-f]+\]$", "", checkpoint.lower())).name
    return stem in (checkpoint.lower(), name, re.sub(r"\.(safetensors|ckpt|pt)$", "", name))


def home_checkpoints(
    adapters: dict[str, dict[str, Any]],
    checkpoints: list[str],
    marked: dict[str, str],
    families: dict[str, str] | None = None,
) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
    """(home per adapter, where it came from, notes).

    The home is the checkpoint the user marked, else the one the adapter's metadata names.
    When neither is in the run, the **same-family** rule: if the run holds exactly one
    checkpoint of the adapter's model family (families from the run's manifest, read from
    the files' headers), that one is the home, with source ``"same family"`` and a note
    saying so. Several same-family checkpoints are never guessed between: the note asks
    the user to mark one.
    """
    homes: dict[str, str | None] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    for name in sorted(adapters):
        if name in marked:
            found = next((c for c in checkpoints if c == marked[name] or is_checkpoint(marked[name], c)), None)
            if found is None:
                notes.append(f"adapter {name}: marked as trained on {marked[name]!r}, which is not in this run")
            homes[name], source[name] = found, "marked"
            continue
        trained = (adapters[name] or {}).get("trained_on")
        found = next((c for c in checkpoints if is_checkpoint(trained, c)), None)
        homes[name] = found
        if found is not None:
            source[name] = "metadata"
            continue
        family = (adapters[name] or {}).get("family")
        same = _same_family(family, checkpoints, families or {})
        if len(same) == 1:
            homes[name], source[name] = same[0], "same family"
            title = FAMILY_TITLES.get(family or "", family)
            was = (
                f"trained on {trained!r}, which is not in this run" if trained else "its training checkpoint is unknown"
            )
            notes.append(
                f"adapter {name}: {was}; its verdicts are against {same[0]}, the run's only {title} checkpoint "
                "(same-family rule; mark the real one with --trained-on ADAPTER=CHECKPOINT)"
            )
        elif len(same) > 1:
            notes.append(
                f"adapter {name}: {len(same)} checkpoints of its family ({', '.join(same)}) and none named as its "
                "training checkpoint: mark one with --trained-on ADAPTER=CHECKPOINT for verdicts"
            )
    return homes, source, notes


def _same_family(family: str | None, checkpoints: list[str], families: dict[str, str]) -> list[str]:
    """The run's checkpoints whose known family is the adapter's (``compatible``: never on a guess)."""
    if not family or family == "unknown":
        return []
    out = []
    for checkpoint in checkpoints:
        known = next((f for n, f in families.items() if n == checkpoint or is_checkpoint(n, checkpoint)), None)
        if compatible(family, known):
            out.append(checkpoint)
    return out


def verdicts(
    comparisons: dict[str, Any], adapters: list[str], checkpoints: list[str], homes: dict[str, str | None]
) -> list[dict[str, Any]]:
    """One entry per (adapter, checkpoint) the run has, in a stable order."""
    index = _Index(comparisons.get("entries", []))
    out = []
    for adapter in adapters:
        home = homes.get(adapter)
        for checkpoint in checkpoints:
            weights = index.weights(checkpoint, adapter)
            if not weights:
                continue
            base = {"adapter": adapter, "checkpoint": checkpoint, "home": home}
            if home is None:
                out.append({**base, "verdict": None, "weights": [], "by_weight": [], "reason": "home unknown"})
                continue
            if checkpoint == home:
                out.append({**base, "verdict": "home", "weights": weights, "by_weight": [], "reason": "trained here"})
                continue
            at_home = set(index.weights(home, adapter))
            by_weight = [{"weight": w, **index.judge(checkpoint, home, adapter, w)} for w in weights if w in at_home]
            out.append({**base, **_overall(by_weight)})
    return out


def _overall(by_weight: list[dict[str, Any]]) -> dict[str, Any]:
    if not by_weight:
        return {"verdict": "not enough evidence", "weights": [], "by_weight": [], "reason": "no weight in common"}
    best = min(by_weight, key=lambda v: ORDER.index(v["verdict"]))["verdict"]
    weights = [v["weight"] for v in by_weight if v["verdict"] == best]
    reason = next(v["reason"] for v in by_weight if v["verdict"] == best)
    return {"verdict": best, "weights": weights, "by_weight": by_weight, "reason": reason}


class _Index:
    """The comparison entries needed for verdicts, looked up by (kind, A, B, metric)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries: dict[tuple, dict[str, Any]] = {}
        # (checkpoint, adapter) -> the weights it appears at in the baseline or checkpoint tables
        self._weights: dict[tuple, set[float]] = {}
        for e in entries:
            a, b = e["a"], e["b"]
            key = (e["kind"], a["checkpoint"], a["adapter"], a["weight"], b["checkpoint"], b["adapter"], b["weight"])
            self.entries[(*key, e["metric"])] = e
            sides = (a, b) if e["kind"] == "checkpoint" else (a,) if e["kind"] == "baseline" else ()
            for side in sides:
                if side["weight"] is not None:
                    self._weights.setdefault((side["checkpoint"], side["adapter"]), set()).add(side["weight"])

    def weights(self, checkpoint: str, adapter: str) -> list[float]:
        return sorted(self._weights.get((checkpoint, adapter), ()))

    def _side(self, kind: str, a: tuple, b: tuple, metric: str) -> tuple[str | None, bool]:
        """(which side is clearly better: "x" for ``a``, "y" for ``b``, None; has interval)."""
        entry = self.entries.get((kind, *a, *b, metric))
        flipped = False
        if entry is None:
            entry, flipped = self.entries.get((kind, *b, *a, metric)), True
        if entry is None:
            return None, False
        has_interval = entry["ci"] is not None
        if not entry["clear"]:
            return None, has_interval
        a_side = entry["better"] == "a"
        return ("x" if a_side != flipped else "y"), has_interval

    def judge(self, here: str, home: str, adapter: str, weight: float) -> dict[str, Any]:
        x, h = (here, adapter, weight), (home, adapter, weight)
        diff = {m: self._side("checkpoint", x, h, m) for m in VERDICT_METRICS if self._has(("checkpoint", x, h, m))}
        worse = [m for m, (side, _) in diff.items() if side == "y"]
        effect_here = self._effect(here, adapter, weight)
        effect_home = self._effect(home, adapter, weight)
        text_lost = any(m in worse and self._side("baseline", x, (here, None, 0.0), m)[0] == "y" for m in TEXT)
        fid_worse = [m for m in worse if m in FIDELITY]
        if (effect_home == "works" and effect_here != "works" and fid_worse) or text_lost:
            why = "text alignment lost" if text_lost else f"no effect here, {', '.join(fid_worse)} clearly worse"
            return {"verdict": "breaks", "reason": why}
        if worse:
            return {"verdict": "weaker", "reason": f"clearly worse than at home: {', '.join(worse)}"}
        complete = all(has for _, has in diff.values()) and bool(diff)
        if effect_here == "works" and complete:
            return {"verdict": "transfers", "reason": "moves toward the reference; nothing clearly worse than at home"}
        if effect_here is None:
            why = "no fidelity comparison with this checkpoint's no-adapter images (no reference set or no baseline)"
        elif not complete:
            why = "too few seeds for an interval"
        else:
            why = "no clear effect toward the reference here"
        return {"verdict": "not enough evidence", "reason": why}

    def _has(self, key: tuple) -> bool:
        kind, a, b, metric = key
        return (kind, *a, *b, metric) in self.entries or (kind, *b, *a, metric) in self.entries

    def _effect(self, checkpoint: str, adapter: str, weight: float) -> str | None:
        """ "works" when some fidelity metric is clearly better with the adapter than without
        and none clearly worse; "none" otherwise; None when no fidelity metric exists."""
        sides = [
            self._side("baseline", (checkpoint, adapter, weight), (checkpoint, None, 0.0), m)[0]
            for m in FIDELITY
            if self._has(("baseline", (checkpoint, adapter, weight), (checkpoint, None, 0.0), m))
        ]
        if not sides:
            return None
        return "works" if "x" in sides and "y" not in sides else "none"
