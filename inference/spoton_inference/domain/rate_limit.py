"""Rate limits per credential: a token bucket for each, refilled continuously.

A credential may do ``per_minute`` of an action at once (a burst), then one more each
``60 / per_minute`` seconds; past that the action is refused with :class:`RateLimited`, which
says how long to wait. Buckets live in this process, so with several replicas behind a load
balancer a credential gets the limit on each. The service acting on its own (SYSTEM: jobs
starting their tasks) is not limited.

    >>> clock = [0.0]
    >>> limit = RateLimiter("task starts", per_minute=2, clock=lambda: clock[0])
    >>> caller = Principal("ci", Role.OPERATOR, frozenset(), "key-1", "api_key")
    >>> limit.take(caller); limit.take(caller)
    >>> try:
    ...     limit.take(caller)
    ... except RateLimited as exc:
    ...     exc.retry_after_s
    30.0
    >>> clock[0] = 30.0; limit.take(caller)
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from spoton_inference.domain.errors import RateLimited
from spoton_inference.domain.principal import Principal, Role  # noqa: F401  (Role: doctest)

# Buckets kept at most; past it the least recently used goes (a full bucket, most likely:
# forgetting it only forgives what that credential had used).
MAX_BUCKETS = 10_000


class RateLimiter:
    def __init__(
        self, what: str, *, per_minute: int, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self._what = what
        self._capacity = float(per_minute)
        self._per_s = per_minute / 60.0
        self._clock = clock
        self._max = max_buckets
        # credential -> (tokens left, when counted)
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def take(self, principal: Principal) -> None:
        """Count one action by ``principal``; RateLimited when its bucket is empty."""
        if self._capacity <= 0 or principal.kind == "system":
            return
        key = f"{principal.kind}:{principal.credential_id or principal.subject}"
        now = self._clock()
        tokens, then = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - then) * self._per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait_s = (1.0 - tokens) / self._per_s
            raise RateLimited(
                f"rate limit: at most {self._capacity:.0f} {self._what} a minute per credential; "
                f"try again in {wait_s:.0f} s",
                retry_after_s=wait_s,
            )
        self._buckets[key] = (tokens - 1.0, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
