"""The sweep's preflight reads the model family of each checkpoint and adapter from the files
the WebUIs name (where this machine can read them) and refuses a cross-family grid before any
image, as ``POST /grid`` does."""

from __future__ import annotations

import pytest

from lycoris_eval.errors import SpecError
from lycoris_eval.grid.spec import GridSpec
from lycoris_eval.sweep.preflight import check_webuis
from tests.inputs.test_families import write_sdxl_checkpoint

from .fake_webui_http import FakeWebUI


def test_sweep_refuses_a_cross_family_grid_before_any_image(tmp_path):
    from tests.helpers import write_adapter

    fake = FakeWebUI()
    try:
        write_sdxl_checkpoint(tmp_path / "ck-b.safetensors")
        fake.files["ck-b"] = str(tmp_path / "ck-b.safetensors")
        fake.files["style_x"] = str(
            write_adapter(tmp_path / "style_x.safetensors", "LoRA", {"ss_base_model_version": "sd_v1"})
        )
        spec = {
            "checkpoints": ["ck-a", "ck-b"],
            "adapters": ["style_x"],
            "weights": [1],
            "prompts": ["a"],
            "seeds": [1],
        }
        with pytest.raises(SpecError) as caught:
            check_webuis(GridSpec.from_dict(spec), [fake.url], None, 10)
        assert caught.value.field == "adapters"
        assert "'style_x' is for SD 1.x but checkpoint 'ck-b' is SDXL" in str(caught.value)
        assert fake.made == 0
        # ck-a's file is not readable here: its family is unknown, never refused on a guess
        prepared = check_webuis(GridSpec.from_dict({**spec, "checkpoints": ["ck-a"]}), [fake.url], None, 10)
        assert [c.family for c in prepared.checkpoints] == ["unknown"]
    finally:
        fake.stop()
