"""Fold inference-mode batch normalization into the preceding conv / fully connected layer.

An int8 target has no batchnorm kernel and folding is exact in float, so every batchnorm goes:
into the producer's weights and bias when it directly follows a conv2d / fully_connected whose
output nobody else reads, otherwise into a per-channel mul + add with constant operands.
"""
from __future__ import annotations

import copy

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, Tensor
from mcuc.ops import op_def
from mcuc.shapes import spatial_axes


def fold_bn(g: Graph) -> Graph:
    """Return a copy of ``g`` without batchnorm nodes."""
    g = copy.deepcopy(g)
    producers = g.producer()
    consumers = g.consumers()
    removed: set[int] = set()
    new_nodes: list[Node] = []
    for n in g.nodes:
        if n.op != "batchnorm":
            new_nodes.append(n)
            continue
        x = n.inputs[0]
        k, shift = _affine(g, n)
        p = producers.get(x)
        if p is not None and id(p) not in removed and _foldable(g, p, x, consumers):
            _fold_into(g, p, k, shift)
            p.outputs = [n.outputs[0]]
            continue
        new_nodes.extend(_as_mul_add(g, n, k, shift))
    g.nodes = new_nodes
    g.prune()
    return g


def _affine(g: Graph, n: Node) -> tuple[np.ndarray, np.ndarray]:
    """batchnorm(x) == x * k + shift, per channel (computed in float64 then rounded once)."""
    scale, bias, mean, var = (g.tensors[i].data.astype(np.float64) for i in n.inputs[1:5])  # type: ignore[union-attr]
    eps = float(n.attrs.get("epsilon", 1e-5))
    denom = var + eps
    if not (np.all(np.isfinite(denom)) and np.all(denom > 0) and np.all(np.isfinite(scale))
            and np.all(np.isfinite(bias)) and np.all(np.isfinite(mean))):
        raise MCUCError(f"batchnorm '{n.name}' has NaN, infinite or negative parameters (variance + epsilon must be "
                        "a finite positive number); re-export the model")
    k = scale / np.sqrt(denom)
    return k, bias - mean * k


def _foldable(g: Graph, p: Node, x: str, consumers: dict[str, list[Node]]) -> bool:
    if not op_def(p).weighted or p.attrs.get("act") is not None:
        return False
    if len(consumers.get(x, [])) != 1 or x in g.outputs:
        return False
    if p.op == "fully_connected" and len(g.tensors[x].shape) != 2:
        return False  # batchnorm normalises axis 1, the fc output's channel axis only for 2-D
    return all(g.tensors[i].is_const for i in p.inputs[1:])


def _fold_into(g: Graph, p: Node, k: np.ndarray, shift: np.ndarray) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN beyond float32: quantization refuses them by name
        w = g.tensors[p.inputs[1]].data.astype(np.float64)  # type: ignore[union-attr]
        o = w.shape[0]
        b = g.tensors[p.inputs[2]].data.astype(np.float64) if len(p.inputs) > 2 else np.zeros(o)  # type: ignore
        w_new = (w * k.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        b_new = (b * k + shift).astype(np.float32)
    # the model's own weight scales no longer describe the rescaled weights, so drop them
    wn = g.const(p.inputs[1] + "_bnfold", w_new)
    bn = g.const((p.inputs[2] if len(p.inputs) > 2 else p.name + "_bias") + "_bnfold", b_new)
    p.inputs = [p.inputs[0], wn, bn]


def _as_mul_add(g: Graph, n: Node, k: np.ndarray, shift: np.ndarray) -> list[Node]:
    x, y = n.inputs[0], n.outputs[0]
    shape_x = g.tensors[x].shape
    axis = spatial_axes(g.layout)[0] if len(shape_x) == 4 else 1
    cshape = [1] * (len(shape_x) - 1)
    cshape[axis - 1] = -1
    kn = g.const(n.name + "_scale", k.astype(np.float32).reshape(cshape))
    sn = g.const(n.name + "_shift", shift.astype(np.float32).reshape(cshape))
    mid = g.unique_name(n.name + "_scaled")
    g.add_tensor(Tensor(mid, g.tensors[y].shape))
    return [Node("mul", n.name + "_mul", [x, kn], [mid], {"act": None}),
            Node("add", n.name + "_add", [mid, sn], [y], {"act": None})]
