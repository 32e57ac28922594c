"""Integer-exact int8 NHWC average and max pooling (TFLite semantics): prepare + numpy reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.shapes import conv_out_dim

MAX_WINDOW = 1 << 23  # keeps the int32 window sum of int8 values exact


@dataclass(frozen=True)
class PoolParams:
    """struct mcuc_pool_params (mcuc_avgpool_params_t, mcuc_maxpool_params_t).

    Bottom/right padding only shows in out_h/out_w."""

    batches: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int = -128
    act_max: int = 127

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.batches, self.out_h, self.out_w, self.channels)


def prepare_pool(input_shape: tuple[int, int, int, int], kernel: tuple[int, int],
                 strides: tuple[int, int], pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                 act_min: int = -128, act_max: int = 127) -> PoolParams:
    """Pooling parameters for an NHWC input; pads are (top, left, bottom, right)."""
    n, h, w, c = (int(d) for d in input_shape)
    kh, kw = kernel
    sh, sw = strides
    top, left, bottom, right = pads
    if min(kh, kw, sh, sw) < 1 or min(pads) < 0 or kh * kw > MAX_WINDOW:
        raise ValueError(f"bad pool geometry kernel={kernel} strides={strides} pads={pads}")
    if not -128 <= act_min <= act_max <= 127:
        raise ValueError(f"bad activation range [{act_min}, {act_max}]")
    oh = conv_out_dim(h, kh, sh, top, bottom)
    ow = conv_out_dim(w, kw, sw, left, right)
    return PoolParams(n, h, w, c, oh, ow, kh, kw, sh, sw, top, left, act_min, act_max)


def prepare_global_avgpool(input_shape: tuple[int, int, int, int]) -> PoolParams:
    """Global average pooling: one window covering H x W."""
    _, h, w, _ = input_shape
    return prepare_pool(input_shape, (h, w), (1, 1))


def _window_bounds(out: int, stride: int, pad: int, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped input [start, end) of every output window along one axis."""
    start = np.arange(out, dtype=np.int64) * stride - pad
    return np.clip(start, 0, size), np.clip(start + k, 0, size)


def avgpool_s8(params: PoolParams, x: np.ndarray) -> np.ndarray:
    """mcuc_avgpool_s8: in-bounds window sums from an integral image, rounded half away from zero."""
    p = params
    if x.shape != (p.batches, p.in_h, p.in_w, p.channels):
        raise ValueError(f"input shape {x.shape} does not match params")
    integral = np.zeros((p.batches, p.in_h + 1, p.in_w + 1, p.channels), dtype=np.int64)
    integral[:, 1:, 1:, :] = x.astype(np.int64).cumsum(axis=1).cumsum(axis=2)
    y0, y1 = _window_bounds(p.out_h, p.stride_h, p.pad_top, p.kernel_h, p.in_h)
    x0, x1 = _window_bounds(p.out_w, p.stride_w, p.pad_left, p.kernel_w, p.in_w)
    yy0, yy1 = y0[:, None], y1[:, None]
    total = (integral[:, yy1, x1[None, :], :] - integral[:, yy0, x1[None, :], :]
             - integral[:, yy1, x0[None, :], :] + integral[:, yy0, x0[None, :], :])
    count = ((y1 - y0)[:, None] * (x1 - x0)[None, :])[None, :, :, None]
    safe = np.maximum(count, 1)
    half = count // 2
    pos = (total + half) // safe
    neg = -((half - total) // safe)  # C truncating division of (total - half) <= 0
    avg = np.where(count == 0, 0, np.where(total > 0, pos, neg))
    return np.clip(avg, p.act_min, p.act_max).astype(np.int8)


def maxpool_s8(params: PoolParams, x: np.ndarray) -> np.ndarray:
    """mcuc_maxpool_s8: padding with -128 equals skipping out-of-bounds taps (max starts at -128)."""
    p = params
    if x.shape != (p.batches, p.in_h, p.in_w, p.channels):
        raise ValueError(f"input shape {x.shape} does not match params")
    need_h = (p.out_h - 1) * p.stride_h + p.kernel_h
    need_w = (p.out_w - 1) * p.stride_w + p.kernel_w
    bottom = max(need_h - p.pad_top - p.in_h, 0)
    right = max(need_w - p.pad_left - p.in_w, 0)
    xp = np.pad(x, ((0, 0), (p.pad_top, bottom), (p.pad_left, right), (0, 0)), constant_values=-128)
    out = np.full(p.out_shape, -128, dtype=np.int8)
    h_end = (p.out_h - 1) * p.stride_h + 1
    w_end = (p.out_w - 1) * p.stride_w + 1
    for ky in range(p.kernel_h):
        for kx in range(p.kernel_w):
            tap = xp[:, ky:ky + h_end:p.stride_h, kx:kx + w_end:p.stride_w, :]
            np.maximum(out, tap, out=out)
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)
