"""Finding, hashing and decoding images safely.

Every image is read from disk once per evaluation: :func:`read_image_file` hashes the
bytes and parses the WebUI infotext from the header without decoding pixels, and
:func:`decode_image` turns those same bytes into an 8-bit RGB ``PIL.Image``.

Conversion to RGB follows the reference code (``image.convert('RGB')``, which drops
alpha) for ordinary modes, so opaque images give exactly the paper's numbers. Modes
PIL would convert wrongly are handled explicitly: 16-bit and 32-bit integer greyscale
is rescaled to 8 bits instead of being clipped at 255, float images are clipped to
[0, 1] or rescaled from [0, 255].
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lycoris_eval.errors import BadImageError, InputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"})
MIN_SIDE = 32
MAX_PIXELS = 8192 * 8192

# Counts decodes so tests and benchmarks can check "each image decoded once".
DECODE_COUNTER = {"n": 0}


@dataclass
class ImageRecord:
    """One image file: its bytes' hash, size, infotext; pixels are decoded on demand."""

    path: Path
    sha256: str
    data: bytes = field(repr=False)
    width: int
    height: int
    mode: str
    infotext: str | None
    caption: str | None = None

    def release_bytes(self) -> None:
        """Drop the file's bytes once decoded (they can be re-read from ``path``)."""
        self.data = b""


def list_image_files(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files directly in ``folder`` (sorted), and the other files with why they are skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(path)
        elif path.suffix.lower() not in {".txt", ".json", ".csv", ".jsonl", ".caption"}:
            skipped.append((path, "not an image file (extension)"))
    if not images:
        raise InputError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return images, skipped


def _exif_user_comment(image: Image.Image) -> str | None:
    """The WebUI writes JPEG/WebP infotext as EXIF UserComment via piexif."""
    try:
        exif = image.getexif()
        raw = exif.get_ifd(0x8769).get(0x9286)
    except Exception:  # noqa: BLE001 - unreadable EXIF is just "no infotext"
        return None
    if not raw:
        return None
    if isinstance(raw, str):
        return raw
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        for encoding in ("utf-16-be", "utf-16-le"):
            try:
                text = body.decode(encoding)
            except UnicodeDecodeError:
                continue
            if text.isprintable() or "\n" in text:
                return text
        return None
    try:
        return body.decode("utf-8") if prefix.startswith(b"ASCII") else raw.decode("utf-8", "replace")
    except UnicodeDecodeError:
        return None


def read_infotext(image: Image.Image) -> str | None:
    """WebUI generation parameters: PNG ``parameters`` chunk or EXIF UserComment."""
    text = image.info.get("parameters")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(text, str) and text.strip():
        return text
    return _exif_user_comment(image)


def read_image_file(path: Path) -> ImageRecord:
    """Read the file once, hash it and parse its header; raise BadImageError if unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadImageError(f"{path.name}: cannot read file ({exc.strerror or exc})") from exc
    if not data:
        raise BadImageError(f"{path.name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            infotext = read_infotext(image)
            mode = image.mode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(f"{path.name}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(f"{path.name}: not a readable image (corrupt or unsupported format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"{path.name}: corrupt image header ({exc})") from exc
    if width * height > MAX_PIXELS:
        raise BadImageError(
            f"{path.name}: {width}x{height} px is over the limit of {MAX_PIXELS} pixels "
            "(refused as a possible decompression bomb)"
        )
    if min(width, height) < MIN_SIDE:
        raise BadImageError(f"{path.name}: too small ({width}x{height} px); at least {MIN_SIDE} px a side is needed")
    caption = None
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        try:
            caption = sidecar.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            caption = None
    return ImageRecord(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        width=width,
        height=height,
        mode=mode,
        infotext=infotext,
        caption=caption,
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr8 = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise BadImageError("float image contains NaN or infinite pixels")
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        arr8 = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    # RGBA, LA, P (with or without transparency), L, 1, CMYK, YCbCr, LAB, HSV, RGBX:
    # PIL's own conversion, as the reference code does.
    return image.convert("RGB")


def decode_image(record: ImageRecord) -> Image.Image:
    """Decode a record's bytes to a fully loaded 8-bit RGB image."""
    data = record.data or record.path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
            rgb = _to_rgb(image)
            rgb.load()
    except BadImageError as exc:
        raise BadImageError(f"{record.path.name}: {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(f"{record.path.name}: refused as a possible decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"{record.path.name}: corrupt or truncated image data ({exc})") from exc
    DECODE_COUNTER["n"] += 1
    return rgb
