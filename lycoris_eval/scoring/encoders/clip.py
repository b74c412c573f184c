"""OpenCLIP encoder for text-image alignment.

As the paper's code (LyCORIS-evaluation ``encoders.py`` ``ClipL14`` and
``encode_text_features.py``): open_clip ``ViT-L-14``, pretrained tag
``datacomp_xl_s13b_b90k``; image features are ``model.encode_image`` (after the
projection, not normalised), text features ``model.encode_text`` of the tokenised
prompt. Image preprocessing by default is the reference's ``Resize((224, 224))``
bicubic with OpenAI mean/std (``resize_mode='resize'``); open_clip's standard
``Resize(224) + CenterCrop(224)`` is selectable (``crop``).

Works with open-clip-torch 2.20 (the WebUI's pin) and 3.x: the model is created with
``pretrained=None`` and the weights loaded by us (tensors only).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lycoris_eval.config import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED
from lycoris_eval.errors import InputError
from lycoris_eval.scoring.encoders.base import Encoder, EncoderOptions
from lycoris_eval.scoring.weights import WeightsSpec


def _open_clip() -> Any:
    """Import open_clip quietly (2.20 imports a deprecated timm path)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import open_clip  # lazy: torch loads only when a model does
    return open_clip


def _model_config_file(model_name: str) -> dict[str, Any] | None:
    """open_clip's shipped ``model_configs/<name>.json``, read without importing open_clip
    (about 1.7 s with torchvision): the image size is part of the cache fingerprint, so a
    fully cached evaluation needs it but no model."""

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "model_configs" / f"{model_name}.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# Hugging Face repos of open_clip's pretrained tags we know (others: give --weights-dir).
_HF_REPOS = {
    ("ViT-L-14", "datacomp_xl_s13b_b90k"): "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
}


class OpenClipEncoder(Encoder):
    name = "openclip"

    def __init__(
        self,
        options: EncoderOptions | None = None,
        model_name: str = DEFAULT_CLIP_MODEL,
        pretrained: str = DEFAULT_CLIP_PRETRAINED,
        resize_mode: str = "resize",
    ) -> None:
        super().__init__(options)
        if resize_mode not in ("resize", "crop"):
            raise InputError(f"CLIP resize mode must be 'resize' or 'crop', got {resize_mode!r}")
        self.model_name = model_name
        self.pretrained = pretrained
        self.resize_mode = resize_mode
        self._transform: Any = None
        self._tokenizer: Any = None
        self._image_size: int | None = None

    def weights_spec(self) -> WeightsSpec:
        return WeightsSpec(
            encoder=f"OpenCLIP {self.model_name} ({self.pretrained})",
            file_names=("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
            hf_repo=_HF_REPOS.get((self.model_name, self.pretrained)),
        )

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "pretrained": self.pretrained,
            "resize": self.resize_mode,
            "image_size": self.image_size,
            "normalize": "openai",
        }

    @property
    def image_size(self) -> int:
        if self._image_size is None:
            cfg = _model_config_file(self.model_name)
            if cfg is None:  # not a shipped config file: ask open_clip itself
                cfg = _open_clip().get_model_config(self.model_name)
            if cfg is None:
                raise InputError(f"unknown OpenCLIP model {self.model_name!r}")
            size = cfg["vision_cfg"].get("image_size", 224)
            self._image_size = int(size[0] if isinstance(size, (list, tuple)) else size)
        return self._image_size

    def build(self) -> Any:
        return _open_clip().create_model(self.model_name, pretrained=None, device="cpu")

    def preprocess(self, image: Any) -> Any:
        if self._transform is None:
            import torchvision.transforms as T  # lazy: torch loads only when a model does

            size = self.image_size
            if self.resize_mode == "crop":
                resize = [T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)]
            else:
                resize = [T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC)]
            self._transform = T.Compose([*resize, T.ToTensor(), T.Normalize(OPENAI_MEAN, OPENAI_STD)])
        return self._transform(image)

    def forward(self, batch: Any) -> Any:
        return self.model.encode_image(batch)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        import torch  # lazy: torch loads only when a model does

        open_clip = _open_clip()
        self.load()
        if self._tokenizer is None:
            self._tokenizer = open_clip.get_tokenizer(self.model_name)
        out = []
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(texts), max(1, self.options.batch_size)):
                tokens = self._tokenizer(texts[start : start + self.options.batch_size]).to(self.device)
                out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
