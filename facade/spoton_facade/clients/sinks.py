"""``spoton.v1.SinkService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

import grpc

from spoton.v1 import sinks_pb2, sinks_pb2_grpc
from spoton_facade.clients.inference import UNARY_TIMEOUT_S, Metadata


class SinkClient:
    """Thin async wrapper over the SinkService stub; ``metadata`` goes on every call."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._stub = sinks_pb2_grpc.SinkServiceStub(channel)

    async def create(self, request: sinks_pb2.CreateSinkRequest) -> sinks_pb2.Sink:
        return await self._stub.CreateSink(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def list(self, environment_id: str) -> sinks_pb2.ListSinksResponse:
        request = sinks_pb2.ListSinksRequest(environment_id=environment_id)
        return await self._stub.ListSinks(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def get(self, sink_id: str) -> sinks_pb2.Sink:
        request = sinks_pb2.GetSinkRequest(sink_id=sink_id)
        return await self._stub.GetSink(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def update(self, request: sinks_pb2.UpdateSinkRequest) -> sinks_pb2.Sink:
        return await self._stub.UpdateSink(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete(self, sink_id: str) -> None:
        request = sinks_pb2.DeleteSinkRequest(sink_id=sink_id)
        await self._stub.DeleteSink(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def deliveries(self, request: sinks_pb2.ListSinkDeliveriesRequest) -> sinks_pb2.ListSinkDeliveriesResponse:
        return await self._stub.ListSinkDeliveries(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)
