"""Schemathesis over the facade's own OpenAPI document, against the real facade over a real
inference service (embedded Triton, PostgreSQL, Redis): no 5xx, every response as documented,
and no schema-valid request rejected.

The inference service under the facade has a database of its own (``service_settings``), so
the environments, zones and groups the fuzzer creates and deletes touch no other test's data.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events
from support.auth import ADMIN_API_KEY

from spoton_facade.settings import FacadeSettings

pytestmark = pytest.mark.integration

SCHEMA_PATH = "/schema/openapi.json"
ENVIRONMENT_ID = "fuzz-site"
# Per operation, phase and generation mode (positive, negative): ~3,700 requests over the 56
# operations, one to two minutes on two cores.
MAX_EXAMPLES = 25
# Fixed, so a failure found in CI is found again on a developer's machine.
SEED = 15
# Bounds every request, the SSE streams (which end with their task) included.
REQUEST_TIMEOUT_S = 10
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "unsupported_method",
    "allow_header_conformance",
    "missing_required_header",
)
# Not negative_data_rejection: Litestar converts bodies leniently (0 for false, "1" for 1), so
# schema-violating values that convert are accepted, by design of the framework.
# A schema-valid request may still name something that is not there (404), clash with what
# is (409), or resume from a point the service no longer keeps (410, see problems.py), or ask
# for a byte range past a file's end (416): none of these says the request was malformed.
# Every request carries the admin's key, so 401 and 403 would be faults.
ACCEPTED_STATUSES = ["2xx", "3xx", "404", "409", "410", "416", "429"]
# (A rule names its operations with one filter: filters in one rule add up, they do not narrow.)
# Operations whose schema-valid requests may still be refused (400) by a rule across fields or
# against stored data, which OpenAPI cannot state; each with the rule:
SEMANTIC_400 = (
    # end_time after start_time; environment_id or task_id; camera_ids and zone_ids of the
    # environment; the task over that environment.
    {"include-path-regex": "^/api/v1/analytics/"},
    # page_token: only a next_page_token this server issued.
    {"include-name": "GET /api/v1/processing-tasks"},
    {"include-name": "GET /api/v1/jobs"},
    {"include-name": "GET /api/v1/audit-events"},
    # An environment that does not exist (a taken user name is 409).
    {"include-name": "POST /api/v1/auth/users"},
    # An expiry already past, an environment that does not exist.
    {"include-name": "POST /api/v1/auth/api-keys"},
    # Homography point pairs that fit (4+ pairs, as many image as map points, not collinear,
    # a non-singular matrix); a source URL of the source's kind; a group of the environment;
    # a value and its clear_* flag not both.
    {"include-name": "POST /api/v1/environments"},
    {"include-path-regex": "^/api/v1/environments/\\{environment_id\\}/cameras(/\\{camera_id\\})?$"},
    # A polygon with an area, no repeated corner and no crossing edges.
    {"include-path-regex": "^/api/v1/environments/\\{environment_id\\}/zones"},
    # A URL of the sink kind's scheme whose host the URL policy allows; a webhook secret of 16+
    # characters; topic_prefix for MQTT only.
    {"include-path-regex": "^/api/v1/environments/\\{environment_id\\}/sinks$"},
    {"include-name": "PATCH /api/v1/sinks/{sink_id}"},
    # page_token: only a next_page_token this server issued.
    {"include-name": "GET /api/v1/sinks/{sink_id}/deliveries"},
)
# Starting a task: camera_ids of the environment (400), and an Idempotency-Key reused with
# another body (422): the fuzzer sends one key value with many bodies.
START = {"include-name": "POST /api/v1/processing-tasks/start"}
# The camera import takes any text as its file, then validates the rows (422 with each error)
# and needs to know the format: from ?format, the file part's type or its name (415 if none).
IMPORT = {"include-name": "POST /api/v1/environments/{environment_id}/cameras/import"}
# Logging in with a generated name and password: 401 (no such user or a wrong password).
LOGIN = {"include-name": "POST /api/v1/auth/login"}
# A job from a generated s3://bucket/key: the test stack has no object store set up (403, saying
# which settings to set); with one, a generated key is missing (404). As for starting a task, an
# Idempotency-Key reused with another body is 422, and a generated key the key rules refuse 400.
FETCH = {"include-name": "POST /api/v1/jobs/:fetch"}
# Not fuzzed, each for a reason:
EXCLUDED = (
    # Uploads stream a video into a job that decodes, detects and renders it: minutes of
    # Triton per accepted case. Their validation has tests of its own (test_routes_jobs.py).
    {"include-name": "POST /api/v1/jobs"},
    # Revoking the admin key the fuzzer runs with (it learns key ids from the key list) would
    # turn every later case into a 401. Revocation has its test (test_auth.py).
    {"include-name": "DELETE /api/v1/auth/api-keys/{key_id}"},
    # Reads a directory on the inference server's disk: a fuzzer must not walk the filesystem.
    {"include-name": "POST /api/v1/environments/:register"},
)


@dataclasses.dataclass
class RunFigures:
    """What the run did: cases sent, and failures by check, each with one example."""

    cases: int = 0
    operations: int = 0
    failures: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, str] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)
    # Operations the run sent no request to.
    untested: list[str] = dataclasses.field(default_factory=list)

    def report(self) -> str:
        lines = [f"{self.cases} cases over {self.operations} operations"]
        lines += [f"{name}: {count}" for name, count in sorted(self.failures.items())]
        lines += [f"--- {key}\n{text}" for key, text in self.examples.items()]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"untested: {label}" for label in self.untested]
        return "\n".join(lines)


def _config(base_url: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "request-timeout": REQUEST_TIMEOUT_S,
            # The test stacks' bootstrap admin: every route is open to it.
            "headers": {"Authorization": f"Bearer {ADMIN_API_KEY}"},
            # Every failure, not the first of each operation: the figures count them all.
            "continue-on-failure": True,
            # The stateful phase chains operations by inferred links; the facade declares none.
            "phases": {"stateful": {"enabled": False}},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "positive_data_acceptance": {"enabled": True, "expected-statuses": ACCEPTED_STATUSES},
            },
            "operations": [
                *({**rule, "enabled": False} for rule in EXCLUDED),
                *(_also_accept(rule, "400") for rule in SEMANTIC_400),
                _also_accept(START, "400", "422"),
                _also_accept(IMPORT, "415", "422"),
                _also_accept(LOGIN, "401"),
                _also_accept(FETCH, "400", "403", "404", "422"),
            ],
        }
    )


def _also_accept(rule: dict[str, str], *statuses: str) -> dict[str, Any]:
    return {**rule, "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED_STATUSES, *statuses]}}}


def _example(recorder: Any, case_id: str, info: Any) -> str:
    """The failure, how to reproduce it, and what the facade answered."""
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    answer = f"-> {response.status_code} {response.content[:300]!r}" if response is not None else "-> no response"
    return f"{info.failure.message}\n{info.code_sample}\n{answer}"


def _run(base_url: str) -> RunFigures:
    """The engine the CLI runs (examples, coverage and fuzzing phases), tallied."""
    schema = schemathesis.openapi.from_url(base_url + SCHEMA_PATH, config=_config(base_url))
    figures = RunFigures()
    labels: set[str] = set()
    for event in schemathesis.engine.from_schema(schema).execute():
        # Scenarios of the examples and coverage phases; those of the fuzzing phase.
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            if recorder.interactions:
                labels.add(recorder.label)
            figures.cases += len(recorder.interactions)
            for case_id, case_checks in recorder.checks.items():
                for check in case_checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    figures.failures[check.name] += 1
                    key = f"{check.name}: {failure.operation}: {failure.title}"
                    figures.examples.setdefault(key, _example(recorder, case_id, check.failure_info))
        elif isinstance(event, events.NonFatalError):
            figures.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    figures.operations = len(labels)
    figures.untested = sorted(
        # The document's operations, unfiltered by the configuration.
        {result.ok().label for result in schemathesis.openapi.from_dict(schema.raw_schema).get_all_operations()}
        - labels
        - {rule["include-name"] for rule in EXCLUDED}
    )
    return figures


@pytest.fixture(scope="module")
async def fuzzed_facade_url(live_service, service_settings, serve_facade) -> AsyncIterator[str]:
    """The facade over an inference service of its own, with one registered environment (so
    list and lookup answers carry real data too)."""
    from spoton_inference.app import InferenceApp
    from spoton_inference.grpc_server import build_server

    settings = await service_settings("spoton_schemathesis")
    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        await app.warm_up()  # /health answers 503 until the models are warm
        await app.catalog.register_directory(str(live_service.make_environment(ENVIRONMENT_ID)))
        facade = FacadeSettings(
            inference_target=f"{settings.grpc_host}:{settings.grpc_port}", media_root=settings.media_root
        )
        async with serve_facade(facade) as url:
            yield url
    finally:
        await server.stop(grace=1.0)
        await app.close()


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(fuzzed_facade_url: str) -> None:
    # The engine's HTTP calls block: it runs in a thread while this loop serves the facade
    # and the gRPC service.
    figures = await asyncio.to_thread(_run, fuzzed_facade_url)
    print(figures.report())  # the figures the CI log keeps
    assert figures.cases > 0
    assert not figures.failures and not figures.errors and not figures.untested, figures.report()
