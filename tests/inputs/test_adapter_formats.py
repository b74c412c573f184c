"""Adapter files written by the tools people train with (tools/make_adapter_fixtures.py:
lycoris-lora, PEFT, diffusers; kohya sd-scripts and diffusers' older layout by hand from
their sources): the type, rank, options, layout and family we read from each header are
the ones its writer recorded in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lycoris_eval.inputs.adapter_types import detect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))


def test_the_fixtures_cover_every_format_the_issue_names():
    tools = {e["tool"].split()[0] for e in MANIFEST.values()}
    assert {"lycoris-lora", "peft", "diffusers", "by"} <= tools
    types = {e["type"] for e in MANIFEST.values()}
    assert {"LoRA", "LoCon", "LoHa", "LoKr", "IA3", "OFT", "BOFT", "GLoRA", "full", "LoRA+DoRA", "mixed"} <= types
    layouts = {e["layout"] for e in MANIFEST.values()}
    assert layouts == {"kohya", "kohya-oft", "peft", "diffusers", "diffusers-legacy"}
    assert all(p.stat().st_size < 512 * 1024 for p in FIXTURES.glob("*.safetensors"))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_type_rank_and_layout_are_what_the_writer_made(name):
    expected = MANIFEST[name]
    info = detect(FIXTURES / name)
    got = {
        "type": info.type,
        "rank": info.rank,
        "conv_rank": info.conv_rank,
        "options": [o for o in info.options if o != "bypass"],
        "layout": info.layout,
        "oft": [info.oft_blocks, info.oft_block_size] if info.oft_blocks else None,
    }
    want = {k: expected[k] for k in got}
    assert got == want, f"{name}: {expected['how']}"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_family_from_the_tensors(name):
    expected = MANIFEST[name]
    info = detect(FIXTURES / name)
    assert info.family in {expected["family"], "sd1/sd2" if expected["family"] in ("sd1", "sd2") else ""}, (
        f"{name}: {info.family} ({info.family_evidence})"
    )
