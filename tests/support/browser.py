"""Debian's Chromium for the browser tests (driven by Playwright).

``from support.browser import CHROMIUM_ARGS, require_chromium`` (tests/conftest.py puts tests/
on sys.path); ``SPOTON_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SPOTON_CHROMIUM", "/usr/bin/chromium"))
# Headless, no sandbox (CI runs as root), no GPU, and none of Chromium's own traffic: this
# machine's network is closed, and background requests would only fail and slow it down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--mute-audio",
]


def require_chromium() -> Path:
    """The Chromium binary; the test is skipped without one, and fails in CI (where ``make
    browser`` installs it)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (make browser does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
