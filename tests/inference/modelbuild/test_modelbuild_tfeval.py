"""Constant folding of small TF subgraphs."""

from __future__ import annotations

import numpy as np
import pytest

from spoton_inference.modelbuild.tfeval import ConstantFolder
from spoton_inference.modelbuild.tfgraph import Node


def _const(name: str, value: object, dtype: type = np.int32) -> Node:
    return Node(name, "Const", (), {"value": np.asarray(value, dtype)})


def test_strided_slice_shrink_and_pack() -> None:
    nodes = {
        n.name: n
        for n in (
            Node("x", "Placeholder", (), {}),
            Node("shape", "Shape", ("x",), {"out_type": 3}),
            _const("b", [0]),
            _const("e", [1]),
            _const("s", [1]),
            Node("batch", "StridedSlice", ("shape", "b", "e", "s"), {"shrink_axis_mask": 1}),
            _const("minus1", -1),
            _const("four", 4),
            Node("target", "Pack", ("batch", "minus1", "four"), {"axis": 0}),
        )
    }
    folder = ConstantFolder(nodes, {"x": (1, 19, 19, 12)})
    assert folder.can_fold("target")
    assert folder.value("target").tolist() == [1, -1, 4]
    assert folder.value("batch").shape == ()


def test_float_ops_stay_float32() -> None:
    nodes = {
        n.name: n
        for n in (
            _const("n", 19),
            Node("nf", "Cast", ("n",), {"DstT": 1}),
            _const("one", 1.0, np.float32),
            Node("step", "RealDiv", ("one", "nf"), {}),
            _const("r0", 0),
            _const("r1", 1),
            Node("idx", "Range", ("r0", "n", "r1"), {}),
            Node("idxf", "Cast", ("idx",), {"DstT": 1}),
            Node("centers", "Mul", ("idxf", "step"), {}),
            Node("parts", "Unpack", ("centers",), {"axis": 0}),
        )
    }
    folder = ConstantFolder(nodes)
    centers = folder.value("centers")
    assert centers.dtype == np.float32 and centers.shape == (19,)
    assert folder.value("parts:3") == np.float32(3) / np.float32(19)


def test_unfoldable_inputs_are_reported() -> None:
    nodes = {
        n.name: n
        for n in (
            Node("x", "Placeholder", (), {}),
            Node("y", "Relu", ("x",), {}),
            Node("s", "Shape", ("y",), {}),
        )
    }
    folder = ConstantFolder(nodes)
    assert not folder.can_fold("s")
    with pytest.raises(NotImplementedError, match="Placeholder"):
        folder.value("y")
