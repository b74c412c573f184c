"""Write tiny adapter files with the libraries real users train with, and a manifest of what
each one is. The fast tests (tests/inputs/test_adapter_formats.py) read these files; they
never need peft or diffusers installed.

Run in a throwaway environment (peft/diffusers conflict with the WebUI's pins)::

    python -m venv /tmp/peftvenv
    /tmp/peftvenv/bin/pip install torch==2.14.1 peft diffusers transformers safetensors lycoris-lora==4.1.3
    /tmp/peftvenv/bin/python tools/make_adapter_fixtures.py tests/fixtures/adapters

What writes what:

* lycoris-lora (``lycoris.kohya.create_network``, the path kohya sd-scripts and its GUIs
  use) on a tiny diffusers UNet + CLIP text encoder: every algorithm and option.
* PEFT (``inject_adapter_in_model`` + ``get_peft_model_state_dict``, saved as
  ``save_pretrained`` does, with ``base_model.model.``): LoRA, LoRA on convolutions, DoRA,
  OFT, BOFT, IA3, LoHa, LoKr.
* diffusers (``StableDiffusionPipeline.save_lora_weights`` and the SDXL/Flux pipelines'):
  the current layout (``unet.…lora_A.weight``).
* By hand, from the writers' source (they are not pip-installable or no longer write it):
  kohya sd-scripts ``networks.lora`` for SD1/SD2/SDXL/Flux and ``networks.oft`` (SD1/SDXL/
  Flux), and diffusers' older attention-processor layout (``processor.to_q_lora.down``,
  ``lora_linear_layer``), which diffusers 0.2x wrote and 0.42 no longer can.

Every tensor is tiny (a UNet of 32 channels, ranks of 2–8): the whole folder is a few hundred
kilobytes. Tensors are deterministic (fixed seeds); the order of metadata entries in a
header may differ between runs. Metadata is written only where the case is about it.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/adapters")
MANIFEST: dict[str, dict] = {}


# OFT/BOFT: (blocks, block size) each writer makes on the tiny models' 32-wide layers
# (LyCORIS: dim 4 is the block size; PEFT: oft_block_size / boft_block_size 8)
OFT_BLOCKS = {
    "lycoris_diag_oft": [8, 4],
    "lycoris_diag_oft_constrained_rescaled": [8, 4],
    "lycoris_boft": [8, 4],
    "peft_oft": [4, 8],
    "peft_boft": [4, 8],
}


def record(name: str, tensors: dict, metadata: dict | None = None, **expected) -> None:
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}
    save_file(tensors, str(OUT / name), metadata=metadata or None)
    expected.setdefault("oft", OFT_BLOCKS.get(name.removesuffix(".safetensors")))
    MANIFEST[name] = expected


# ---- tiny models with real names ---------------------------------------------------------
def tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(32,),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",),
        cross_attention_dim=768,  # SD1's context: the family reads it
        attention_head_dim=8,
        norm_num_groups=8,
    )


def kohya_unet():
    """The tiny UNet as sd-scripts' own SD1 UNet looks to lycoris.kohya: there, the time
    embedding is not a ``TimestepEmbedding`` (on diffusers' UNet lycoris 4.1.3 would name
    ``time_embedding.linear_1`` twice, once by name and once by class, and refuse)."""
    unet = tiny_unet()
    emb = unet.time_embedding
    emb.__class__ = type("TimeEmbedding", (type(emb),), {})
    for module in unet.modules():  # sd-scripts' original_unet calls its attention CrossAttention
        if type(module).__name__ == "Attention":
            module.__class__ = type("CrossAttention", (type(module),), {})
    return unet


def kohya_text_encoder():
    """The text encoder as sd-scripts hands it over: its modules under ``text_model.``."""
    te = tiny_text_encoder()
    if hasattr(te, "text_model"):
        return te
    wrapper = torch.nn.Module()  # transformers 5 flattened CLIPTextModel; sd-scripts keys keep text_model
    wrapper.text_model = te
    return wrapper


def tiny_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=4,
            vocab_size=99,
            max_position_embeddings=77,
        )
    )


# ---- lycoris-lora --------------------------------------------------------------------------
LYCORIS = [
    # name, kwargs for create_network, expected type, rank, conv_rank, options
    ("lycoris_lora_attn", dict(algo="lora", preset="attn-only"), "LoRA", 4, None, []),
    ("lycoris_locon", dict(algo="lora", conv_dim=2, conv_alpha=1), "LoCon", 4, 2, []),
    ("lycoris_locon_tucker", dict(algo="lora", conv_dim=2, conv_alpha=1, use_tucker=True), "LoCon", 4, 2, ["tucker"]),
    ("lycoris_lora_dora", dict(algo="lora", preset="attn-only", dora_wd=True), "LoRA+DoRA", 4, None, []),
    ("lycoris_lora_bypass", dict(algo="lora", preset="attn-only", bypass_mode=True), "LoRA", 4, None, []),
    ("lycoris_loha", dict(algo="loha", conv_dim=2, conv_alpha=1), "LoHa", 4, 2, []),
    ("lycoris_loha_tucker", dict(algo="loha", conv_dim=2, conv_alpha=1, use_tucker=True), "LoHa", 4, 2, ["tucker"]),
    ("lycoris_loha_dora", dict(algo="loha", preset="attn-only", dora_wd=True), "LoHa+DoRA", 4, None, []),
    ("lycoris_lokr", dict(algo="lokr", dim=2, conv_dim=2, conv_alpha=1, factor=4), "LoKr", 2, 2, []),
    (
        "lycoris_lokr_tucker",
        dict(algo="lokr", dim=2, conv_dim=2, conv_alpha=1, factor=4, use_tucker=True),
        "LoKr",
        2,
        2,
        ["tucker"],
    ),
    ("lycoris_lokr_full_matrix", dict(algo="lokr", factor=4, full_matrix=True), "LoKr", None, None, ["full_matrix"]),
    (
        "lycoris_lokr_decompose_both",
        dict(algo="lokr", dim=2, preset="attn-only", factor=4, decompose_both=True),
        "LoKr",
        2,
        None,
        [],
    ),
    ("lycoris_ia3", dict(algo="ia3", preset="attn-only"), "IA3", None, None, []),
    ("lycoris_diag_oft", dict(algo="diag-oft", preset="attn-only"), "OFT", None, None, []),
    (
        "lycoris_diag_oft_constrained_rescaled",
        dict(algo="diag-oft", preset="attn-only", constraint=1e-4, rescaled=True),
        "OFT",
        None,
        None,
        ["rescaled"],
    ),
    ("lycoris_boft", dict(algo="boft", preset="attn-only"), "BOFT", None, None, []),
    ("lycoris_glora", dict(algo="glora", preset="attn-only"), "GLoRA", 4, None, []),
    ("lycoris_dylora", dict(algo="dylora", preset="attn-only", block_size=2), "LoRA", 4, None, []),
    ("lycoris_full", dict(algo="full", preset="attn-only"), "full", None, None, []),
    ("lycoris_lora_train_norm", dict(algo="lora", conv_dim=2, conv_alpha=1, train_norm=True), "mixed", 4, 2, []),
]


def saved(net) -> dict:
    """What ``save_weights`` writes (the state dict a user's file holds)."""
    import tempfile

    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        net.save_weights(f"{tmp}/x.safetensors", torch.float32, None)
        return load_file(f"{tmp}/x.safetensors")


def lycoris_files() -> None:
    from lycoris import kohya

    logging.getLogger("LyCORIS").setLevel(logging.ERROR)
    for name, kwargs, kind, rank, conv_rank, options in LYCORIS:
        torch.manual_seed(1)
        unet, te = kohya_unet(), kohya_text_encoder()
        dim = kwargs.pop("dim", 4)
        net = kohya.create_network(1.0, dim, 1, None, te, unet, **{k: str(v) for k, v in kwargs.items()})
        kwargs = {"dim": dim, **kwargs}
        net.apply_to(te, unet, apply_text_encoder=True, apply_unet=True)
        for p in net.parameters():  # non-zero "trained" weights, as a finished run has
            torch.nn.init.normal_(p, std=0.01)
        record(
            f"{name}.safetensors",
            saved(net),
            type=kind,
            rank=rank,
            conv_rank=conv_rank,
            options=options,
            layout="kohya",
            family="sd1",
            tool=f"lycoris-lora {version('lycoris-lora')}",
            how=f"lycoris.kohya.create_network(1.0, 4, 1, None, te, unet, {kwargs})",
        )
    # the same file with the metadata kohya sd-scripts writes: the type still comes from the keys
    torch.manual_seed(1)
    unet, te = kohya_unet(), kohya_text_encoder()
    net = kohya.create_network(1.0, 8, 4, None, te, unet, algo="loha", preset="attn-only")
    net.apply_to(te, unet, apply_text_encoder=True, apply_unet=True)
    meta = {
        "ss_network_module": "lycoris.kohya",
        "ss_network_dim": "8",
        "ss_network_alpha": "4",
        "ss_network_args": json.dumps({"algo": "loha", "preset": "attn-only"}),
        "ss_base_model_version": "sd_v1",
    }
    record(
        "lycoris_loha_with_kohya_metadata.safetensors",
        saved(net),
        meta,
        type="LoHa",
        rank=8,
        conv_rank=None,
        options=[],
        layout="kohya",
        family="sd1",
        tool=f"lycoris-lora {version('lycoris-lora')}",
        how="lycoris.kohya.create_network(1.0, 8, 4, ..., algo='loha', preset='attn-only') + sd-scripts metadata",
    )


# ---- PEFT ------------------------------------------------------------------------------------
def peft_files() -> None:
    from peft import (
        BOFTConfig,
        IA3Config,
        LoHaConfig,
        LoKrConfig,
        LoraConfig,
        OFTConfig,
        get_peft_model_state_dict,
        inject_adapter_in_model,
    )

    attn = ["to_q", "to_k", "to_v", "to_out.0"]
    cases = [
        ("peft_lora", LoraConfig(r=4, lora_alpha=4, target_modules=attn), "LoRA", 4, None, []),
        (
            "peft_lora_conv",
            LoraConfig(r=4, lora_alpha=4, target_modules=attn + ["conv1", "conv2"]),
            "LoCon",
            4,
            4,
            [],
        ),
        ("peft_dora", LoraConfig(r=4, lora_alpha=4, use_dora=True, target_modules=attn), "LoRA+DoRA", 4, None, []),
        ("peft_oft", OFTConfig(r=0, oft_block_size=8, target_modules=attn), "OFT", None, None, []),
        ("peft_boft", BOFTConfig(boft_block_size=8, target_modules=["to_q", "to_v"]), "BOFT", None, None, []),
        (
            "peft_ia3",
            IA3Config(target_modules=["to_k", "to_v", "ff.net.2"], feedforward_modules=["ff.net.2"]),
            "IA3",
            None,
            None,
            [],
        ),
        ("peft_loha", LoHaConfig(r=4, alpha=4, target_modules=attn), "LoHa", 4, None, []),
        ("peft_lokr", LoKrConfig(r=4, alpha=4, target_modules=attn), "LoKr", 4, None, []),
    ]
    for name, config, kind, rank, conv_rank, options in cases:
        unet = inject_adapter_in_model(config, tiny_unet())
        torch.manual_seed(2)
        sd = get_peft_model_state_dict(unet)
        sd = {k: torch.randn_like(v.float()) * 0.01 for k, v in sd.items()}
        record(
            f"{name}.safetensors",
            {f"base_model.model.{k}": v for k, v in sd.items()},  # as PeftModel.save_pretrained names them
            type=kind,
            rank=rank,
            conv_rank=conv_rank,
            options=options,
            layout="peft",
            family="sd1",
            tool=f"peft {version('peft')}",
            how=f"inject_adapter_in_model({type(config).__name__}(...)) + get_peft_model_state_dict, base_model.model. prefix",
        )


# ---- diffusers -------------------------------------------------------------------------------
def diffusers_files(tmp: Path) -> None:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import load_file

    attn = ["to_q", "to_k", "to_v", "to_out.0"]
    te_targets = ["q_proj", "k_proj", "v_proj", "out_proj"]
    torch.manual_seed(3)
    unet = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=attn), tiny_unet())
    te = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=te_targets), tiny_text_encoder())
    te2 = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=te_targets), tiny_text_encoder())
    tool = f"diffusers {version('diffusers')}"
    StableDiffusionPipeline.save_lora_weights(
        tmp / "sd1",
        unet_lora_layers=get_peft_model_state_dict(unet),
        text_encoder_lora_layers=get_peft_model_state_dict(te),
    )
    record(
        "diffusers_sd1_lora.safetensors",
        load_file(tmp / "sd1" / "pytorch_lora_weights.safetensors"),
        type="LoRA",
        rank=4,
        conv_rank=None,
        options=[],
        layout="diffusers",
        family="sd1",
        tool=tool,
        how="StableDiffusionPipeline.save_lora_weights(unet_lora_layers, text_encoder_lora_layers)",
    )
    StableDiffusionXLPipeline.save_lora_weights(
        tmp / "sdxl",
        unet_lora_layers=get_peft_model_state_dict(unet),
        text_encoder_lora_layers=get_peft_model_state_dict(te),
        text_encoder_2_lora_layers=get_peft_model_state_dict(te2),
    )
    record(
        "diffusers_sdxl_lora.safetensors",
        load_file(tmp / "sdxl" / "pytorch_lora_weights.safetensors"),
        type="LoRA",
        rank=4,
        conv_rank=None,
        options=[],
        layout="diffusers",
        family="sdxl",
        tool=tool,
        how="StableDiffusionXLPipeline.save_lora_weights(unet, text_encoder, text_encoder_2 LoRA layers)",
    )
    flux_file(tmp, tool)


def flux_file(tmp: Path, tool: str) -> None:
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import load_file

    torch.manual_seed(4)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        pooled_projection_dim=16,
        axes_dims_rope=(2, 2, 4),
    )
    transformer = inject_adapter_in_model(
        LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"]), transformer
    )
    FluxPipeline.save_lora_weights(tmp / "flux", transformer_lora_layers=get_peft_model_state_dict(transformer))
    record(
        "diffusers_flux_lora.safetensors",
        load_file(tmp / "flux" / "pytorch_lora_weights.safetensors"),
        type="LoRA",
        rank=2,
        conv_rank=None,
        options=[],
        layout="diffusers",
        family="flux",
        tool=tool,
        how="FluxPipeline.save_lora_weights(transformer_lora_layers) on a 1+1-block FluxTransformer2DModel",
    )


# ---- by hand, from the writers' sources -------------------------------------------------------
def _lora_pair(prefix: str, out_dim: int, in_dim: int, r: int, sep: str = ".") -> dict:
    g = torch.Generator().manual_seed(len(prefix))
    return {
        f"{prefix}{sep}lora_down.weight": torch.randn(r, in_dim, generator=g) * 0.01,
        f"{prefix}{sep}lora_up.weight": torch.randn(out_dim, r, generator=g) * 0.01,
        f"{prefix}.alpha": torch.tensor(float(r)),
    }


def kohya_files() -> None:
    how = "written from kohya-ss/sd-scripts networks/{src} key naming (sd-scripts is not pip-installable)"
    common = dict(tool="by hand", options=[], conv_rank=None)
    torch.manual_seed(5)
    # SD1 (networks.lora): diffusers UNet names with underscores; context 768
    t = {}
    blk = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0"
    t |= _lora_pair(f"{blk}_attn1_to_q", 320, 320, 8)
    t |= _lora_pair(f"{blk}_attn2_to_k", 320, 768, 8)
    t |= _lora_pair("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, 8)
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": "8", "ss_network_alpha": "8"}
    record("kohya_sd1_lora.safetensors", t, meta, type="LoRA", rank=8, layout="kohya", family="sd1",
           how=how.format(src="lora.py"), **common)  # fmt: skip
    # SD2: the same names, context 1024, OpenCLIP text encoder through the same lora_te_ names
    t = _lora_pair(f"{blk}_attn2_to_k", 320, 1024, 4) | _lora_pair(f"{blk}_attn1_to_q", 320, 320, 4)
    record("kohya_sd2_lora_no_metadata.safetensors", t, type="LoRA", rank=4, layout="kohya", family="sd2",
           how=how.format(src="lora.py"), **common)  # fmt: skip
    # SDXL: SGM UNet names, two text encoders
    t = _lora_pair("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 640, 2048, 16)
    t |= _lora_pair("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640, 16)
    t |= _lora_pair("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, 16)
    t |= _lora_pair("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280, 16)
    record("kohya_sdxl_lora_no_metadata.safetensors", t, type="LoRA", rank=16, layout="kohya", family="sdxl",
           how=how.format(src="lora.py (sdxl_train_network.py)"), **common)  # fmt: skip
    # Flux (networks.lora_flux): BFL block names
    t = _lora_pair("lora_unet_double_blocks_0_img_attn_qkv", 9216, 3072, 4)
    t |= _lora_pair("lora_unet_single_blocks_0_linear1", 21504, 3072, 4)
    record("kohya_flux_lora_no_metadata.safetensors", t, type="LoRA", rank=4, layout="kohya", family="flux",
           how=how.format(src="lora_flux.py"), **common)  # fmt: skip
    # networks.oft: oft_unet_ prefix, oft_blocks (num_blocks, block_size, block_size), alpha = constraint;
    # kohya's "dim" is the number of blocks
    for fam, name, out_dim in (
        ("sd1", "oft_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 320),
        ("sdxl", "oft_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 640),
        ("flux", "oft_unet_double_blocks_0_img_attn_qkv", 9216),
    ):
        n_blocks = out_dim // (8 if out_dim != 9216 else 4)  # blocks of 8 (Flux: of 4, to stay small)
        t = {
            f"{name}.oft_blocks": torch.zeros(n_blocks, out_dim // n_blocks, out_dim // n_blocks),
            f"{name}.alpha": torch.tensor(1e-3),
        }
        if fam == "sd1":  # the cross-attention key input tells SD1 from SD2 in a LoRA; OFT has no such shape
            t["oft_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.oft_blocks"] = torch.zeros(40, 8, 8)
        meta = {"ss_network_module": "networks.oft" if fam != "flux" else "networks.oft_flux",
                "ss_network_dim": str(n_blocks)}  # fmt: skip
        if fam == "sd1":
            meta["ss_base_model_version"] = "sd_v1"
        record(f"kohya_{fam}_oft.safetensors", t, meta, type="OFT", rank=n_blocks, layout="kohya-oft", family=fam,
               oft=[n_blocks, out_dim // n_blocks],
               how=how.format(src="oft.py" if fam != "flux" else "oft_flux.py"), **common)  # fmt: skip
    # diffusers' older attention-processor layout (LoRAAttnProcessor, diffusers <= 0.2x) and
    # the text-encoder layout of the same era (lora_linear_layer); diffusers 0.42 writes neither
    t = {}
    proc = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor"
    for part, (o, i) in {"to_q_lora": (320, 320), "to_k_lora": (320, 320), "to_out_lora": (320, 320)}.items():
        t[f"{proc}.{part}.down.weight"] = torch.randn(4, i) * 0.01
        t[f"{proc}.{part}.up.weight"] = torch.randn(o, 4) * 0.01
    t["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight"] = torch.randn(
        4, 768
    )
    t["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.up.weight"] = torch.randn(320, 4)
    te = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer"
    t[f"{te}.down.weight"] = torch.randn(4, 768) * 0.01
    t[f"{te}.up.weight"] = torch.randn(768, 4) * 0.01
    record("diffusers_legacy_attn_procs.safetensors", t, type="LoRA", rank=4, layout="diffusers-legacy",
           family="sd1", tool="by hand", options=[], conv_rank=None,
           how="written from diffusers 0.2x LoRAAttnProcessor/AttnProcsLayers naming (to_q_lora.down.weight)")  # fmt: skip


def main() -> None:
    import tempfile

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.safetensors"):
        old.unlink()
    lycoris_files()
    peft_files()
    with tempfile.TemporaryDirectory() as tmp:
        diffusers_files(Path(tmp))
    kohya_files()
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.glob("*.safetensors"))
    print(f"{len(MANIFEST)} files, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
