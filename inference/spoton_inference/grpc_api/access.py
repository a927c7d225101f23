"""Who may call what: every RPC the server hosts, by full method name, with the least role
that may call it, or :data:`OPEN` for no credential at all.

The auth interceptor (grpc_api/auth.py) refuses a method missing here, so a new RPC is
closed until it is given a role; tests/integration/test_access_matrix.py checks this table
against the descriptors.

    >>> ACCESS["/spoton.v1.TaskService/StartTask"].name, required("/grpc.health.v1.Health/Check")
    ('OPERATOR', 'open')
"""

from __future__ import annotations

from typing import Final, Literal

from spoton_inference.domain.principal import Role

Open = Literal["open"]
OPEN: Final[Open] = "open"
V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

_BY_SERVICE: dict[str, dict[str, Role | Open]] = {
    "spoton.v1.CatalogService": {
        "RegisterEnvironmentFromDirectory": A,
        "ListEnvironments": V,
        "GetEnvironment": V,
        "CreateEnvironment": A,
        "UpdateEnvironment": A,
        "DeleteEnvironment": A,
        "ListCameras": V,
        "GetCamera": V,
        "CreateCamera": A,
        "UpdateCamera": A,
        "DeleteCamera": A,
        # Connects to a camera's source: a probe of the network, so admin only.
        "TestCameraConnection": A,
        "GetCameraSnapshot": V,
        "ListCameraHealth": V,
    },
    "spoton.v1.TaskService": {
        "StartTask": OP,
        "GetTask": V,
        "ListTasks": V,
        "ControlTask": OP,
        "WatchTask": V,
        "ListTaskExports": V,
        "GetTaskExport": V,
    },
    "spoton.v1.InferenceService": {
        # Each call spends GPU time.
        "Detect": OP,
        "StreamFrames": OP,
    },
    "spoton.v1.SystemService": {
        # Names internal endpoints and logs; grpc.health.v1 is the open probe.
        "GetHealth": V,
    },
    "spoton.v1.AnalyticsService": {
        "GetTrajectory": V,
        "GetHeatmap": V,
        "GetCounts": V,
        "GetDwell": V,
        "ListZones": V,
        "GetZone": V,
        "CreateZone": OP,
        "UpdateZone": OP,
        "DeleteZone": OP,
    },
    "spoton.v1.JobService": {
        "UploadJob": OP,
        "GetJob": V,
        "ListJobs": V,
        "CancelJob": OP,
        "DeleteJob": OP,
        "WatchJob": V,
        "GetJobResult": V,
    },
    "spoton.v1.CameraRegistryService": {
        "CreateCameraGroup": A,
        "GetCameraGroup": V,
        "ListCameraGroups": V,
        "UpdateCameraGroup": A,
        "DeleteCameraGroup": A,
        "ImportCameras": A,
        # Carries every camera's source URL (credentials masked): the catalogue admin's.
        "ExportCameras": A,
        "GetCameraSummary": V,
    },
    "spoton.v1.AuthService": {
        "Login": OPEN,
        "WhoAmI": V,
        "CreateApiKey": A,
        "ListApiKeys": A,
        "RevokeApiKey": A,
        "CreateUser": A,
        "ListUsers": A,
        "DeleteUser": A,
        "ListAuditEvents": A,
    },
    "spoton.v1.SinkService": {
        # A sink sends an environment's events to a URL of the caller's choosing: managed by
        # the admin, as environments are; its status and deliveries are readable by viewers.
        "CreateSink": A,
        "ListSinks": V,
        "GetSink": V,
        "UpdateSink": A,
        "DeleteSink": A,
        "ListSinkDeliveries": V,
    },
    # Probes and discovery stay open, as is usual (ghz and grpcurl list services with it).
    "grpc.health.v1.Health": {"Check": OPEN, "Watch": OPEN},
    "grpc.reflection.v1alpha.ServerReflection": {"ServerReflectionInfo": OPEN},
    "grpc.reflection.v1.ServerReflection": {"ServerReflectionInfo": OPEN},
}

ACCESS: Final[dict[str, Role | Open]] = {
    f"/{service}/{method}": role for service, methods in _BY_SERVICE.items() for method, role in methods.items()
}


def required(method: str) -> Role | Open | None:
    """The least role ``method`` needs, OPEN, or None for a method not in the table."""
    return ACCESS.get(method)
