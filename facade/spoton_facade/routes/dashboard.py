"""``GET /``: the minimal dashboard page; its script is served from ``/static``."""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, get
from litestar.response import File

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


class DashboardController(Controller):
    """The built-in browser dashboard (no build step)."""

    path = "/"
    tags = ("dashboard",)

    @get(summary="Dashboard page", media_type="text/html")
    async def index(self) -> File:
        """The dashboard's HTML; it loads ``/static/dashboard.js``."""
        return File(STATIC_DIR / "index.html", content_disposition_type="inline")
