"""Images of purposes with variants: re-encoded without metadata, plus resized copies.

Every image is decoded and saved again by Pillow, so EXIF (GPS position, camera serial),
XMP, ICC comments and anything appended after the image data are dropped, and a polyglot
(an image that is also an HTML page) comes out as a plain image. The orientation EXIF
asked for is applied to the pixels first. Decoding is bounded: images over
``MAX_PIXELS`` are refused as decompression bombs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, ImageOps

MAX_PIXELS = 40_000_000
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}


class ImageError(ValueError):
    """The bytes are not an image Pillow can safely decode."""


@dataclass(frozen=True)
class ProcessedImage:
    original: bytes
    variants: dict[str, bytes]


def process(data: bytes, content_type: str, variants: Mapping[str, int]) -> ProcessedImage:
    """``data`` without metadata, and each variant no larger than its size on the longer side."""
    kind = _FORMATS.get(content_type)
    if kind is None:
        raise ImageError(f"{content_type} is not an image type that has variants")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ImageError(f"the image has more than {MAX_PIXELS} pixels")
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"the image cannot be decoded ({type(exc).__name__})") from exc
    made = {name: _save(_fit(image, size), kind) for name, size in variants.items()}
    return ProcessedImage(_save(image, kind), made)


def _fit(image: Image.Image, size: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((size, size), Image.Resampling.LANCZOS)
    return copy


def _save(image: Image.Image, kind: str) -> bytes:
    if kind == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    # No exif=, icc_profile= or pnginfo=: Pillow writes none of the source's metadata.
    options = {"quality": 85, "optimize": True} if kind in ("JPEG", "WEBP") else {"optimize": True} if kind == "PNG" else {}
    image.save(out, format=kind, **options)
    return out.getvalue()
