"""A small ONNX graph builder: nodes, numpy initializers, unique names.

Example:
    >>> import numpy as np
    >>> b = GraphBuilder()
    >>> y = b.op("Mul", ["x", b.const(np.float32(2.0), "two")])
    >>> b.initializers["two"].dtype, y
    (dtype('float32'), 'Mul_0')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
# IR 8 is what opset 17 shipped with; pinning it keeps the files loadable by
# older onnxruntime builds than the one that built them.
IR_VERSION = 8


class GraphBuilder:
    """Accumulates ONNX nodes and initializers; initializers stay numpy until
    :meth:`make_model`, so later passes (BatchNorm folding) can still edit them."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._counter = 0

    def fresh(self, hint: str) -> str:
        """A new tensor name, readable and unique."""
        name = f"{hint}_{self._counter}"
        self._counter += 1
        return name

    def const(self, value: Any, hint: str) -> str:
        """Register ``value`` as an initializer and return its name."""
        name = hint if hint not in self.initializers else self.fresh(hint)
        self.initializers[name] = np.asarray(value)
        return name

    def op(
        self, op_type: str, inputs: Sequence[str], hint: str | None = None, out: str | None = None, **attrs: Any
    ) -> str:
        """Append a single-output node and return its output name (``out`` if given)."""
        out = out or self.fresh(hint or op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def make_model(
        self,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        name: str,
        metadata: dict[str, str],
    ) -> onnx.ModelProto:
        """Assemble the graph, stamp ``metadata`` into the model and check it."""
        graph = helper.make_graph(
            self.nodes,
            name,
            list(inputs),
            list(outputs),
            initializer=[numpy_helper.from_array(v, k) for k, v in self.initializers.items()],
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="spoton_inference.modelbuild",
            ir_version=IR_VERSION,
        )
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model, full_check=True)
        return model
