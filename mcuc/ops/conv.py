"""Convolution family: conv2d (regular, grouped, depthwise), fully_connected, batchnorm (folded before int8)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

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
    depthwise = is_depthwise(g, n)
    ref_fn = rconv.depthwise_conv2d_s8 if depthwise else rconv.conv2d_s8
    kernel = "depthwise_conv2d" if depthwise else "conv2d"
    return Lowered(
        n, f"mcuc_{kernel}_s8",
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b), Arg("tensor", y)],
        structs=[Struct(f"mcuc_{kernel}_params_t", fields), _QUANT_STRUCT],
        arrays=[Array1D("int32_t", quant.multiplier), Array1D("int32_t", quant.shift)],
        ref=lambda env: ref_fn(params, quant, env[x], wdata, bdata))


def is_depthwise(g: Graph, n: Node) -> bool:
    """A conv2d with one group per input channel (each output channel reads one input channel)."""
    x, w = g.tensors[n.inputs[0]].shape, g.tensors[n.inputs[1]].shape
    groups = int(n.attrs.get("groups", 1))
    return groups == x[3] and w[3] == 1 and groups > 1


def _depthwise_3x3(g: Graph, n: Node) -> bool:
    """A depthwise conv with 3x3 taps, no dilation and one output channel per input channel."""
    w = g.tensors[n.inputs[1]].shape
    return (is_depthwise(g, n) and (w[1], w[2]) == (3, 3) and tuple(n.attrs.get("dilations", (1, 1))) == (1, 1)
            and w[0] == g.tensors[n.inputs[0]].shape[3])


# ---- variants of conv2d and fully_connected on the SIMD GEMM core (mcuc_conv.h) ---------------------------

_FITS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, bool]] = {}  # fits_folded of (weights, bias, zp)


def _fits_folded(g: Graph, n: Node) -> bool:
    """Whether accumulating from the folded bias stays in int32 (checked once per weights, bias, zero point)."""
    w, b = const_data(g, n.inputs[1]), const_data(g, n.inputs[2])
    zp = quant_of(g, n.inputs[0]).zp
    key = (id(w), id(b), zp)
    hit = _FITS.get(key)
    if hit is None or hit[0] is not w or hit[1] is not b:
        if len(_FITS) > 4096:
            _FITS.clear()
        hit = _FITS[key] = (w, b, rconv.fits_folded(b, w.reshape(w.shape[0], -1), zp))
    return hit[2]


def _conv_groups1(g: Graph, n: Node) -> bool:
    """A conv2d with one group (every output channel reads every input channel) and a foldable bias."""
    return int(n.attrs.get("groups", 1)) == 1 and _fits_folded(g, n)


def _pointwise(g: Graph, n: Node) -> bool:
    """A 1x1 conv with one group and no padding (every output pixel reads one input pixel)."""
    w = g.tensors[n.inputs[1]].shape
    return (w[1], w[2]) == (1, 1) and not any(n.attrs["pads"]) and _conv_groups1(g, n)


def _w_rows(g: Graph, n: Node) -> np.ndarray:
    w = const_data(g, n.inputs[1])
    return w.reshape(w.shape[0], -1)


def _folded(g: Graph, n: Node) -> np.ndarray:
    return rconv.fold_bias(const_data(g, n.inputs[2]), _w_rows(g, n), quant_of(g, n.inputs[0]).zp)


def _with_constants(g: Graph, n: Node, low: Lowered, func: str, weights: np.ndarray | None,
                    scratch: bool = False) -> Lowered:
    """A conv-family call (params, quant, input, weights, bias, output) turned into variant ``func``: the bias
    folded (mcuc_conv.h), the requant table added to the quant struct, the weights (when given) re-laid, and
    a scratch argument before the input if ``scratch``."""
    x, y = n.inputs[0], n.outputs[0]
    arrays = list(low.arrays)
    args = list(low.args)
    structs = list(low.structs)
    quant = _per_channel(g, x, n.inputs[1], y)
    arrays.append(Array1D("int32_t", rconv.requant_table(quant)))
    structs[1] = Struct(structs[1].ctype, {**structs[1].value, "requant": CExpr(f"@array{len(arrays) - 1}")})
    if weights is not None:
        arrays.append(Array1D("int8_t", weights))
        args[3] = Arg("array", len(arrays) - 1)
    arrays.append(Array1D("int32_t", _folded(g, n)))
    args[4] = Arg("array", len(arrays) - 1)
    if scratch:
        args.insert(2, Arg("scratch"))
    return replace(low, func=func, args=args, arrays=arrays, structs=structs)


def _pointwise_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    return _with_constants(g, n, low, "mcuc_conv2d_1x1_s8", rconv.quad_rows(_w_rows(g, n)))


def _im2col_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    return _with_constants(g, n, low, "mcuc_conv2d_im2col_s8", rconv.quad_rows(_w_rows(g, n)), scratch=True)


def _im2col_scratch(g: Graph, n: Node) -> int:
    """mcuc_conv2d_im2col_s8_get_buffer_size: four int8 im2col rows (MCUC_IM2COL_ROWS) of k16 columns."""
    w = g.tensors[n.inputs[1]].shape
    return 4 * (-(-(w[1] * w[2] * w[3]) // 16) * 16)


def _wide_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    return _with_constants(g, n, low, "mcuc_conv2d_wide_s8", rconv.wide_pairs(_w_rows(g, n)), scratch=True)


def _wide_scratch(g: Graph, n: Node) -> int:
    """mcuc_conv2d_wide_s8_get_buffer_size: two int8 im2col rows and their int16 widening."""
    w = g.tensors[n.inputs[1]].shape
    return 6 * (-(-(w[1] * w[2] * w[3]) // 4) * 4)


def _depthwise_1(g: Graph, n: Node) -> bool:
    """A depthwise conv with one output channel per input channel and a foldable bias."""
    return is_depthwise(g, n) and g.tensors[n.inputs[1]].shape[0] == g.tensors[n.inputs[0]].shape[3] \
        and _fits_folded(g, n)


def _dw_simd_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    """mcuc_depthwise_conv2d_simd_s8: weights in channel quads, bias folded."""
    return _with_constants(g, n, low, "mcuc_depthwise_conv2d_simd_s8", rconv.channel_quads(_w_rows(g, n)))


def _dw_rows(g: Graph, n: Node) -> bool:
    """A depthwise conv mcuc_depthwise_conv2d_rows_s8 runs: multiplier 1, no dilation, at most 16 kernel rows,
    horizontal stride 1 or 2."""
    w = g.tensors[n.inputs[1]].shape
    return (is_depthwise(g, n) and w[0] == g.tensors[n.inputs[0]].shape[3] and w[1] <= 16
            and tuple(n.attrs.get("dilations", (1, 1))) == (1, 1) and int(n.attrs["strides"][1]) in (1, 2)
            and _fits_folded(g, n))


def _dw_rows_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    """mcuc_depthwise_conv2d_rows_s8: the model's weights, bias folded, scratch for the widened rows."""
    return _with_constants(g, n, low, "mcuc_depthwise_conv2d_rows_s8", None, scratch=True)


def _dw_rows_scratch(g: Graph, n: Node) -> int:
    """mcuc_depthwise_conv2d_rows_s8_get_buffer_size: kernel_h int16 rows and the taps as int16 pairs."""
    _, kh, kw, _ = g.tensors[n.inputs[1]].shape
    out_w = g.tensors[n.outputs[0]].shape[2]
    sw = int(n.attrs["strides"][1])
    width = (((out_w + 3) & ~3) + 1) * sw + kw + 2
    width = (width + 3) & ~3
    return kh * width * 2 + kh * ((kw + 1) // 2) * 4


def _dw_dot(g: Graph, n: Node) -> bool:
    """A depthwise conv mcuc_depthwise_conv2d_dot_s8 runs: multiplier 1, no dilation, kernel rows of at most 16
    taps (one vector each), at most 16 of them, and channels few enough for 16-bit gather offsets."""
    w = g.tensors[n.inputs[1]].shape
    channels = g.tensors[n.inputs[0]].shape[3]
    return (is_depthwise(g, n) and w[0] == channels and w[1] <= 16 and w[2] <= 16 and 7 * channels <= 0xFFFF
            and tuple(n.attrs.get("dilations", (1, 1))) == (1, 1) and _fits_folded(g, n))


def _dw_dot_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    """mcuc_depthwise_conv2d_dot_s8: the model's weights, bias folded, scratch for the ring of int8 rows."""
    return _with_constants(g, n, low, "mcuc_depthwise_conv2d_dot_s8", None, scratch=True)


_DW_DOT_BATCH_PIXELS = 128  # MCUC_DW_DOT_BATCH_PIXELS of mcuc_conv.h: one channel's sums requantized per pass


def _dw_dot_scratch(g: Graph, n: Node) -> int:
    """mcuc_depthwise_conv2d_dot_s8_get_buffer_size: the int32 sums of as many output rows as hold
    _DW_DOT_BATCH_PIXELS pixels (at least one row; requantized together), kernel_h int8 rows (16-byte reads, 16
    bytes slack) each twice."""
    kh = g.tensors[n.inputs[1]].shape[1]
    out_h, out_w = g.tensors[n.outputs[0]].shape[1:3]
    sw = int(n.attrs["strides"][1])
    groups4 = (out_w + 3) & ~3
    width = ((groups4 - 1) * sw + 16 + 15) & ~15
    batch = max(1, min(out_h, _DW_DOT_BATCH_PIXELS // out_w))
    return 16 * ((batch * out_w + 6) >> 2) + 2 * kh * (width + 16)


# Depthwise cost rule: instructions per MAC ~ a + b / (kh * kw) for a variant on a core at a stride -- a fixed
# per-output cost (widening rows, requantization, border handling) spread over the taps, plus a per-tap cost.
# (a, b) were fitted to the 3x3 and 7x7 counts of bench/kernels.py (48 channels, 40x40 input, QEMU): within
# 6% at 5x5 and choosing as the counts do for 48/72/120 channels at 40/20/10 px. The rows variant widens
# every input row once, so its fixed cost is large and doubles and more at stride 2 (even/odd split); the
# channel-quad variant has no such fixed cost but a dearer tap on DSP. Hence on DSP rows (see the refit below),
# on MVE rows only at stride 1 from 5x5. The MVE quads were refitted after their channel octets (3x3 s1 3.45,
# 7x7 s1 2.73, 3x3 s2 3.55, 7x7 s2 2.76): rows still win at 5x5 and 7x7 stride 1 on all three sizes (e.g. 3.69
# against 4.98 at 5x5 120 ch 10 px, 2.73 against 5.14 at 7x7 48 ch 10 px), so the choice did not change.
# The DSP rows were refitted after their stride-2 3x3 loop, two-pixel tap loops, requantization once per row
# and packed widening (3x3 s1 5.80, 7x7 s1 2.56, 3x3 s2 6.24, 7x7 s2 2.82; 5x5 s1 / s2 3.40 / 4.11, 4% / 16%
# above the rule): rows now beat the DSP quads (9.6 to 21.2) on all 18 shapes of 48/72/120 channels at
# 40/20/10 px and strides 1 and 2 on M4 and M7, 3x3 stride 2 included; closest at 3x3 s2 120 ch 10 px (M4
# 15.24 against 16.53, M7 15.49 against 16.43).
_DW_COST = {  # (variant, core ISA, stride 1 | 2) -> (a, b)
    ("rows", "dsp", 1): (1.83, 35.7), ("rows", "dsp", 2): (2.05, 37.7),
    ("quads", "dsp", 1): (10.52, -6.5), ("quads", "dsp", 2): (10.47, -6.4),
    ("rows", "mve", 1): (1.48, 21.7), ("rows", "mve", 2): (2.37, 105.8),
    ("quads", "mve", 1): (2.57, 7.9), ("quads", "mve", 2): (2.58, 8.7),
    # the dot variant's fixed cost per output row and channel (ring fill, loop set-up, the partial last group of
    # four pixels) is spread over out_w * kh * kw MACs: a + b / (kh * kw) + c / (out_w * kh * kw), fitted to
    # 3x3, 5x5, 7x7 at strides 1 and 2 on 48/72/120 channels at 40/20/10 px. At stride 2, c is held at 200 (least
    # squares: 304) with a and b fitted around it: the quads' rule has no width term though the quads too slow
    # down on narrow outputs (5.13 at 5x5 on 10 px, 3.72 on 20 px), and so the ranking follows the counts: dot
    # at 5x5 on 10 px (3.26), quads at 3x3 on 10 px (5.66 against 7.38), dot at 3x3 on 40 px (2.42 against 3.55).
    # Refitted after requantizing up to 128 pixels (several output rows) per pass: stride 1 least squares, within
    # 11%; at stride 2 c is held at 240 (least squares: 253) so that 3x3 on 20 px takes dot (3.56 against the
    # quads' 4.29) and on 10 px the quads (6.40 against 5.66); within 19%, lowest at 5x5 on 10 px (2.61 for 2.95).
    ("dot", "mve", 1): (0.45, 6.3, 164.0), ("dot", "mve", 2): (0.6, 2.2, 240.0),
}


def _dw_cost(variant: str, isa: str) -> Callable[[Graph, Node], float]:
    """The depthwise cost rule (_DW_COST) of ``variant`` on a core with ``isa``, for a node's taps and stride."""
    def cost(g: Graph, n: Node) -> float:
        _, kh, kw, _ = g.tensors[n.inputs[1]].shape
        a, b, *c = _DW_COST[(variant, isa, 2 if max(int(s) for s in n.attrs["strides"]) > 1 else 1)]
        per_row = c[0] / g.tensors[n.outputs[0]].shape[2] if c else 0.0
        return a + (b + per_row) / (kh * kw)
    return cost


CONV_VARIANTS = (
    KernelVariant("mcuc_conv2d_1x1_s8", _pointwise, isa=("mve",), specialise=_pointwise_call),
    KernelVariant("mcuc_conv2d_im2col_s8", _conv_groups1, isa=("mve",), specialise=_im2col_call,
                  scratch=_im2col_scratch),
    KernelVariant("mcuc_depthwise_conv2d_dot_s8", _dw_dot, isa=("mve",), specialise=_dw_dot_call,
                  scratch=_dw_dot_scratch, cost=_dw_cost("dot", "mve")),
    KernelVariant("mcuc_depthwise_conv2d_rows_s8", _dw_rows, isa=("mve",), specialise=_dw_rows_call,
                  scratch=_dw_rows_scratch, cost=_dw_cost("rows", "mve")),
    KernelVariant("mcuc_depthwise_conv2d_simd_s8", _depthwise_1, isa=("mve",), specialise=_dw_simd_call,
                  cost=_dw_cost("quads", "mve")),
    KernelVariant("mcuc_conv2d_wide_s8", _conv_groups1, isa=("dsp",), specialise=_wide_call, scratch=_wide_scratch),
    KernelVariant("mcuc_depthwise_conv2d_rows_s8", _dw_rows, isa=("dsp",), specialise=_dw_rows_call,
                  scratch=_dw_rows_scratch, cost=_dw_cost("rows", "dsp")),
    KernelVariant("mcuc_conv2d_1x1_s8", _pointwise, isa=("dsp",), specialise=_pointwise_call),
    KernelVariant("mcuc_depthwise_conv2d_simd_s8", _depthwise_1, isa=("dsp",), specialise=_dw_simd_call,
                  cost=_dw_cost("quads", "dsp")),
    KernelVariant("mcuc_depthwise_conv2d_3x3_s8", _depthwise_3x3),
)


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


def _fc_foldable(g: Graph, n: Node) -> bool:
    return _fits_folded(g, n)


def _fc_rows(g: Graph, n: Node) -> bool:
    """Two rows or more (the widened GEMM computes rows in pairs) and a foldable bias."""
    return int(np.prod(g.tensors[n.inputs[0]].shape[:-1])) >= 2 and _fits_folded(g, n)


def _fc_simd_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    return _with_constants(g, n, low, "mcuc_fully_connected_simd_s8", rconv.quad_rows(_w_rows(g, n)))


def _fc_wide_call(g: Graph, n: Node, low: Lowered) -> Lowered:
    return _with_constants(g, n, low, "mcuc_fully_connected_wide_s8", rconv.wide_pairs(_w_rows(g, n)),
                           scratch=True)


def _fc_wide_scratch(g: Graph, n: Node) -> int:
    """mcuc_fully_connected_wide_s8_get_buffer_size."""
    return 6 * (-(-g.tensors[n.inputs[1]].shape[1] // 4) * 4)


FC_VARIANTS = (
    KernelVariant("mcuc_fully_connected_simd_s8", _fc_foldable, isa=("mve",), specialise=_fc_simd_call),
    KernelVariant("mcuc_fully_connected_wide_s8", _fc_rows, isa=("dsp",), specialise=_fc_wide_call,
                  scratch=_fc_wide_scratch),
    KernelVariant("mcuc_fully_connected_simd_s8", _fc_foldable, isa=("dsp",), specialise=_fc_simd_call),
)


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
          geometry=_conv_geometry, lower=_lower_conv, check=_check_weighted, variants=CONV_VARIANTS),
    OpDef("fully_connected", "conv", _fc_shape, macs=_fc_macs, eval=_fc_eval, quantize=weighted,
          fuses_activation=True, weighted=True, lower=_lower_fc, check=_check_weighted, variants=FC_VARIANTS),
    OpDef("batchnorm", "conv", same_shape, eval=_bn_eval, layout="image"),
)
