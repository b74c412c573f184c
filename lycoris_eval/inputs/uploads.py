"""Images sent in a request body (base64, each with its prompt or infotext) written into a
temporary folder the evaluation reads like any other. Limits are checked before decoding:
count, bytes, pixels (from the header), decompression bombs. Errors come from the one
policy in :mod:`lycoris_eval.errors` (422 bad data, 413 too large). No web framework here.
"""

from __future__ import annotations

import base64
import binascii
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lycoris_eval.errors import SpecError, TooLargeError

MAX_UPLOAD_IMAGES = 64
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per decoded image
MAX_UPLOAD_PIXELS = 8192 * 8192  # per image: a 2048² image upscaled 4× by hires fix still fits


def write_uploads(items: Any, root: Path) -> Path:
    """Base64 images (with their prompt or infotext) into a temporary folder under the run store."""
    from PIL import Image, PngImagePlugin, UnidentifiedImageError  # lazy: PIL only when images are decoded

    if not isinstance(items, list) or not items:
        raise SpecError("images", "must be a non-empty list")
    if len(items) > MAX_UPLOAD_IMAGES:
        raise TooLargeError("images", f"at most {MAX_UPLOAD_IMAGES} per request (use a folder or a run)")
    root.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="upload-", dir=root))
    try:
        for index, item in enumerate(items):
            field = f"images[{index}]"
            if isinstance(item, str):
                item = {"image": item}
            if not isinstance(item, dict) or not isinstance(item.get("image"), str):
                raise SpecError(field, "expected {image: base64, prompt?, infotext?}")
            data = item["image"].split(",", 1)[1] if item["image"].startswith("data:") else item["image"]
            if len(data) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
                raise TooLargeError(field, f"larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise SpecError(field, "not valid base64") from None
            try:
                with Image.open(io.BytesIO(raw)) as image:
                    pixels = image.width * image.height  # from the header: nothing decoded yet
                    image.verify()
            except Image.DecompressionBombError:
                raise TooLargeError(field, "a decompression bomb (too many pixels)") from None
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                raise SpecError(field, "not an image") from None
            if pixels > MAX_UPLOAD_PIXELS:
                raise TooLargeError(field, f"{pixels} pixels, over the limit of {MAX_UPLOAD_PIXELS}")
            try:
                image = Image.open(io.BytesIO(raw))
                image.load()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                raise SpecError(field, "not an image") from None
            info = PngImagePlugin.PngInfo()
            infotext = item.get("infotext")
            if isinstance(infotext, str) and infotext.strip():
                info.add_text("parameters", infotext)
            image.save(target / f"upload-{index:04d}.png", pnginfo=info)
            prompt = item.get("prompt")
            if isinstance(prompt, str) and prompt.strip() and not infotext:
                (target / f"upload-{index:04d}.txt").write_text(prompt, encoding="utf-8")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target
