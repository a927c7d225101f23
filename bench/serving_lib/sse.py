"""SSE fan-out: many subscribers on one task's ``GET /api/v1/processing-tasks/{id}/events``
through the facade, as browsers follow a task, checked against WatchTask's full list.

The subscribers run in worker processes (one per core, ``SUBSCRIBER_PROCESSES``), apart from
the WatchTask reader: a browser parses its events on a machine of its own, and a burst that
200 subscribers parse in one event loop would otherwise delay the receipt times this measures,
the reference reader's included. Each reads only the ``emitted_at`` it needs from the data.

Each subscriber behaves as ``EventSource``: it resumes with ``Last-Event-ID`` when a stream
ends before the task does, stops on 204 (the task is over, nothing follows), and gives up on
any other refusal (a browser's EventSource does not retry a 503). Lag is receipt time minus
the event's own ``emitted_at``, for events emitted after the subscriber connected (earlier
ones are a catch-up, not fan-out lag).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import multiprocessing
import os
import time

import aiohttp
import msgspec

from spoton_client.client import SpotOnClient

EVENTS_PATH = "/api/v1/processing-tasks/{task_id}/events"
# Enough for any run here; a stalled stream fails the subscriber instead of hanging the bench.
READ_TIMEOUT_S = 120.0
# Resumes one subscriber may make before it counts as cut off for good.
MAX_RESUMES = 20
SUBSCRIBER_PROCESSES = max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True, slots=True)
class SseEvent:
    sequence: int
    kind: str
    data: str


class SseParser:
    """Incremental ``text/event-stream`` parsing: feed bytes, get complete events.

    >>> parser = SseParser()
    >>> parser.feed(b": heartbeat\\n\\nid: 3\\nevent: status_update\\ndata: {}\\n\\nid: 4")
    [SseEvent(sequence=3, kind='status_update', data='{}')]
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *blocks, self._buffer = self._buffer.split(b"\n\n")
        return [event for block in blocks if (event := _event(block)) is not None]


def _event(block: bytes) -> SseEvent | None:
    fields: dict[str, str] = {}
    for line in block.decode().split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = (fields[name] + "\n" if name == "data" and name in fields else "") + value.removeprefix(" ")
    if "id" not in fields or "event" not in fields:
        return None  # a comment, an id-only block, or a problem (no id)
    return SseEvent(int(fields["id"]), fields["event"], fields.get("data", ""))


class _Stamp(msgspec.Struct):
    emitted_at: str


_stamp = msgspec.json.Decoder(_Stamp)


def emitted_at(event: SseEvent) -> float:
    """The event's own publish time (``emitted_at`` in its data), as a Unix time; the rest of
    the data is skipped, not parsed."""
    return datetime.datetime.fromisoformat(_stamp.decode(event.data).emitted_at).timestamp()


@dataclasses.dataclass
class Subscriber:
    # 200 answers: the first connect, then one per resume after a stream was cut off.
    streams: int = 0
    sequences: set[int] = dataclasses.field(default_factory=set)
    lags_ms: list[float] = dataclasses.field(default_factory=list)
    error: str = ""

    @property
    def connected(self) -> bool:
        return self.streams > 0

    @property
    def resumes(self) -> int:
        return max(0, self.streams - 1)


async def subscribe(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Subscriber:
    sub = Subscriber()
    last = 0
    try:
        while sub.streams <= MAX_RESUMES:
            resume = {"Last-Event-ID": str(last)} if last else {}
            async with session.get(url, headers={**headers, **resume}) as response:
                if response.status == 204:
                    return sub
                if response.status != 200:
                    sub.error = f"HTTP {response.status}"
                    return sub
                sub.streams += 1
                since = time.time()
                parser = SseParser()
                async for chunk in response.content.iter_any():
                    now = time.time()
                    for event in parser.feed(chunk):
                        sub.sequences.add(event.sequence)
                        last = max(last, event.sequence)
                        sent = emitted_at(event)
                        if sent >= since:
                            sub.lags_ms.append((now - sent) * 1e3)
        sub.error = f"cut off more than {MAX_RESUMES} times"
    except (aiohttp.ClientError, TimeoutError) as exc:
        sub.error = f"{type(exc).__name__}: {exc}"
    return sub


async def fan_out(
    facade_url: str, api_key: str, task_id: str, subscribers: int, client: SpotOnClient
) -> tuple[list[Subscriber], list[int], list[float]]:
    """Every subscriber's record, WatchTask's full list of sequences, and WatchTask's own lags
    (a gRPC reader on the inference service directly, in this process), all following the
    task together; the subscribers are shared out over ``SUBSCRIBER_PROCESSES`` processes."""
    headers = {"Authorization": f"Bearer {api_key}"}
    url = facade_url + EVENTS_PATH.format(task_id=task_id)

    async def watch() -> tuple[list[int], list[float]]:
        sequences, lags = [], []
        async for event in client.watch(task_id):
            sequences.append(event.sequence)
            lags.append((time.time() - event.emitted_at.ToDatetime(datetime.UTC).timestamp()) * 1e3)
        return sequences, lags

    processes = min(SUBSCRIBER_PROCESSES, subscribers)
    shares = [subscribers // processes + (k < subscribers % processes) for k in range(processes)]
    loop = asyncio.get_running_loop()
    # spawn: this process runs threads (gRPC) and a loop, which a forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        watching = asyncio.create_task(watch())
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _subscribe_share, url, headers, n) for n in shares))
        sequences, lags = await watching
    return [sub for part in parts for sub in part], sequences, lags


def _subscribe_share(url: str, headers: dict[str, str], subscribers: int) -> list[Subscriber]:
    """``subscribers`` of the fan-out, in a worker process's own event loop."""

    async def share() -> list[Subscriber]:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            return list(await asyncio.gather(*(subscribe(session, url, headers) for _ in range(subscribers))))

    return asyncio.run(share())
