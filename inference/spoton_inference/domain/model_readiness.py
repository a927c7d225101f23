"""One Triton endpoint's readiness, as a probe found it: its server and each model.

>>> EndpointReadiness("a:8001", True, {"detector": True, "reid": False}).ready
False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointReadiness:
    url: str
    server: bool
    models: Mapping[str, bool]
    # Why the probe could not tell, if it could not ("" when the endpoint answered).
    problem: str = ""

    @property
    def ready(self) -> bool:
        return self.server and all(self.models.values())
