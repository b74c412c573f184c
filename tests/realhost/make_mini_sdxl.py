"""A small SDXL checkpoint that Forge and reForge load and recognise as SDXL, with a kohya
SDXL LoRA and LoHa that apply to it (test fixtures, random weights).

Why not the leads' tiny SDXL fixtures (``../shared/realhost/make_tiny_sdxl.py``): the Forge
family detects the UNet from the tensors but then requires an exact match with a known
model (SDXL, SSD-1B or Segmind Vega: model_channels 320, context_dim 2048, adm 2816), and it
builds both text encoders and the VAE from fixed configs (CLIP-L 768 × 12, CLIP-G 1280 × 32,
VAE ch 128), so a 32-channel UNet with 32/256-wide encoders is refused as "not a checkpoint".
This one has Segmind Vega's transformer depths ([0,0,1,1,2,2], which both hosts take for
SDXL) with channel_mult [1,1,1], and full-size text encoders and VAE: about 1.0 B parameters,
2.0 GB in float16. The adapters use the key names of the tiny fixtures' ``tinyxl_*`` files
(42 groups: 30 UNet, 6 te1, 6 te2) with this model's shapes; values are scaled like the layers
they change, so an adapter visibly changes the image.

Usage: A1111_HOST_PYTHON make_mini_sdxl.py A1111_DIR TINY_DATA_DIR OUT_DIR
  A1111_DIR: the WebUI build (its ``repositories/generative-models`` gives the SDXL UNet and VAE
  layouts); TINY_DATA_DIR: the ``--out`` folder of make_tiny_sdxl.py (the adapters' key names
  and metadata); writes OUT_DIR/mini-sdxl.safetensors, minixl_lora and minixl_loha. Shapes come
  from modules built on the meta device (no memory); the values from one seeded generator, so
  the bytes are the same on every run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

WIDTH_G = 1280  # CLIP-G (OpenCLIP ViT-bigG-14 text tower)
RANK = 4


def _shapes(a1111: Path) -> dict[str, tuple[int, ...]]:
    sys.path.insert(0, str(a1111 / "repositories" / "generative-models"))
    from sgm.models.autoencoder import AutoencoderKLInferenceWrapper
    from sgm.modules.diffusionmodules.openaimodel import UNetModel
    from transformers import CLIPTextConfig, CLIPTextModel

    shapes: dict[str, tuple[int, ...]] = {}
    with torch.device("meta"):
        unet = UNetModel(
            adm_in_channels=2816,
            num_classes="sequential",
            in_channels=4,
            out_channels=4,
            model_channels=320,
            attention_resolutions=[4, 2],
            num_res_blocks=2,
            channel_mult=[1, 1, 1],
            num_head_channels=64,
            use_spatial_transformer=True,
            use_linear_in_transformer=True,
            transformer_depth=[0, 1, 2],
            transformer_depth_middle=1,
            context_dim=2048,
            spatial_transformer_attn_type="softmax",
        )
        shapes |= {f"model.diffusion_model.{k}": tuple(v.shape) for k, v in unet.state_dict().items()}
        clip_l = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                max_position_embeddings=77,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                hidden_act="quick_gelu",
            )
        )
        shapes |= {
            f"conditioner.embedders.0.transformer.{k}": tuple(v.shape)
            for k, v in clip_l.state_dict().items()
            if "position_ids" not in k
        }
        ddconfig = {
            "attn_type": "vanilla",
            "double_z": True,
            "z_channels": 4,
            "resolution": 256,
            "in_channels": 3,
            "out_ch": 3,
            "ch": 128,
            "ch_mult": [1, 2, 4, 4],
            "num_res_blocks": 2,
            "attn_resolutions": [],
            "dropout": 0.0,
        }
        vae = AutoencoderKLInferenceWrapper(embed_dim=4, ddconfig=ddconfig, lossconfig={"target": "torch.nn.Identity"})
        shapes |= {f"first_stage_model.{k}": tuple(v.shape) for k, v in vae.state_dict().items()}
    g = "conditioner.embedders.1.model."
    w = WIDTH_G
    shapes |= {
        f"{g}token_embedding.weight": (49408, w),
        f"{g}positional_embedding": (77, w),
        f"{g}ln_final.weight": (w,),
        f"{g}ln_final.bias": (w,),
        f"{g}text_projection": (w, w),
        f"{g}logit_scale": (),
    }
    for i in range(32):
        block = f"{g}transformer.resblocks.{i}."
        shapes |= {
            f"{block}ln_1.weight": (w,),
            f"{block}ln_1.bias": (w,),
            f"{block}attn.in_proj_weight": (3 * w, w),
            f"{block}attn.in_proj_bias": (3 * w,),
            f"{block}attn.out_proj.weight": (w, w),
            f"{block}attn.out_proj.bias": (w,),
            f"{block}ln_2.weight": (w,),
            f"{block}ln_2.bias": (w,),
            f"{block}mlp.c_fc.weight": (4 * w, w),
            f"{block}mlp.c_fc.bias": (4 * w,),
            f"{block}mlp.c_proj.weight": (w, 4 * w),
            f"{block}mlp.c_proj.bias": (w,),
        }
    return shapes


def _value(name: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Values at the scale of a freshly initialised layer (weights ~ 1/sqrt(fan in), norms 1,
    biases 0), so activations neither vanish (a flat image, no visible adapter) nor explode."""
    if name.endswith("logit_scale"):
        return torch.tensor(math.log(100.0))
    if "embedding" in name:
        return torch.randn(shape, generator=gen) * 0.02
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    if name.endswith(".weight"):  # every 1-D weight of these models is a norm's scale
        return torch.ones(shape)
    return torch.zeros(shape)


def _kohya_layers(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, int]]:
    """(out, in) of every UNet and te1 layer, by the kohya key group that changes it."""
    layers = {}
    for kohya, prefix in (
        ("lora_unet_", "model.diffusion_model."),
        ("lora_te1_", "conditioner.embedders.0.transformer."),
    ):
        for key, shape in shapes.items():
            if key.startswith(prefix) and key.endswith(".weight") and len(shape) >= 2:
                layers[kohya + key[len(prefix) : -len(".weight")].replace(".", "_")] = (shape[0], shape[1])
    return layers


def _target_shape(group: str, layers: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(out, in) of the layer a kohya SDXL key group changes, in this model (te2's names are
    the HF CLIP names kohya writes; this model holds CLIP-G in OpenCLIP's layout)."""
    if group.startswith("lora_te2_"):
        part = group.split("_encoder_layers_", 1)[1].split("_", 1)[1]
        w = WIDTH_G
        return {"mlp_fc1": (4 * w, w), "mlp_fc2": (w, 4 * w)}.get(part, (w, w))
    return layers[group]


def main(a1111: Path, tiny: Path, out: Path) -> None:
    shapes = _shapes(a1111)
    gen = torch.Generator().manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    model = {k: _value(k, s, gen).half().contiguous() for k, s in sorted(shapes.items())}
    save_file(model, str(out / "mini-sdxl.safetensors"))
    del model
    layers = _kohya_layers(shapes)
    gen = torch.Generator().manual_seed(42)
    for kind in ("lora", "loha"):
        source = tiny / "models" / "Lora" / f"tinyxl_{kind}.safetensors"
        with safe_open(str(source), "pt") as handle:
            groups = sorted({k.split(".", 1)[0] for k in handle.keys()})
            metadata = dict(handle.metadata() or {})
        tensors = {}
        for group in groups:
            o, i = _target_shape(group, layers)
            tensors[f"{group}.alpha"] = torch.tensor(float(RANK))
            if kind == "lora":  # up @ down has entries ~ 1/sqrt(in), like the layer's own
                tensors[f"{group}.lora_down.weight"] = torch.randn(RANK, i, generator=gen) / math.sqrt(i)
                tensors[f"{group}.lora_up.weight"] = torch.randn(o, RANK, generator=gen) / math.sqrt(RANK)
            else:  # each product ~ in**-0.25, their elementwise product ~ 1/sqrt(in)
                for w in ("w1", "w2"):
                    tensors[f"{group}.hada_{w}_a"] = torch.randn(o, RANK, generator=gen) / RANK**0.5
                    tensors[f"{group}.hada_{w}_b"] = torch.randn(RANK, i, generator=gen) * i**-0.25
        metadata["ss_output_name"] = f"minixl_{kind}"
        save_file(tensors, str(out / f"minixl_{kind}.safetensors"), metadata=metadata)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: make_mini_sdxl.py A1111_DIR TINY_DATA_DIR OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
