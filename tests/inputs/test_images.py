"""Odd and bad images: each either decodes correctly or fails with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lycoris_eval.errors import BadImageError, InputError
from lycoris_eval.inputs.images import decode_image, list_image_files, read_image_file
from tests.helpers import pattern


def _load(path):
    return decode_image(read_image_file(path))


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "CMYK", "1", "I;16", "I", "F"])
def test_odd_modes_decode_to_rgb(tmp_path, mode):
    base = pattern(3)
    if mode == "I;16":
        arr = np.asarray(base.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(arr, "I;16")
        path = tmp_path / "x.png"
    elif mode == "I":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.int32) * 257, "I")
        path = tmp_path / "x.png"
    elif mode == "F":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.float32) / 255.0, "F")
        path = tmp_path / "x.tif"
    else:
        img = base.convert(mode)
        path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    rgb = _load(path)
    assert rgb.mode == "RGB" and rgb.size == (64, 64)
    if mode in ("I;16", "I", "F"):
        # 16-bit/float must be rescaled, not clipped to white
        grey = np.asarray(base.convert("L"), dtype=np.float64)
        np.testing.assert_allclose(np.asarray(rgb)[..., 0], grey, atol=1.0)


def test_corrupt_truncated_and_non_images(tmp_path):
    pattern(1).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.png").write_bytes(b"not an image at all" * 10)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.md").write_text("hello")
    images, skipped = list_image_files(tmp_path)
    assert [p.name for p in images] == ["empty.jpg", "garbage.png", "good.png", "trunc.png"]
    assert [p.name for p, _ in skipped] == ["notes.md"]
    with pytest.raises(BadImageError, match="garbage.png: not a readable image"):
        read_image_file(tmp_path / "garbage.png")
    with pytest.raises(BadImageError, match="empty.jpg: empty file"):
        read_image_file(tmp_path / "empty.jpg")
    with pytest.raises(BadImageError, match="trunc.png: corrupt or truncated"):
        _load(tmp_path / "trunc.png")


def test_tiny_and_bomb(tmp_path):
    pattern(1, (16, 16)).save(tmp_path / "tiny.png")
    with pytest.raises(BadImageError, match=r"tiny.png: too small \(16x16 px\)"):
        read_image_file(tmp_path / "tiny.png")
    # a 1-bit PNG that claims 20000x20000 px compresses to a few KB
    big = Image.new("1", (20000, 20000))
    big.save(tmp_path / "bomb.png", optimize=True)
    with pytest.raises(BadImageError, match="decompression bomb"):
        read_image_file(tmp_path / "bomb.png")


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(InputError, match="no images in"):
        list_image_files(tmp_path)
    with pytest.raises(InputError, match="folder not found"):
        list_image_files(tmp_path / "nope")


def test_jpeg_exif_infotext_like_the_webui(tmp_path):
    """The WebUI stores JPEG/WebP infotext as EXIF UserComment through piexif."""
    import piexif
    import piexif.helper

    text = "a cat, <lora:x:0.5>\nSteps: 4, Seed: 5, Model: ckA"
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(text, encoding="unicode")}})
    pattern(1).save(tmp_path / "x.jpg", "JPEG", exif=exif)
    pattern(1).save(tmp_path / "x.webp", "WEBP", exif=exif)
    assert read_image_file(tmp_path / "x.jpg").infotext == text
    assert read_image_file(tmp_path / "x.webp").infotext == text


def test_same_bytes_same_hash(tmp_path):
    pattern(1).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    assert read_image_file(tmp_path / "a.png").sha256 == read_image_file(tmp_path / "b.png").sha256
