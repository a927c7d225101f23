"""Image sizes from headers, and the decoders refusing images over the pixel limit before decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.image_header import PNG_SIGNATURE, announced_size, check_pixels
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw


def png_header(width: int, height: int) -> bytes:
    """The signature and IHDR chunk of an RGB PNG of width x height, and no pixels at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 announcing width x height (3 components)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0


@pytest.mark.parametrize(
    ("ext", "params"),
    [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])],
    ids=["jpeg-baseline", "jpeg-progressive", "png"],
)
@pytest.mark.parametrize(("width", "height"), [(1, 1), (640, 480), (123, 457)])
def test_the_header_gives_the_size_the_decoder_finds(ext, params, width, height):
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    assert announced_size(data.tobytes()) == (width, height)
    assert decode_encoded(data.tobytes(), width * height).shape == (height, width, 3)


@pytest.mark.parametrize("header", [png_header, jpeg_header], ids=["png", "jpeg"])
def test_a_bomb_is_refused_from_its_header_with_the_size_and_the_limit(header):
    data = header(16000, 16000)  # a few dozen bytes that would decode to 768 MB
    with pytest.raises(InvalidArgument) as err:
        decode_encoded(data, 50_000_000)
    assert "16000x16000" in str(err.value) and "50,000,000" in str(err.value)
    assert "SPOTON_MAX_IMAGE_PIXELS" in str(err.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"GIF89a" + b"\0" * 20, "JPEG or PNG"),
        (b"BM" + b"\0" * 60, "JPEG or PNG"),  # cv2 would decode BMP, without any size check of ours
        (PNG_SIGNATURE + b"\0\0\0\x0dIEND", "no IHDR"),
        (b"\xff\xd8\xff\xda\0\x02", "no frame header"),  # scan data before any frame header
        (b"\xff\xd8\xff\xe0\0\x00", "no frame header"),  # a segment length too short to be one
        (b"\xff\xd8\xff\xc0\0\x11\x08", "no frame header"),  # a frame header cut short
    ],
)
def test_headers_that_say_no_size_are_refused(data, words):
    with pytest.raises(InvalidArgument, match=words):
        announced_size(data)


def test_a_header_announcing_no_pixels_is_refused():
    with pytest.raises(InvalidArgument, match="0x480 is invalid"):
        decode_encoded(png_header(0, 480), 50_000_000)


def test_raw_frames_are_checked_against_the_limit_and_their_byte_length():
    assert decode_raw(b"\x01\x02\x03" * 6, 3, 2, 6).shape == (2, 3, 3)
    with pytest.raises(InvalidArgument, match="over the limit of 5 pixels"):
        decode_raw(b"\0" * 18, 3, 2, 5)
    with pytest.raises(InvalidArgument, match="expected width\\*height\\*3 = 18"):
        decode_raw(b"\0" * 17, 3, 2, 6)
    with pytest.raises(InvalidArgument, match="must be positive"):
        decode_raw(b"", -3, -2, 6)


def test_check_pixels_accepts_exactly_the_limit():
    check_pixels(7680, 4320, 7680 * 4320)
    with pytest.raises(InvalidArgument):
        check_pixels(7680, 4321, 7680 * 4320)
