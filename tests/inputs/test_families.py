"""Model families from safetensors headers (key names and shapes as kohya sd-scripts,
LyCORIS, diffusers/PEFT and LDM/SGM checkpoints write them), the metadata cross-check, and
the grid's refusal (API) or skip (Script) of cross-family cells before any image."""

from __future__ import annotations

import json
import struct

import pytest

from lycoris_eval.inputs.families import checkpoint_family, compatible, family_of


def header(shapes: dict[str, tuple], metadata: dict | None = None) -> dict:
    out = {k: {"dtype": "F16", "shape": list(v), "data_offsets": [0, 0]} for k, v in shapes.items()}
    if metadata is not None:
        out["__metadata__"] = metadata
    return out


def kohya_lora(module: str, d_in: int, d_out: int, rank: int = 4) -> dict[str, tuple]:
    return {f"{module}.lora_down.weight": (rank, d_in), f"{module}.lora_up.weight": (d_out, rank)}


SD1_UNET = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
SDXL_UNET = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"


@pytest.mark.parametrize(
    ("shapes", "family"),
    [
        (kohya_lora(SD1_UNET, 768, 320), "sd1"),  # kohya SD1.5
        (kohya_lora(SD1_UNET, 1024, 320), "sd2"),  # kohya SD2.x: OpenCLIP-H context
        (kohya_lora(SDXL_UNET, 2048, 640), "sdxl"),  # kohya SDXL UNet only (SGM names, 2048 context)
        (
            {
                **kohya_lora("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
                **kohya_lora("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280),
            },
            "sdxl",
        ),  # SDXL text encoders only
        (kohya_lora("lora_unet_double_blocks_0_img_attn_qkv", 3072, 9216), "flux"),  # kohya Flux
        (
            {
                "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight": (4, 3072),
                "transformer.single_transformer_blocks.0.attn.to_k.lora_B.weight": (3072, 4),
            },
            "flux",
        ),  # diffusers/PEFT Flux
        (kohya_lora("lora_unet_joint_blocks_0_context_block_attn_qkv", 1536, 4608), "sd3"),
        (
            {
                "transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight": (4, 1536),
                "transformer.transformer_blocks.0.attn.add_k_proj.lora_B.weight": (1536, 4),
            },
            "sd3",
        ),  # diffusers SD3 (no single blocks)
        (
            {
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, 2048),
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (640, 4),
            },
            "sdxl",
        ),  # diffusers SDXL: same names as SD1, told apart by the context width
        (
            {
                f"{SD1_UNET}.hada_w1_a": (320, 4),
                f"{SD1_UNET}.hada_w1_b": (4, 768),
                f"{SD1_UNET}.hada_w2_a": (320, 4),
                f"{SD1_UNET}.hada_w2_b": (4, 768),
            },
            "sd1",
        ),  # LoHa
        ({f"{SDXL_UNET}.lokr_w1": (8, 16), f"{SDXL_UNET}.lokr_w2": (80, 128)}, "sdxl"),  # LoKr: 16 × 128 = 2048
        (kohya_lora("lora_unet_down_blocks_0_attentions_0_proj_in", 32, 32), "sd1/sd2"),  # layout only
        (kohya_lora("lora_unet_no_such_block_proj", 32, 32), "unknown"),
    ],
)
def test_adapter_family_from_the_tensors(shapes, family):
    assert family_of(header(shapes)).family == family


def test_metadata_decides_only_what_the_tensors_cannot_and_a_conflict_is_reported():
    layout_only = kohya_lora("lora_unet_down_blocks_0_attentions_0_proj_in", 32, 32)
    assert family_of(header(layout_only, {"ss_base_model_version": "sd_v1"})).family == "sd1"
    assert family_of(header(layout_only, {"ss_v2": "True"})).family == "sd2"
    unknown = kohya_lora("lora_unet_x", 32, 32)
    found = family_of(header(unknown, {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}))
    assert (found.family, found.evidence) == ("sdxl", "training metadata only")
    # an SDXL file re-saved with SD1 metadata: the tensors win, the conflict is said
    clash = family_of(header(kohya_lora(SDXL_UNET, 2048, 640), {"ss_base_model_version": "sd_v1"}))
    assert clash.family == "sdxl" and clash.metadata_family == "sd1"
    assert "tensors say SDXL" in clash.conflict and "metadata says SD 1.x" in clash.conflict
    agree = family_of(header(kohya_lora(SD1_UNET, 768, 320), {"ss_base_model_version": "sd_v1"}))
    assert agree.conflict is None
    assert family_of(header(unknown, {"modelspec.architecture": "flux-1-dev/lora"})).family == "flux"


@pytest.mark.parametrize(
    ("shapes", "family"),
    [
        (
            {
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
            },
            "sd1",
        ),
        (
            {
                "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (3072, 1024),
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
            },
            "sd2",
        ),
        (
            {
                "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 32),
                "conditioner.embedders.1.model.token_embedding.weight": (49408, 256),
                "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (64, 288),
            },
            "sdxl",
        ),  # the tiny SDXL fixtures' layout (context 288)
        ({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": (9216, 3072)}, "flux"),
        ({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": (4608, 1536)}, "sd3"),
        (
            {
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 32),
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (32, 32),
            },
            "sd1",
        ),  # the tiny SD1 fixtures (every width 32)
    ],
)
def test_checkpoint_family_from_its_header_file(tmp_path, shapes, family):
    raw = json.dumps(header(shapes)).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert checkpoint_family(str(path)).family == family
    assert checkpoint_family(str(tmp_path / "model.ckpt")).family == "unknown"  # never unpickled


def test_compatibility():
    assert compatible("sd1", "sd1") and compatible("sd1/sd2", "sd2") and compatible("sdxl", "sdxl")
    assert compatible("sd1", "sdxl") is False and compatible("flux", "sdxl") is False
    assert compatible("sd1", "sd2") is False
    assert compatible("unknown", "sdxl") is None and compatible("sd1", None) is None


def write_sdxl_checkpoint(path) -> None:
    raw = json.dumps(
        header(
            {
                "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 32),
                "conditioner.embedders.1.model.token_embedding.weight": (49408, 256),
            }
        )
    ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_script_skips_cross_family_cells_before_any_image_and_records_them(fake_webui, tmp_path):
    from lycoris_eval.grid.store import RunStore
    from tests.grid.test_grid import run_script

    ns = fake_webui
    write_sdxl_checkpoint(ns.data / "models" / "Stable-diffusion" / "mix-b.safetensors")
    processed = run_script(ns, tmp_path, run_id="fam1", checkpoints=["base-a", "mix-b"], seeds=[3])
    assert not any("mix-b" in c[0] and "<lora:" in c[1] for c in ns.processing.CALLS), "a cross-family image was made"
    store = RunStore(ns.data / "outputs" / "lycoris-eval", "fam1")
    lines = [json.loads(line) for line in (store.dir / "cells.jsonl").read_text().splitlines()]
    skipped = [r for r in lines if r["status"] == "skipped"]
    assert len(skipped) == 2 * 2 * 2 and all(r["checkpoint"] == "mix-b" for r in skipped)
    assert all("is for SD 1.x but checkpoint 'mix-b' is SDXL" in r["reason"] for r in skipped)
    assert len(store.finished()) == 2 * (1 + 2 * 2) + 2  # base-a whole, mix-b's baselines
    assert "skipped, not generated: adapter 'style_lora' is for SD 1.x" in processed.comments
    manifest = json.loads((store.dir / "manifest.json").read_text())
    assert {c["name"]: c["family"] for c in manifest["host"]["checkpoints"]}["mix-b"] == "sdxl"
    assert {a["name"]: a["info"]["family"] for a in manifest["host"]["adapters"]}["style_lora"] == "sd1"


def test_api_refuses_a_cross_family_grid_naming_both_families(fake_webui, tmp_path):
    from lycoris_eval.errors import SpecError
    from lycoris_eval.grid.runner import GridRunner
    from lycoris_eval.grid.spec import GridSpec
    from lycoris_eval.webui.host import WebUIHost
    from tests.grid.test_grid import spec

    ns = fake_webui
    write_sdxl_checkpoint(ns.data / "models" / "Stable-diffusion" / "mix-b.safetensors")
    runner = GridRunner(WebUIHost(None), tmp_path / "runs")
    with pytest.raises(SpecError) as caught:
        runner.prepare(GridSpec.from_dict(spec()))
    assert caught.value.field == "adapters" and caught.value.status == 422
    message = str(caught.value)
    assert "'style_lora' is for SD 1.x but checkpoint 'mix-b' is SDXL" in message and "(and 1 more" in message
    assert ns.processing.CALLS == [] and not (tmp_path / "runs").exists()
    runner.prepare(GridSpec.from_dict(spec(checkpoints=["base-a"])))  # the same-family part is fine


def test_xyz_plot_with_a_cross_family_adapter_is_refused_before_any_image(fake_webui):
    from tests.grid.test_grid import page_p

    ns = fake_webui
    write_sdxl_checkpoint(ns.data / "models" / "Stable-diffusion" / "mix-b.safetensors")
    ns.adapter.setup()
    adapter_axis = next(o for o in ns.xyz.axis_options if o.label == "LyCORIS: adapter")
    checkpoint_axis = next(o for o in ns.xyz.axis_options if o.label == "Checkpoint name")
    with pytest.raises(RuntimeError, match="'style_loha' is for SD 1.x but checkpoint 'mix-b' is SDXL"):
        ns.xyz.run_plot(
            page_p(ns, prompt="a cat", seed=5), [(checkpoint_axis, ["base-a", "mix-b"]), (adapter_axis, ["style_loha"])]
        )
    assert not ns.processing.CALLS
    # the same adapter over the same-family checkpoint alone plots as before
    ns.xyz.run_plot(page_p(ns, prompt="a cat", seed=5), [(checkpoint_axis, ["base-a"]), (adapter_axis, ["style_loha"])])
    assert ns.processing.CALLS
