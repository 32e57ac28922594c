"""Conversions between the user's arrays (source layout, float) and graph tensors (NHWC, int8)."""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph
from mcuc.quant import dequantize_array, quantize_array


def _layout(g: Graph, key: str, name: str) -> str:
    return str(g.meta.get(key, {}).get(name, g.layout))


def to_graph_layout(g: Graph, name: str, arr: np.ndarray) -> np.ndarray:
    """Source-layout array (NCHW for ONNX) -> the graph's layout for input ``name``."""
    if arr.ndim == 4 and _layout(g, "input_layouts", name) == "NCHW" and g.layout == "NHWC":
        return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(arr)


def from_graph_layout(g: Graph, name: str, arr: np.ndarray) -> np.ndarray:
    """Graph-layout output array -> the source model's layout for output ``name``."""
    if arr.ndim == 4 and _layout(g, "output_layouts", name) == "NCHW" and g.layout == "NHWC":
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    return np.ascontiguousarray(arr)


def source_shape(g: Graph, name: str) -> tuple[int, ...]:
    """Shape of a graph input/output as the user sees it (source layout)."""
    shape = tuple(g.tensors[name].shape)
    key = "input_layouts" if name in g.inputs else "output_layouts"
    if len(shape) == 4 and _layout(g, key, name) == "NCHW" and g.layout == "NHWC":
        n, h, w, c = shape
        return (n, c, h, w)
    return shape


def quantize_input(g: Graph, name: str, x: np.ndarray) -> np.ndarray:
    q = g.tensors[name].quant
    assert q is not None
    return quantize_array(x, q.s, q.zp)


def dequantize_output(g: Graph, name: str, y: np.ndarray) -> np.ndarray:
    q = g.tensors[name].quant
    assert q is not None
    return dequantize_array(y, q.s, q.zp)
