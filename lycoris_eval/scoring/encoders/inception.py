"""Inception-V3 for classic FID and Inception Score (optional metrics, off by default).

The network is the TensorFlow FID Inception exported to TorchScript for StyleGAN2-ADA's
metrics, the one clean-fid uses (``inception-2015-12-05.pt``). Preprocessing is
clean-fid's "clean" mode: each channel resized to 299×299 with PIL bicubic in float,
then ``(x − 128) / 128``. One forward gives the 2048-d pool features (FID) and, as
StyleGAN2-ADA's Inception Score does, class probabilities ``softmax(f Wᵀ)`` without the
output bias. The output vector is ``[features (2048), probabilities (1008)]``.

The TorchScript archive is loaded with ``torch.jit.load`` (no Python unpickling).
With ``--random-weights`` (pipeline tests only) torchvision's ``inception_v3``
architecture stands in, randomly initialised, and the config says so.

It always runs in fp32, as clean-fid does: the precision settings fp16 and bf16 are
refused for it with a note (``describe()``, the run's notes), and "auto" on CUDA gives
fp32 here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lycoris_eval.errors import WeightsMismatchError
from lycoris_eval.scoring.encoders.base import Encoder, EncoderOptions
from lycoris_eval.scoring.weights import WeightsSpec

FEATURES = 2048
SPEC = WeightsSpec(
    encoder="Inception-V3 (FID)",
    file_names=("inception-2015-12-05.pt",),
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
)


class InceptionEncoder(Encoder):
    name = "inception"
    _FP32 = "the FID Inception runs in fp32, as clean-fid does"
    refused_precisions = {"fp16": _FP32, "bf16": _FP32}

    def __init__(self, options: EncoderOptions | None = None) -> None:
        super().__init__(options)

    def weights_spec(self) -> WeightsSpec:
        return SPEC

    def config(self) -> dict[str, Any]:
        arch = (
            "torchvision inception_v3 (random-weights stand-in)" if self.options.random_weights else "tf-fid-inception"
        )
        return {"arch": arch, "resize": "clean-fid PIL bicubic 299 per channel", "probs": "softmax(f W^T), no bias"}

    def build(self) -> Any:
        import torch  # lazy: torch loads only when a model does
        from torchvision.models import inception_v3  # lazy: torch loads only when a model does

        net = inception_v3(weights=None, aux_logits=False, init_weights=True)

        class StandIn(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                n = self.net
                x = (x / 255.0 - 0.5) / 0.5
                for name in (
                    "Conv2d_1a_3x3",
                    "Conv2d_2a_3x3",
                    "Conv2d_2b_3x3",
                    "maxpool1",
                    "Conv2d_3b_1x1",
                    "Conv2d_4a_3x3",
                    "maxpool2",
                    "Mixed_5b",
                    "Mixed_5c",
                    "Mixed_5d",
                    "Mixed_6a",
                    "Mixed_6b",
                    "Mixed_6c",
                    "Mixed_6d",
                    "Mixed_6e",
                    "Mixed_7a",
                    "Mixed_7b",
                    "Mixed_7c",
                    "avgpool",
                ):
                    x = getattr(n, name)(x)
                features = torch.flatten(x, 1)
                probs = torch.softmax(features @ n.fc.weight.T, dim=1)
                return torch.cat([features, probs], dim=1)

        return StandIn()

    def load(self) -> None:
        if self.model is not None:
            return
        if self.options.random_weights:
            super().load()
            return
        self.weights_identity()
        assert self._weights_path is not None
        self.model = _load_torchscript(self._weights_path).to(self.device)
        # lazy: base imports numpy at its top
        from lycoris_eval.scoring.encoders.base import LOADED

        LOADED[self.name] = self.device

    def preprocess(self, image: Any) -> Any:
        import torch  # lazy: torch loads only when a model does
        from PIL import Image  # lazy: PIL only when images are decoded

        arr = np.asarray(image, dtype=np.float32)
        channels = [
            np.asarray(Image.fromarray(arr[:, :, c], mode="F").resize((299, 299), resample=Image.BICUBIC)).clip(0, 255)
            for c in range(3)
        ]
        return torch.from_numpy(np.stack(channels, 0).astype(np.float32))

    def forward(self, batch: Any) -> Any:
        return self.model(batch)


def _load_torchscript(path: Path) -> Any:
    import torch  # lazy: torch loads only when a model does

    try:
        base = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001
        raise WeightsMismatchError(f"inception: {path} is not the TorchScript FID Inception ({exc})") from exc

    class FidInception(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            features = self.base.layers.forward((x - 128) / 128).reshape(x.shape[0], FEATURES)
            probs = torch.softmax(features @ self.base.output.weight.T, dim=1)
            return torch.cat([features, probs], dim=1)

    return FidInception().eval()
