"""What every REST body module shares: :func:`from_proto` and floor-plan points.

Field names follow the ``.proto``. Handlers build response bodies with :func:`from_proto`, which
runs the shared proto walker (:mod:`spoton_facade.convert`) and lets msgspec check the result
against the declared shape.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from google.protobuf.message import Message

from spoton_facade.convert import message_to_json

S = TypeVar("S", bound=msgspec.Struct)


# [x, y] on the floor plan, in metres (or [u, v] in image pixels for homography image points).
Point = tuple[float, float]


def from_proto(message: Message, shape: type[S]) -> S:
    """Translate ``message`` into the REST body ``shape``."""
    return msgspec.convert(message_to_json(message), shape)
