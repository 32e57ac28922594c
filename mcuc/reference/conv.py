"""Integer-exact numpy reference for the int8 convolution family: conv2d, depthwise, fully connected.

Each function mirrors a C kernel in mcuc/runtime_c/include/mcuc_conv.h: the same arguments in the same
order (a params dataclass standing in for the C params struct, a PerChannelQuant for the multiplier/shift
arrays, then input, weights and bias; the output is returned) and the same int8 values bit for bit;
tests/test_kernels_conv.py checks that.

Accumulation runs in float64: every product (x - zp) * w is an integer of magnitude <= 255 * 128
and every partial sum stays far below 2^53, so BLAS matmuls are exact in any summation order and
much faster than integer einsum. The sums are checked against the int32 range the C kernels use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.quant import INT32_MAX, INT32_MIN, quantize_multipliers, requantize
from mcuc.shapes import conv_out_dim


@dataclass(frozen=True)
class PerChannelQuant:
    """Per-output-channel requantization, as mcuc_per_channel_quant_params_t: int32 [O] each."""

    multiplier: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class Conv2dParams:
    """Attributes of conv2d / depthwise conv2d (shapes come from the arrays).

    pads are (top, left, bottom, right); act_min/act_max are the fused activation's clamp bounds
    in the output's quantized domain (see mcuc.quant.activation_range).
    """

    strides: tuple[int, int] = (1, 1)
    dilations: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    input_zp: int = 0
    output_zp: int = 0
    act_min: int = -128
    act_max: int = 127


@dataclass(frozen=True)
class FullyConnectedParams:
    """Attributes of fully_connected (shapes come from the arrays)."""

    input_zp: int = 0
    output_zp: int = 0
    act_min: int = -128
    act_max: int = 127


def prepare_per_channel_quant(in_scale: float, w_scales: np.ndarray | float, out_scale: float,
                              out_channels: int | None = None) -> PerChannelQuant:
    """Float scales -> integer kernel params: one (mult, shift) per output channel, for in*w/out.

    The C kernels always read one entry per output channel; a per-tensor (scalar or length-1)
    w_scales is repeated out_channels times when out_channels is given.
    """
    ws = np.atleast_1d(np.asarray(w_scales, dtype=np.float64)).reshape(-1)
    if out_channels is not None and ws.size != out_channels:
        if ws.size != 1:
            raise ValueError(f"{ws.size} weight scales for {out_channels} output channels")
        ws = np.full(out_channels, ws[0])
    reals = float(in_scale) * ws / float(out_scale)
    mult, shift = quantize_multipliers(reals)
    return PerChannelQuant(mult, shift)


def _check_common(zps: tuple[int, int], act_min: int, act_max: int) -> None:
    for zp in zps:
        if not -128 <= zp <= 127:
            raise ValueError(f"zero point {zp} outside [-128, 127]")
    if not -128 <= act_min <= act_max <= 127:
        raise ValueError(f"activation range [{act_min}, {act_max}] not within [-128, 127]")


def _check_quant(quant: PerChannelQuant, out_c: int) -> None:
    if quant.multiplier.shape != (out_c,) or quant.shift.shape != (out_c,):
        raise ValueError(f"multiplier/shift must have shape ({out_c},), got "
                         f"{quant.multiplier.shape}/{quant.shift.shape}")


def _check_bias(bias: np.ndarray | None, out_c: int) -> None:
    if bias is not None and (bias.shape != (out_c,) or bias.dtype != np.int32):
        raise ValueError(f"bias must be int32 [{out_c}], got {bias.dtype} {bias.shape}")


def conv2d_output_hw(in_hw: tuple[int, int], kernel_hw: tuple[int, int],
                     params: Conv2dParams) -> tuple[int, int]:
    top, left, bottom, right = params.pads
    return (conv_out_dim(in_hw[0], kernel_hw[0], params.strides[0], top, bottom, params.dilations[0]),
            conv_out_dim(in_hw[1], kernel_hw[1], params.strides[1], left, right, params.dilations[1]))


def conv2d_kernel_fields(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                         params: Conv2dParams) -> dict[str, int]:
    """Field values of struct mcuc_conv_params (mcuc_conv2d_params_t, mcuc_depthwise_conv2d_params_t), in
    declaration order, for codegen and tests."""
    n, h, w, c = x_shape
    o, kh, kw, _ = w_shape
    oh, ow = conv2d_output_hw((h, w), (kh, kw), params)
    return {
        "batch": n, "in_h": h, "in_w": w, "in_c": c, "out_h": oh, "out_w": ow, "out_c": o,
        "kernel_h": kh, "kernel_w": kw, "stride_h": params.strides[0], "stride_w": params.strides[1],
        "dilation_h": params.dilations[0], "dilation_w": params.dilations[1],
        "pad_top": params.pads[0], "pad_left": params.pads[1], "groups": params.groups,
        "input_zp": params.input_zp, "output_zp": params.output_zp,
        "act_min": params.act_min, "act_max": params.act_max,
    }


def fully_connected_kernel_fields(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                  params: FullyConnectedParams) -> dict[str, int]:
    """Field values of mcuc_fully_connected_params_t, in declaration order; leading dims are rows."""
    rows = int(np.prod(x_shape[:-1], dtype=np.int64))
    return {
        "rows": rows, "in_features": x_shape[-1], "out_features": w_shape[0],
        "input_zp": params.input_zp, "output_zp": params.output_zp,
        "act_min": params.act_min, "act_max": params.act_max,
    }


def _check_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, params: Conv2dParams,
                quant: PerChannelQuant) -> None:
    if x.dtype != np.int8 or w.dtype != np.int8 or x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d expects int8 NHWC input and OHWI weights, got {x.dtype}{x.shape}, "
                         f"{w.dtype}{w.shape}")
    c, o, g = x.shape[3], w.shape[0], params.groups
    if g < 1 or c % g or o % g or w.shape[3] != c // g:
        raise ValueError(f"groups={g} incompatible with input channels {c} and weights {w.shape}")
    if min(*params.strides, *params.dilations) < 1 or min(params.pads) < 0:
        raise ValueError(f"bad strides/dilations/pads {params.strides}/{params.dilations}/{params.pads}")
    _check_common((params.input_zp, params.output_zp), params.act_min, params.act_max)
    _check_bias(bias, o)
    _check_quant(quant, o)


def _centered_padded(x: np.ndarray, params: Conv2dParams) -> np.ndarray:
    """x - input_zp as float64, zero-padded: a padding tap then contributes exactly nothing."""
    top, left, bottom, right = params.pads
    xc = x.astype(np.float64) - params.input_zp
    return np.pad(xc, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _tap_slices(xp: np.ndarray, kernel_hw: tuple[int, int], out_hw: tuple[int, int],
                params: Conv2dParams):
    """Yield (ky, kx, view [N, OH, OW, C]) of the padded input each kernel tap reads."""
    (sh, sw), (dh, dw), (oh, ow) = params.strides, params.dilations, out_hw
    for ky in range(kernel_hw[0]):
        for kx in range(kernel_hw[1]):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, xp[:, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw, :]


def _accumulate_depthwise(xp: np.ndarray, w: np.ndarray, out_hw: tuple[int, int],
                          params: Conv2dParams) -> np.ndarray:
    """Sum of shifted slices for one-input-channel groups; output channel o reads input o // mult."""
    mult = w.shape[0] // xp.shape[3]
    if mult > 1:
        xp = np.repeat(xp, mult, axis=3)
    wf = w[..., 0].astype(np.float64)  # [O, kh, kw]
    acc = np.zeros((xp.shape[0], *out_hw, w.shape[0]), dtype=np.float64)
    for ky, kx, view in _tap_slices(xp, w.shape[1:3], out_hw, params):
        acc += view * wf[:, ky, kx]
    return acc


def _accumulate_grouped(xp: np.ndarray, w: np.ndarray, out_hw: tuple[int, int],
                        params: Conv2dParams) -> np.ndarray:
    """im2col + one batched matmul over groups."""
    n, g = xp.shape[0], params.groups
    o, kh, kw, cg = w.shape
    taps = [view for _, _, view in _tap_slices(xp, (kh, kw), out_hw, params)]
    cols = taps[0] if len(taps) == 1 else np.stack(taps, axis=3)  # [N, OH, OW, (kh*kw,) C]
    m = n * out_hw[0] * out_hw[1]
    cols = cols.reshape(m, kh * kw, g, cg).transpose(2, 0, 1, 3).reshape(g, m, kh * kw * cg)
    wg = w.astype(np.float64).reshape(g, o // g, kh * kw * cg)
    acc = np.matmul(cols, wg.transpose(0, 2, 1))  # [G, M, O/G]
    return acc.transpose(1, 0, 2).reshape(n, *out_hw, o)


def _to_int32_acc(acc: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        acc = acc + bias.astype(np.float64)
    acc64 = acc.astype(np.int64)
    if acc64.size and (acc64.min() < INT32_MIN or acc64.max() > INT32_MAX):
        raise ValueError("accumulator exceeds int32; the C kernel would overflow")
    return acc64


def conv2d_accumulate(params: Conv2dParams, x: np.ndarray, w: np.ndarray,
                      bias: np.ndarray | None) -> np.ndarray:
    """int32 accumulators (held in int64) of conv2d before requantization, [N, OH, OW, O]."""
    out_hw = conv2d_output_hw(x.shape[1:3], w.shape[1:3], params)
    xp = _centered_padded(x, params)
    if w.shape[3] == 1 and params.groups == x.shape[3]:
        acc = _accumulate_depthwise(xp, w, out_hw, params)
    else:
        acc = _accumulate_grouped(xp, w, out_hw, params)
    return _to_int32_acc(acc, bias)


def conv2d_s8(params: Conv2dParams, quant: PerChannelQuant, x: np.ndarray, w: np.ndarray,
              bias: np.ndarray | None) -> np.ndarray:
    """Reference of mcuc_conv2d_s8: x int8 [N,H,W,C], w int8 [O,kh,kw,C/groups] -> int8 [N,OH,OW,O]."""
    _check_conv(x, w, bias, params, quant)
    acc = conv2d_accumulate(params, x, w, bias)
    return requantize(acc, quant.multiplier, quant.shift, params.output_zp, params.act_min, params.act_max)


def depthwise_conv2d_s8(params: Conv2dParams, quant: PerChannelQuant, x: np.ndarray, w: np.ndarray,
                        bias: np.ndarray | None) -> np.ndarray:
    """Reference of mcuc_depthwise_conv2d_s8: conv2d with groups == C, w [C*mult, kh, kw, 1]."""
    if params.groups != x.shape[3] or w.shape[3] != 1:
        raise ValueError(f"depthwise needs groups == in channels ({x.shape[3]}) and weights "
                         f"[O, kh, kw, 1], got groups={params.groups}, weights {w.shape}")
    return conv2d_s8(params, quant, x, w, bias)


def fully_connected_s8(params: FullyConnectedParams, quant: PerChannelQuant, x: np.ndarray, w: np.ndarray,
                       bias: np.ndarray | None) -> np.ndarray:
    """Reference of mcuc_fully_connected_s8: x int8 [..., K], w int8 [O, K] -> int8 [..., O].

    Leading dimensions of x are flattened into the C kernel's rows; each row is requantized
    once per output, as TFLM does for 3-D inputs.
    """
    if x.dtype != np.int8 or w.dtype != np.int8 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"fully_connected expects int8 x [..., K], w [O, K]; got {x.shape}, {w.shape}")
    o = w.shape[0]
    _check_common((params.input_zp, params.output_zp), params.act_min, params.act_max)
    _check_bias(bias, o)
    _check_quant(quant, o)
    xc = x.reshape(-1, x.shape[-1]).astype(np.float64) - params.input_zp
    acc = _to_int32_acc(xc @ w.astype(np.float64).T, bias)
    y = requantize(acc, quant.multiplier, quant.shift, params.output_zp, params.act_min, params.act_max)
    return y.reshape(*x.shape[:-1], o)


# ---- constants of the kernel variants (mcuc_conv.h), prepared at compile time ------------------------------
# A variant computes the same integers as its portable kernel; these are the constants it reads instead of
# the model's: the bias with the input offset folded in, and weights re-laid in the order the kernel reads
# them. The *_folded references below compute each variant's integers from exactly those constants.

FOLD_LIMIT = 1 << 31  # |folded bias| + the largest product sum must stay below this (int32 accumulation)


def fold_bias(bias: np.ndarray | None, w_rows: np.ndarray, input_zp: int) -> np.ndarray:
    """bias[o] + input_offset * sum of row o of ``w_rows`` (int8 [O, K]; input_offset = -input_zp), as int32.

    A kernel that starts its accumulators there multiplies raw int8 inputs: sum (x - zp) * w = sum x * w
    - zp * sum w. ValueError if an accumulator could leave int32 (fits_folded tells beforehand)."""
    if not fits_folded(bias, w_rows, input_zp):
        raise ValueError("folded bias and products could exceed int32")
    b = np.zeros(w_rows.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    return (b - int(input_zp) * w_rows.astype(np.int64).sum(axis=1)).astype(np.int32)


def fits_folded(bias: np.ndarray | None, w_rows: np.ndarray, input_zp: int) -> bool:
    """Whether accumulation from the folded bias stays inside int32 for every int8 input."""
    b = np.zeros(w_rows.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    wl = w_rows.astype(np.int64)
    folded = b - int(input_zp) * wl.sum(axis=1)
    worst = np.abs(folded) + 128 * np.abs(wl).sum(axis=1)
    return bool(worst.size == 0 or worst.max() < FOLD_LIMIT)


def requant_table(quant: PerChannelQuant) -> np.ndarray:
    """mcuc_per_channel_quant_params_t.requant: per channel {multiplier, low and high word of
    2^30 + 2^(30 - shift) (2^30 and 0 when shift >= 0), -shift - 1}, int32 [O * 4]."""
    mult = quant.multiplier.astype(np.int64)
    shift = quant.shift.astype(np.int64)
    rnd = np.where(shift < 0, (1 << 30) + np.left_shift(np.int64(1), 30 - np.minimum(shift, 0)), 1 << 30)
    lo = (rnd & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    hi = (rnd >> 32).astype(np.int32)
    return np.stack([mult.astype(np.int32), lo, hi, (-shift - 1).astype(np.int32)], axis=1).reshape(-1).copy()


def wide_pairs(w_rows: np.ndarray) -> np.ndarray:
    """int8 [O, K] weights in the pair layout of mcuc_conv2d_wide_s8 / mcuc_fully_connected_wide_s8:
    [(O + 1) / 2][kpad / 4][2][4] with kpad = K rounded up to 4, zero padded; returned flat."""
    o, k = w_rows.shape
    kpad = -(-k // 4) * 4
    padded = np.zeros((o + (o & 1), kpad), np.int8)
    padded[:o, :k] = w_rows
    return padded.reshape(-1, 2, kpad // 4, 4).transpose(0, 2, 1, 3).reshape(-1).copy()


def quad_rows(w_rows: np.ndarray) -> np.ndarray:
    """int8 [O, K] weights in the quad layout of mcuc_conv2d_1x1_s8 / _im2col_s8 / mcuc_fully_connected_simd_s8:
    [(O + 3) / 4][k16 / 16][4][16] with k16 = K rounded up to 16, zero padded; returned flat."""
    o, k = w_rows.shape
    k16 = -(-k // 16) * 16
    padded = np.zeros((-(-o // 4) * 4, k16), np.int8)
    padded[:o, :k] = w_rows
    return padded.reshape(-1, 4, k16 // 16, 16).transpose(0, 2, 1, 3).reshape(-1).copy()


def unpack_quad_rows(quads: np.ndarray, o: int, k: int) -> np.ndarray:
    """The [O, K] weights of a quad layout (the inverse of quad_rows)."""
    k16 = -(-k // 16) * 16
    rows = quads.reshape(-1, k16 // 16, 4, 16).transpose(0, 2, 1, 3).reshape(-1, k16)
    return rows[:o, :k]


def channel_quads(w_taps: np.ndarray) -> np.ndarray:
    """Depthwise weights [C, taps] in the layout of mcuc_depthwise_conv2d_simd_s8: [(C + 3) / 4][taps][4]
    (the taps of four channels side by side), zero padded; returned flat."""
    c, taps = w_taps.shape
    padded = np.zeros((-(-c // 4) * 4, taps), np.int8)
    padded[:c] = w_taps
    return padded.reshape(-1, 4, taps).transpose(0, 2, 1).reshape(-1).copy()


def unpack_channel_quads(quads: np.ndarray, c: int, taps: int) -> np.ndarray:
    """The [C, taps] weights of a channel-quad layout (the inverse of channel_quads)."""
    return quads.reshape(-1, taps, 4).transpose(0, 2, 1).reshape(-1, taps)[:c]


def unpack_wide_pairs(pairs: np.ndarray, o: int, k: int) -> np.ndarray:
    """The [O, K] weights of a pair layout (the inverse of wide_pairs)."""
    kpad = -(-k // 4) * 4
    rows = pairs.reshape(-1, kpad // 4, 2, 4).transpose(0, 2, 1, 3).reshape(-1, kpad)
    return rows[:o, :k]


def im2col_rows(params: Conv2dParams, x: np.ndarray, kernel_hw: tuple[int, int]) -> np.ndarray:
    """Every output pixel's receptive field as an int8 row in OHWI tap order, padding taps = input_zp:
    [N * OH * OW, kh * kw * C] (what mcuc_im2col_row writes, without the zero columns)."""
    top, left, bottom, right = params.pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=params.input_zp)
    out_hw = conv2d_output_hw(x.shape[1:3], kernel_hw, params)
    taps = [view for _, _, view in _tap_slices(xp, kernel_hw, out_hw, params)]
    return np.stack(taps, axis=3).reshape(-1, kernel_hw[0] * kernel_hw[1] * x.shape[3])


def gemm_folded_s8(rows: np.ndarray, w_rows: np.ndarray, bias_folded: np.ndarray, quant: PerChannelQuant,
                   output_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """The variants' GEMM: folded bias + raw int8 rows times weight rows, requantized: int8 [M, O]."""
    acc = _to_int32_acc(rows.astype(np.float64) @ w_rows.astype(np.float64).T, bias_folded)
    return requantize(acc, quant.multiplier, quant.shift, output_zp, act_min, act_max)


def conv2d_folded_s8(params: Conv2dParams, quant: PerChannelQuant, x: np.ndarray, w_rows: np.ndarray,
                     bias_folded: np.ndarray, kernel_hw: tuple[int, int]) -> np.ndarray:
    """Reference of the groups == 1 conv variants (mcuc_conv2d_1x1_s8, _im2col_s8, _wide_s8) from their
    constants: im2col rows (padding = input_zp) times w_rows [O, kh * kw * C] plus the folded bias."""
    out_hw = conv2d_output_hw(x.shape[1:3], kernel_hw, params)
    y = gemm_folded_s8(im2col_rows(params, x, kernel_hw), w_rows, bias_folded, quant, params.output_zp,
                       params.act_min, params.act_max)
    return y.reshape(x.shape[0], *out_hw, w_rows.shape[0])


def depthwise_conv2d_folded_s8(params: Conv2dParams, quant: PerChannelQuant, x: np.ndarray, w_taps: np.ndarray,
                               bias_folded: np.ndarray, kernel_hw: tuple[int, int]) -> np.ndarray:
    """Reference of the depth-multiplier-1 depthwise variants (mcuc_depthwise_conv2d_simd_s8, _rows_s8) from
    their constants: each channel's taps (padding = input_zp) times its row of w_taps [C, kh * kw] plus the
    folded bias."""
    n, c = x.shape[0], x.shape[3]
    out_hw = conv2d_output_hw(x.shape[1:3], kernel_hw, params)
    taps = im2col_rows(params, x, kernel_hw).reshape(-1, kernel_hw[0] * kernel_hw[1], c)  # [M, taps, C]
    acc = _to_int32_acc(np.einsum("mtc,ct->mc", taps.astype(np.float64), w_taps.astype(np.float64)), bias_folded)
    y = requantize(acc, quant.multiplier, quant.shift, params.output_zp, params.act_min, params.act_max)
    return y.reshape(n, *out_hw, c)
