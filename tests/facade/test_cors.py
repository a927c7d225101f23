"""CORS follows SPOTON_CORS_ALLOW_ORIGINS: off by default, and then only for the listed origins."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient

from spoton_facade import create_app
from spoton_facade.settings import FacadeSettings

ORIGIN = "http://dashboard.example"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "Range"}


async def test_listed_origins_may_call_every_method(settings: FacadeSettings) -> None:
    app = create_app(dataclasses.replace(settings, cors_allow_origins=(ORIGIN,)))
    async with AsyncTestClient(app) as client:
        allowed = await client.options("/api/v1/environments/e1", headers=PREFLIGHT)
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "DELETE" in allowed.headers["access-control-allow-methods"]
        refused = await client.options(
            "/api/v1/environments/e1", headers={**PREFLIGHT, "Origin": "http://evil.example"}
        )
        assert refused.headers.get("access-control-allow-origin") != "http://evil.example"
        media = await client.get("/api/v1/media/none", headers={"Origin": ORIGIN})
        assert media.headers["access-control-allow-origin"] == ORIGIN
        assert "Content-Range" in media.headers["access-control-expose-headers"]


async def test_off_by_default(client: AsyncTestClient) -> None:
    response = await client.get("/api/v1/media/none", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
