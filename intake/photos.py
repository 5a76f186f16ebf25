"""Photos that people send with a case (before and after it was handled): checked to be a JPEG or a PNG by their
magic bytes, their header's size and a real decode, then stored as sent, content-addressed. Never re-encoded: the
bytes a grid worker's phone sent are the evidence."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from core.errors import GridwatchError
from core.events import Evidence
from intake.evidence import CONTENT_TYPES, EvidenceStore, Ext

logger = logging.getLogger(__name__)

Stage = Literal["before", "after"]

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_PIXELS = 50_000_000  # checked from the header before decoding: a small file cannot decode to gigabytes

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4 (DHT), C8 (JPG) or CC (DAC)
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length


class PhotoError(GridwatchError, ValueError):
    """A photo is refused: not a JPEG or PNG that decodes (`too_large` False), or too large (`too_large` True)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    ext: Ext
    width: int
    height: int


def _png_size(data: bytes) -> tuple[int, int] | None:
    # the IHDR chunk comes first: length (4), b"IHDR", width (4), height (4)
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment, walking the segments after SOI."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def inspect_photo(data: bytes, *, max_pixels: int = MAX_PHOTO_PIXELS) -> PhotoInfo:
    """The format and size of a JPEG or PNG photo, or PhotoError: wrong magic bytes, a header without a size,
    more than `max_pixels` pixels (`too_large`), or bytes that do not decode."""
    ext: Ext
    if data.startswith(JPEG_MAGIC):
        ext, size = "jpg", _jpeg_size(data)
    elif data.startswith(PNG_MAGIC):
        ext, size = "png", _png_size(data)
    else:
        raise PhotoError("not a JPEG or PNG image (by its first bytes)")
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise PhotoError(f"a {CONTENT_TYPES[ext]} without a readable image size")
    if size[0] * size[1] > max_pixels:
        raise PhotoError(
            f"photo of {size[0]}x{size[1]} pixels: at most {max_pixels / 1e6:g} megapixels", too_large=True
        )
    try:
        # IMREAD_COLOR applies a JPEG's EXIF orientation: the size is the one a viewer shows
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise PhotoError(f"a {CONTENT_TYPES[ext]} that does not decode")
    height, width = image.shape[:2]
    return PhotoInfo(ext=ext, width=int(width), height=int(height))


def store_photo(store: EvidenceStore, data: bytes, stage: Stage) -> Evidence:
    """Check `data` (PhotoError) and store it as sent; the evidence record of a `photo` of `stage`."""
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(f"photo of {len(data)} bytes: at most {MAX_PHOTO_BYTES} bytes", too_large=True)
    info = inspect_photo(data)
    key = store.put(data, info.ext)
    logger.debug("stored %s photo %s (%dx%d, %d bytes)", stage, key, info.width, info.height, len(data))
    return Evidence(
        key=key,
        kind="photo",
        content_type=CONTENT_TYPES[info.ext],
        sha256=key.split(".", 1)[0],
        width=info.width,
        height=info.height,
        stage=stage,
    )
