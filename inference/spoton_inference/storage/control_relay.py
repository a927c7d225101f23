"""Task controls passed to the replica that runs the task, through the shared Redis.

A task runs in the replica that started it; pause, resume and cancel must reach that one. Any
replica may receive the RPC: it checks the caller and the task, then, when another replica runs
the task, pushes the control onto that replica's list (``spoton:replica:<id>:controls``) and
waits for the answer on a reply list of its own request. Each replica pops its list with a
blocking read on a connection of its own, applies the control as if it had been called
locally, and pushes the outcome back: done, or the domain error the owner raised, which the
forwarder raises in turn, so a caller sees the same status whichever replica it reached.

Bounded: a forward waits at most ``timeout_s`` for the owner (then Unavailable, naming it);
a reply list expires soon after, so an answer nobody waits for any more does not pile up; a
request older than its deadline when popped is dropped (the forwarder has already answered).

Example (two replicas on one Redis; replica-b's list is where controls for it wait):
    >>> controls_key("replica-b")
    'spoton:replica:replica-b:controls'
    >>> relay = RedisControlRelay(client, "replica-a")  # doctest: +SKIP
    >>> relay.start(task_control.control_here)  # doctest: +SKIP
    >>> await relay.forward("replica-b", ControlRequest(task_id, "pause"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument, NotFound, SpotOnError, Unavailable
from spoton_inference.services.task_ports import ControlRequest
from spoton_inference.storage.redis_client import UNREACHABLE

log = logging.getLogger(__name__)

# How long a forwarder waits for the owner's answer: a pause or resume is a state write, a
# cancel waits for the runner to stop (task_control's CANCEL_WAIT_S, 10 s) — so a little more.
FORWARD_TIMEOUT_S = 15.0
# A reply list outlives its forwarder's wait by this much, then Redis drops it.
REPLY_TTL_S = 60
# One blocking pop waits this long before it looks again (and notices a close).
POP_WAIT_S = 5
# After Redis could not be reached, the listener tries again this often.
RETRY_S = 1.0
# A frozen Redis never answers a blocking pop (the client sets no socket timeout): each is
# bounded by its own wait plus this.
FROZEN_MARGIN_S = 5.0
# Connections of the relay's own pool: the listener's blocking pop and forwards in flight (more
# wait for one, then read as Redis unreachable), apart from those that publish events.
CONNECTIONS = 8
# The domain errors an owner's answer may carry; anything else reaches the caller as Unavailable.
ANSWERABLE: dict[str, type[SpotOnError]] = {
    cls.__name__: cls for cls in (FailedPrecondition, InvalidArgument, NotFound, Unavailable)
}

Handler = Callable[[ControlRequest], Awaitable[None]]


def controls_key(replica: str) -> str:
    return f"spoton:replica:{replica}:controls"


def _reply_key(request_id: str) -> str:
    return f"spoton:control-reply:{request_id}"


class RedisControlRelay:
    """Forwards controls to their task's replica and applies the ones forwarded to this one.

    ``client`` is the relay's own (``redis_client.sibling(events.client, CONNECTIONS)``): its
    blocking pops hold connections for their whole wait. :meth:`close` closes it.
    """

    def __init__(self, client: aioredis.Redis, replica: str, timeout_s: float = FORWARD_TIMEOUT_S) -> None:
        self._client = client
        self._replica = replica
        self._timeout_s = timeout_s
        self._listener: asyncio.Task[None] | None = None
        self.applied = 0  # controls applied for other replicas (tests and logs)

    async def forward(self, owner: str, request: ControlRequest) -> None:
        """Apply ``request`` on ``owner``; raises what the owner raised, or Unavailable when it
        does not answer within the timeout or Redis cannot be reached."""
        request_id = uuid.uuid4().hex
        message = {
            "id": request_id,
            "task_id": request.task_id,
            "action": request.action,
            "focus_global_id": request.focus_global_id,
            "deadline": time.time() + self._timeout_s,
            "from": self._replica,
        }
        try:
            async with asyncio.timeout(self._timeout_s + FROZEN_MARGIN_S):
                await self._client.rpush(controls_key(owner), json.dumps(message))
                popped = await self._client.blpop([_reply_key(request_id)], timeout=self._timeout_s)
        except UNREACHABLE as exc:
            raise Unavailable(
                f"task {request.task_id} runs on replica {owner}, and Redis, which passes controls to it, "
                f"cannot be reached ({exc}); try again shortly"
            ) from exc
        if popped is None:
            raise Unavailable(
                f"task {request.task_id} runs on replica {owner}, which did not answer the {request.action} "
                f"within {self._timeout_s:.0f} s; try again, or check that replica"
            )
        answer = json.loads(popped[1])
        if answer.get("error"):
            raise ANSWERABLE.get(answer["error"], Unavailable)(answer.get("message", "the owner refused"))

    def start(self, handle: Handler) -> None:
        """Apply controls forwarded to this replica with ``handle`` until :meth:`close`."""
        self._listener = asyncio.create_task(self._listen(handle), name="control-relay")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    async def _listen(self, handle: Handler) -> None:
        key = controls_key(self._replica)
        while True:
            try:
                async with asyncio.timeout(POP_WAIT_S + FROZEN_MARGIN_S):
                    popped = await self._client.blpop([key], timeout=POP_WAIT_S)
            except UNREACHABLE as exc:
                log.warning("control relay: Redis unreachable (%s); listening again in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            if popped is not None:
                await self._apply(json.loads(popped[1]), handle)

    async def _apply(self, message: dict, handle: Handler) -> None:
        if message.get("deadline", 0) < time.time():
            log.info("control relay: dropped a %s of task %s past its deadline", message["action"], message["task_id"])
            return
        request = ControlRequest(message["task_id"], message["action"], int(message.get("focus_global_id", 0)))
        answer: dict[str, str | bool] = {"ok": True}
        try:
            await handle(request)
            self.applied += 1
        except SpotOnError as exc:
            kind = next((name for name, cls in ANSWERABLE.items() if isinstance(exc, cls)), "Unavailable")
            answer = {"error": kind, "message": str(exc)}
        except Exception as exc:  # the forwarder must hear something; the log keeps the detail
            log.exception("control relay: %s of task %s failed", message["action"], message["task_id"])
            answer = {"error": "Unavailable", "message": f"replica {self._replica} failed to apply it: {exc!r}"}
        reply = _reply_key(message["id"])
        with contextlib.suppress(*UNREACHABLE):
            async with asyncio.timeout(FROZEN_MARGIN_S), self._client.pipeline(transaction=True) as pipe:
                await pipe.rpush(reply, json.dumps(answer)).expire(reply, REPLY_TTL_S).execute()
