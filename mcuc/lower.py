"""Lowering of int8 IR nodes to kernel calls: one description used by both the C code generator
and the integer reference interpreter, so the two cannot drift apart.

A ``Lowered`` op names the C function, its call arguments, the parameter structs and per-op
constant arrays it needs, and a ``ref`` callable computing the same result in numpy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.reference import conv as rconv


@dataclass
class Struct:
    ctype: str
    value: Any  # dict (fields in declaration order), list, int, or CExpr


@dataclass
class Array:
    ctype: str  # element type, e.g. "int32_t"
    data: np.ndarray


@dataclass(frozen=True)
class CExpr:
    text: str


@dataclass(frozen=True)
class Arg:
    """One call argument: a tensor, an op-local struct/array (by index), an int, or NULL."""

    kind: str  # "tensor" | "struct" | "array" | "int" | "null"
    value: Any = None


@dataclass
class Lowered:
    node: Node
    func: str
    args: list[Arg]
    structs: list[Struct] = field(default_factory=list)
    arrays: list[Array] = field(default_factory=list)
    ref: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None


def _q(g: Graph, name: str):
    q = g.tensors[name].quant
    if q is None:
        raise MCUCError(f"tensor '{name}' has no quantization parameters")
    return q


def _data(g: Graph, name: str) -> np.ndarray:
    d = g.tensors[name].data
    assert d is not None, name
    return d


def lower_conv2d(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    xq, wq, yq = _q(g, x), _q(g, w), _q(g, y)
    a = n.attrs
    params = rconv.Conv2dParams(strides=tuple(a["strides"]), dilations=tuple(a.get("dilations", (1, 1))),
                                pads=tuple(a["pads"]), groups=int(a.get("groups", 1)), input_zp=xq.zp,
                                output_zp=yq.zp, act_min=int(a["act_min"]), act_max=int(a["act_max"]))
    wdata, bdata = _data(g, w), _data(g, b)
    quant = rconv.prepare_per_channel_quant(xq.s, wq.scale, yq.s, out_channels=wdata.shape[0])
    in_c = g.tensors[x].shape[3]
    depthwise = params.groups == in_c and wdata.shape[3] == 1 and params.groups > 1
    fields = rconv.conv2d_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    func = "mcuc_conv2d_s8"
    ref_fn = rconv.conv2d_s8
    if depthwise:
        ref_fn = rconv.depthwise_conv2d_s8
        dw3x3 = wdata.shape[1:3] == (3, 3) and params.dilations == (1, 1) and wdata.shape[0] == in_c
        func = "mcuc_depthwise_conv2d_3x3_s8" if dw3x3 else "mcuc_depthwise_conv2d_s8"
    return Lowered(
        n, func,
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b),
         Arg("tensor", y)],
        structs=[Struct("mcuc_conv2d_params_t", fields),
                 Struct("mcuc_per_channel_quant_t", {"multiplier": CExpr("@array0"),
                                                     "shift": CExpr("@array1")})],
        arrays=[Array("int32_t", quant.multiplier), Array("int32_t", quant.shift)],
        ref=lambda env: ref_fn(env[x], wdata, bdata, params, quant))


def lower_fully_connected(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    xq, wq, yq = _q(g, x), _q(g, w), _q(g, y)
    a = n.attrs
    params = rconv.FullyConnectedParams(input_zp=xq.zp, output_zp=yq.zp, act_min=int(a["act_min"]),
                                        act_max=int(a["act_max"]))
    wdata, bdata = _data(g, w), _data(g, b)
    quant = rconv.prepare_per_channel_quant(xq.s, wq.scale, yq.s, out_channels=wdata.shape[0])
    fields = rconv.fully_connected_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    return Lowered(
        n, "mcuc_fully_connected_s8",
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b),
         Arg("tensor", y)],
        structs=[Struct("mcuc_fully_connected_params_t", fields),
                 Struct("mcuc_per_channel_quant_t", {"multiplier": CExpr("@array0"),
                                                     "shift": CExpr("@array1")})],
        arrays=[Array("int32_t", quant.multiplier), Array("int32_t", quant.shift)],
        ref=lambda env: rconv.fully_connected_s8(env[x], wdata, bdata, params, quant))


LOWERINGS: dict[str, Callable[[Graph, Node], Lowered]] = {
    "conv2d": lower_conv2d,
    "fully_connected": lower_fully_connected,
}


def lower(g: Graph, n: Node) -> Lowered:
    fn = LOWERINGS.get(n.op)
    if fn is None:
        raise MCUCError(f"no int8 kernel for op '{n.op}' (node '{n.name}')")
    return fn(g, n)


def lower_reshape(g: Graph, n: Node) -> Lowered:
    """A reshape is a view: the planner gives its output the input's memory, so no call is emitted."""
    x, y = n.inputs[0], n.outputs[0]
    shape = tuple(g.tensors[y].shape)
    return Lowered(n, "", [], ref=lambda env: env[x].reshape(shape))


LOWERINGS["reshape"] = lower_reshape
