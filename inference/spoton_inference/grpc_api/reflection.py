"""Server reflection that also answers method symbols, under both v1 and v1alpha.

grpcio-reflection looks symbols up with ``DescriptorPool.FindFileContainingSymbol``, which
does not know method names, so ``ghz``/``grpcurl`` lookups of ``pkg.Service.Method`` fail
with "Symbol not found". We resolve ``Service.Method`` to its service's file. Newer clients
ask ``grpc.reflection.v1`` first; its messages are identical to v1alpha's on the wire, so
one servicer serves both names.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_reflection.v1alpha._base import _file_descriptor_response, _not_found_error

SERVICE_NAMES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")


class MethodAwareReflectionServicer(ReflectionServicer):
    def _file_containing_symbol(self, request, fully_qualified_name):
        try:
            file = self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            service_name, _, method = fully_qualified_name.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                return _not_found_error(request)
            if method not in service.methods_by_name:
                return _not_found_error(request)
            file = service.file
        return _file_descriptor_response(file, request)


def add_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    servicer = MethodAwareReflectionServicer([*service_names, *SERVICE_NAMES], pool=descriptor_pool.Default())
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for name in SERVICE_NAMES:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}),)
        )
