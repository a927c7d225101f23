"""Webhooks: each delivery is one signed HTTP POST of its JSON body.

Headers: ``Content-Type: application/json``, ``X-SpotOn-Event`` (the event type),
``X-SpotOn-Delivery`` (the delivery id: the same on every retry, so a receiver can drop a
repeat) and ``X-SpotOn-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
The timestamp inside the signed text lets a receiver refuse old replays.

A 2xx answer acknowledges. 408, 429 and 5xx, timeouts and connection errors are retried (the
dispatcher backs off); any other answer (4xx, or a 3xx: redirects are not followed, so a
webhook cannot be bounced to a host the URL policy refuses) fails the delivery for good.
The URL policy (services/sink_policy.py) is checked again before every POST.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import httpx

from spoton_inference.services.sink_policy import SinkPolicy, SinkRefused
from spoton_inference.services.sinks import DeliveryFailed, Sink, SinkDelivery, SinkKind

SIGNATURE_HEADER = "X-SpotOn-Signature"
EVENT_HEADER = "X-SpotOn-Event"
DELIVERY_HEADER = "X-SpotOn-Delivery"
USER_AGENT = "SpotOn-Webhook/1"
# Answers worth retrying although they are 4xx: the receiver timed out, or asked us to slow down.
RETRIED_CLIENT_ERRORS = frozenset({408, 429})
# How much of a refusing answer's body is kept as the delivery's reason.
REASON_BODY_CHARS = 200


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-SpotOn-Signature value of ``body`` sent at ``timestamp`` (unix seconds).

    >>> sign("0123456789abcdef", b'{"id":1}', 1700000000)
    't=1700000000,v1=4bcaced68dfea90a68df035b89cb7fb26692d899d32a1ccb1b0616cf48e4d1ed'
    """
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookDeliverer:
    """POSTs deliveries through one pooled ``httpx.AsyncClient`` (bounded connections)."""

    def __init__(self, policy: SinkPolicy, *, timeout_s: float, max_connections: int) -> None:
        self._policy = policy
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def deliver(self, sink: Sink, delivery: SinkDelivery) -> None:
        try:
            await asyncio.to_thread(self._policy.check_target, SinkKind.WEBHOOK, sink.url)
        except SinkRefused as exc:  # re-resolved somewhere refused: retried, the operator sees why
            raise DeliveryFailed(str(exc)) from None
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: str(delivery.delivery_id),
            SIGNATURE_HEADER: sign(sink.secret, delivery.body, int(time.time())),
        }
        try:
            response = await self._client.post(sink.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc or 'no answer'}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"HTTP {status} {response.reason_phrase}: {response.text[:REASON_BODY_CHARS]}".rstrip(": ")
        retried = status >= 500 or status in RETRIED_CLIENT_ERRORS
        if 300 <= status < 400:
            reason += " (redirects are not followed: point the sink at the final URL)"
        raise DeliveryFailed(reason, permanent=not retried)

    async def close(self) -> None:
        await self._client.aclose()
