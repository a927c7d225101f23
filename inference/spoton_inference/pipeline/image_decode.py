"""One image as a client sends it (JPEG/PNG bytes, or raw BGR pixels) decoded to RGB.

Both check the announced size against ``max_pixels`` before touching the pixels, so a
decompression bomb is refused before it costs memory.

Example:
    >>> decode_raw(b"\\x01\\x02\\x03" * 2, 2, 1, 2)[0, 0].tolist()  # BGR bytes, RGB pixels
    [3, 2, 1]
"""

from __future__ import annotations

import cv2
import numpy as np

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.image_header import announced_size, check_pixels


def decode_encoded(data: bytes, max_pixels: int) -> np.ndarray:
    """JPEG/PNG bytes to an RGB array; InvalidArgument when they are not an image, or when
    the header announces more than ``max_pixels`` (checked before decoding: bombs)."""
    if not data:
        raise InvalidArgument("image is empty: send JPEG or PNG bytes, or a raw BGR image")
    check_pixels(*announced_size(data), max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidArgument(f"image ({len(data)} bytes) could not be decoded as JPEG or PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_raw(data: bytes, width: int, height: int, max_pixels: int) -> np.ndarray:
    """Row-major BGR bytes of width x height to RGB (a view, no copy)."""
    check_pixels(width, height, max_pixels)
    if len(data) != width * height * 3:
        raise InvalidArgument(
            f"raw image of {width}x{height} has {len(data)} bytes, expected width*height*3 = {width * height * 3}"
        )
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)[:, :, ::-1]
