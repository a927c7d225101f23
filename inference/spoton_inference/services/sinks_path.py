"""SPOTON_SINKS_PATH: sinks declared in a JSON file, upserted by name when the service starts.

For docker-compose, where sinks belong with the rest of the deployment rather than in API
calls made after it. The file is a list of sinks (or ``{"sinks": [...]}``); each is the
CreateSink request's fields, with the secret given inline (``secret``) or, better, as the path
of a file holding it (``secret_file``, e.g. a compose secret under /run/secrets; one trailing
newline dropped)::

    [{"environment_id": "hall", "name": "alerts", "kind": "webhook",
      "url": "https://hooks.example.com/spoton", "event_types": ["zone.entered", "zone.exited"],
      "secret_file": "/run/secrets/spoton_webhook_secret"}]

A malformed file stops the start-up with the reason; a sink whose environment is not
registered yet is skipped with a warning (restart once it is), as its other sinks go on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import msgspec

from spoton_inference.domain.errors import NotFound
from spoton_inference.services.sink_service import NewSink, SinkService

log = logging.getLogger(__name__)


class DeclaredSink(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    environment_id: str
    name: str
    kind: str
    url: str
    event_types: list[str]
    secret: str = ""
    secret_file: str = ""
    topic_prefix: str = ""
    enabled: bool = True


def read_sinks_path(path: Path) -> list[NewSink]:
    """The sinks ``path`` declares; ValueError naming the file and what is wrong."""
    try:
        raw = json.loads(path.read_text())
        if isinstance(raw, dict):
            raw = raw.get("sinks", raw)
        declared = msgspec.convert(raw, list[DeclaredSink])
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise ValueError(f"SPOTON_SINKS_PATH {path}: {exc}") from None
    out = []
    for d in declared:
        if d.secret and d.secret_file:
            raise ValueError(f"SPOTON_SINKS_PATH {path}: sink {d.name!r} gives both secret and secret_file")
        secret = d.secret
        if d.secret_file:
            try:
                secret = Path(d.secret_file).read_text().removesuffix("\n")
            except OSError as exc:
                raise ValueError(f"SPOTON_SINKS_PATH {path}: sink {d.name!r}: secret_file: {exc}") from None
        out.append(NewSink(d.environment_id, d.name, d.kind, d.url, d.event_types, secret, d.topic_prefix, d.enabled))
    return out


async def apply_sinks_path(path: Path, sinks: SinkService) -> int:
    """Upsert every sink ``path`` declares; how many were applied. Raises ValueError for a sink
    the checks refuse (a bad URL, an unknown event type), naming it."""
    applied = 0
    for new in read_sinks_path(path):
        try:
            await sinks.upsert(new)
        except NotFound as exc:
            log.warning("SPOTON_SINKS_PATH: sink %r skipped: %s; restart once it is registered", new.name, exc)
            continue
        except Exception as exc:
            raise ValueError(f"SPOTON_SINKS_PATH {path}: sink {new.name!r}: {exc}") from None
        applied += 1
    log.info("SPOTON_SINKS_PATH %s: %d sinks applied", path, applied)
    return applied
