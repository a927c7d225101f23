"""The API docs (``/schema/swagger``, ``/schema/redoc``) in a real headless Chromium cut off
from everything but the facade: both UIs must render from the facade's own assets.

The browser context's only way past the facade's origin is a proxy that answers nothing and
writes down who asked (:class:`Witness`); Playwright also routes other loopback ports through
it. A request the page's Content-Security-Policy refuses never leaves the browser (Redoc's
logo from cdn.redoc.ly is one); every other request must be to the facade, and the witness must
have heard nothing. The facade runs alone: the docs pages ask the inference service nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from support.browser import CHROMIUM_ARGS, require_chromium

from spoton_facade.settings import FacadeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

API_TITLE = "SpotOn facade"
# An operation every version of the API has, as both UIs show it.
OPERATION_PATH = "/api/v1/processing-tasks/start"
OPERATION_SUMMARY = "Start a task"
# The autofill service is the one Chromium feature that still calls out from a page's context.
OFFLINE_ARGS = ["--disable-features=AutofillServerCommunication"]
RENDER_TIMEOUT_MS = 60_000
# Swagger UI's colour for POST operations (swagger-ui.css): the stylesheet was applied.
SWAGGER_POST_BORDER = "rgb(73, 204, 144)"
# Redoc's side menu background (its default theme, inserted as nonce'd styles).
REDOC_MENU_BACKGROUND = "rgb(250, 250, 250)"
REFUSED_BY_POLICY = "csp"
SILENT = "(a connection that sent nothing)"


@dataclasses.dataclass
class Witness:
    """A proxy that answers nothing, and the first line of every request that reached it."""

    url: str
    heard: list[str]


@dataclasses.dataclass
class OfflinePage:
    """A page in the cut-off browser, and what it did."""

    page: Any
    facade_url: str
    witness: Witness
    requests: list[str] = dataclasses.field(default_factory=list)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    console: list[str] = dataclasses.field(default_factory=list)

    def policy_refusals(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    def report(self) -> str:
        """What the page logged, asked for and failed to get, and what the witness heard."""
        return "\n".join(
            [*self.console, f"requests: {self.requests}", f"failed: {self.failures}", f"witness: {self.witness.heard}"]
        )

    def assert_stayed_home(self) -> None:
        """Nothing reached the witness, and whatever the page asked for elsewhere the
        Content-Security-Policy refused inside the browser."""
        assert self.witness.heard == [], self.witness.heard
        elsewhere = [url for url in self.requests if not url.startswith((self.facade_url + "/", "data:", "blob:"))]
        left = [(url, self.failures.get(url)) for url in elsewhere if self.failures.get(url) != REFUSED_BY_POLICY]
        assert not left, left
        errors = [line for line in self.console if line.startswith("pageerror")]
        assert not errors, errors


@pytest_asyncio.fixture
async def witness() -> AsyncIterator[Witness]:
    heard: list[str] = []

    async def listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            heard.append(line.decode(errors="replace").strip() or SILENT)
        except TimeoutError:
            heard.append(SILENT)
        finally:
            writer.close()

    server = await asyncio.start_server(listen, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        yield Witness(f"http://127.0.0.1:{port}", heard)


@pytest_asyncio.fixture
async def facade_url(serve_facade, tmp_path: Path) -> AsyncIterator[str]:
    settings = FacadeSettings(media_root=tmp_path, inference_target=f"127.0.0.1:{_free_port()}")
    async with serve_facade(settings) as url:
        yield url


@pytest_asyncio.fixture
async def offline(facade_url: str, witness: Witness) -> AsyncIterator[OfflinePage]:
    chromium = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS + OFFLINE_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1400, "height": 900},
                proxy={"server": witness.url, "bypass": urlsplit(facade_url).netloc},
            )
            page = await context.new_page()
            seen = OfflinePage(page, facade_url, witness)
            context.on("request", lambda r: seen.requests.append(r.url))
            context.on("requestfailed", lambda r: seen.failures.setdefault(r.url, r.failure or ""))
            page.on("console", lambda m: seen.console.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen.console.append(f"pageerror: {e}"))
            yield seen
        finally:
            await browser.close()


async def test_the_browser_reaches_nothing_but_the_facade(offline: OfflinePage) -> None:
    """The cut-off itself: another host, and another port on loopback, go to the witness only."""
    other_loopback = f"http://127.0.0.1:{_free_port()}/elsewhere"
    for url in ("http://example.com/elsewhere", other_loopback):
        with pytest.raises(PlaywrightError, match="net::ERR_"):
            await offline.page.goto(url)
    for url in ("http://example.com/elsewhere", other_loopback):
        assert any(url in line for line in offline.witness.heard), (url, offline.witness.heard)


async def test_swagger_ui_renders_offline(offline: OfflinePage) -> None:
    page = offline.page
    try:
        response = await page.goto(f"{offline.facade_url}/schema/swagger")
        assert response is not None and response.ok
        title = page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=RENDER_TIMEOUT_MS)
        # The title's own text; the version badges are elements inside it.
        assert await title.evaluate("e => e.childNodes[0].textContent.trim()") == API_TITLE
        operation = page.locator(f".opblock-post:has(.opblock-summary-path[data-path='{OPERATION_PATH}'])")
        await operation.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert OPERATION_SUMMARY in await operation.locator(".opblock-summary-description").text_content()
        assert await operation.evaluate("e => getComputedStyle(e).borderTopColor") == SWAGGER_POST_BORDER
        # Open the operation: its request body renders from the same document.
        await operation.locator(".opblock-summary").click()
        await operation.locator(".opblock-section-request-body").wait_for(timeout=RENDER_TIMEOUT_MS)
    except BaseException:
        print(offline.report())
        raise
    offline.assert_stayed_home()
    assert offline.policy_refusals() == []


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema"])
async def test_redoc_renders_offline(offline: OfflinePage, path: str) -> None:
    page = offline.page
    try:
        response = await page.goto(offline.facade_url + path)
        assert response is not None and response.ok
        await _operation_heading(page).wait_for(timeout=RENDER_TIMEOUT_MS)
        assert (await page.locator("h1").text_content()).startswith(API_TITLE)
        menu = page.locator(".menu-content")
        assert await menu.evaluate("e => getComputedStyle(e).backgroundColor") == REDOC_MENU_BACKGROUND
        # Search runs in a worker the bundle makes from a blob: URL, which the policy allows.
        await page.get_by_placeholder("Search...").fill(OPERATION_SUMMARY)
        results = page.locator("[data-role='search:results'] [role='menuitem']")
        await results.first.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert OPERATION_SUMMARY in await results.first.text_content()
    except BaseException:
        print(offline.report())
        raise
    offline.assert_stayed_home()
    # Only Redoc's logo is refused (its styles carry the page's nonce, or are allowed by hash).
    refused = offline.policy_refusals()
    assert all("cdn.redoc.ly" in line for line in refused), refused


def _operation_heading(page: Any) -> Any:
    """Redoc's heading for the operation (its text after an empty anchor link)."""
    return page.locator("h2", has_text=re.compile(rf"^\s*{re.escape(OPERATION_SUMMARY)}\s*$"))


def _free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
