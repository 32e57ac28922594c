"""Integer-exact int8 transformer kernels (layernorm, batch matmul, mean, slice, gather): prepare + reference.

Each ``prepare_*`` turns shapes and float quantization parameters into the integer parameters of
the C kernel (declared in mcuc/runtime_c/include/mcuc_norm.h, mcuc_matmul.h and mcuc_layout.h; dataclass
fields = C struct fields, in order); each ``*_s8`` function computes exactly what the C kernel computes.

LayerNorm over the last axis (row length C), input q int8 with scale s_x (its zero point cancels):

    S   = sum q                      Q = sum q^2                  (int32)
    V   = C * Q - S^2 + eps_v        = C^2 * (var_q + eps / s_x^2) (int64, eps_v = round(C^2 eps / s_x^2) >= 1)
    k   = smallest k >= 0 with V * 4^k >= 2^60;   W = V * 4^k in [2^60, 2^62)
    R   = isqrt(W)                   floor square root, in [2^30, 2^31)  (sqrt(V) = R / 2^k)
    inv = 2^62 // R                  fixed-point 1 / R, in (2^31, 2^32]
    D_c = C * q_c - S                = C * (q_c - mean)
    N_c = (D_c * inv + 2^(s - 1)) >> s,   s = 62 - k - F    N_c = round(normalised_c * 2^F), F = 16
    y_c = clamp(zp_y + ((N_c * A_c + B_c + 2^(T - 1)) >> T), -128, 127)

with A_c = round(gamma_c / s_y * 2^(T - F)) (int32) and B_c = round(beta_c / s_y * 2^T) (int64); T is
chosen per op as large as keeps |A_c| < 2^31 and |B_c| < 2^61. Every step is an integer operation
on int64 with no overflow for C <= 65535, so numpy and C agree exactly; >> is an arithmetic
(flooring) shift in both.

Mean over a contiguous group of axes, viewed as [outer, reduce, inner]: acc = sum (q - zp_in)
(int32), out = clamp(zp_out + MultiplyByQuantizedMultiplier(acc, s_in / (s_out * reduce))).
Batch matmul follows TFLite BATCH_MATMUL: acc = sum_k (a - zp_a)(b - zp_b) in int32, one per-tensor
requantization by s_a * s_b / s_out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcuc.quant import INT32_MAX, multiply_by_quantized_multiplier, quantize_multiplier

LN_FRAC_BITS = 16  # F: fractional bits of the normalised value N_c
LN_MAX_ROW = 65535


def _check_zp(*zps: int) -> None:
    for zp in zps:
        if not -128 <= zp <= 127:
            raise ValueError(f"int8 zero point out of range: {zp}")


def _pad4(dims: tuple[int, ...], fill: int = 1) -> tuple[int, int, int, int]:
    if len(dims) > 4:
        raise ValueError(f"kernels support up to 4-D tensors, got {dims}")
    d = (fill,) * (4 - len(dims)) + tuple(int(x) for x in dims)
    return (d[0], d[1], d[2], d[3])


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, step = [0] * len(shape), 1
    for ax in range(len(shape) - 1, -1, -1):
        out[ax] = step
        step *= int(shape[ax])
    return out


# ---- layernorm -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerNormParams:
    """mcuc_layernorm_params_t plus the per-channel affine arrays passed alongside it."""

    rows: int
    row_size: int
    eps_v: int  # int64
    out_shift: int  # T
    out_zp: int
    gamma_mult: np.ndarray  # int32 [C]: A_c
    beta_bias: np.ndarray  # int64 [C]: B_c


def prepare_layernorm(shape: tuple[int, ...], in_scale: float, gamma: np.ndarray, beta: np.ndarray,
                      epsilon: float, out_scale: float, out_zp: int) -> LayerNormParams:
    """LayerNorm over the last axis of ``shape`` (see the module docstring for the algorithm)."""
    c = int(shape[-1]) if shape else 0
    if not 1 <= c <= LN_MAX_ROW:
        raise ValueError(f"layernorm row size must be in [1, {LN_MAX_ROW}], shape {shape}")
    if not (in_scale > 0 and out_scale > 0 and epsilon >= 0):
        raise ValueError("layernorm needs positive scales and epsilon >= 0")
    _check_zp(out_zp)
    a = np.asarray(gamma, np.float64).reshape(-1) / out_scale
    b = np.clip(np.asarray(beta, np.float64).reshape(-1) / out_scale, -(2.0**24), 2.0**24)
    if a.shape != (c,) or b.shape != (c,):
        raise ValueError(f"gamma/beta must have {c} entries")
    eps_v = int(min(max(round(c * c * epsilon / (in_scale * in_scale)), 1), 2**60))
    amax = float(np.abs(a).max())
    bmax = float(np.abs(b).max())
    t = 62
    if amax > 0:
        t = min(t, LN_FRAC_BITS + 30 - math.ceil(math.log2(amax)))
    if bmax > 0:
        t = min(t, 60 - math.ceil(math.log2(bmax)))
    if t < 1:
        raise ValueError(f"layernorm gamma/out_scale {amax} too large for the fixed-point affine")
    gm = np.rint(a * 2.0 ** (t - LN_FRAC_BITS)).astype(np.int64)
    bb = np.array([round(float(v) * 2.0**t) for v in b], dtype=np.int64)
    assert np.abs(gm).max(initial=0) <= INT32_MAX
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return LayerNormParams(rows, c, eps_v, t, int(out_zp), gm.astype(np.int32), bb)


def isqrt_u62(w: np.ndarray) -> np.ndarray:
    """floor(sqrt(w)) for int64 w in [0, 2^62): float estimate, then exact integer correction."""
    r = np.floor(np.sqrt(w.astype(np.float64))).astype(np.int64)
    for _ in range(3):
        r = np.where(r * r > w, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= w, r + 1, r)
    return r


def layernorm_s8(params: LayerNormParams, x: np.ndarray) -> np.ndarray:
    """mcuc_layernorm_s8 over the last axis of ``x``."""
    p = params
    if x.shape[-1] != p.row_size or x.size != p.rows * p.row_size:
        raise ValueError(f"input shape {x.shape} does not match params")
    q = x.reshape(-1, p.row_size).astype(np.int64)
    s = q.sum(axis=1, keepdims=True)
    v = p.row_size * (q * q).sum(axis=1, keepdims=True) - s * s + p.eps_v
    k = np.zeros_like(v)
    for _ in range(31):
        small = v < (1 << 60)
        v = np.where(small, v << 2, v)
        k = k + small
    r = isqrt_u62(v)
    inv = (np.int64(1) << 62) // r
    d = p.row_size * q - s
    sh = 62 - k - LN_FRAC_BITS
    n = (d * inv + (np.int64(1) << (sh - 1))) >> sh
    acc = n * p.gamma_mult.astype(np.int64) + p.beta_bias.astype(np.int64)
    y = p.out_zp + ((acc + (np.int64(1) << (p.out_shift - 1))) >> p.out_shift)
    return np.clip(y, -128, 127).astype(np.int8).reshape(x.shape)


def layernorm_affine(params: LayerNormParams) -> np.ndarray | None:
    """The constants of mcuc_layernorm_simd_s8 (mcuc_norm.h): in quads of channels, gamma_mult of the four, then
    low and high word of each one's bias with the rounding and ``out_zp << out_shift`` folded in, so the
    output is the high word of one 64-bit multiply-add shifted by ``out_shift - 32`` (the whole sum shifted
    where out_shift < 32). None where a folded bias would leave (-2^62, 2^62)."""
    p = params
    t = p.out_shift
    bias = [int(b) + (1 << (t - 1)) + (p.out_zp << t) for b in p.beta_bias]
    if any(abs(b) >= 1 << 62 for b in bias):
        return None
    quads = (p.row_size + 3) // 4
    out = np.zeros((quads, 12), np.int64)
    for c, (g, b) in enumerate(zip(p.gamma_mult, bias, strict=True)):
        q, j = divmod(c, 4)
        out[q, j] = int(g)
        out[q, 4 + 2 * j] = b & 0xFFFFFFFF
        out[q, 5 + 2 * j] = b >> 32
    return ((out.reshape(-1) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)  # words as int32


# ---- batch matmul --------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchMatmulParams:
    """mcuc_batch_matmul_params_t: out [batch0, batch1, M, N] = a [.., M, K] @ b [.., K, N]."""

    batch: tuple[int, int]
    m: int
    k: int
    n: int
    a_batch_strides: tuple[int, int]  # elements; 0 on broadcast batch axes
    b_batch_strides: tuple[int, int]
    b_k_stride: int  # element (k, n) of a b matrix is at k * b_k_stride + n * b_n_stride
    b_n_stride: int
    a_offset: int  # -zp_a
    b_offset: int  # -zp_b
    out_zp: int
    out_mult: int
    out_shift: int
    act_min: int = -128
    act_max: int = 127


MAX_MATMUL_K = 32768  # K * 255 * 255 < 2^31


def _batch_strides(shape: tuple[int, ...], out_batch: tuple[int, int]) -> tuple[int, int]:
    lead = _pad4(tuple(shape))
    mat = lead[2] * lead[3]
    s1 = mat if lead[1] != 1 else 0
    s0 = mat * lead[1] if lead[0] != 1 else 0
    if (lead[0] != 1 and lead[0] != out_batch[0]) or (lead[1] != 1 and lead[1] != out_batch[1]):
        raise ValueError(f"batch dims of {shape} do not broadcast to {out_batch}")
    return (s0, s1)


def prepare_batch_matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...], sa: float, zpa: int, sb: float,
                         zpb: int, s_out: float, zp_out: int, act_min: int = -128, act_max: int = 127,
                         transpose_b: bool = False) -> BatchMatmulParams:
    """a [..., M, K] @ b [..., K, N] with numpy batch broadcasting, ranks 2..4; with ``transpose_b`` b is
    stored [..., N, K] (attention's q @ k^T reads k as it is)."""
    _check_zp(zpa, zpb, zp_out)
    if transpose_b:
        b_shape = tuple(b_shape[:-2]) + (b_shape[-1], b_shape[-2])
    if not 2 <= len(a_shape) <= 4 or not 2 <= len(b_shape) <= 4 or a_shape[-1] != b_shape[-2]:
        raise ValueError(f"batch_matmul cannot multiply {a_shape} by {b_shape}")
    k = int(a_shape[-1])
    if not 1 <= k <= MAX_MATMUL_K:
        raise ValueError(f"batch_matmul inner dimension {k} outside [1, {MAX_MATMUL_K}]")
    out_b = tuple(int(d) for d in np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
    ob = _pad4(out_b + (1, 1))[:2]
    mult, shift = quantize_multiplier(sa * sb / s_out)
    if shift > 0 and (k * 255 * 255) << shift > INT32_MAX:
        raise ValueError(f"batch_matmul rescale {sa * sb / s_out} too large for int32 fixed point")
    n = int(b_shape[-1])
    return BatchMatmulParams((ob[0], ob[1]), int(a_shape[-2]), k, n,
                             _batch_strides(tuple(a_shape), (ob[0], ob[1])),
                             _batch_strides(tuple(b_shape), (ob[0], ob[1])), 1 if transpose_b else n,
                             k if transpose_b else 1, -zpa, -zpb, zp_out, mult, shift, act_min, act_max)


def batch_matmul_s8(params: BatchMatmulParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """mcuc_batch_matmul_s8 (float64 matmul of integers is exact: |acc| < 2^31 < 2^53)."""
    p = params
    bf = b.astype(np.float64) + p.b_offset
    if (p.b_k_stride, p.b_n_stride) == (1, p.k) and (p.n, 1) != (1, p.k):  # b stored [..., N, K]
        bf = np.swapaxes(bf, -1, -2)
    acc = np.matmul(a.astype(np.float64) + p.a_offset, bf).astype(np.int64)
    y = multiply_by_quantized_multiplier(acc, p.out_mult, p.out_shift) + p.out_zp
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


# ---- mean ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanParams:
    """mcuc_mean_params_t: input viewed as [outer, reduce, inner], output [outer, inner]."""

    outer: int
    reduce: int
    inner: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int


def prepare_mean(shape: tuple[int, ...], axes: tuple[int, ...], s_in: float, zp_in: int, s_out: float,
                 zp_out: int) -> MeanParams:
    """Mean over ``axes``, which must be consecutive (e.g. the tokens of [B, T, C])."""
    _check_zp(zp_in, zp_out)
    ax = sorted(int(a) for a in axes)
    if not ax or ax != list(range(ax[0], ax[-1] + 1)) or ax[-1] >= len(shape):
        raise ValueError(f"mean needs consecutive axes of {shape}, got {axes}")
    outer = int(np.prod(shape[:ax[0]], dtype=np.int64))
    red = int(np.prod(shape[ax[0]:ax[-1] + 1], dtype=np.int64))
    inner = int(np.prod(shape[ax[-1] + 1:], dtype=np.int64))
    if not 1 <= red <= (1 << 23):
        raise ValueError(f"mean over {red} elements: the int32 sum could overflow")
    mult, shift = quantize_multiplier(s_in / (s_out * red))
    if shift > 0 and (255 * red) << shift > INT32_MAX:
        raise ValueError(f"mean rescale {s_in / (s_out * red)} too large for int32 fixed point")
    return MeanParams(outer, red, inner, zp_in, zp_out, mult, shift)


def mean_s8(params: MeanParams, x: np.ndarray) -> np.ndarray:
    """mcuc_mean_s8, result [outer, inner] (the caller reshapes)."""
    p = params
    acc = (x.reshape(p.outer, p.reduce, p.inner).astype(np.int64) - p.in_zp).sum(axis=1)
    y = multiply_by_quantized_multiplier(acc, p.mult, p.shift) + p.out_zp
    return np.clip(y, -128, 127).astype(np.int8)


# ---- slice and gather ----------------------------------------------------------------------


@dataclass(frozen=True)
class SliceParams:
    """mcuc_slice_params_t: out[i0..i3] = in[offset + sum_k i_k * in_strides[k]]."""

    out_dims: tuple[int, int, int, int]
    in_strides: tuple[int, int, int, int]
    offset: int


def prepare_slice(shape: tuple[int, ...], starts: tuple[int, ...], ends: tuple[int, ...],
                  steps: tuple[int, ...]) -> SliceParams:
    """Strided slice with python semantics per axis (0 <= start, step >= 1), rank <= 4."""
    if not len(shape) == len(starts) == len(ends) == len(steps) or len(shape) > 4:
        raise ValueError(f"slice needs one start/end/step per axis of a rank <= 4 shape, got {shape}")
    strides = _strides(tuple(shape))
    out, st, off = [], [], 0
    for d, s, e, k, stride in zip(shape, starts, ends, steps, strides, strict=True):
        r = range(int(d))[int(s):int(e):int(k)]
        if len(r) == 0 or k < 1 or s < 0:
            raise ValueError(f"empty or invalid slice {s}:{e}:{k} of axis size {d}")
        out.append(len(r))
        st.append(stride * int(k))
        off += r.start * stride
    return SliceParams(_pad4(tuple(out)), _pad4(tuple(st), 0), off)


def slice_s8(params: SliceParams, x: np.ndarray) -> np.ndarray:
    """mcuc_slice_s8 as a strided view of the flat input, returned 4-D (the caller reshapes)."""
    p = params
    flat = np.ascontiguousarray(x).reshape(-1)
    idx = p.offset + sum(np.arange(d).reshape([-1 if i == k else 1 for i in range(4)]) * s
                         for k, (d, s) in enumerate(zip(p.out_dims, p.in_strides, strict=True)))
    return flat[idx].astype(np.int8)


@dataclass(frozen=True)
class GatherParams:
    """mcuc_gather_params_t plus the indices array: input [outer, axis_size, inner]."""

    outer: int
    axis_size: int
    inner: int
    n_indices: int
    indices: np.ndarray  # int32 [n_indices], each in [0, axis_size)


def prepare_gather(shape: tuple[int, ...], axis: int, indices: tuple[int, ...]) -> GatherParams:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not 0 <= axis < len(shape) or idx.size == 0 or idx.min() < 0 or idx.max() >= shape[axis]:
        raise ValueError(f"gather indices {indices} out of range for axis {axis} of {shape}")
    return GatherParams(int(np.prod(shape[:axis], dtype=np.int64)), int(shape[axis]),
                        int(np.prod(shape[axis + 1:], dtype=np.int64)), int(idx.size), idx.astype(np.int32))


def gather_s8(params: GatherParams, x: np.ndarray) -> np.ndarray:
    """mcuc_gather_s8, result [outer, n_indices, inner]."""
    p = params
    return np.ascontiguousarray(x.reshape(p.outer, p.axis_size, p.inner)[:, p.indices.astype(np.intp), :])


# ---- rank reduction for data movement ------------------------------------------------------


def simplify_transpose(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """An equivalent (shape, perm) of lowest rank: size-1 axes dropped, axes that stay adjacent merged.

    Lets 5-D attention reshuffles ([B, T, 3, heads, d] -> [3, B, heads, T, d] with B = 1) run on
    the 4-D transpose kernel; the element order of input and output is unchanged.
    """
    keep = [a for a in range(len(shape)) if shape[a] != 1]
    if not keep:
        return (1,), (0,)
    order = [a for a in perm if a in keep]  # output axis order, as input axes
    groups: list[list[int]] = [[order[0]]]
    for a in order[1:]:
        prev = groups[-1][-1]
        if keep.index(a) == keep.index(prev) + 1:
            groups[-1].append(a)
        else:
            groups.append([a])
    by_input = sorted(groups, key=lambda grp: grp[0])
    new_shape = tuple(int(np.prod([shape[a] for a in grp])) for grp in by_input)
    new_perm = tuple(by_input.index(grp) for grp in groups)
    return new_shape, new_perm


def simplify_slice(shape: tuple[int, ...], starts: tuple[int, ...], ends: tuple[int, ...],
                   steps: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """An equivalent slice of lower rank: size-1 axes dropped, an axis sliced with step 1 absorbs a
    following full axis."""
    keep = [i for i, d in enumerate(shape) if d != 1] or [0]
    shape = tuple(shape[i] for i in keep)
    starts, ends, steps = (tuple(v[i] for i in keep) for v in (starts, ends, steps))
    if shape == (1,):
        return (1,), (0,), (1,), (1,)
    sh, st, en, sp = [list(v) for v in (shape, starts, ends, steps)]
    i = len(sh) - 2
    while i >= 0:
        full_next = st[i + 1] == 0 and en[i + 1] >= sh[i + 1] and sp[i + 1] == 1
        if full_next and sp[i] == 1:
            d = sh[i + 1]
            sh[i:i + 2] = [sh[i] * d]
            st[i:i + 2] = [st[i] * d]
            en[i:i + 2] = [min(en[i], shape[i]) * d]
            sp[i:i + 2] = [1]
        i -= 1
    return tuple(sh), tuple(st), tuple(en), tuple(sp)
