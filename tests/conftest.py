"""Fixtures shared by every test package."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def make_data_dir() -> Iterator[Callable[[str], Path]]:
    """Fresh data directories outside pytest's tmp tree.

    PostgreSQL runs as another user when tests run as root and must traverse the path to
    its data. pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 whenever a session
    starts, which would cut off a server that is already running under it.
    """
    base = Path(tempfile.mkdtemp(prefix="spoton-embedded-tests-"))
    counter = itertools.count()

    def make(name: str) -> Path:
        path = base / f"{name}-{next(counter)}"
        path.mkdir()
        return path

    yield make
    shutil.rmtree(base, ignore_errors=True)
