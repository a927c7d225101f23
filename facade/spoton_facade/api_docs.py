"""The API's documentation pages under ``/schema``, served with no network.

Litestar's own pages load Swagger UI and Redoc from CDNs (and Redoc's fonts from Google), so
they are blank offline. These load the copies that the ``openapi-ui-bundles`` package installs,
and their set-up scripts from this package, all from this origin:

* ``GET /schema`` and ``GET /schema/redoc``: Redoc;
* ``GET /schema/swagger``: Swagger UI;
* ``GET /schema/openapi.json``, ``/schema/openapi.yaml``: the OpenAPI document;
* ``GET /schema/assets/<version>/<name>``: the pages' scripts, styles and icon.

An asset's URL names the version of the whole set (a digest of the files), so browsers may keep
an asset for a year: an upgrade changes the URLs the pages name.

No page has inline code, so the pages' Content-Security-Policy (:data:`DOCS_POLICY`) allows
scripts from this origin only. Redoc inserts its styles as ``<style>`` elements; they carry a
nonce made for each request, which the policy names, rather than a policy that allows any
inline style.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import html
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.params import FromPath
from litestar.response import File
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from openapi_ui_bundles import redoc, swagger_ui

SCHEMA_PATH = "/schema"
ASSETS_PATH = "/assets"
OWN_ASSETS_DIR = Path(__file__).resolve().parent / "api_docs_assets"
# Litestar adds "; charset=utf-8" to text types.
JAVASCRIPT = "text/javascript"
CSS = "text/css"
PNG = "image/png"
# A versioned URL's content never changes. The pages carry no validator (Last-Modified, ETag),
# so browsers do not cache them and always see the current version.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
NONCE_BYTES = 18
# Where the docs middleware leaves the request's nonce for the page it renders.
NONCE_STATE_KEY = "spoton_docs_nonce"
# Redoc's bundle inserts one stylesheet as it loads (the side menu's scrollbars), before
# Redoc.init can give it the nonce: the policy allows it, and the empty <style> it starts as, by
# hash (openapi-ui-bundles 0.3.0). tests/integration/test_api_docs_offline.py fails on any style
# the policy refuses, so a bundle with other styles shows there.
REDOC_STYLE_HASHES = (
    "'sha256-DLDPR1ic47WIdK2WyeLkblb/tm2mQH+Jt/NNhZWu1k0='",
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
)
# The dashboard's policy (spoton_facade.security) plus Redoc's styles (by the request's nonce
# and those hashes) and blob: workers for Redoc's search (its bundle makes the worker's script).
# Redoc's side-menu logo, which it always loads from cdn.redoc.ly, is refused: it never loads,
# and Redoc hides it.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; "
    f"style-src 'self' 'nonce-{{nonce}}' {' '.join(REDOC_STYLE_HASHES)}; img-src 'self' data:; "
    "connect-src 'self'; worker-src blob:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Asset:
    """A file a docs page loads, and the content type it is served with."""

    path: Path
    media_type: str


ASSETS: Mapping[str, Asset] = {
    "swagger-ui-bundle.js": Asset(swagger_ui.static_path / "swagger-ui-bundle.js", JAVASCRIPT),
    "swagger-ui.css": Asset(swagger_ui.static_path / "swagger-ui.css", CSS),
    "favicon.png": Asset(swagger_ui.static_path / "favicon-32x32.png", PNG),
    "redoc.standalone.js": Asset(redoc.static_path / "redoc.standalone.js", JAVASCRIPT),
    "swagger-init.js": Asset(OWN_ASSETS_DIR / "swagger-init.js", JAVASCRIPT),
    "redoc-init.js": Asset(OWN_ASSETS_DIR / "redoc-init.js", JAVASCRIPT),
    "api-docs.css": Asset(OWN_ASSETS_DIR / "api-docs.css", CSS),
}


@functools.cache
def assets_version() -> str:
    """A digest of every asset's bytes (about 2.5 MB, read once a process): the URLs' version."""
    digest = hashlib.sha256()
    for name, asset in sorted(ASSETS.items()):
        digest.update(name.encode())
        digest.update(asset.path.read_bytes())
    return digest.hexdigest()[:16]


def asset_url(name: str) -> str:
    """The URL a page loads asset ``name`` from.

    >>> asset_url("swagger-ui.css") == f"/schema/assets/{assets_version()}/swagger-ui.css"
    True
    """
    return f"{SCHEMA_PATH}{ASSETS_PATH}/{assets_version()}/{name}"


@get(f"{ASSETS_PATH}/{{version:str}}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def serve_asset(version: FromPath[str], name: FromPath[str]) -> File:
    """One of :data:`ASSETS`, at the current version only (an old page's URL is gone: reload)."""
    asset = ASSETS.get(name)
    if asset is None or version != assets_version():
        raise NotFoundException(f"no docs asset {version}/{name}")
    return File(
        asset.path,
        media_type=asset.media_type,
        content_disposition_type="inline",
        filename=name,
        headers={"Cache-Control": ASSET_CACHE_CONTROL},
    )


def docs_policy(app: ASGIApp) -> ASGIApp:
    """Middleware for everything under ``/schema``: a fresh nonce for the request (in the
    scope's state, for the page) and :data:`DOCS_POLICY` with it on the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        scope.setdefault("state", {})[NONCE_STATE_KEY] = nonce
        policy = DOCS_POLICY.format(nonce=nonce)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["content-security-policy"] = policy
            await send(message)

        await app(scope, receive, sending)

    return middleware


def docs_router() -> Router:
    """The ``/schema`` router Litestar adds the pages to (``OpenAPIConfig.openapi_router``)."""
    assets_version()  # read the assets now, not on the event loop when the first page is asked for
    return Router(SCHEMA_PATH, route_handlers=[serve_asset], include_in_schema=False, middleware=[docs_policy])


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """The pages under ``/schema``: Redoc first, so it is also ``/schema`` itself."""
    return [RedocPage(), SwaggerPage(), JsonRenderPlugin(), YamlRenderPlugin()]


class _Page(OpenAPIRenderPlugin):
    """An HTML page that loads its UI from :data:`ASSETS` (``head`` and ``body`` fill it in)."""

    ui_name = ""

    def __init__(self, path: str | list[str]) -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(f"{openapi_schema['info']['title']}: {self.ui_name}")
        spec_url = html.escape(self.get_openapi_json_route(request))
        nonce = request.scope["state"][NONCE_STATE_KEY]
        return (
            "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
            f"<title>{title}</title>\n"
            f"<link rel='icon' type='image/png' href='{asset_url('favicon.png')}'>\n"
            f"<link rel='stylesheet' href='{asset_url('api-docs.css')}'>\n"
            f"{self.head()}</head>\n<body>\n{self.body(spec_url, nonce)}</body>\n</html>\n"
        ).encode()

    def head(self) -> str:
        """What the page adds to its ``<head>``."""
        return ""

    @abc.abstractmethod
    def body(self, spec_url: str, nonce: str) -> str:
        """The page's ``<body>`` content; ``nonce`` is the one the policy allows styles by."""


class SwaggerPage(_Page):
    """``/schema/swagger``: Swagger UI, which can also send requests ("Try it out")."""

    ui_name = "Swagger UI"

    def __init__(self) -> None:
        super().__init__("/swagger")

    def head(self) -> str:
        return f"<link rel='stylesheet' href='{asset_url('swagger-ui.css')}'>\n"

    def body(self, spec_url: str, nonce: str) -> str:
        return (
            f"<div id='swagger-ui' data-spec-url='{spec_url}'></div>\n"
            f"<script src='{asset_url('swagger-ui-bundle.js')}'></script>\n"
            f"<script src='{asset_url('swagger-init.js')}'></script>\n"
        )


class RedocPage(_Page):
    """``/schema`` and ``/schema/redoc``: Redoc's three-panel reference."""

    ui_name = "Redoc"

    def __init__(self) -> None:
        super().__init__(["/", "/redoc"])

    def body(self, spec_url: str, nonce: str) -> str:
        return (
            "<div id='redoc'></div>\n"
            f"<script src='{asset_url('redoc.standalone.js')}'></script>\n"
            f"<script src='{asset_url('redoc-init.js')}' nonce='{nonce}' data-spec-url='{spec_url}'></script>\n"
        )
