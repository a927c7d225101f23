"""The frame rate a video stream declares: one rule for probing files and live sources alike."""

from __future__ import annotations

from fractions import Fraction
from typing import Protocol


class RatedStream(Protocol):
    """What a decoder's video stream tells of its rate (PyAV's ``VideoStream`` has both)."""

    @property
    def average_rate(self) -> Fraction | None: ...
    @property
    def guessed_rate(self) -> Fraction | None: ...


def declared_fps(stream: RatedStream) -> float:
    """The average rate, else the guessed one; 0 when the stream declares none.

    >>> from types import SimpleNamespace
    >>> declared_fps(SimpleNamespace(average_rate=Fraction(30000, 1001), guessed_rate=None))
    29.97002997002997
    >>> declared_fps(SimpleNamespace(average_rate=None, guessed_rate=None))
    0.0
    """
    return float(stream.average_rate or stream.guessed_rate or 0.0)
