"""Normalisation family: LayerNorm over the last axis (integer algorithm) and mean over axes."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mcuc.errors import MCUCError
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
    c_fields,
    const_data,
    prepared,
    quant_of,
    register,
)
from mcuc.ops.quant_rules import QuantContext, calibrated_plain
from mcuc.reference import float_ref as fref
from mcuc.reference import transformer as rtf
from mcuc.shapes import NCHW_AXIS_TO_NHWC

# ---- layernorm ----------------------------------------------------------------------------------
# float: inputs x [..., C], gamma [C], beta [C]; attribute epsilon.
# int8: inputs x, gamma_mult int32 [C], beta_bias int64 [C]; attributes eps_v, out_shift.


def _layernorm_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x = ins[0]
    if not x or any(tuple(s) != (x[-1],) for s in ins[1:]):
        raise MCUCError(f"layernorm '{node.name}' needs gamma/beta of shape ({x[-1] if x else '?'},), got {ins[1:]}")
    return [tuple(x)]


def _layernorm_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return fref.layernorm(a[0], a[1], a[2], float(node.attrs.get("epsilon", 1e-5)))


def _layernorm_quant(ctx: QuantContext, n: Node) -> None:
    """gamma and beta fold into the kernel's integer affine (int32 gamma_mult, int64 beta_bias), stored as
    constants like a conv's bias; eps_v and out_shift become attributes."""
    x, y = n.inputs[0], n.outputs[0]
    gamma, beta = ctx.src.tensors[n.inputs[1]].data, ctx.src.tensors[n.inputs[2]].data
    if gamma is None or beta is None:
        raise MCUCError(f"layernorm '{n.name}' has non-constant gamma/beta")
    yq = ctx.act_quant(y)
    p = prepared(n, rtf.prepare_layernorm, ctx.src.tensors[x].shape, ctx.qp[x].s, gamma, beta,
                 float(n.attrs.get("epsilon", 1e-5)), yq.s, yq.zp)
    gm = ctx.out.const(n.inputs[1] + "_mult", p.gamma_mult.astype(np.int32))
    bb = ctx.out.const(n.inputs[2] + "_bias", p.beta_bias.astype(np.int64))
    ctx.output(y, yq)
    ctx.emit("layernorm", n.name, [x, gm, bb], [y], {**n.attrs, "eps_v": p.eps_v, "out_shift": p.out_shift})


def _lower_layernorm(g: Graph, n: Node) -> Lowered:
    x, gm, bb = n.inputs
    y = n.outputs[0]
    params = _ln_params(g, n)
    return Lowered(n, "mcuc_layernorm_s8",
                   [Arg("struct", 0), Arg("tensor", gm), Arg("tensor", bb), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_layernorm_params_t", c_fields(params, drop=("gamma_mult", "beta_bias")))],
                   ref=lambda env: rtf.layernorm_s8(params, env[x]))


def _ln_params(g: Graph, n: Node) -> rtf.LayerNormParams:
    x, gm, bb = n.inputs
    shape = tuple(g.tensors[x].shape)
    return rtf.LayerNormParams(int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1]), int(n.attrs["eps_v"]),
                               int(n.attrs["out_shift"]), quant_of(g, n.outputs[0]).zp, const_data(g, gm),
                               const_data(g, bb))


def _ln_affine_fits(g: Graph, n: Node) -> bool:
    """The biases with the rounding and the output zero point folded in fit the kernel's 64-bit words (all but
    LayerNorms of near-zero gamma, whose out_shift reaches 55 and more, with a large output zero point)."""
    return rtf.layernorm_affine(_ln_params(g, n)) is not None


def _ln_simd_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    """mcuc_layernorm_simd_s8: the params struct and the affine constants re-laid in channel quads."""
    affine = rtf.layernorm_affine(_ln_params(g, n))
    assert affine is not None
    x, y = n.inputs[0], n.outputs[0]
    return replace(low, func="mcuc_layernorm_simd_s8",
                   args=[Arg("struct", 0), Arg("array", 0), Arg("tensor", x), Arg("tensor", y)],
                   arrays=[Array1D("int32_t", affine)])


# Row sums as SIMD dot products, the inverse square root once per row in 32-bit steps, per element one high
# multiply and one 64-bit multiply-add (80 -> ~10 instructions per element on M4).
LAYERNORM_VARIANTS = tuple(KernelVariant("mcuc_layernorm_simd_s8", _ln_affine_fits, isa=(isa,),
                                         specialise=_ln_simd_call) for isa in ("mve", "dsp"))


# ---- mean ---------------------------------------------------------------------------------------


def _mean_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x, axes = ins[0], tuple(node.attrs["axes"])
    if not axes or any(not 0 <= ax < len(x) for ax in axes):
        raise MCUCError(f"mean '{node.name}' over axes {axes} of {x}")
    if node.attrs.get("keepdims", True):
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _mean_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return a[0].mean(axis=tuple(node.attrs["axes"]), keepdims=bool(node.attrs.get("keepdims", True)),
                     dtype=np.float64)


def _mean_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    if n.inputs[0] not in ctx.image:
        return [n]
    axes = tuple(sorted(NCHW_AXIS_TO_NHWC[a] for a in n.attrs["axes"]))
    kept_nchw = [a for a in range(4) if a not in n.attrs["axes"]]
    if not n.attrs.get("keepdims", True) and [NCHW_AXIS_TO_NHWC[a] for a in kept_nchw] != sorted(
            NCHW_AXIS_TO_NHWC[a] for a in kept_nchw):
        raise MCUCError(f"mean '{n.name}' over NCHW axes {n.attrs['axes']} without keepdims changes the "
                        "order of the kept axes in NHWC; mcuc cannot convert it")
    n.attrs["axes"] = axes
    return [n]


def _lower_mean(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    qx, qy = quant_of(g, x), quant_of(g, y)
    params = prepared(n, rtf.prepare_mean, tuple(g.tensors[x].shape), tuple(n.attrs["axes"]), qx.s, qx.zp, qy.s,
                      qy.zp)
    if "tflite_mult" in n.attrs:  # a .tflite model's MEAN: TFLM's multiplier (1/count folded in by division)
        params = replace(params, mult=int(n.attrs["tflite_mult"]), shift=int(n.attrs["tflite_shift"]))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_mean_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_mean_params_t", c_fields(params))],
                   ref=lambda env: rtf.mean_s8(params, env[x]).reshape(out_shape))


register(
    OpDef("layernorm", "norm", _layernorm_shape, eval=_layernorm_eval, quantize=_layernorm_quant, in_place=True,
          lower=_lower_layernorm, variants=LAYERNORM_VARIANTS),
    OpDef("mean", "norm", _mean_shape, eval=_mean_eval, quantize=calibrated_plain, layout="follow",
          to_nhwc=_mean_nhwc, lower=_lower_mean),
)
