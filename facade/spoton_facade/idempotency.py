"""The ``Idempotency-Key`` request header (IETF httpapi draft "The Idempotency-Key HTTP Header
Field"), passed to the inference service as the request's ``idempotency_key``.

The draft makes the value a structured-field string (``Idempotency-Key: "8e03978e-..."``); the
bare value is taken too. The service checks the key and remembers it (24 h by default): a retry
with it answers what the first request created; with a different request it is refused with
422, and while the first request still runs with 409.
"""

from __future__ import annotations

from typing import Annotated

from litestar.exceptions import ClientException
from litestar.params import HeaderParameter

HEADER = "Idempotency-Key"
# The service's limit (255 characters) plus the quotes of a structured-field string.
MAX_HEADER_CHARS = 257

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        max_length=MAX_HEADER_CHARS,
        description='Makes a retry safe: a UUID, e.g. `"8e03978e-40d5-43e8-bc93-6894a57f9324"`. A request with a '
        "key already used answers what the first one created; the same key with a different request is 422.",
    ),
]


def idempotency_key(header: str | None) -> str:
    """The key a header carries ("" without the header)."""
    if header is None:
        return ""
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise ClientException(f"{HEADER} is empty; send a fresh UUID per request, or leave the header out")
    return value
