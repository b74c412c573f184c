"""DINOv2 ViT encoder for image fidelity, diversity and Fréchet distance.

As the paper's code (LyCORIS-evaluation ``encoders.py`` ``DINOv2Encoder``, which loads
``torch.hub.load('facebookresearch/dinov2', 'dinov2_vitl14')``): the CLS token after
the final norm (1024-d for ViT-L/14, stored unnormalised), ``Resize((224, 224))``
bicubic, ImageNet mean/std.

The architecture is written here (state-dict compatible with the published
``dinov2_vitl14_pretrain.pth``) because the WebUI's transformers 4.30.2 has no DINOv2
and timm's/transformers' loaders interpolate position embeddings differently. The
original model's ``interpolate_pos_encoding`` resizes the 37×37 grid (trained at 518 px)
with ``F.interpolate(..., scale_factor=((h0 + 0.1) / 37, (w0 + 0.1) / 37),
mode='bicubic', antialias=False)``; at 224 px (16×16 patches) timm differs by ~1.3 % and
transformers by ~0.46 % on identical weights. We do exactly what the original does; a
test checks equality with the original ``vision_transformer.py`` on identical random
weights.
"""

from __future__ import annotations

import math
from typing import Any

from lycoris_eval.config import DEFAULT_DINOV2_ARCH
from lycoris_eval.errors import InputError
from lycoris_eval.scoring.encoders.base import Encoder, EncoderOptions
from lycoris_eval.scoring.encoders.vgg import IMAGENET_MEAN, IMAGENET_STD
from lycoris_eval.scoring.weights import WeightsSpec

# name: (embed_dim, depth, heads)
ARCHS = {
    "vits14": (384, 12, 6),
    "vitb14": (768, 12, 12),
    "vitl14": (1024, 24, 16),
}
PATCH = 14
TRAIN_GRID = 37  # 518 / 14
INTERPOLATE_OFFSET = 0.1


def build_dinov2(arch: str) -> Any:
    import torch  # lazy: torch loads only when a model does
    import torch.nn as nn  # lazy: torch loads only when a model does
    import torch.nn.functional as F  # lazy: torch loads only when a model does

    dim, depth, heads = ARCHS[arch]

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim, bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            return self.proj(out.transpose(1, 2).reshape(b, n, c))

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(dim, dim * 4)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(dim * 4, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.act(self.fc1(x)))

    class LayerScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(dim))  # init_values=1.0 as dinov2_vit*14

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gamma

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention()
            self.ls1 = LayerScale()
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp()
            self.ls2 = LayerScale()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.ls1(self.attn(self.norm1(x)))
            return x + self.ls2(self.mlp(self.norm2(x)))

    class PatchEmbed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x).flatten(2).transpose(1, 2)

    class DinoV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + TRAIN_GRID * TRAIN_GRID, dim))
            self.mask_token = nn.Parameter(torch.zeros(1, dim))
            self.patch_embed = PatchEmbed()
            self.blocks = nn.ModuleList([Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.normal_(self.cls_token, std=1e-6)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(module.weight, std=0.02)
                    nn.init.zeros_(module.bias)

        def interpolated_pos_embed(self, h0: int, w0: int) -> torch.Tensor:
            """The original ``interpolate_pos_encoding`` (offset 0.1, no antialias)."""
            pos = self.pos_embed.float()
            if h0 == TRAIN_GRID and w0 == TRAIN_GRID:
                return pos
            m = int(math.sqrt(pos.shape[1] - 1))
            grid = pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
            grid = F.interpolate(
                grid,
                scale_factor=((h0 + INTERPOLATE_OFFSET) / m, (w0 + INTERPOLATE_OFFSET) / m),
                mode="bicubic",
                antialias=False,
            )
            assert grid.shape[-2:] == (h0, w0)
            grid = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, dim)
            return torch.cat([pos[:, :1], grid], dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, _, h, w = x.shape
            tokens = self.patch_embed(x)
            tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
            tokens = tokens + self.interpolated_pos_embed(h // PATCH, w // PATCH).to(tokens.dtype)
            for block in self.blocks:
                tokens = block(tokens)
            return self.norm(tokens)[:, 0]

    return DinoV2()


class Dinov2Encoder(Encoder):
    name = "dinov2"

    def __init__(
        self, options: EncoderOptions | None = None, arch: str = DEFAULT_DINOV2_ARCH, image_size: int = 224
    ) -> None:
        super().__init__(options)
        if arch not in ARCHS:
            raise InputError(f"unknown DINOv2 architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        if image_size % PATCH:
            raise InputError(f"DINOv2 image size must be a multiple of {PATCH}, got {image_size}")
        self.arch = arch
        self.image_size = image_size
        self._transform: Any = None

    def weights_spec(self) -> WeightsSpec:
        return WeightsSpec(
            encoder=f"DINOv2 {self.arch}",
            file_names=(f"dinov2_{self.arch}_pretrain.pth",),
            url=f"https://dl.fbaipublicfiles.com/dinov2/dinov2_{self.arch}/dinov2_{self.arch}_pretrain.pth",
        )

    def config(self) -> dict[str, Any]:
        return {
            "arch": f"dinov2_{self.arch}",
            "output": "cls-after-norm",
            "resize": f"{self.image_size}x{self.image_size}-bicubic",
            "pos_embed_interpolation": "bicubic, scale (n+0.1)/37, no antialias",
            "normalize": "imagenet",
        }

    def build(self) -> Any:
        return build_dinov2(self.arch)

    def preprocess(self, image: Any) -> Any:
        if self._transform is None:
            import torchvision.transforms as T  # lazy: torch loads only when a model does

            self._transform = T.Compose(
                [
                    T.Resize((self.image_size, self.image_size), interpolation=T.InterpolationMode.BICUBIC),
                    T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
        return self._transform(image)

    def forward(self, batch: Any) -> Any:
        return self.model(batch)
