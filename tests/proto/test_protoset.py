"""The shipped ``proto/spoton.protoset`` (for ``grpcurl``/``ghz --protoset``) is current: it is
what compiling the ``.proto`` sources gives now, and it carries every RPC."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

PROTO = Path(__file__).resolve().parents[2] / "proto"


def _load(path: Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def test_the_protoset_is_regenerated_from_the_sources(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.protoset"
    sources = sorted(str(p.relative_to(PROTO)) for p in (PROTO / "spoton" / "v1").glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--descriptor_set_out={fresh}",
        "--include_imports",
        "--include_source_info",
        *sources,
    ]
    assert protoc.main(args) == 0
    assert _load(PROTO / "spoton.protoset") == _load(fresh), "run `make proto` (proto/generate.py)"


def test_the_protoset_carries_every_rpc() -> None:
    methods = {
        f"{f.package}.{s.name}/{m.name}"
        for f in _load(PROTO / "spoton.protoset").file
        for s in f.service
        for m in s.method
    }
    assert {
        "spoton.v1.CatalogService/CreateEnvironment",
        "spoton.v1.CatalogService/UpdateEnvironment",
        "spoton.v1.CatalogService/DeleteEnvironment",
        "spoton.v1.CatalogService/GetCamera",
        "spoton.v1.CatalogService/CreateCamera",
        "spoton.v1.CatalogService/UpdateCamera",
        "spoton.v1.CatalogService/DeleteCamera",
        "spoton.v1.CatalogService/RegisterEnvironmentFromDirectory",
        "spoton.v1.TaskService/ControlTask",
        "spoton.v1.TaskService/ListTasks",
        "spoton.v1.TaskService/WatchTask",
        "spoton.v1.InferenceService/Detect",
        "spoton.v1.SystemService/GetHealth",
        "spoton.v1.AnalyticsService/GetTrajectory",
        "spoton.v1.AnalyticsService/GetHeatmap",
        "spoton.v1.AnalyticsService/GetCounts",
        "spoton.v1.AnalyticsService/GetDwell",
        "spoton.v1.AnalyticsService/CreateZone",
    } <= methods
