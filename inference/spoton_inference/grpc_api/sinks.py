"""``spoton.v1.SinkService``: event sinks (webhooks, MQTT) and their deliveries, over
services/sink_service.py; with the conversions between its messages and the core's records.
No message built here carries a sink's secret."""

from __future__ import annotations

from spoton.v1 import sinks_pb2, sinks_pb2_grpc
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api.convert import timestamp
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.sink_service import NewSink, SinkPatch, SinkService
from spoton_inference.services.sinks import DeliveryRecord, DeliveryState, SinkKind, SinkRecord

KINDS = {sinks_pb2.SINK_KIND_WEBHOOK: SinkKind.WEBHOOK, sinks_pb2.SINK_KIND_MQTT: SinkKind.MQTT}
KIND_VALUES = {kind: value for value, kind in KINDS.items()}
STATES = {
    sinks_pb2.DELIVERY_STATE_PENDING: DeliveryState.PENDING,
    sinks_pb2.DELIVERY_STATE_DELIVERED: DeliveryState.DELIVERED,
    sinks_pb2.DELIVERY_STATE_FAILED: DeliveryState.FAILED,
    sinks_pb2.DELIVERY_STATE_DROPPED: DeliveryState.DROPPED,
}
STATE_VALUES = {state: value for value, state in STATES.items()}


class SinkServicer(sinks_pb2_grpc.SinkServiceServicer):
    def __init__(self, sinks: SinkService) -> None:
        self.sinks = sinks

    @unary
    async def CreateSink(self, request, context):
        if request.kind not in KINDS:
            raise InvalidArgument("kind is required: SINK_KIND_WEBHOOK or SINK_KIND_MQTT")
        new = NewSink(
            environment_id=request.environment_id,
            name=request.name,
            kind=KINDS[request.kind],
            url=request.url,
            event_types=list(request.event_types),
            secret=request.secret,
            topic_prefix=request.topic_prefix,
            enabled=request.enabled if request.HasField("enabled") else True,
        )
        return sink(await self.sinks.create(new))

    @unary
    async def ListSinks(self, request, context):
        records = await self.sinks.list(request.environment_id)
        return sinks_pb2.ListSinksResponse(sinks=[sink(r) for r in records])

    @unary
    async def GetSink(self, request, context):
        return sink(await self.sinks.get(request.sink_id))

    @unary
    async def UpdateSink(self, request, context):
        def field(name: str) -> object:
            return getattr(request, name) if request.HasField(name) else None

        patch = SinkPatch(
            name=field("name"),  # type: ignore[arg-type]
            url=field("url"),  # type: ignore[arg-type]
            event_types=list(request.event_types.values) if request.HasField("event_types") else None,
            secret=field("secret"),  # type: ignore[arg-type]
            topic_prefix=field("topic_prefix"),  # type: ignore[arg-type]
            enabled=field("enabled"),  # type: ignore[arg-type]
        )
        return sink(await self.sinks.update(request.sink_id, patch))

    @unary
    async def DeleteSink(self, request, context):
        await self.sinks.delete(request.sink_id)
        return sinks_pb2.DeleteSinkResponse()

    @unary
    async def ListSinkDeliveries(self, request, context):
        if request.state and request.state not in STATES:
            raise InvalidArgument(f"state {request.state} is not a DeliveryState")
        rows, token = await self.sinks.deliveries(
            request.sink_id, STATES.get(request.state), request.page_size, request.page_token
        )
        return sinks_pb2.ListSinkDeliveriesResponse(deliveries=[delivery(r) for r in rows], next_page_token=token)


def sink(record: SinkRecord) -> sinks_pb2.Sink:
    s, st = record.sink, record.status
    status = sinks_pb2.SinkStatus(
        pending=st.pending,
        delivered=st.delivered,
        failed=st.failed,
        dropped=st.dropped,
        last_error=st.last_error,
    )
    if st.last_error_at is not None:
        status.last_error_at.CopyFrom(timestamp(st.last_error_at))
    if st.last_delivered_at is not None:
        status.last_delivered_at.CopyFrom(timestamp(st.last_delivered_at))
    return sinks_pb2.Sink(
        sink_id=s.sink_id,
        environment_id=s.environment_id,
        name=s.name,
        kind=KIND_VALUES[s.kind],
        url=s.url,
        topic_prefix=s.topic_prefix if s.kind is SinkKind.MQTT else "",
        event_types=sorted(s.event_types),
        enabled=s.enabled,
        has_secret=record.has_secret,
        status=status,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )


def delivery(r: DeliveryRecord) -> sinks_pb2.SinkDelivery:
    out = sinks_pb2.SinkDelivery(
        delivery_id=r.delivery_id,
        sink_id=r.sink_id,
        event_type=r.event_type,
        camera_id=r.camera_id,
        task_id=r.task_id,
        occurred_at=timestamp(r.occurred_at),
        state=STATE_VALUES[r.state],
        attempts=r.attempts,
        last_error=r.last_error,
        created_at=timestamp(r.created_at),
    )
    if r.next_attempt_at is not None:
        out.next_attempt_at.CopyFrom(timestamp(r.next_attempt_at))
    if r.finished_at is not None:
        out.finished_at.CopyFrom(timestamp(r.finished_at))
    return out
