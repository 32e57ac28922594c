"""Elementwise family: binary arithmetic and PReLU with broadcasting, unary functions (int8: look-up tables),
requantize.

Each unary function is written once, here: the float reference evaluates it, and quantization
builds its int8 table from the same function on the 256 dequantized inputs.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Array1D,
    KernelVariant,
    LayoutContext,
    Lowered,
    OpDef,
    Shape,
    Struct,
    act_bounds,
    c_fields,
    const_data,
    prepared,
    quant_of,
    register,
    same_shape,
)
from mcuc.ops.quant_rules import calibrated, lut_of
from mcuc.reference import conv as rconv
from mcuc.reference import elementwise as relem
from mcuc.reference import float_ref as fref
from mcuc.reference import tflite as rtfl
from mcuc.shapes import broadcast_shape

# ---- binary ---------------------------------------------------------------------------------


def _broadcast(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [broadcast_shape(ins[0], ins[1])]


def _out_size(node: Node, g: Graph) -> int:
    return int(np.prod(g.tensors[node.outputs[0]].shape))


def _binary_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    if n.outputs[0] in ctx.image:
        n.inputs = [ctx.broadcast_operand(i) for i in n.inputs]
    return [n]


_BINARY_FLOAT: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
}


def _binary_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return _BINARY_FLOAT[node.op](a[0], a[1])


def _broadcast_call(g: Graph, n: Node, func: str, params: Any, ref_fn: Callable[..., np.ndarray]) -> Lowered:
    """The call of a two-operand kernel with 4-D broadcasting: (params, mcuc_broadcast_params_t, in1, in2, output);
    the params struct is named after the kernel (mcuc_<op>_params_t)."""
    a, b = n.inputs
    y = n.outputs[0]
    shape = relem.prepare_broadcast(tuple(g.tensors[a].shape), tuple(g.tensors[b].shape))
    out_shape = tuple(g.tensors[y].shape)
    ctype = func.removesuffix("_s8") + "_params_t"
    return Lowered(n, func, [Arg("struct", 0), Arg("struct", 1), Arg("tensor", a), Arg("tensor", b), Arg("tensor", y)],
                   structs=[Struct(ctype, c_fields(params)), Struct("mcuc_broadcast_params_t", c_fields(shape))],
                   ref=lambda env: ref_fn(params, env[a], env[b]).reshape(out_shape))


def _lower_binary(g: Graph, n: Node) -> Lowered:
    """add / sub / mul with numpy broadcasting (TFLite int8 ADD/SUB/MUL)."""
    qa, qb, qy = (quant_of(g, t) for t in (*n.inputs, n.outputs[0]))
    if n.op == "mul":
        params = relem.prepare_mul(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act_bounds(n))
        return _broadcast_call(g, n, "mcuc_mul_s8", params, relem.mul_s8)
    params_add = relem.prepare_add(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act_bounds(n))
    return _broadcast_call(g, n, f"mcuc_{n.op}_s8", params_add, relem.add_s8 if n.op == "add" else relem.sub_s8)


def _lower_squared_difference(g: Graph, n: Node) -> Lowered:
    """TFLite's SQUARED_DIFFERENCE (int8, from .tflite models): the add kernel's structure, squared."""
    qa, qb, qy = (quant_of(g, t) for t in (*n.inputs, n.outputs[0]))
    params = rtfl.prepare_squared_difference(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act_bounds(n))
    return _broadcast_call(g, n, "mcuc_squared_difference_s8", params, rtfl.squared_difference_s8)


def _prelu_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return np.where(a[0] >= 0, a[0], a[0] * a[1])


def _lower_prelu(g: Graph, n: Node) -> Lowered:
    """x >= 0 ? x : slope * x with the slope broadcast (TFLite int8 PRELU; the slope is an int8 operand)."""
    qx, qs, qy = (quant_of(g, t) for t in (*n.inputs, n.outputs[0]))
    params = prepared(n, relem.prepare_prelu, qx.s, qx.zp, qs.s, qs.zp, qy.s, qy.zp)
    return _broadcast_call(g, n, "mcuc_prelu_s8", params, relem.prelu_s8)


def _same_shapes(g: Graph, n: Node) -> bool:
    """Both operands have the output's shape (no broadcasting)."""
    y = tuple(g.tensors[n.outputs[0]].shape)
    return all(tuple(g.tensors[i].shape) == y for i in n.inputs)


def _add_simd_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    """mcuc_add_simd_s8: the add/sub params, the tables of the rescaled inputs, the output requant entry."""
    qa, qb, qy = (quant_of(g, t) for t in (*n.inputs, n.outputs[0]))
    params = relem.prepare_add(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act_bounds(n))
    quant = rconv.PerChannelQuant(np.array([params.out_mult]), np.array([params.out_shift]))
    arrays = [Array1D("int32_t", relem.add_tables(params, 1 if n.op == "add" else -1)),
              Array1D("int32_t", rconv.requant_table(quant))]
    a, b = n.inputs
    args = [Arg("struct", 0), Arg("array", 0), Arg("array", 1), Arg("tensor", a), Arg("tensor", b),
            Arg("tensor", n.outputs[0]), Arg("int", g.tensors[n.outputs[0]].size)]
    return replace(low, func="mcuc_add_simd_s8", args=args, structs=low.structs[:1], arrays=arrays)


# Tables of the rescaled inputs (2 KiB of constants) and one requantization per element: quicker than the
# portable kernel's three on every core, kept to the SIMD cores whose flash budgets allow the tables.
ADD_VARIANTS = tuple(KernelVariant("mcuc_add_simd_s8", _same_shapes, isa=(isa,), specialise=_add_simd_call)
                     for isa in ("mve", "dsp"))


def _binary(name: str, **facts: Any) -> OpDef:
    return OpDef(name, "elementwise", _broadcast, macs=_out_size, eval=_binary_eval, layout="follow",
                 to_nhwc=_binary_nhwc, **facts)


_INT8_BINARY = dict(quantize=calibrated, fuses_activation=True, in_place=True, window="pointwise",
                    lower=_lower_binary, row_kernel=True)

# ---- unary functions, written once ----------------------------------------------------------


def _safe_pow(x: np.ndarray, e: float) -> np.ndarray:
    """x ** e where defined (a table entry the float op leaves undefined becomes 0)."""
    with np.errstate(all="ignore"):
        y = np.power(x, e)
    return np.where(np.isfinite(y), y, 0.0)


UNARY: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "relu": lambda x, a: np.maximum(x, 0.0),
    "clip": lambda x, a: np.clip(x, a.get("lo", -np.inf), a.get("hi", np.inf)),
    "leaky_relu": lambda x, a: np.where(x >= 0, x, x * a.get("alpha", 0.01)),
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "hardsigmoid": lambda x, a: np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "hardswish": lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "tanh": lambda x, a: np.tanh(x),
    "gelu": lambda x, a: 0.5 * x * (1.0 + fref.erf(x / math.sqrt(2.0))),
    "erf": lambda x, a: fref.erf(x),
    "sqrt": lambda x, a: np.sqrt(np.maximum(x, 0.0)),
    "pow": lambda x, a: _safe_pow(x, a["exponent"]),
}
ACTIVATIONS = ("relu", "clip")  # what conv2d / fully_connected / add / sub / mul take over as ``act``


def _unary(name: str, fn: Callable[[np.ndarray, dict], np.ndarray]) -> OpDef:
    return OpDef(name, "elementwise", same_shape, eval=lambda n, a, lay: fn(a[0], n.attrs), quantize=lut_of(fn),
                 activation=name in ACTIVATIONS, layout="follow")


# ---- int8-only: look-up table, requantize -----------------------------------------------------


def _lower_lut(g: Graph, n: Node) -> Lowered:
    x, table, y = n.inputs[0], n.inputs[1], n.outputs[0]
    tdata = const_data(g, table)
    return Lowered(n, "mcuc_lut_s8", [Arg("struct", 0), Arg("tensor", table), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_lut_params_t", {"size": g.tensors[x].size})],
                   ref=lambda env: relem.lut_s8(tdata, env[x]))


def _lower_requantize(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    qx, qy = quant_of(g, x), quant_of(g, y)
    params = relem.prepare_requantize(tuple(g.tensors[x].shape), qx.s, qx.zp, qy.s, qy.zp)
    return Lowered(n, "mcuc_requantize_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_requantize_params_t", c_fields(params))],
                   ref=lambda env: relem.requantize_s8(params, env[x]))


register(
    _binary("add", **_INT8_BINARY, variants=ADD_VARIANTS),
    _binary("sub", **_INT8_BINARY, variants=ADD_VARIANTS),
    _binary("mul", **_INT8_BINARY),
    _binary("div"),  # float only: a constant divisor becomes a mul in the frontend
    OpDef("squared_difference", "elementwise", _broadcast, macs=_out_size, layout="follow",
          lower=_lower_squared_difference),
    OpDef("prelu", "elementwise", _broadcast, macs=_out_size, eval=_prelu_eval, quantize=calibrated,
          layout="follow", to_nhwc=_binary_nhwc, in_place=True, window="pointwise", lower=_lower_prelu),
    *(_unary(name, fn) for name, fn in UNARY.items()),
    OpDef("lut", "elementwise", same_shape, layout="follow", in_place=True, window="pointwise", lower=_lower_lut,
          row_kernel=True),
    OpDef("requantize", "elementwise", same_shape, layout="follow", in_place=True, window="pointwise", row_kernel=True,
          lower=_lower_requantize),
    OpDef("identity", "elementwise", same_shape, eval=lambda n, a, lay: a[0], layout="follow"),
)
