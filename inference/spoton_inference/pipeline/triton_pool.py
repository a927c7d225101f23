"""Several Triton servers used as one: each request goes to one of them, a dead one is skipped.

SPOTON_TRITON_GRPC_URL lists the endpoints, comma-separated; every one must serve the same
models. :class:`TritonPool` offers what :class:`TritonModels` offers (detect, detect_encoded,
embed, ready, close, ...) over one TritonModels per endpoint, each with its own gRPC channel
and shared memory.

* **Balancing, per request:** the endpoint with the fewest of this process's calls in flight,
  ties broken in turn (round-robin). Equal servers share requests evenly, and a frozen one,
  whose calls hang until their deadline, stops being picked once it holds its share: under
  round-robin every worker soon waits on it (measured in
  ``tests/inference/pipeline/test_triton_pool.py``).
* **A failing endpoint:** a call that finds it unavailable marks it down for a capped,
  doubling back-off (:func:`~spoton_inference.domain.backoff.doubling_s`) and the same
  request goes at once to the next endpoint that is up, so a dead endpoint costs no request
  an error while another one answers. An input the model rejects (:class:`InvalidArgument`)
  is raised as is: every endpoint would reject it too.
* **Bounded:** one call tries each endpoint that is up at most once; when none is, it tries
  the one whose back-off ends first, once, so a single endpoint is always tried, as before
  there was a pool. When no try answers the call raises :class:`Unavailable` naming every
  endpoint (tasks' :class:`~spoton_inference.pipeline.triton_models.OutageWait` then waits).
* **Coming back:** a down endpoint is tried again by the first request after its back-off,
  or sooner by the readiness probe (:meth:`TritonPool.readiness`, run by the health monitor
  every second), which also marks an endpoint down when it is not ready.

Example (two Tritons on this host):
    >>> pool = TritonPool(["127.0.0.1:8001", "127.0.0.1:9001"], "detector", "reid")  # doctest: +SKIP
    >>> detections = await pool.detect(frame_rgb, 0.45)  # doctest: +SKIP
    >>> [(e.url, e.requests, e.failures) for e in pool.endpoints]  # doctest: +SKIP
    [('127.0.0.1:8001', 1, 0), ('127.0.0.1:9001', 0, 0)]
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np

from spoton_inference.domain.backoff import doubling_s
from spoton_inference.domain.errors import Unavailable
from spoton_inference.domain.model_readiness import EndpointReadiness
from spoton_inference.pipeline.triton_models import Detections, TritonModels
from spoton_inference.pipeline.triton_shm import ShmPool

T = TypeVar("T")

# Back-off of an endpoint a call found unavailable: the first wait, doubling up to the cap.
# Other endpoints take its requests meanwhile; the readiness probe may bring it back sooner.
DOWN_FIRST_S, DOWN_MAX_S = 1.0, 30.0
# Longest the readiness probe waits on one endpoint: under the health checker's 1.5 s bound
# (services/health.py), so a frozen endpoint reads down while the others are still reported.
PROBE_TIMEOUT_S = 1.0
# The setting that lists the endpoints, named in errors.
SETTING = "SPOTON_TRITON_GRPC_URL"


@dataclasses.dataclass(slots=True)
class Endpoint:
    """One Triton's standing in the pool: what the balancer, health and metrics read."""

    url: str
    in_flight: int = 0
    # Calls sent to it, and those of them that found it unavailable (each retried elsewhere
    # when another endpoint was up).
    requests: int = 0
    failures: int = 0
    # Failures in a row (the back-off step), the monotonic time its back-off ends, and why.
    down_steps: int = 0
    down_until: float = 0.0
    last_error: str = ""
    # Times it was marked down: what a call's outcome says is dropped when one came meanwhile.
    downs: int = 0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def mark_down(self, now: float, error: str, first_s: float, max_s: float) -> None:
        self.down_steps += 1
        self.downs += 1
        self.down_until = now + doubling_s(self.down_steps - 1, first_s, max_s)
        self.last_error = error

    def mark_up(self) -> None:
        self.down_steps, self.down_until, self.last_error = 0, 0.0, ""


class Balancer:
    """Which endpoint a call tries next (pure: no I/O, the caller passes the time).

    ``least_in_flight=False`` is plain round-robin, kept for the measurement that chose the
    default.

    >>> a, b = Endpoint("a"), Endpoint("b")
    >>> balancer = Balancer([a, b])
    >>> [balancer.pick(0.0, set()).url for _ in range(3)]  # idle and equal: in turn
    ['a', 'b', 'a']
    >>> a.in_flight = 2
    >>> balancer.pick(0.0, set()).url  # fewest calls in flight
    'b'
    >>> b.mark_down(0.0, "refused", 1.0, 30.0)
    >>> balancer.pick(0.5, set()).url, balancer.pick(0.5, {"a"})  # b is down: tried only when none is up
    ('a', None)
    """

    def __init__(self, endpoints: Sequence[Endpoint], *, least_in_flight: bool = True) -> None:
        if not endpoints:
            raise ValueError("a pool needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.least_in_flight = least_in_flight
        self._turn = 0  # where the next search starts: ties go in turn

    def pick(self, now: float, tried: set[str]) -> Endpoint | None:
        """The next endpoint for a call that has tried the urls in ``tried`` (at most one try
        each): the up one with the fewest calls in flight; when none is up and the call has
        tried nothing yet, the one whose back-off ends first; else None."""
        n = len(self.endpoints)
        order = [self.endpoints[(self._turn + i) % n] for i in range(n)]
        untried = [e for e in order if e.url not in tried]
        up = [e for e in untried if e.is_up(now)]
        if up:
            choice = min(up, key=lambda e: e.in_flight) if self.least_in_flight else up[0]
        elif untried and not tried:
            choice = min(untried, key=lambda e: e.down_until)
        else:
            return None
        self._turn = (self.endpoints.index(choice) + 1) % n
        return choice


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint's counters as metrics.py exports them."""

    url: str
    requests: int
    failures: int
    up: bool


class TritonPool:
    """One :class:`TritonModels` per endpoint behind the calls TritonModels offers; see the
    module docstring. ``timeout_s`` and ``shared_memory`` are each endpoint's (shared memory
    is used with the endpoints on this host when ``auto``)."""

    def __init__(
        self,
        urls: Sequence[str],
        detector_model: str,
        reid_model: str,
        timeout_s: float = 30.0,
        shared_memory: str = "auto",
        *,
        down_first_s: float = DOWN_FIRST_S,
        down_max_s: float = DOWN_MAX_S,
        least_in_flight: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(set(urls)) != len(urls):
            raise ValueError(f"{SETTING} names an endpoint twice: {', '.join(urls)}")
        self.endpoints = [Endpoint(url) for url in urls]
        self._balancer = Balancer(self.endpoints, least_in_flight=least_in_flight)
        self.clients = {url: TritonModels(url, detector_model, reid_model, timeout_s, shared_memory) for url in urls}
        self.detector_model = detector_model
        self.reid_model = reid_model
        self._down_first_s, self._down_max_s = down_first_s, down_max_s
        self._clock = clock
        self._accepts_encoded: bool | None = None

    @property
    def url(self) -> str:
        """The endpoints as SPOTON_TRITON_GRPC_URL lists them."""
        return ",".join(e.url for e in self.endpoints)

    @property
    def shared_memory(self) -> ShmPool | None:
        """The first endpoint's shared-memory pool (the only one's, with one endpoint); each
        client in :attr:`clients` has its own."""
        return self.clients[self.endpoints[0].url].shared_memory

    def stats(self) -> list[EndpointStats]:
        """Each endpoint's counters and whether it takes requests now; plain values, so the
        metrics server's thread may read them while calls go on."""
        now = self._clock()
        return [EndpointStats(e.url, e.requests, e.failures, e.is_up(now)) for e in self.endpoints]

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detections:
        return await self._call(lambda m: m.detect(frame_rgb, score_threshold))

    async def accepts_encoded(self) -> bool:
        """Whether the detector declares ``IMAGE_ENCODED``: asked of one endpoint, once (all
        serve the same models)."""
        if self._accepts_encoded is None:
            self._accepts_encoded = await self._call(lambda m: m.accepts_encoded())
        return self._accepts_encoded

    async def detect_encoded(self, image: bytes, score_threshold: float) -> Detections:
        return await self._call(lambda m: m.detect_encoded(image, score_threshold))

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:  # no call to make, as TritonModels.embed makes none
            return np.zeros((0, 0), dtype=np.float32)
        return await self._call(lambda m: m.embed(crops))

    async def ready(self) -> dict[str, bool]:
        """``server`` and each model: True where at least one endpoint has it ready (the pool
        can serve), as :meth:`TritonModels.ready` answers for one server."""
        probes = await self.readiness()
        out = {"server": any(p.server for p in probes)}
        for name in (self.detector_model, self.reid_model):
            out[name] = any(p.models[name] for p in probes)
        return out

    async def readiness(self) -> list[EndpointReadiness]:
        """Each endpoint's readiness, probed at once (each bounded by PROBE_TIMEOUT_S). A ready
        endpoint is up again at once; one that is not is marked down."""
        return list(await asyncio.gather(*(self._probe(e) for e in self.endpoints)))

    async def _probe(self, endpoint: Endpoint) -> EndpointReadiness:
        found = {"server": False, self.detector_model: False, self.reid_model: False}
        problem = ""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                found = await self.clients[endpoint.url].ready()
        except TimeoutError:
            problem = f"no answer within {PROBE_TIMEOUT_S:g} s: hung or frozen"
        server = found.pop("server")
        probe = EndpointReadiness(endpoint.url, server, found, problem)
        now = self._clock()
        if probe.ready:
            endpoint.mark_up()
        elif endpoint.is_up(now):
            why = problem or ("models not ready" if server else "server not ready")
            endpoint.mark_down(now, f"readiness probe: {why}", self._down_first_s, self._down_max_s)
        return probe

    async def _call(self, attempt: Callable[[TritonModels], Awaitable[T]]) -> T:
        tried: set[str] = set()
        first_error: Unavailable | None = None
        while (endpoint := self._balancer.pick(self._clock(), tried)) is not None:
            tried.add(endpoint.url)
            endpoint.requests += 1
            endpoint.in_flight += 1
            downs = endpoint.downs
            try:
                result = await attempt(self.clients[endpoint.url])
            except Unavailable as exc:
                endpoint.failures += 1
                # Only the first news since this try started doubles the back-off: the other
                # calls in flight when an endpoint dies fail with it, and count once.
                if endpoint.downs == downs:
                    endpoint.mark_down(self._clock(), str(exc), self._down_first_s, self._down_max_s)
                first_error = first_error or exc
                continue
            finally:
                endpoint.in_flight -= 1
            if endpoint.downs == downs:  # marked down meanwhile (another call, the probe): newer news
                endpoint.mark_up()
            return result
        if len(self.endpoints) == 1 and first_error is not None:
            raise first_error  # word for word as one TritonModels raises it
        raise Unavailable(self._none_answered(tried))

    def _none_answered(self, tried: set[str]) -> str:
        """Every endpoint and why it did not answer: the error of this call's try, or the
        back-off it is in (the error that started it)."""
        now = self._clock()
        parts = [
            f"{e.url}: {e.last_error}"
            if e.url in tried
            else f"{e.url}: down for {max(0.0, e.down_until - now):.1f} s more ({e.last_error})"
            for e in self.endpoints
        ]
        return f"no Triton endpoint of {SETTING} answered: " + "; ".join(parts)
