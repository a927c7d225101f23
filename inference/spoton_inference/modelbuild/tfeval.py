"""Evaluate constant TensorFlow subgraphs with numpy (constant folding).

A frozen SSD graph computes its anchors and all of its reshape targets from
constants and static shapes. The converter folds those here instead of
emitting them into ONNX, so the exported model holds the graph's own numbers.
Only the ops such subgraphs use are implemented; anything else raises, so a
graph that needs more fails loudly at build time rather than silently.

Example:
    >>> import numpy as np
    >>> from spoton_inference.modelbuild.tfgraph import Node
    >>> nodes = {
    ...     "a": Node("a", "Const", (), {"value": np.array([1.0, 4.0], np.float32)}),
    ...     "b": Node("b", "Sqrt", ("a",), {}),
    ... }
    >>> ConstantFolder(nodes).value("b").tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from spoton_inference.modelbuild.tfgraph import NUMPY_DTYPES, Node

_Kernel = Callable[[Node, list[np.ndarray]], list[np.ndarray]]


def split_ref(ref: str) -> tuple[str, int]:
    """Split a TF input reference ``"node:k"`` into ``("node", k)``.

    >>> split_ref("concat"), split_ref("unstack:3")
    (('concat', 0), ('unstack', 3))
    """
    name, _, index = ref.partition(":")
    return name, int(index) if index else 0


def _strided_slice(node: Node, x: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray) -> np.ndarray:
    if node.attrs.get("ellipsis_mask", 0) or node.attrs.get("new_axis_mask", 0):
        raise NotImplementedError(f"{node.name}: ellipsis/new_axis StridedSlice")
    begin_mask = node.attrs.get("begin_mask", 0)
    end_mask = node.attrs.get("end_mask", 0)
    shrink_mask = node.attrs.get("shrink_axis_mask", 0)
    index: list[int | slice] = []
    for axis, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)):
        if shrink_mask & (1 << axis):
            index.append(int(b))
            continue
        index.append(slice(None if begin_mask & (1 << axis) else b, None if end_mask & (1 << axis) else e, s))
    return np.asarray(x[tuple(index)])


def _slice(x: np.ndarray, begin: np.ndarray, size: np.ndarray) -> np.ndarray:
    index = tuple(slice(b, None if n == -1 else b + n) for b, n in zip(begin.tolist(), size.tolist(), strict=True))
    return x[index]


def _cast(node: Node, x: np.ndarray) -> np.ndarray:
    return x.astype(NUMPY_DTYPES[node.attrs["DstT"]])


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Kernel:
    # TF keeps the operand dtype (float32 stays float32), numpy may promote a
    # 0-d operand; casting back keeps folded values bit-identical to TF's.
    return lambda _n, xs: [np.asarray(fn(xs[0], xs[1])).astype(xs[0].dtype)]


_KERNELS: dict[str, _Kernel] = {
    "Identity": lambda _n, xs: [xs[0]],
    "Cast": lambda n, xs: [_cast(n, xs[0])],
    "Add": _binary(np.add),
    "AddV2": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "RealDiv": _binary(np.divide),
    "Minimum": _binary(np.minimum),
    "Maximum": _binary(np.maximum),
    "Sqrt": lambda _n, xs: [np.sqrt(xs[0])],
    "Range": lambda _n, xs: [np.arange(xs[0], xs[1], xs[2], dtype=xs[0].dtype)],
    "Reshape": lambda _n, xs: [xs[0].reshape(xs[1].tolist())],
    "ExpandDims": lambda _n, xs: [np.expand_dims(xs[0], int(xs[1]))],
    "Squeeze": lambda n, xs: [np.squeeze(xs[0], axis=tuple(n.attrs["squeeze_dims"]) or None)],
    "Tile": lambda _n, xs: [np.tile(xs[0], xs[1].tolist())],
    "Fill": lambda _n, xs: [np.full(xs[0].tolist(), xs[1], dtype=xs[1].dtype)],
    "Pack": lambda n, xs: [np.stack(xs, axis=n.attrs.get("axis", 0))],
    "Unpack": lambda n, xs: list(np.moveaxis(xs[0], n.attrs.get("axis", 0), 0)),
    "ConcatV2": lambda _n, xs: [np.concatenate(xs[:-1], axis=int(xs[-1]))],
    "Slice": lambda _n, xs: [_slice(*xs)],
    "StridedSlice": lambda n, xs: [_strided_slice(n, *xs)],
    "Transpose": lambda _n, xs: [np.transpose(xs[0], xs[1].tolist())],
}


class ConstantFolder:
    """Evaluate node outputs that depend only on constants and known shapes.

    ``shapes`` gives static shapes of non-constant tensors (e.g. feature maps),
    so ``Shape`` ops on them fold too.
    """

    def __init__(self, nodes: Mapping[str, Node], shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        self._nodes = nodes
        self._shapes = shapes if shapes is not None else {}
        self._cache: dict[str, list[np.ndarray]] = {}

    def can_fold(self, ref: str) -> bool:
        """True when ``ref`` is computable from constants and known shapes."""
        name, _ = split_ref(ref)
        if name in self._cache:
            return True
        stack, seen = [name], set()
        while stack:
            current = stack.pop()
            if current in seen or current in self._cache:
                continue
            seen.add(current)
            node = self._nodes[current]
            if node.op == "Const":
                continue
            if node.op == "Shape":
                if node.inputs[0] not in self._shapes and not self.can_fold(node.inputs[0]):
                    return False
                continue
            if node.op not in _KERNELS:
                return False
            stack.extend(split_ref(i)[0] for i in node.inputs)
        return True

    def value(self, ref: str) -> np.ndarray:
        """The folded value of ``ref`` (``"node"`` or ``"node:k"``)."""
        name, index = split_ref(ref)
        self._evaluate(name)
        return self._cache[name][index]

    def _evaluate(self, root: str) -> None:
        # Iterative post-order: anchor subgraphs are deep enough to make
        # recursion fragile.
        stack = [root]
        while stack:
            name = stack[-1]
            if name in self._cache:
                stack.pop()
                continue
            node = self._nodes[name]
            pending = [
                n
                for n in (split_ref(i)[0] for i in node.inputs)
                if n not in self._cache and not (node.op == "Shape" and node.inputs[0] in self._shapes)
            ]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._cache[name] = self._run(node)

    def _run(self, node: Node) -> list[np.ndarray]:
        if node.op == "Const":
            return [node.attrs["value"]]
        if node.op == "Shape":
            source = node.inputs[0]
            shape = self._shapes[source] if source in self._shapes else self.value(source).shape
            return [np.asarray(shape, dtype=NUMPY_DTYPES[node.attrs.get("out_type", 3)])]
        kernel = _KERNELS.get(node.op)
        if kernel is None:
            raise NotImplementedError(f"cannot fold {node.op} ({node.name})")
        return kernel(node, [self.value(i) for i in node.inputs])
