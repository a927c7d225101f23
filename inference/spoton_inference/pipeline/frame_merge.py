"""The frames of a task's camera shards, merged back into global frames in frame order.

Each shard (:mod:`.camera_shard`) sends its frames in order, a
:class:`~spoton_inference.tracking.shard_messages.Mark` when it is about to wait, and a
:class:`~spoton_inference.tracking.shard_messages.BatchEnd` after each batch. A global
frame is complete once every shard still in the batch has either sent it or shown it has
nothing before a later one. Before waiting for a shard, the merge tells ``advance`` how far
the association has come (every frame up to that one is processed), so a shard waiting for
that is let go: no shard ever waits for the merge while the merge waits for it.

Example (two shards in this process, their messages already sent):
    >>> import asyncio
    >>> from spoton_inference.tracking.shard_messages import BatchEnd, ShardFrame
    >>> class Sent:
    ...     def __init__(self, *messages): self.messages = list(messages)
    ...     async def receive(self): return self.messages.pop(0)
    >>> a = Sent(ShardFrame(0, {"c1": "a0"}), ShardFrame(1, {"c1": "a1"}), BatchEnd(0))
    >>> b = Sent(ShardFrame(1, {"c2": "b1"}), BatchEnd(0))
    >>> async def advance(through): pass
    >>> merge = FrameMerge([a, b], ["c1", "c2"], advance)
    >>> async def frames():
    ...     merge.begin_batch(0)
    ...     return [(f.global_index, list(f.cameras)) async for f in merge]
    >>> asyncio.run(frames())
    [(0, ['c1']), (1, ['c1', 'c2'])]
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from spoton_inference.tracking.shard_messages import (
    BatchEnd,
    CameraView,
    Mark,
    ShardError,
    ShardFailed,
    ShardFrame,
    ShardMessage,
)


class ShardInbox(Protocol):
    """One shard's messages, in the order it sent them."""

    async def receive(self) -> ShardMessage:
        """The next message; waits for it, and raises when the shard is known to be gone."""
        ...


@dataclasses.dataclass(slots=True)
class _Shard:
    inbox: ShardInbox
    pending: ShardFrame | None = None
    known: int = 0  # the shard has nothing before this frame but ``pending``
    ended: bool = True


class FrameMerge:
    def __init__(
        self, inboxes: Sequence[ShardInbox], camera_order: Sequence[str], advance: Callable[[int], Awaitable[None]]
    ) -> None:
        self._shards = [_Shard(inbox) for inbox in inboxes]
        self._order = list(camera_order)
        self._advance = advance
        self._told = -1

    def begin_batch(self, start: int) -> None:
        """The next batch's frames start at ``start``."""
        for shard in self._shards:
            shard.ended, shard.known = False, start

    @property
    def through(self) -> int:
        """Every frame up to this one has been handed out (or no shard has it)."""
        live = [s for s in self._shards if not s.ended]
        return min((s.pending.global_index if s.pending else s.known) for s in live) - 1 if live else self._told

    def __aiter__(self) -> AsyncIterator[ShardFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[ShardFrame]:
        while (frame := await self.next()) is not None:
            yield frame

    async def next(self) -> ShardFrame | None:
        """The next global frame, its cameras in camera order; None when the batch has ended."""
        while True:
            live = [s for s in self._shards if not s.ended]
            if not live:
                return None
            low = min((s.pending.global_index for s in live if s.pending is not None), default=None)
            blocked = next((s for s in live if s.pending is None and (low is None or s.known <= low)), None)
            if blocked is None:
                assert low is not None
                return self._take(live, low)
            if self.through > self._told:
                self._told = self.through
                await self._advance(self._told)
            self._read(blocked, await blocked.inbox.receive())

    def _take(self, live: list[_Shard], index: int) -> ShardFrame:
        cameras: dict[str, CameraView] = {}
        for shard in live:
            if shard.pending is not None and shard.pending.global_index == index:
                cameras.update(shard.pending.cameras)
                shard.pending, shard.known = None, index + 1
        return ShardFrame(index, {c: cameras[c] for c in self._order if c in cameras})

    def _read(self, shard: _Shard, message: ShardMessage) -> None:
        match message:
            case ShardFrame():
                shard.pending, shard.known = message, message.global_index
            case Mark(next_index=index):
                shard.known = max(shard.known, index)
            case BatchEnd():
                shard.ended = True
            case ShardFailed(reason=reason):
                raise ShardError(reason)
