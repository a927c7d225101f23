"""``GET /`` and ``GET /login``: the dashboard's pages; their scripts and styles are served from
``/static`` (no inline code: the Content-Security-Policy allows only this origin's files)."""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, get
from litestar.response import File

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
DASHBOARD_PATH = "/"
LOGIN_PATH = "/login"


class DashboardController(Controller):
    """The built-in browser dashboard (no build step)."""

    path = "/"
    tags = ("dashboard",)

    @get(summary="Dashboard page", media_type="text/html")
    async def index(self) -> File:
        """The dashboard's HTML; it loads ``/static/dashboard.js``, which goes to the login
        page when the API answers 401."""
        return File(STATIC_DIR / "index.html", content_disposition_type="inline")

    @get(LOGIN_PATH, summary="Dashboard login page", media_type="text/html")
    async def login(self) -> File:
        """A form that posts to ``/api/v1/auth/login``, then returns to the dashboard."""
        return File(STATIC_DIR / "login.html", content_disposition_type="inline")
