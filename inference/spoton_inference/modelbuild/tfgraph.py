"""Read a TensorFlow frozen ``GraphDef`` without TensorFlow.

The schema below is the subset of TensorFlow's ``tensorflow/core/framework``
protos (``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
``tensor.proto``, ``tensor_shape.proto``, ``types.proto``) that a frozen
inference graph uses, with the upstream field numbers. Fields we never read are
left out; protobuf skips unknown fields, so that is safe. It is compiled with
``grpc_tools.protoc`` into a descriptor set at load time and turned into
message classes in a private descriptor pool, so nothing is generated on disk
and nothing clashes with a real TensorFlow install.

Example:
    >>> from spoton_inference.modelbuild.ssdlite import default_graph_path
    >>> graph = load_graph(default_graph_path())
    >>> graph["image_tensor"].op, graph["image_tensor"].attrs["shape"]
    ('Placeholder', (-1, -1, -1, 3))
"""

from __future__ import annotations

import dataclasses
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PROTO_NAME = "spoton_tf_graph_subset.proto"

_PROTO_SOURCE = """
syntax = "proto3";
package spoton_tf_subset;

enum DataType {
  DT_INVALID = 0;
  DT_FLOAT = 1;
  DT_DOUBLE = 2;
  DT_INT32 = 3;
  DT_UINT8 = 4;
  DT_INT16 = 5;
  DT_INT8 = 6;
  DT_STRING = 7;
  DT_COMPLEX64 = 8;
  DT_INT64 = 9;
  DT_BOOL = 10;
  DT_HALF = 19;
}

message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  DataType dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated int32 half_val = 13 [packed = true];
  repeated float float_val = 5 [packed = true];
  repeated double double_val = 6 [packed = true];
  repeated int32 int_val = 7 [packed = true];
  repeated bytes string_val = 8;
  repeated int64 int64_val = 10 [packed = true];
  repeated bool bool_val = 11 [packed = true];
}

message AttrValue {
  message ListValue {
    repeated bytes s = 2;
    repeated int64 i = 3 [packed = true];
    repeated float f = 4 [packed = true];
    repeated bool b = 5 [packed = true];
    repeated DataType type = 6 [packed = true];
    repeated TensorShapeProto shape = 7;
    repeated TensorProto tensor = 8;
  }
  oneof value {
    bytes s = 2;
    int64 i = 3;
    float f = 4;
    bool b = 5;
    DataType type = 6;
    TensorShapeProto shape = 7;
    TensorProto tensor = 8;
    ListValue list = 1;
    string placeholder = 9;
  }
}

message NodeDef {
  string name = 1;
  string op = 2;
  repeated string input = 3;
  string device = 4;
  map<string, AttrValue> attr = 5;
}

message GraphDef {
  repeated NodeDef node = 1;
  int32 version = 3;
}
"""

_DT_STRING = 7
# TF DataType enum value -> numpy dtype, for the types a frozen graph's consts use.
NUMPY_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    19: np.dtype(np.float16),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """One graph node with its attributes decoded to plain Python/numpy values."""

    name: str
    op: str
    # Data inputs as "node" or "node:k"; control inputs ("^node") are dropped
    # because a frozen inference graph has no side effects to order.
    inputs: tuple[str, ...]
    attrs: dict[str, Any]


def _compile_schema() -> type:
    """Compile the schema with protoc and return the ``GraphDef`` message class."""
    # Imported here so that merely importing this module (e.g. for doctests or
    # the anchor maths) does not pull in grpc_tools.
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / _PROTO_NAME
        src.write_text(_PROTO_SOURCE)
        out = Path(tmp) / "schema.pb"
        rc = protoc.main(["protoc", f"-I{tmp}", f"--descriptor_set_out={out}", str(src)])
        if rc != 0:
            raise RuntimeError(f"protoc failed ({rc}) on the embedded TF GraphDef schema")
        file_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    classes = message_factory.GetMessageClassesForFiles([pool.Add(f).name for f in file_set.file], pool)
    return classes["spoton_tf_subset.GraphDef"]


def tensor_to_numpy(tensor: Any) -> np.ndarray:
    """Decode a ``TensorProto`` message into a numpy array of its shape."""
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if tensor.dtype == _DT_STRING:
        # Only assertion messages and the like; kept so the whole graph parses.
        return np.array(list(tensor.string_val), dtype=object)
    dtype = NUMPY_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ValueError(f"unsupported TF dtype enum {tensor.dtype}")
    count = int(np.prod(shape, dtype=np.int64))
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    if dtype == np.float32:
        values: Any = tensor.float_val
    elif dtype == np.float64:
        values = tensor.double_val
    elif dtype == np.int64:
        values = tensor.int64_val
    elif dtype == np.bool_:
        values = tensor.bool_val
    elif dtype == np.float16:
        values = np.array(tensor.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = tensor.int_val
    flat = np.array(values, dtype=dtype)
    # TF's scalar-fill rule: a single value (or none) is broadcast to the shape.
    if flat.size != count:
        if flat.size > 1:
            raise ValueError(f"tensor has {flat.size} values for shape {shape}")
        flat = np.full(count, flat[0] if flat.size else 0, dtype=dtype)
    return flat.reshape(shape)


def _attr_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "tensor":
        return tensor_to_numpy(value.tensor)
    if kind == "shape":
        return tuple(int(d.size) for d in value.shape.dim)
    if kind == "s":
        return value.s.decode()
    if kind == "list":
        lst = value.list
        if lst.i:
            return tuple(int(i) for i in lst.i)
        if lst.f:
            return tuple(float(f) for f in lst.f)
        if lst.s:
            return tuple(s.decode() for s in lst.s)
        if lst.type:
            return tuple(int(t) for t in lst.type)
        # Empty, or lists of shapes/tensors (e.g. "_output_shapes"), which the
        # converter never reads.
        return ()
    if kind is None:
        return None
    return getattr(value, kind)


def parse_graph(data: bytes) -> dict[str, Node]:
    """Parse serialized ``GraphDef`` bytes into nodes keyed by name, in graph order."""
    graph_def = _compile_schema().FromString(data)
    return {
        n.name: Node(
            name=n.name,
            op=n.op,
            inputs=tuple(i for i in n.input if not i.startswith("^")),
            attrs={k: _attr_value(v) for k, v in n.attr.items()},
        )
        for n in graph_def.node
    }


def load_graph(path: Traversable) -> dict[str, Node]:
    """Parse a frozen ``.pb`` file (on disk or inside a wheel); see :func:`parse_graph`."""
    return parse_graph(path.read_bytes())
