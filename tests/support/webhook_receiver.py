"""A real webhook receiver for tests: aiohttp on a loopback port, stoppable and restartable there.

``WebhookReceiver(secret)`` records every POST it answers (headers and raw body), checks the
X-SpotOn-Signature as a receiver should (``verify``), and answers what ``answer(body)``
returns (200 by default), so a test can refuse some deliveries. ``start()`` listens,
``stop()`` goes away: while stopped, a webhook's connection is refused, as for a receiver
that is down.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from spoton_inference.embedded.ports import pick_free_ports

LOOPBACK = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` (X-SpotOn-Signature) signs ``body`` with ``secret``: what the README shows."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


class WebhookReceiver:
    def __init__(self, answer: Callable[[dict[str, Any]], int] = lambda _: 200) -> None:
        self.port = pick_free_ports(1)[0]
        self.url = f"http://{LOOPBACK}:{self.port}/hook"
        self.answer = answer
        self.received: list[Received] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body))
        status = self.answer(json.loads(body))
        # A refusal's text holds a NUL, as a careless receiver's may: it must not stop the sink.
        return web.Response(status=status, text="ok" if status < 300 else "refused\x00 by the test receiver")

    def acknowledged(self) -> list[Received]:
        """The POSTs answered 2xx, in arrival order."""
        return [r for r in self.received if self.answer(r.document) < 300]
