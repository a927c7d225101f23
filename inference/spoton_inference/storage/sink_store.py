"""Event sinks and their outbox in PostgreSQL (migration 0015).

Sinks are rows of ``sinks``, their secret sealed with the service's Fernet keys (as camera
passwords are, services/secrets.py) and opened only for the dispatcher. The outbox rows are
written by triggers with the events themselves; this module reads them for the dispatcher
and the API, and records each outcome together with the sink's totals in one statement.

The dispatcher of one replica at a time delivers a sink's rows: it holds the sink's lease
(``lease_owner`` until ``lease_until``), and every outcome it records is conditional on
still holding it, so a replica whose lease ran out records nothing over the next one's work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping

import asyncpg

from spoton_inference.domain.errors import AlreadyExists, NotFound, Unavailable
from spoton_inference.services.sink_dispatcher import Head
from spoton_inference.services.sinks import (
    DeliveryRecord,
    DeliveryState,
    Sink,
    SinkDelivery,
    SinkKind,
    SinkRecord,
    SinkStatus,
    encode_body,
)
from spoton_inference.storage.postgres import Database

# The channel the outbox triggers NOTIFY on (migration 0015).
NOTIFY_CHANNEL = "spoton_sinks"
# Bound on connecting the LISTEN connection; failing, the dispatcher polls and tries again.
LISTEN_CONNECT_TIMEOUT_S = 5.0
# A failure's reason as stored: a receiver's answer may be long, or hold a NUL PostgreSQL refuses.
MAX_REASON_CHARS = 1000

_SINK_COLUMNS = """s.sink_id, s.environment_id, s.name, s.kind, s.url, s.topic_prefix, s.event_types,
    s.secret, s.enabled, s.created_at, s.updated_at, s.delivered_total, s.failed_total, s.dropped_total,
    s.last_error, s.last_error_at, s.last_delivered_at,
    (SELECT count(*) FROM sink_deliveries d WHERE d.sink_id = s.sink_id AND d.state = 'pending') AS pending"""
_DELIVERY_COLUMNS = """delivery_id, sink_id, environment_id, camera_id, task_id, event_type, occurred_at, data,
    state, attempts, last_error, created_at, next_attempt_at, finished_at"""


class SinkNotices:
    """Wakes the dispatcher on every new delivery: LISTEN on the outbox triggers' channel,
    over a connection of its own (a pooled one would be handed back)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    async def listen(self, wake: Callable[[], None]) -> asyncpg.Connection:
        """The listening connection (close it to stop); Unavailable when it cannot connect."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=LISTEN_CONNECT_TIMEOUT_S)
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake())
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise Unavailable(str(exc)) from exc
        return conn


class SinkStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- configuration ------------------------------------------------------------------------

    async def insert(self, sink: Sink) -> SinkRecord:
        """Store a new sink; AlreadyExists for a name taken in its environment, NotFound for an
        environment that is not registered."""
        async with self._db.pool.acquire() as conn:
            try:
                await conn.execute(
                    """INSERT INTO sinks (sink_id, environment_id, name, kind, url, topic_prefix, event_types,
                                          secret, enabled)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                    uuid.UUID(sink.sink_id),
                    sink.environment_id,
                    sink.name,
                    sink.kind.value,
                    sink.url,
                    sink.topic_prefix,
                    sorted(sink.event_types),
                    self._seal(sink.secret),
                    sink.enabled,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"environment {sink.environment_id!r} already has a sink named {sink.name!r}"
                ) from None
            except asyncpg.ForeignKeyViolationError:
                raise NotFound(f"environment {sink.environment_id!r} not found") from None
            return await self._get(conn, sink.sink_id)  # type: ignore[return-value]

    async def get(self, sink_id: str) -> SinkRecord | None:
        async with self._db.pool.acquire() as conn:
            return await self._get(conn, sink_id)

    async def by_name(self, environment_id: str, name: str) -> SinkRecord | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_SINK_COLUMNS} FROM sinks s WHERE s.environment_id = $1 AND s.name = $2",
                environment_id,
                name,
            )
        return None if row is None else _record(row)

    async def list(self, environment_ids: frozenset[str] | None, environment_id: str = "") -> list[SinkRecord]:
        """Sinks of ``environment_id`` ("" = all) among ``environment_ids`` (None = any), by name."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_SINK_COLUMNS} FROM sinks s
                    WHERE ($1 = '' OR s.environment_id = $1)
                      AND ($2::text[] IS NULL OR s.environment_id = ANY ($2::text[]))
                    ORDER BY s.environment_id, s.name""",
                environment_id,
                None if environment_ids is None else sorted(environment_ids),
            )
        return [_record(r) for r in rows]

    async def update(self, sink_id: str, changes: Mapping[str, object]) -> SinkRecord | None:
        """Apply ``changes`` (column -> value; ``secret`` in plain text, sealed here); None when
        the sink is gone. AlreadyExists for a name taken."""
        values = dict(changes)
        if "secret" in values:
            values["secret"] = self._seal(str(values["secret"]))
        if "event_types" in values:
            values["event_types"] = sorted(values["event_types"])  # type: ignore[call-overload]
        if "kind" in values:
            values["kind"] = str(values["kind"])
        assigns = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
        async with self._db.pool.acquire() as conn:
            try:
                found = await conn.fetchval(
                    f"UPDATE sinks SET {assigns + ', ' if assigns else ''}updated_at = now() "
                    "WHERE sink_id = $1 RETURNING sink_id",
                    uuid.UUID(sink_id),
                    *values.values(),
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"a sink named {values.get('name')!r} already exists in its environment") from None
            return None if found is None else await self._get(conn, sink_id)

    async def delete(self, sink_id: str) -> bool:
        """Delete a sink with its outbox rows; False when it was not there."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM sinks WHERE sink_id = $1", uuid.UUID(sink_id))
        return status != "DELETE 0"

    async def deliveries(
        self, sink_id: str, state: DeliveryState | None, before_id: int | None, limit: int
    ) -> list[DeliveryRecord]:
        """A sink's deliveries, newest first, older than ``before_id`` when given."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_DELIVERY_COLUMNS} FROM sink_deliveries
                    WHERE sink_id = $1 AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR delivery_id < $3)
                    ORDER BY delivery_id DESC LIMIT $4""",
                uuid.UUID(sink_id),
                None if state is None else state.value,
                before_id,
                limit,
            )
        return [_delivery_record(r) for r in rows]

    # -- the dispatcher's side ----------------------------------------------------------------

    async def ready_sinks(self, owner: str) -> list[str]:
        """Enabled sinks with a pending delivery, whose lease is free or ``owner``'s."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT s.sink_id FROM sinks s
                   WHERE s.enabled AND (s.lease_owner = $1 OR s.lease_until < now())
                     AND EXISTS (SELECT 1 FROM sink_deliveries d
                                 WHERE d.sink_id = s.sink_id AND d.state = 'pending')""",
                owner,
            )
        return [str(r["sink_id"]) for r in rows]

    async def lease(self, sink_id: str, owner: str, seconds: float) -> Sink | None:
        """Take or extend the sink's lease for ``seconds``: the sink (secret opened) when this
        owner holds it now, None when another replica does or the sink is gone or disabled."""
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""UPDATE sinks s SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
                    WHERE s.sink_id = $1 AND s.enabled AND (s.lease_owner = $2 OR s.lease_until < now())
                    RETURNING {_SINK_COLUMNS}""",
                uuid.UUID(sink_id),
                owner,
                seconds,
            )
        if row is None:
            return None
        return dataclasses.replace(_sink(row), secret=self._open(row["secret"], f"sink {row['name']!r}"))

    async def release(self, sink_id: str, owner: str) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "UPDATE sinks SET lease_owner = '', lease_until = '-infinity' WHERE sink_id = $1 AND lease_owner = $2",
                uuid.UUID(sink_id),
                owner,
            )

    async def head(self, sink_id: str) -> Head | None:
        """The sink's oldest pending delivery: strictly in order, the only one that may be sent."""
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {_DELIVERY_COLUMNS},
                           greatest(0, extract(epoch FROM next_attempt_at - now()))::float8 AS wait_s
                    FROM sink_deliveries WHERE sink_id = $1 AND state = 'pending' ORDER BY delivery_id LIMIT 1""",
                uuid.UUID(sink_id),
            )
        if row is None:
            return None
        data = json.loads(row["data"])
        camera_id, task_id = row["camera_id"], row["task_id"]
        body = encode_body(
            row["delivery_id"], row["event_type"], row["environment_id"], camera_id, task_id, row["occurred_at"], data
        )
        delivery = SinkDelivery(
            row["delivery_id"],
            str(row["sink_id"]),
            row["environment_id"],
            camera_id,
            row["event_type"],
            row["occurred_at"],
            task_id,
            body,
            row["attempts"],
        )
        return Head(delivery, row["wait_s"])

    async def delivered(self, delivery_id: int, owner: str) -> bool:
        """Record an acknowledged delivery (and the sink's totals); False when the lease was lost
        or the row is no longer pending (dropped meanwhile)."""
        return await self._finish(
            delivery_id,
            owner,
            """UPDATE sink_deliveries d SET state = 'delivered', attempts = d.attempts + 1, finished_at = now(),
                      last_error = ''
               FROM sinks s WHERE d.delivery_id = $1 AND d.state = 'pending' AND s.sink_id = d.sink_id
                 AND s.lease_owner = $2 RETURNING d.sink_id""",
            "delivered_total = delivered_total + 1, last_delivered_at = now()",
        )

    async def failed(self, delivery_id: int, owner: str, reason: str) -> bool:
        """Record a delivery refused for good: its reason, and the sink moves on."""
        return await self._finish(
            delivery_id,
            owner,
            """UPDATE sink_deliveries d SET state = 'failed', attempts = d.attempts + 1, finished_at = now(),
                      last_error = $3
               FROM sinks s WHERE d.delivery_id = $1 AND d.state = 'pending' AND s.sink_id = d.sink_id
                 AND s.lease_owner = $2 RETURNING d.sink_id""",
            "failed_total = failed_total + 1, last_error = $3, last_error_at = now()",
            _reason(reason),
        )

    async def retry_later(self, delivery_id: int, owner: str, reason: str, delay_s: float) -> bool:
        """Record a failed attempt: the delivery stays at the head, tried again after ``delay_s``."""
        return await self._finish(
            delivery_id,
            owner,
            """UPDATE sink_deliveries d SET attempts = d.attempts + 1, last_error = $3,
                      next_attempt_at = now() + make_interval(secs => $4)
               FROM sinks s WHERE d.delivery_id = $1 AND d.state = 'pending' AND s.sink_id = d.sink_id
                 AND s.lease_owner = $2 RETURNING d.sink_id""",
            "last_error = $3, last_error_at = now()",
            _reason(reason),
            delay_s,
        )

    async def _finish(self, delivery_id: int, owner: str, row_sql: str, totals: str, *args: object) -> bool:
        async with self._db.pool.acquire() as conn:
            status = await conn.fetchval(
                f"""WITH done AS ({row_sql})
                    UPDATE sinks SET {totals} FROM done WHERE sinks.sink_id = done.sink_id RETURNING 1""",
                delivery_id,
                owner,
                *args,
            )
        return status is not None

    async def bound_pending(self, max_pending: int) -> dict[str, int]:
        """Mark dropped each sink's oldest pending deliveries beyond ``max_pending``, counting them
        in the sink's totals; the number dropped by sink id."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                """WITH over AS (
                       SELECT delivery_id FROM (
                           SELECT delivery_id,
                                  row_number() OVER (PARTITION BY sink_id ORDER BY delivery_id DESC) AS n
                           FROM sink_deliveries WHERE state = 'pending'
                             AND sink_id IN (SELECT sink_id FROM sink_deliveries WHERE state = 'pending'
                                             GROUP BY sink_id HAVING count(*) > $1)) ranked
                       WHERE n > $1),
                   dropped AS (
                       UPDATE sink_deliveries d SET state = 'dropped', finished_at = now(), last_error = $2
                       FROM over WHERE d.delivery_id = over.delivery_id AND d.state = 'pending'
                       RETURNING d.sink_id),
                   counted AS (SELECT sink_id, count(*) AS n FROM dropped GROUP BY sink_id)
                   UPDATE sinks s SET dropped_total = s.dropped_total + counted.n
                   FROM counted WHERE s.sink_id = counted.sink_id RETURNING s.sink_id, counted.n""",
                max_pending,
                f"dropped: more than {max_pending} deliveries of this sink were pending (SPOTON_SINK_MAX_PENDING)",
            )
        return {str(r["sink_id"]): r["n"] for r in rows}

    async def prune(self, before: dt.datetime) -> int:
        """Delete finished deliveries older than ``before``; how many."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM sink_deliveries WHERE state <> 'pending' AND finished_at < $1", before
            )
        return int(status.split()[-1])

    async def pending_by_kind(self) -> dict[SinkKind, int]:
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT s.kind, count(d.delivery_id) AS n FROM sinks s
                   LEFT JOIN sink_deliveries d ON d.sink_id = s.sink_id AND d.state = 'pending'
                   GROUP BY s.kind"""
            )
        counts = dict.fromkeys(SinkKind, 0)
        counts.update({SinkKind(r["kind"]): r["n"] for r in rows})
        return counts

    async def reseal(self) -> int:
        """Re-encrypt secrets sealed under an older key with the first one (start-up, as camera
        passwords are: how a key rotation completes); how many changed. SecretKeyError naming
        the sink when no configured key opens its secret."""
        box = self._db.secrets
        changed = 0
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT sink_id, name, secret FROM sinks WHERE secret <> '' FOR UPDATE")
            for row in rows:
                if box.is_current(row["secret"]):
                    continue
                token = box.rotate(row["secret"], f"the secret of sink {row['name']!r}")
                await conn.execute("UPDATE sinks SET secret = $2 WHERE sink_id = $1", row["sink_id"], token)
                changed += 1
        return changed

    # -- helpers ------------------------------------------------------------------------------

    async def _get(self, conn: asyncpg.Connection, sink_id: str) -> SinkRecord | None:
        row = await conn.fetchrow(f"SELECT {_SINK_COLUMNS} FROM sinks s WHERE s.sink_id = $1", uuid.UUID(sink_id))
        return None if row is None else _record(row)

    def _seal(self, secret: str) -> str:
        return self._db.secrets.seal(secret) if secret else ""

    def _open(self, token: str, what: str) -> str:
        return self._db.secrets.open(token, f"the secret of {what}") if token else ""


def _reason(text: str) -> str:
    return text.replace("\x00", "")[:MAX_REASON_CHARS]


def _sink(row: asyncpg.Record) -> Sink:
    """The sink of a row, without its secret."""
    return Sink(
        sink_id=str(row["sink_id"]),
        environment_id=row["environment_id"],
        name=row["name"],
        kind=SinkKind(row["kind"]),
        url=row["url"],
        topic_prefix=row["topic_prefix"],
        event_types=frozenset(row["event_types"]),
        secret="",
        enabled=row["enabled"],
    )


def _record(row: asyncpg.Record) -> SinkRecord:
    status = SinkStatus(
        pending=row["pending"],
        delivered=row["delivered_total"],
        failed=row["failed_total"],
        dropped=row["dropped_total"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        last_delivered_at=row["last_delivered_at"],
    )
    return SinkRecord(_sink(row), bool(row["secret"]), status, row["created_at"], row["updated_at"])


def _delivery_record(row: asyncpg.Record) -> DeliveryRecord:
    state = DeliveryState(row["state"])
    return DeliveryRecord(
        delivery_id=row["delivery_id"],
        sink_id=str(row["sink_id"]),
        event_type=row["event_type"],
        camera_id=row["camera_id"],
        task_id=row["task_id"],
        occurred_at=row["occurred_at"],
        state=state,
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"] if state is DeliveryState.PENDING else None,
        finished_at=row["finished_at"],
    )
