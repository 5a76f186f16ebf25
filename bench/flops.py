"""Model FLOPs from the ONNX graph: 2 x multiply-accumulates of Conv, MatMul and Gemm, via shape inference."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

logger = logging.getLogger(__name__)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    graph = model.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = [d.dim_value for d in info.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims):
            shapes[info.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def model_gflops(path: Path, input_shape: tuple[int, int, int, int]) -> float:
    """GFLOPs of one forward pass at `input_shape` (N, C, H, W); dynamic input dims are fixed first."""
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, input_shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    shapes = _shapes(shape_inference.infer_shapes(model))
    macs = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if out is None:
            continue
        if node.op_type == "Conv":
            macs += int(np.prod(out)) * int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes.get(node.input[0])
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            if a is not None:
                macs += int(np.prod(out)) * (a[-2] if trans_a else a[-1])
    return 2 * macs / 1e9
