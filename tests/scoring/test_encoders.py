"""Encoders on random weights, checked against independent implementations."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lycoris_eval.errors import MissingWeightsError, WeightsMismatchError
from lycoris_eval.scoring.encoders import (
    Dinov2Encoder,
    EncoderOptions,
    OpenClipEncoder,
    TutorialGramEncoder,
    VggGramEncoder,
)
from lycoris_eval.scoring.encoders.dinov2 import build_dinov2
from lycoris_eval.scoring.weights import WeightsSpec, resolve_weights
from tests.helpers import pattern

RANDOM = EncoderOptions(device="cpu", random_weights=True, allow_download=False)


def _independent_paper_grams(features: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Separately written: conv outputs, ReLU applied at taps 0/5/10/19 (what the in-place
    ReLU leaves behind), pre-ReLU at 28; Gram = f fᵀ / (C·H·W)."""
    taps = {0: True, 5: True, 10: True, 19: True, 28: False}
    grams = []
    h = x
    for i in range(29):
        layer = features[i]
        if isinstance(layer, torch.nn.ReLU):
            h = torch.relu(h)
        else:
            h = layer(h)
        if i in taps:
            f = torch.relu(h) if taps[i] else h
            b, c, hh, ww = f.shape
            flat = f.reshape(b, c, hh * ww)
            grams.append(torch.einsum("bik,bjk->bij", flat, flat).reshape(b, -1) / (c * hh * ww))
    return torch.cat(grams, 1)


def test_vgg_gram_reproduces_inplace_relu_quirk():
    enc = VggGramEncoder(RANDOM, image_size=64)
    images = [pattern(1), pattern(2)]
    ours = enc.encode([enc.preprocess(im) for im in images])
    x = torch.stack([enc.preprocess(im) for im in images])
    with torch.no_grad():
        expected = _independent_paper_grams(enc.model, x).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-7)
    # and the quirk matters: all-pre-ReLU taps give different numbers
    with torch.no_grad():
        pre = []
        h = x
        for i in range(29):
            h = torch.relu(h) if isinstance(enc.model[i], torch.nn.ReLU) else enc.model[i](h)
            if i in (0, 5, 10, 19, 28):
                b, c, hh, ww = h.shape
                flat = h.reshape(b, c, -1)
                pre.append((flat @ flat.transpose(1, 2)).reshape(b, -1) / (c * hh * ww))
    assert not np.allclose(ours, torch.cat(pre, 1).numpy(), rtol=1e-3)


def test_vgg_gram_full_size_dimension_and_rectangles():
    enc = VggGramEncoder(RANDOM)  # the paper's 224 px
    wide, tall = pattern(1, (64, 96)), pattern(2, (96, 64))
    tensors = [enc.preprocess(wide), enc.preprocess(tall), enc.preprocess(pattern(3))]
    assert tuple(tensors[0].shape) == (3, 224, 336)  # shorter side 224, aspect kept
    feats = enc.encode(tensors)
    assert feats.shape == (3, 610_304)
    # batching by size gives the same as one by one
    np.testing.assert_allclose(feats[1], enc.encode([tensors[1]])[0], rtol=1e-5, atol=1e-9)


def test_constant_feature_map_gram_is_c_squared_over_channels():
    from lycoris_eval.scoring.encoders.vgg import gram_paper

    c, value = 8, 3.0
    gram = gram_paper(torch.full((1, c, 5, 7), value))[0]
    np.testing.assert_allclose(gram.numpy(), np.full((c, c), value**2 / c), rtol=1e-6)


def test_tutorial_gram_equals_tutorial_style_loss():
    enc = TutorialGramEncoder(RANDOM, image_size=64)
    a, b = pattern(1), pattern(9)
    fa, fb = enc.encode([enc.preprocess(a), enc.preprocess(b)])
    # independent: the tutorial's gram_matrix and StyleLoss (MSE), summed over conv_1..conv_5
    features = enc.model
    relu_free = [torch.nn.ReLU(inplace=False) if isinstance(m, torch.nn.ReLU) else m for m in features]

    def gram_matrix(t):
        a_, b_, c_, d_ = t.size()
        f = t.view(a_ * b_, c_ * d_)
        return torch.mm(f, f.t()).div(a_ * b_ * c_ * d_)

    def style_maps(img):
        x = enc.preprocess(img)[None]
        out, conv = [], 0
        for layer in relu_free:
            x = layer(x)
            if isinstance(layer, torch.nn.Conv2d):
                conv += 1
                if conv in enc.layers:
                    out.append(gram_matrix(x))
        return out

    with torch.no_grad():
        loss = sum(F.mse_loss(ga, gb) for ga, gb in zip(style_maps(a), style_maps(b)))
    assert enc.layers == (1, 2, 3, 4, 5)
    assert float(((fa - fb) ** 2).sum()) == pytest.approx(float(loss), rel=1e-4)


def test_tutorial_random_layers_are_seeded():
    a = TutorialGramEncoder(RANDOM, random_count=3, seed=7)
    b = TutorialGramEncoder(RANDOM, random_count=3, seed=7)
    c = TutorialGramEncoder(RANDOM, random_count=3, seed=8)
    assert a.layers == b.layers and len(a.layers) == 3
    assert a.layers != c.layers
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.config()["layer_seed"] == 7


def _original_dinov2(arch: str):
    from dinov2.models import vision_transformer as vits

    fn = {"vits14": vits.vit_small, "vitl14": vits.vit_large}[arch]
    return fn(patch_size=14, img_size=518, init_values=1.0, ffn_layer="mlp", block_chunks=0).eval()


@pytest.mark.parametrize("arch", ["vits14", pytest.param("vitl14", marks=pytest.mark.slow)])
def test_dinov2_equals_original_on_identical_weights(arch):
    torch.manual_seed(0)
    original = _original_dinov2(arch)
    ours = build_dinov2(arch).eval()
    ours.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = original(x)
        got = ours(x)
    assert got.shape == (2, {"vits14": 384, "vitl14": 1024}[arch])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # the interpolation is what makes this equal: timm's (size=16, antialias) is not
    pos = ours.pos_embed[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    timm_like = F.interpolate(pos, size=(16, 16), mode="bicubic", antialias=True)
    hub_like = ours.interpolated_pos_embed(16, 16)[:, 1:].reshape(1, 16, 16, -1).permute(0, 3, 1, 2)
    assert (timm_like - hub_like).abs().max() > 1e-3


def test_dinov2_encoder_preprocessing_and_output():
    enc = Dinov2Encoder(RANDOM, arch="vits14")
    t = enc.preprocess(pattern(1, (64, 96)))
    assert tuple(t.shape) == (3, 224, 224)
    feats = enc.encode([t, enc.preprocess(pattern(2))])
    assert feats.shape == (2, 384) and np.isfinite(feats).all()
    assert np.linalg.norm(feats[0]) != pytest.approx(1.0)  # stored unnormalised


def test_openclip_image_and_text_features():
    enc = OpenClipEncoder(RANDOM, model_name="ViT-S-32")
    t = enc.preprocess(pattern(1, (64, 96)))
    assert tuple(t.shape) == (3, 224, 224)
    img = enc.encode([t])
    txt = enc.encode_text(["a cat", "a dog"])
    assert img.shape == (1, 384) and txt.shape == (2, 384)
    crop = OpenClipEncoder(RANDOM, model_name="ViT-S-32", resize_mode="crop")
    assert crop.fingerprint() != enc.fingerprint()
    # crop keeps the centre: a wide image's crop differs from its stretch
    assert not torch.allclose(crop.preprocess(pattern(1, (64, 96))), t)


# ---- weights ----------------------------------------------------------------------------
def test_missing_weights_offline_names_file_and_place(tmp_path):
    enc = VggGramEncoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False))
    with pytest.raises(MissingWeightsError) as err:
        enc.fingerprint()
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message and str(tmp_path) in message and "--weights-dir" in message
    dino = Dinov2Encoder(EncoderOptions(device="cpu", allow_download=False))
    with pytest.raises(MissingWeightsError, match="dinov2_vitl14_pretrain.pth"):
        dino.fingerprint()
    clip = OpenClipEncoder(EncoderOptions(device="cpu", allow_download=False))
    with pytest.raises(MissingWeightsError, match="open_clip_model.safetensors or open_clip_pytorch_model.bin"):
        clip.fingerprint()


def test_failed_download_is_a_missing_weights_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LYCORIS_EVAL_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = WeightsSpec("demo", ("demo.pth",), url="https://example.invalid/demo.pth")

    def refuse(_spec):
        raise OSError("network unreachable")

    with pytest.raises(MissingWeightsError, match="download failed: network unreachable"):
        resolve_weights(spec, tmp_path, allow_download=True, downloader=refuse)


def test_vgg_loads_a_torchvision_state_dict_from_weights_dir(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(3)
    reference = vgg19(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "vgg19-dcbb9e9d.pth")
    enc = VggGramEncoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False), image_size=64)
    assert enc.weights_identity().startswith("vgg19-dcbb9e9d.pth:sha256:")
    x = enc.preprocess(pattern(4))
    ours = enc.encode([x])
    with torch.no_grad():
        expected = _independent_paper_grams(reference.features, x[None]).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-7)


def test_wrong_architecture_file_is_refused_with_its_name(tmp_path):
    from torchvision.models import resnet18

    torch.save(resnet18(weights=None).state_dict(), tmp_path / "dinov2_vits14_pretrain.pth")
    enc = Dinov2Encoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False), arch="vits14")
    with pytest.raises(WeightsMismatchError, match="dinov2_vits14_pretrain.pth does not match"):
        enc.load()


def test_weights_file_with_arbitrary_objects_is_not_unpickled(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "dinov2_vits14_pretrain.pth", "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    enc = Dinov2Encoder(EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False), arch="vits14")
    with pytest.raises(WeightsMismatchError, match="tensors-only"):
        enc.load()


def test_openclip_loads_safetensors_from_weights_dir(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(5)
    model = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "open_clip_model.safetensors"))
    enc = OpenClipEncoder(
        EncoderOptions(device="cpu", weights_dir=tmp_path, allow_download=False), model_name="ViT-S-32"
    )
    x = enc.preprocess(Image.fromarray(np.asarray(pattern(2))))
    with torch.no_grad():
        expected = model.encode_image(x[None]).numpy()
    np.testing.assert_allclose(enc.encode([x]), expected, rtol=1e-4, atol=1e-6)


def test_fingerprint_does_not_load_and_release_frees():
    enc = VggGramEncoder(RANDOM, image_size=64)
    fp = enc.fingerprint()
    assert enc.model is None and fp.startswith("vgg19-gram-")
    assert VggGramEncoder(RANDOM, image_size=96).fingerprint() != fp
    enc.load()
    assert enc.model is not None
    enc.release()
    assert enc.model is None
    assert math.isfinite(float(enc.encode([enc.preprocess(pattern(1))]).sum()))  # reloads lazily
