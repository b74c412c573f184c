"""VGG19 Gram-matrix encoders for style metrics.

``VggGramEncoder`` reproduces the LyCORIS paper's style features exactly
(cyber-meow/LyCORIS-evaluation, ``lycoris_eval/encoding/encoders.py``, classes ``VGG``
and ``VggGram``): ``torchvision.models.vgg19().features[:29]``, outputs kept at indices
0, 5, 10, 19, 28 (conv1_1, conv2_1, conv3_1, conv4_1, conv5_1); per layer
``f = F.view(B, C, H*W) / sqrt(C*H*W)`` and ``G = f fᵀ``; the five Grams flattened and
concatenated (64² + 128² + 256² + 512² + 512² = 610,304 values per image).

**The in-place ReLU quirk.** torchvision's VGG ReLUs are ``inplace=True``. The reference
loop keeps a reference to the conv output and then runs the next layer (a ReLU) on the
same tensor, so the tensors kept at 0, 5, 10 and 19 end up holding *post-ReLU* values;
index 28 is the last layer of the slice, so it stays *pre-ReLU*. We run the very same
modules in the very same loop, so the quirk is reproduced, not emulated; a test checks
it against an explicit re-implementation.

Preprocessing as the reference's ``resize_rectangle``: shorter side to 224 (bicubic,
aspect kept), ImageNet mean/std. Rectangular images are fine (batched by size).

``TutorialGramEncoder`` is the community's older convention, the PyTorch neural-style
tutorial (``advanced_source/neural_style_tutorial.py``): images stretched to 512×512,
ImageNet normalisation, ReLUs *not* in place, Grams of the conv outputs
``G = F Fᵀ / (a·b·c·d)`` and a loss that is the sum over layers of ``MSE(G(x), G(y))``.
The tutorial's ``conv_1 … conv_5`` are the first five conv layers (conv1_1, conv1_2,
conv2_1, conv2_2, conv3_1), not conv1_1…conv5_1. Layers can be chosen explicitly, or at
random with a recorded seed. Features are ``vec(G_l) / C_l`` concatenated so that a
squared Euclidean distance equals the summed per-layer MSE.

**Precision.** Under fp16 autocast (CUDA) the convolutions run in half precision but the
Gram matrices are computed in fp32 (autocast is switched off around them: it would run
their ``bmm`` in half precision); ``gram fp32`` is then part of :attr:`precision`, hence
of the fingerprint. bf16 is refused (the encoder runs fp32 and says why): with its 8-bit
mantissa the style loss between two near images (an adapter at a low weight against its
base image) moved by up to 17 % of the fp32 value. The network and its batches are
``channels_last`` (NHWC): faster convolutions with cuDNN, and measured faster on the CPU
too (``docs/precision.md``).
"""

from __future__ import annotations

import math
import random
from typing import Any

from lycoris_eval.errors import InputError, WeightsMismatchError
from lycoris_eval.scoring.encoders.base import Encoder, EncoderOptions
from lycoris_eval.scoring.weights import WeightsSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_TAPS = (0, 5, 10, 19, 28)
VGG19_SPEC = WeightsSpec(
    encoder="vgg19",
    file_names=("vgg19-dcbb9e9d.pth",),
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    description="torchvision VGG19_Weights.IMAGENET1K_V1",
)
# Indices of the 16 conv layers inside vgg19().features.
VGG19_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def gram_paper(feature: Any) -> Any:
    """Per-image Gram of a (B, C, H, W) map with the paper's ``/sqrt(C·H·W)`` scaling."""
    import torch  # lazy: torch loads only when a model does

    b, c, h, w = feature.shape
    f = feature.float().reshape(b, c, h * w) / math.sqrt(c * h * w)
    return torch.bmm(f, f.transpose(1, 2))


def _bf16_refusal(near_pair_deviation: str) -> dict[str, str]:
    return {
        "bf16": f"bf16 convolutions moved the Gram style loss of near pairs by {near_pair_deviation} of fp32 "
        "(fp16: under 1 %); see docs/precision.md"
    }


class _VggBase(Encoder):
    """What both VGG Gram encoders share: torchvision's VGG19 and its weights file, fp32
    Grams, channels_last, no bf16."""

    # NHWC network and batches (settable before loading: tests, benchmarks). Not in the
    # fingerprint: it changes rounding only (about 1e-7 relative), as another CPU's kernels do.
    channels_last: bool = True

    @property
    def precision(self) -> str:
        mode = super().precision
        return mode if mode == "fp32" else f"{mode}, gram fp32"

    def weights_spec(self) -> WeightsSpec:
        return VGG19_SPEC

    def build(self) -> Any:
        return build_vgg19_features()

    def convert_state_dict(self, state: dict[str, Any]) -> dict[str, Any]:
        return vgg_features_state(state, self.name)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "memory_format": "channels_last" if self.channels_last else "contiguous"}

    def _to_layout(self) -> None:
        """The loaded network in the memory format its batches will have."""
        if self.channels_last:
            import torch  # lazy: torch loads only when a model does

            self.model = self.model.to(memory_format=torch.channels_last)

    def prepare_batch(self, batch: Any) -> Any:
        batch = super().prepare_batch(batch)
        if self.channels_last:
            import torch  # lazy: torch loads only when a model does

            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch


def build_vgg19_features() -> Any:
    """``vgg19().features`` inside a module named like torchvision's, without building
    the 120M-parameter classifier (its weights are checked but not loaded).
    Initialised as torchvision initialises VGG convs."""
    import torch.nn as nn  # lazy: torch loads only when a model does
    from torchvision.models.vgg import cfgs, make_layers  # lazy: torch loads only when a model does

    model = nn.Module()
    model.features = make_layers(cfgs["E"], batch_norm=False)
    for module in model.features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(module.bias, 0)
    return model


def vgg_features_state(state: dict[str, Any], encoder: str) -> dict[str, Any]:
    """Keep ``features.*``; a torchvision VGG19 file must also carry its classifier."""

    if not any(k.startswith("classifier.") for k in state):
        raise WeightsMismatchError(f"{encoder}: not a torchvision VGG19 state dict (no classifier.* keys)")
    return {k: v for k, v in state.items() if k.startswith("features.")}


class VggGramEncoder(_VggBase):
    name = "vgg19-gram"
    refused_precisions = _bf16_refusal("up to 17 %")

    def __init__(self, options: EncoderOptions | None = None, image_size: int = 224) -> None:
        super().__init__(options)
        self.image_size = image_size
        self._transform: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "arch": "vgg19.features[:29]",
            "taps": list(PAPER_TAPS),
            "inplace_relu_quirk": True,
            "resize": f"shorter-side-{self.image_size}-bicubic",
            "normalize": "imagenet",
        }

    def load(self) -> None:
        super().load()
        # Keep only the slice the paper uses (after the full state dict loaded strictly).
        if hasattr(self.model, "features"):
            self.model = self.model.features[:29].eval()
            self._to_layout()

    def preprocess(self, image: Any) -> Any:
        if self._transform is None:
            import torchvision.transforms as T  # lazy: torch loads only when a model does

            self._transform = T.Compose(
                [
                    T.Resize(self.image_size, interpolation=T.InterpolationMode.BICUBIC),
                    T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
        return self._transform(image)

    def forward(self, batch: Any) -> Any:
        import torch  # lazy: torch loads only when a model does

        kept = []
        x = batch
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in PAPER_TAPS:
                kept.append(x)  # later in-place ReLUs overwrite 0/5/10/19: the paper's quirk
        with self.fp32_region():
            grams = [gram_paper(f).reshape(f.shape[0], -1) for f in kept]
            return torch.cat(grams, dim=1)


def choose_tutorial_layers(layers: tuple[int, ...] | None, random_count: int | None, seed: int) -> tuple[int, ...]:
    """1-based conv layer numbers (``conv_1`` … ``conv_16``)."""
    if layers:
        bad = [n for n in layers if not 1 <= n <= len(VGG19_CONV_INDICES)]
        if bad:
            raise InputError(f"tutorial style layers must be conv_1 … conv_16, got {bad}")
        return tuple(sorted(set(layers)))
    if random_count:
        return tuple(sorted(random.Random(seed).sample(range(1, 17), random_count)))
    return (1, 2, 3, 4, 5)


class TutorialGramEncoder(_VggBase):
    name = "vgg19-tutorial-gram"
    refused_precisions = _bf16_refusal("up to 4.8 %")
    # at 512 px one image's conv1 activations are 64 MiB, its first Gram input as much again
    max_batch = 2

    def __init__(
        self,
        options: EncoderOptions | None = None,
        layers: tuple[int, ...] | None = None,
        random_count: int | None = None,
        seed: int = 0,
        image_size: int = 512,
    ) -> None:
        super().__init__(options)
        self.layers = choose_tutorial_layers(layers, random_count, seed)
        self.layer_seed = seed if (random_count and not layers) else None
        self.image_size = image_size
        self._transform: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "arch": "vgg19.features, relu not in place",
            "layers": [f"conv_{n}" for n in self.layers],
            "layer_seed": self.layer_seed,
            "resize": f"stretch-{self.image_size}x{self.image_size}-bilinear",
            "normalize": "imagenet",
            "gram": "FF^T/(a*b*c*d)",
        }

    def load(self) -> None:
        import torch.nn as nn  # lazy: torch loads only when a model does

        super().load()
        if hasattr(self.model, "features"):
            last = VGG19_CONV_INDICES[max(self.layers) - 1]
            features = self.model.features[: last + 1]
            for index, layer in enumerate(features):
                if isinstance(layer, nn.ReLU):
                    features[index] = nn.ReLU(inplace=False)
            self.model = features.eval()
            self._to_layout()

    def preprocess(self, image: Any) -> Any:
        if self._transform is None:
            import torchvision.transforms as T  # lazy: torch loads only when a model does

            self._transform = T.Compose(
                [
                    T.Resize((self.image_size, self.image_size), interpolation=T.InterpolationMode.BILINEAR),
                    T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
        return self._transform(image)

    def forward(self, batch: Any) -> Any:
        import torch  # lazy: torch loads only when a model does

        wanted = {VGG19_CONV_INDICES[n - 1] for n in self.layers}
        out = []
        x = batch
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in wanted:
                b, c, h, w = x.shape
                with self.fp32_region():
                    f = x.float().reshape(b, c, h * w)
                    gram = torch.bmm(f, f.transpose(1, 2)) / (c * h * w)  # a = 1 per image
                out.append(gram.reshape(b, -1) / c)  # ‖Δ‖² of this = MSE of the Grams
        return torch.cat(out, dim=1)
