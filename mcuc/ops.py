"""Op definitions: the op vocabulary of the IR and its shape rules.

One vocabulary serves float graphs (from the frontend, NCHW then NHWC) and int8 graphs
(after quantization). 4-D activations follow ``Graph.layout``. Conv weights are
[O, I/groups, kh, kw] in NCHW graphs and [O, kh, kw, I/groups] in NHWC graphs.

Attributes by op (all integers are Python ints):
  conv2d          strides (sh, sw), pads (top, left, bottom, right), dilations (dh, dw), groups,
                  act: None | "relu" | "clip" with act_lo/act_hi (float graphs);
                  act_min/act_max (int8 graphs, quantized clamp bounds)
  fully_connected x [..., K], w [O, K], b [O]; act as conv2d
  batchnorm       x, scale, bias, mean, var; epsilon (float graphs only, folded away)
  add, sub, mul   two inputs with numpy broadcasting; act as conv2d (add/sub/mul)
  squared_difference  (a - b)^2 with broadcasting, int8 only (from .tflite models, TFLite's algorithm)
  relu, clip(lo, hi), sigmoid, hardsigmoid(alpha, beta), hardswish   float unary ops
  lut             int8 unary op: inputs [x, table(int8[256])]
  avgpool, maxpool kernel (kh, kw), strides, pads (t, l, b, r); avgpool excludes padding
  reshape         shape (tuple, fully resolved)
  transpose       perm
  concat          axis (non-negative)
  softmax         axis (non-negative)
  pad             pads: [(before, after) per axis], value (float) / zero point (int8)
  requantize      int8 -> int8 with new quant params
  identity        copy (from ONNX Identity/Dropout; removed by the fuse pass)

Transformer ops (any rank unless stated; axes are non-negative):
  layernorm       x [..., C], gamma [C], beta [C]; epsilon; normalises over the last axis
  batch_matmul    alpha * (a [..., M, K] @ b [..., K, N]) -> [..., M, N]; batch dims broadcast (numpy
                  matmul); alpha (float, default 1) is a folded positive output scale; transpose_b
                  (bool) means b is stored [..., N, K]
  attention       int8 only (mcuc/passes/attention.py): q, k, v -> softmax(alpha * q @ k^T) @ v, the three ops
                  batch_matmul -> softmax -> batch_matmul fused; transpose_b / transpose_v as batch_matmul's for
                  k / v; scores_quant, probs_quant (QuantParams of the fused-away tensors), scores_act (min, max),
                  act_min/act_max of the output, beta, alpha_v, block_rows (query rows per block)
  slice           starts, ends, steps: one entry per axis, 0 <= start, step >= 1 (python slicing)
  gather          axis, indices (tuple of non-negative ints): numpy take, the axis keeps its rank
  mean            axes (sorted tuple), keepdims (bool): mean over the axes
  div             float a / b with broadcasting (quantized graphs have none: a constant divisor
                  becomes a mul by its reciprocal in the frontend)
  erf, sqrt, pow(exponent)   float unary ops (fused into gelu / layernorm, else int8 LUTs)
"""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node

UNARY_FLOAT = ("relu", "clip", "sigmoid", "hardsigmoid", "hardswish", "gelu", "tanh", "erf", "sqrt", "pow")
ELEMENTWISE_BINARY = ("add", "sub", "mul", "div", "squared_difference")


def conv_out_dim(size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dil: int = 1) -> int:
    eff = dil * (k - 1) + 1
    out = (size + pad_lo + pad_hi - eff) // stride + 1
    if out <= 0:
        raise MCUCError(f"window {k} (dilation {dil}) does not fit input {size} with pads {pad_lo},{pad_hi}")
    return out


def spatial_axes(layout: str) -> tuple[int, int, int]:
    """(channel axis, H axis, W axis) of a 4-D activation."""
    return (1, 2, 3) if layout == "NCHW" else (3, 1, 2)


def make_4d(layout: str, n: int, c: int, h: int, w: int) -> tuple[int, ...]:
    return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(a, b))
    except ValueError as e:
        raise MCUCError(f"shapes {a} and {b} do not broadcast") from e


def infer_shapes(node: Node, g: Graph) -> list[tuple[int, ...]]:
    """Output shapes of ``node`` from its input shapes and attributes."""
    ins = [g.tensors[i].shape if i else () for i in node.inputs]
    a = node.attrs
    op = node.op
    if op == "conv2d":
        x, w = ins[0], ins[1]
        ca, ha, wa = spatial_axes(g.layout)
        if len(x) != 4:
            raise MCUCError(f"conv '{node.name}' needs a 4-D input, got {x}")
        if g.layout == "NCHW":
            o, _, kh, kw = w
        else:
            o, kh, kw, _ = w
        sh, sw = a["strides"]
        t, left, b, r = a["pads"]
        dh, dw = a.get("dilations", (1, 1))
        oh = conv_out_dim(x[ha], kh, sh, t, b, dh)
        ow = conv_out_dim(x[wa], kw, sw, left, r, dw)
        return [make_4d(g.layout, x[0], o, oh, ow)]
    if op in ("avgpool", "maxpool"):
        x = ins[0]
        ca, ha, wa = spatial_axes(g.layout)
        kh, kw = a["kernel"]
        sh, sw = a["strides"]
        t, left, b, r = a["pads"]
        return [make_4d(g.layout, x[0], x[ca], conv_out_dim(x[ha], kh, sh, t, b),
                        conv_out_dim(x[wa], kw, sw, left, r))]
    if op == "fully_connected":
        return [tuple(ins[0][:-1]) + (ins[1][0],)]
    if op in ELEMENTWISE_BINARY:
        return [broadcast_shape(ins[0], ins[1])]
    if op in UNARY_FLOAT or op in ("lut", "batchnorm", "requantize", "softmax", "identity"):
        return [ins[0]]
    if op == "reshape":
        shape = tuple(a["shape"])
        if int(np.prod(shape)) != int(np.prod(ins[0])):
            raise MCUCError(f"reshape '{node.name}' from {ins[0]} to {shape} changes the element count")
        return [shape]
    if op == "transpose":
        return [tuple(ins[0][p] for p in a["perm"])]
    if op == "concat":
        ax = a["axis"]
        base = list(ins[0])
        for s in ins[1:]:
            if len(s) != len(base) or any(s[i] != base[i] for i in range(len(s)) if i != ax):
                raise MCUCError(f"concat '{node.name}' inputs {ins} differ off axis {ax}")
        base[ax] = sum(s[ax] for s in ins)
        return [tuple(base)]
    if op == "pad":
        return [tuple(d + p0 + p1 for d, (p0, p1) in zip(ins[0], a["pads"], strict=True))]
    if op in TRANSFORMER_SHAPE_RULES:
        return [TRANSFORMER_SHAPE_RULES[op](node, ins)]
    raise MCUCError(f"no shape rule for op '{op}' (node '{node.name}')")


def _layernorm_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    x = ins[0]
    if not x or any(tuple(s) != (x[-1],) for s in ins[1:]):
        raise MCUCError(f"layernorm '{node.name}' needs gamma/beta of shape ({x[-1] if x else '?'},), got {ins[1:]}")
    return tuple(x)


def _batch_matmul_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    a, b = ins[0], ins[1]
    if node.attrs.get("transpose_b") and len(b) >= 2:
        b = tuple(b[:-2]) + (b[-1], b[-2])
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise MCUCError(f"batch_matmul '{node.name}' cannot multiply {a} by {b}")
    return broadcast_shape(tuple(a[:-2]), tuple(b[:-2])) + (a[-2], b[-1])


def _attention_shapes(node: Node, ins: list[tuple[int, ...]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(scores shape, output shape) of a fused attention node."""
    a = node.attrs
    scores = _batch_matmul_shape(Node("batch_matmul", node.name, [], [], {"transpose_b": a.get("transpose_b")}),
                                 [ins[0], ins[1]])
    out = _batch_matmul_shape(Node("batch_matmul", node.name, [], [], {"transpose_b": a.get("transpose_v")}),
                              [scores, ins[2]])
    return scores, out


def _attention_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    return _attention_shapes(node, ins)[1]


def _slice_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    x, at = ins[0], node.attrs
    starts, ends, steps = at["starts"], at["ends"], at["steps"]
    if not len(starts) == len(ends) == len(steps) == len(x) or min(steps, default=1) < 1 or min(starts, default=0) < 0:
        raise MCUCError(f"slice '{node.name}' needs per-axis starts >= 0 and steps >= 1 for {x}")
    out = tuple(len(range(d)[s:e:k]) for d, s, e, k in zip(x, starts, ends, steps, strict=True))
    if 0 in out:
        raise MCUCError(f"slice '{node.name}' of {x} is empty")
    return out


def _gather_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    x, ax, idx = ins[0], int(node.attrs["axis"]), tuple(node.attrs["indices"])
    if not 0 <= ax < len(x) or not idx or any(not 0 <= i < x[ax] for i in idx):
        raise MCUCError(f"gather '{node.name}': indices {idx} on axis {ax} of {x}")
    return tuple(x[:ax]) + (len(idx),) + tuple(x[ax + 1:])


def _mean_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    x, axes = ins[0], tuple(node.attrs["axes"])
    if not axes or any(not 0 <= ax < len(x) for ax in axes):
        raise MCUCError(f"mean '{node.name}' over axes {axes} of {x}")
    if node.attrs.get("keepdims", True):
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


TRANSFORMER_SHAPE_RULES = {
    "layernorm": _layernorm_shape,
    "batch_matmul": _batch_matmul_shape,
    "attention": _attention_shape,
    "slice": _slice_shape,
    "gather": _gather_shape,
    "mean": _mean_shape,
}


def check_shapes(g: Graph) -> None:
    for n in g.nodes:
        got = infer_shapes(n, g)
        for o, s in zip(n.outputs, got, strict=False):
            if tuple(g.tensors[o].shape) != tuple(s):
                raise MCUCError(f"node '{n.name}' ({n.op}) output '{o}' declared {g.tensors[o].shape}, inferred {s}")


def conv_macs(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(out)) * int(np.prod(w[1:]))


def node_macs(node: Node, g: Graph) -> int:
    """Multiply-accumulates of one op (0 for data movement)."""
    if node.op == "conv2d":
        return conv_macs(node, g)
    if node.op == "fully_connected":
        x = g.tensors[node.inputs[0]].shape
        w = g.tensors[node.inputs[1]].shape
        return int(np.prod(x[:-1])) * w[0] * w[1]
    if node.op in ("avgpool",):
        out = g.tensors[node.outputs[0]].shape
        return int(np.prod(out)) * int(np.prod(node.attrs["kernel"]))
    if node.op in ELEMENTWISE_BINARY:
        return int(np.prod(g.tensors[node.outputs[0]].shape))
    if node.op == "batch_matmul":
        return int(np.prod(g.tensors[node.outputs[0]].shape)) * g.tensors[node.inputs[0]].shape[-1]
    if node.op == "attention":  # the same products as the unfused q @ k^T and probs @ v
        scores, out = _attention_shapes(node, [tuple(g.tensors[i].shape) for i in node.inputs])
        return int(np.prod(scores)) * g.tensors[node.inputs[0]].shape[-1] + int(np.prod(out)) * scores[-1]
    return 0
