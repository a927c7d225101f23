"""Image sizes read from JPEG and PNG headers, so an image can be refused before it is decoded.

A few hundred kilobytes of PNG can announce 16000 x 16000 pixels (a decompression bomb):
decoding it costs ~770 MB before anything could look at its size. The header says the size
in its first bytes.

Example:
    >>> import struct, zlib
    >>> ihdr = struct.pack(">IIBBBBB", 16000, 16000, 8, 2, 0, 0, 0)
    >>> png = PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    >>> announced_size(png)
    (16000, 16000)
    >>> 16000 * 16000 > DEFAULT_MAX_IMAGE_PIXELS
    True
"""

from __future__ import annotations

from spoton_inference.domain.errors import InvalidArgument

# 8K UHD (7680 x 4320, 33 Mpx) fits with room; a 16000 x 16000 bomb (256 Mpx) does not.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
# C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


def announced_size(data: bytes) -> tuple[int, int]:
    """(width, height) that a JPEG's or PNG's header announces; InvalidArgument for anything
    else, or a header too broken to say."""
    if data.startswith(PNG_SIGNATURE):
        # The IHDR chunk must come first: length (13), type, then width and height.
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InvalidArgument(f"image ({len(data)} bytes) could not be decoded as PNG: no IHDR header")
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(_JPEG_SOI):
        return _jpeg_size(data)
    raise InvalidArgument(f"image ({len(data)} bytes) could not be decoded as JPEG or PNG: send JPEG or PNG bytes")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = len(_JPEG_SOI)
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break  # image data, or the end, before any frame header
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            break
        pos += 2 + length
    raise InvalidArgument(f"image ({len(data)} bytes) could not be decoded as JPEG: no frame header")


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """InvalidArgument unless width x height is a non-empty image within ``max_pixels``."""
    if width <= 0 or height <= 0:
        raise InvalidArgument(f"image size {width}x{height} is invalid: width and height must be positive")
    if width * height > max_pixels:
        raise InvalidArgument(
            f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} pixels (SPOTON_MAX_IMAGE_PIXELS)"
        )
