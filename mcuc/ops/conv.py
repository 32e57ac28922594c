"""Convolution family: conv2d (regular, grouped, depthwise), fully_connected, batchnorm (folded before int8)."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Array1D,
    CExpr,
    Geometry,
    KernelVariant,
    LayoutContext,
    Lowered,
    OpDef,
    Shape,
    Struct,
    const_data,
    quant_of,
    register,
    same_shape,
)
from mcuc.ops.quant_rules import weighted
from mcuc.quant import INT32_MAX, FixedPointRangeError, requantize_headroom_violations
from mcuc.reference import conv as rconv
from mcuc.reference import float_ref as fref
from mcuc.shapes import conv_out_dim, make_4d, spatial_axes

# ---- conv2d ---------------------------------------------------------------------------------
# Weights are [O, I/groups, kh, kw] in NCHW graphs and [O, kh, kw, I/groups] in NHWC graphs.


def _conv_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x, w = ins[0], ins[1]
    a = node.attrs
    if len(x) != 4 or len(w) != 4:
        raise MCUCError(f"conv '{node.name}' needs a 4-D input and 4-D weights, got {x} and {w}")
    ca, ha, wa = spatial_axes(layout)
    o, kh, kw, ci = (w[0], w[2], w[3], w[1]) if layout == "NCHW" else w
    groups = int(a.get("groups", 1))
    if groups < 1 or x[ca] % groups or o % groups or ci * groups != x[ca]:
        raise MCUCError(f"conv '{node.name}': {groups} groups do not fit input channels {x[ca]} and weights {w}")
    if len(ins) > 2 and node.inputs[2] and tuple(ins[2]) != (o,):
        raise MCUCError(f"conv '{node.name}': bias of shape {ins[2]} for {o} output channels")
    sh, sw = a["strides"]
    t, left, b, r = a["pads"]
    dh, dw = a.get("dilations", (1, 1))
    oh = conv_out_dim(x[ha], kh, sh, t, b, dh)
    ow = conv_out_dim(x[wa], kw, sw, left, r, dw)
    return [make_4d(layout, x[0], o, oh, ow)]


def _conv_macs(node: Node, g: Graph) -> int:
    out = g.tensors[node.outputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(out)) * int(np.prod(w[1:]))


def _conv_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    w = a[1] if layout == "NHWC" else a[1].transpose(0, 2, 3, 1)
    at = node.attrs
    y = fref.conv2d_nhwc(fref.to_nhwc(a[0], layout), np.ascontiguousarray(w), a[2] if len(a) > 2 else None,
                         tuple(at["strides"]), tuple(at["pads"]), tuple(at.get("dilations", (1, 1))),
                         int(at.get("groups", 1)))
    return fref.from_nhwc(y, layout)


def _conv_nhwc(ctx: LayoutContext, n: Node) -> list[Node]:
    ctx.ohwi_weight(n, 1)
    return [n]


def _conv_geometry(g: Graph, n: Node) -> Geometry:
    w = g.tensors[n.inputs[1]].shape  # OHWI
    a = n.attrs
    return Geometry((int(w[1]), int(w[2])), (int(a["strides"][0]), int(a["strides"][1])),
                    tuple(int(v) for v in a.get("dilations", (1, 1))),  # type: ignore[arg-type]
                    tuple(int(v) for v in a["pads"]))  # type: ignore[arg-type]


def _per_channel(g: Graph, x: str, w: str, y: str) -> rconv.PerChannelQuant:
    return rconv.prepare_per_channel_quant(quant_of(g, x).s, quant_of(g, w).scale, quant_of(g, y).s,
                                           out_channels=g.tensors[w].shape[0])


_QUANT_STRUCT = Struct("mcuc_per_channel_quant_params_t", {"multiplier": CExpr("@array0"),
                                                          "shift": CExpr("@array1")})


def _lower_conv(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    a = n.attrs
    params = rconv.Conv2dParams(strides=tuple(a["strides"]), dilations=tuple(a.get("dilations", (1, 1))),
                                pads=tuple(a["pads"]), groups=int(a.get("groups", 1)), input_zp=quant_of(g, x).zp,
                                output_zp=quant_of(g, y).zp, act_min=int(a["act_min"]), act_max=int(a["act_max"]))
    wdata, bdata = const_data(g, w), const_data(g, b)
    quant = _per_channel(g, x, w, y)
    fields = rconv.conv2d_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    depthwise = params.groups == g.tensors[x].shape[3] and wdata.shape[3] == 1 and params.groups > 1
    ref_fn = rconv.depthwise_conv2d_s8 if depthwise else rconv.conv2d_s8
    kernel = "depthwise_conv2d" if depthwise else "conv2d"
    return Lowered(
        n, f"mcuc_{kernel}_s8",
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b), Arg("tensor", y)],
        structs=[Struct(f"mcuc_{kernel}_params_t", fields), _QUANT_STRUCT],
        arrays=[Array1D("int32_t", quant.multiplier), Array1D("int32_t", quant.shift)],
        ref=lambda env: ref_fn(params, quant, env[x], wdata, bdata))


def _depthwise_3x3(low: Lowered) -> bool:
    """A depthwise call with 3x3 taps, no dilation and one output channel per input channel."""
    f = low.structs[0].value
    return (low.func == "mcuc_depthwise_conv2d_s8" and (f["kernel_h"], f["kernel_w"]) == (3, 3)
            and (f["dilation_h"], f["dilation_w"]) == (1, 1) and f["out_c"] == f["in_c"])


# ---- fully connected ------------------------------------------------------------------------


def _fc_shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    x, w = ins[0], ins[1]
    if len(w) != 2 or not x or x[-1] != w[1]:
        raise MCUCError(f"fully_connected '{node.name}' cannot multiply {x} by weights {w}")
    if len(ins) > 2 and node.inputs[2] and tuple(ins[2]) != (w[0],):
        raise MCUCError(f"fully_connected '{node.name}': bias of shape {ins[2]} for {w[0]} outputs")
    return [tuple(x[:-1]) + (w[0],)]


def _fc_macs(node: Node, g: Graph) -> int:
    x = g.tensors[node.inputs[0]].shape
    w = g.tensors[node.inputs[1]].shape
    return int(np.prod(x[:-1])) * w[0] * w[1]


def _fc_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    return a[0] @ a[1].T + (a[2] if len(a) > 2 else 0.0)


def _lower_fc(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    a = n.attrs
    params = rconv.FullyConnectedParams(input_zp=quant_of(g, x).zp, output_zp=quant_of(g, y).zp,
                                        act_min=int(a["act_min"]), act_max=int(a["act_max"]))
    wdata, bdata = const_data(g, w), const_data(g, b)
    quant = _per_channel(g, x, w, y)
    fields = rconv.fully_connected_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    return Lowered(
        n, "mcuc_fully_connected_s8",
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b), Arg("tensor", y)],
        structs=[Struct("mcuc_fully_connected_params_t", fields), _QUANT_STRUCT],
        arrays=[Array1D("int32_t", quant.multiplier), Array1D("int32_t", quant.shift)],
        ref=lambda env: rconv.fully_connected_s8(params, quant, env[x], wdata, bdata))


def _check_weighted(g: Graph, n: Node) -> None:
    """conv2d / fully_connected in int8: symmetric int8 weights, an int32 bias, and an accumulator that cannot
    overflow. The kernels start from bias[o] and add (x - input_zp) * w for every tap, so each partial sum of
    output channel o is at most |bias[o]| + max|x - input_zp| * sum|w[o]|, with max|x - input_zp| <= 255: that
    bound (never more than the data-independent |bias| + taps * 255 * 128) must fit int32."""
    w, where = g.tensors[n.inputs[1]], f"{n.op} '{n.name}'"
    wq = w.quant
    if w.data is None or w.dtype != "int8" or wq is None:
        raise MCUCError(f"{where}: weights must be a constant int8 tensor with quantization parameters")
    if np.any(wq.zero_point != 0):
        raise MCUCError(f"{where}: weights have zero point {int(wq.zero_point[wq.zero_point != 0][0])}; int8 "
                        "weights must be symmetric (zero point 0)")
    out_c = w.shape[0]
    bias = signed_bias = np.zeros(out_c, np.int64)
    if len(n.inputs) > 2 and n.inputs[2]:
        b = g.tensors[n.inputs[2]]
        if b.data is None or b.dtype != "int32" or b.data.size != out_c:
            raise MCUCError(f"{where}: bias must be a constant int32 vector of {out_c}, got {b.dtype} {b.shape}")
        signed_bias = b.data.astype(np.int64).reshape(-1)
        bias = np.abs(signed_bias)
    x_zp = quant_of(g, n.inputs[0]).zp
    reach = max(127 - x_zp, x_zp + 128)
    w64 = w.data.astype(np.int64).reshape(out_c, -1)
    worst = bias + reach * np.abs(w64).sum(axis=1)
    if worst.size and int(worst.max()) > INT32_MAX:
        o = int(worst.argmax())
        raise MCUCError(f"{where}: output channel {o} can reach {int(worst[o]):,} in the int32 accumulator (bias "
                        f"{int(bias[o]):,} plus {w.data[o].size} int8 products), more than 2^31-1; the bias is out "
                        "of proportion to its scale (input scale x weight scale), re-quantize the model")
    _check_requantize_headroom(g, n, w64, signed_bias)


def _check_requantize_headroom(g: Graph, n: Node, w64: np.ndarray, bias: np.ndarray) -> None:
    """The final accumulator of output channel o lies in [lo, hi]: bias plus, per weight, the extreme products
    over x - input_zp in [-128 - zp, 127 - zp] (padding taps add 0, inside that range). mcuc_requantize shifts it
    left by max(shift, 0) in int32 first; a multiplier >= 1 that could push it out of int32 would wrap in C
    (undefined in TFLite), so it is refused here and the kernels' fast path needs no saturation."""
    x_zp = quant_of(g, n.inputs[0]).zp
    up, down = 127 - x_zp, 128 + x_zp
    pos, neg = np.clip(w64, 0, None).sum(axis=1), np.clip(-w64, 0, None).sum(axis=1)
    hi = bias + pos * up + neg * down
    lo = bias - pos * down - neg * up
    try:
        quant = _per_channel(g, n.inputs[0], n.inputs[1], n.outputs[0])
    except FixedPointRangeError as e:
        raise MCUCError(f"{n.op} '{n.name}': {e}") from e
    bad = requantize_headroom_violations(lo, hi, quant.shift)
    if bad.size:
        o = int(bad[0])
        real = float(quant.multiplier[o]) * 2.0 ** (int(quant.shift[o]) - 31)
        raise MCUCError(f"{n.op} '{n.name}': output channel {o} has accumulators in [{int(lo[o]):,}, {int(hi[o]):,}] "
                        f"and requantization multiplier {real:.4g} (input scale x weight scale / output scale), "
                        "whose int32 fixed-point product could overflow; the output scale is too small for this "
                        "layer, re-quantize it with a wider output range")


# ---- batchnorm (float graphs only: mcuc/passes/fold_bn.py folds it away) ---------------------


def _bn_eval(node: Node, a: list[np.ndarray], layout: str) -> np.ndarray:
    x = a[0]
    axis = spatial_axes(layout)[0] if x.ndim == 4 else 1
    return fref.batchnorm(x, a[1], a[2], a[3], a[4], float(node.attrs.get("epsilon", 1e-5)), axis)


register(
    OpDef("conv2d", "conv", _conv_shape, macs=_conv_macs, eval=_conv_eval, quantize=weighted,
          fuses_activation=True, weighted=True, layout="image", to_nhwc=_conv_nhwc, window="spatial", row_kernel=True,
          geometry=_conv_geometry, lower=_lower_conv, check=_check_weighted,
          variants=(KernelVariant("mcuc_depthwise_conv2d_3x3_s8", _depthwise_3x3),)),
    OpDef("fully_connected", "conv", _fc_shape, macs=_fc_macs, eval=_fc_eval, quantize=weighted,
          fuses_activation=True, weighted=True, lower=_lower_fc, check=_check_weighted),
    OpDef("batchnorm", "conv", same_shape, eval=_bn_eval, layout="image"),
)
