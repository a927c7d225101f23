"""Event sinks (SinkService): ``/api/v1/environments/{environment_id}/sinks`` to create and list
an environment's webhooks and MQTT sinks, ``/api/v1/sinks/{sink_id}`` for one, and
``/api/v1/sinks/{sink_id}/deliveries`` for its delivery status. Thin: each route is one RPC,
its errors RFC 9457 problems (problems.py)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from spoton.v1 import sinks_pb2
from spoton_facade import to_proto
from spoton_facade.clients.inference import request_metadata
from spoton_facade.clients.sinks import SinkClient
from spoton_facade.contract import UUID
from spoton_facade.convert import enum_number
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.sinks import (
    DeliveryStateName,
    Sink,
    SinkBody,
    SinkDeliveryPage,
    SinkList,
    SinkPatchBody,
)

WRITE_PROBLEMS = {**problem_responses(404, 409), **UPSTREAM_PROBLEMS}
SinkId = Annotated[str, PathParameter(pattern=UUID)]


def _provide_sinks(state: State, request: Request[Any, Any, Any]) -> SinkClient:
    return SinkClient(state.inference_channel, request_metadata(request))


DEPENDENCIES = {"sinks": Provide(_provide_sinks, sync_to_thread=False)}


class EnvironmentSinksController(Controller):
    path = "/environments"
    tags = ("sinks",)
    dependencies = DEPENDENCIES

    @post(
        "/{environment_id:str}/sinks",
        summary="Create an event sink",
        description="A webhook (signed HTTP POST of each event's JSON) or an MQTT sink for the "
        "environment's selected event types. `secret` is write-only: no answer carries it (`has_secret` "
        "says whether one is set). 400 for a bad or refused URL, an unknown event type or a short webhook "
        "secret; 404 for an unknown environment; 409 when the name is taken. Admin only.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_sink(
        self, environment_id: FromPath[str], data: JSONBody[SinkBody], sinks: NamedDependency[SinkClient]
    ) -> Sink:
        """SinkService.CreateSink."""
        return from_proto(await sinks.create(to_proto.sink(environment_id, data)), Sink)

    @get("/{environment_id:str}/sinks", summary="List an environment's event sinks", responses=LOOKUP_PROBLEMS)
    async def list_sinks(self, environment_id: FromPath[str], sinks: NamedDependency[SinkClient]) -> SinkList:
        """SinkService.ListSinks: each with its delivery status (pending, delivered, failed, dropped)."""
        return from_proto(await sinks.list(environment_id), SinkList)


class SinkController(Controller):
    path = "/sinks"
    tags = ("sinks",)
    dependencies = DEPENDENCIES

    @get("/{sink_id:str}", summary="Get an event sink", responses=LOOKUP_PROBLEMS)
    async def get_sink(self, sink_id: SinkId, sinks: NamedDependency[SinkClient]) -> Sink:
        """SinkService.GetSink: its configuration (never the secret) and delivery status."""
        return from_proto(await sinks.get(sink_id), Sink)

    @patch(
        "/{sink_id:str}",
        summary="Update an event sink",
        description="Only the fields in the body change: `enabled` (a disabled sink queues no new events; its "
        "pending ones wait), `event_types` (replaced as a whole), `url`, `name`, `secret`, `topic_prefix`.",
        responses=WRITE_PROBLEMS,
    )
    async def update_sink(
        self, sink_id: SinkId, data: JSONBody[SinkPatchBody], sinks: NamedDependency[SinkClient]
    ) -> Sink:
        """SinkService.UpdateSink."""
        return from_proto(await sinks.update(to_proto.sink_update(sink_id, data)), Sink)

    @delete(
        "/{sink_id:str}",
        summary="Delete an event sink",
        description="With its pending deliveries.",
        responses=WRITE_PROBLEMS,
    )
    async def delete_sink(self, sink_id: SinkId, sinks: NamedDependency[SinkClient]) -> None:
        """SinkService.DeleteSink."""
        await sinks.delete(sink_id)

    @get(
        "/{sink_id:str}/deliveries",
        summary="List a sink's deliveries",
        description="Newest first; `state` keeps one state; page with `next_page_token`.",
        responses=LOOKUP_PROBLEMS,
    )
    async def list_deliveries(
        self,
        sink_id: SinkId,
        sinks: NamedDependency[SinkClient],
        delivery_state: Annotated[
            DeliveryStateName | None, QueryParameter(name="state", description="Only deliveries in this state")
        ] = None,
        page_size: Annotated[int, QueryParameter(ge=0, le=1000, description="0: the service's default (100)")] = 0,
        page_token: Annotated[str, QueryParameter(description="`next_page_token` of the page before")] = "",
    ) -> SinkDeliveryPage:
        """SinkService.ListSinkDeliveries."""
        request = sinks_pb2.ListSinkDeliveriesRequest(
            sink_id=sink_id,
            state=enum_number(sinks_pb2.DeliveryState.DESCRIPTOR, delivery_state) if delivery_state else 0,
            page_size=page_size,
            page_token=page_token,
        )
        return from_proto(await sinks.deliveries(request), SinkDeliveryPage)
