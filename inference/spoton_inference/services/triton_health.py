"""The ``triton`` and ``model:<name>`` health components, from each Triton endpoint's readiness.

With one endpoint (the default) they read as they always have: ``triton`` healthy or failed
with the endpoint's URL as detail, each model healthy or failed. With several
(SPOTON_TRITON_GRPC_URL lists them; pipeline/triton_pool.py), a component is healthy when
every endpoint has it ready, degraded when some do (the others' requests go to those), and
failed when none does; the detail says which endpoint is up or down.

Example:
    >>> a = EndpointReadiness("a:8001", True, {"detector": True})
    >>> b = EndpointReadiness("b:8001", False, {"detector": False})
    >>> for c in triton_components([a, b]):
    ...     print(c.name, c.status, c.detail, sep=" | ")
    triton | degraded | 1 of 2 endpoints up: a:8001 up; b:8001 down
    model:detector | degraded | ready on a:8001; not on b:8001
"""

from __future__ import annotations

from collections.abc import Sequence

from spoton_inference.domain.model_readiness import EndpointReadiness
from spoton_inference.services.health import DEGRADED, FAILED, HEALTHY, ComponentHealth


def triton_components(probes: Sequence[EndpointReadiness]) -> list[ComponentHealth]:
    """``triton`` then ``model:<name>`` for each model, over the endpoints in ``probes``."""
    if len(probes) == 1:
        (only,) = probes
        detail = f"{only.url}: {only.problem}" if only.problem else only.url
        out = [ComponentHealth("triton", HEALTHY if only.server else FAILED, detail)]
        return out + [ComponentHealth(f"model:{name}", HEALTHY if ok else FAILED) for name, ok in only.models.items()]
    up = [p for p in probes if p.server]
    listing = "; ".join(_state(p) for p in probes)
    summary = f"{len(up)} of {len(probes)} endpoints up: {listing}"
    out = [ComponentHealth("triton", _status(len(up), len(probes)), summary)]
    for name in probes[0].models if probes else ():
        ready = [p.url for p in probes if p.models.get(name)]
        not_ready = [p.url for p in probes if not p.models.get(name)]
        detail = "; ".join(part for part in (_list("ready on", ready), _list("not on", not_ready)) if part)
        out.append(ComponentHealth(f"model:{name}", _status(len(ready), len(probes)), detail))
    return out


def _state(probe: EndpointReadiness) -> str:
    if probe.server:
        return f"{probe.url} up"
    return f"{probe.url} down ({probe.problem})" if probe.problem else f"{probe.url} down"


def _status(ready: int, total: int) -> str:
    return HEALTHY if ready == total else DEGRADED if ready else FAILED


def _list(prefix: str, urls: list[str]) -> str:
    return f"{prefix} {', '.join(urls)}" if urls else ""
