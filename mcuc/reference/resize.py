"""Resize of NHWC images (nearest, bilinear): the coordinate rules, the taps they give, and mcuc_resize_s8's reference.

Every coordinate rule is here, in Python, and runs once at compile time: for each output row (and column) it
gives two source indices and the weight of the second, so the kernel is one loop over a table. Two families of
rules:

- ``onnx``: ONNX Resize's coordinate_transformation_mode (half_pixel, pytorch_half_pixel, align_corners,
  asymmetric, tf_half_pixel_for_nn) and nearest_mode, in float32 arithmetic as onnxruntime computes them
  (linear clamps the source coordinate into the input; an axis with scale 1 is copied).
- ``tflite``: TFLite's kernels with their align_corners / half_pixel_centers flags; nearest is TFLite's
  GetNearestNeighbor (float32), bilinear int8 is ResizeBilinearInteger (10-bit fixed-point coordinates).

int8 bilinear interpolates with weights of 10 fractional bits (TFLite's integer algorithm): the four products of
a tap's value and its row and column weights are summed and divided by 2^20, rounding half away from zero. For
``tflite`` the weights are TFLite's own, so the result equals TFLite Micro bit for bit; for ``onnx`` they are the
float weights rounded to 1/1024.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONE = 1 << 10  # weight of a whole tap (10 fractional bits)
ONNX_COORDS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
TFLITE_COORDS = ("asymmetric", "align_corners", "half_pixel")  # no flag, align_corners, half_pixel_centers
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
MAX_SIZE = 1 << 15  # indices and weights are int16 in the kernel's tables

F32 = np.float32


@dataclass(frozen=True)
class ResizeRule:
    """How output coordinates map to the input: ``mode`` nearest | linear, ``rule`` onnx | tflite, ``coord`` one of
    ONNX_COORDS or TFLITE_COORDS, ``nearest_mode`` (ONNX nearest), ``scales`` (ONNX: the H and W scales the model
    gives, or output / input when it gives sizes)."""

    mode: str
    rule: str
    coord: str
    nearest_mode: str = "round_prefer_floor"
    scales: tuple[float, float] = (0.0, 0.0)

    def check(self) -> None:
        coords = ONNX_COORDS if self.rule == "onnx" else TFLITE_COORDS if self.rule == "tflite" else ()
        if self.mode not in ("nearest", "linear") or self.coord not in coords or (
                self.rule == "onnx" and self.nearest_mode not in NEAREST_MODES):
            raise ValueError(f"unsupported resize rule {self}")


# ---- source coordinates -----------------------------------------------------------------------------------


def _onnx_coordinate(coord: str, out_size: int, in_size: int, scale: np.float32) -> np.ndarray:
    """onnxruntime's get_original_coordinate for every output index, in float32."""
    x = np.arange(out_size, dtype=F32)
    half = F32(0.5)
    if coord == "asymmetric":
        return x / scale
    if coord == "tf_half_pixel_for_nn":
        return (x + half) / scale
    if coord == "half_pixel":
        return (x + half) / scale - half
    if coord == "pytorch_half_pixel":
        return (x + half) / scale - half if out_size > 1 else np.zeros(out_size, F32)
    # align_corners
    return x * F32(in_size - 1) / F32(out_size - 1) if out_size > 1 else np.zeros(out_size, F32)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """std::round of float32 values, exactly (in float64, where v + 0.5 does not round)."""
    v64 = v.astype(np.float64)
    return np.where(v64 >= 0, np.floor(v64 + 0.5), -np.floor(-v64 + 0.5)).astype(np.int64)


def _onnx_nearest(v: np.ndarray, nearest_mode: str) -> np.ndarray:
    if nearest_mode == "floor":
        return np.floor(v).astype(np.int64)
    if nearest_mode == "ceil":
        return np.ceil(v).astype(np.int64)
    rounded = _round_half_away(v)
    if nearest_mode == "round_prefer_ceil":
        return rounded
    tie = v == np.trunc(v) + F32(0.5)  # onnxruntime's test: x == (int64)x + 0.5f
    return np.where(tie, np.floor(v).astype(np.int64), rounded)


def _tflite_nearest(coord: str, out_size: int, in_size: int) -> np.ndarray:
    """TFLite GetNearestNeighbor (float32 scale and offset; align_corners rounds, else floors)."""
    align, half = coord == "align_corners", coord == "half_pixel"
    scale = F32(in_size - 1) / F32(out_size - 1) if align and out_size > 1 else F32(in_size) / F32(out_size)
    v = (np.arange(out_size, dtype=F32) + F32(0.5 if half else 0.0)) * scale
    idx = np.minimum(_round_half_away(v) if align else np.floor(v).astype(np.int64), in_size - 1)
    return np.maximum(idx, 0) if half else idx


def _tflite_scale(coord: str, out_size: int, in_size: int) -> np.float32:
    if coord == "align_corners" and out_size > 1:
        return F32(in_size - 1) / F32(out_size - 1)
    return F32(in_size) / F32(out_size)


@dataclass(frozen=True)
class Taps:
    """Per output index along one axis: source indices ``lo`` and ``hi`` and the weight of ``hi`` (``lo`` weighs
    1 - frac); nearest has lo == hi and frac 0."""

    lo: np.ndarray
    hi: np.ndarray
    frac: np.ndarray  # float64


def float_taps(r: ResizeRule, axis: int, out_size: int, in_size: int) -> Taps:
    """Taps of axis 0 (rows) or 1 (columns) with float weights: the op's float meaning."""
    r.check()
    if r.rule == "onnx":
        scale = F32(r.scales[axis])
        if scale == F32(1.0):
            idx = np.minimum(np.arange(out_size), in_size - 1)  # onnxruntime copies an axis of scale 1
            return Taps(idx, idx, np.zeros(out_size))
        v = _onnx_coordinate(r.coord, out_size, in_size, scale)
        if r.mode == "nearest":
            idx = np.clip(_onnx_nearest(v, r.nearest_mode), 0, in_size - 1)
            return Taps(idx, idx, np.zeros(out_size))
        v = np.clip(v, F32(0.0), F32(in_size - 1))
        lo = np.minimum(v.astype(np.int64), in_size - 1)
        hi = np.minimum(lo + 1, in_size - 1)
        return Taps(lo, hi, np.where(lo == hi, 0.0, v.astype(np.float64) - lo))
    if r.mode == "nearest":
        idx = _tflite_nearest(r.coord, out_size, in_size)
        return Taps(idx, idx, np.zeros(out_size))
    # TFLite's float ComputeInterpolationValues
    scale = _tflite_scale(r.coord, out_size, in_size)
    x = np.arange(out_size, dtype=F32)
    v = (x + F32(0.5)) * scale - F32(0.5) if r.coord == "half_pixel" else x * scale
    lo = np.maximum(np.floor(v).astype(np.int64), 0)
    hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
    return Taps(lo, hi, v.astype(np.float64) - lo)


def int_taps(r: ResizeRule, axis: int, out_size: int, in_size: int) -> np.ndarray:
    """int16 [out_size, 3] table of (lo, hi, weight of hi in 1/1024) for mcuc_resize_s8."""
    if r.mode == "linear" and r.rule == "tflite":
        # TFLite ResizeBilinearInteger: scale and coordinates in 10-bit fixed point, C integer division
        if r.coord == "align_corners" and out_size > 1:
            scale10 = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
        else:
            scale10 = (ONE * in_size + out_size // 2) // out_size
        x = np.arange(out_size, dtype=np.int64)
        v = x * scale10 + scale10 // 2 - ONE // 2 if r.coord == "half_pixel" else x * scale10
        trunc = np.where(v < 0, -((-v) // ONE), v // ONE)
        lo = np.maximum(trunc, 0)
        up = v + ONE - 1
        hi = np.minimum(np.where(up < 0, -((-up) // ONE), up // ONE), in_size - 1)
        if lo.max(initial=0) > in_size - 1:
            raise ValueError(f"TFLite's bilinear coordinates for {in_size} -> {out_size} fall past the input "
                             f"(row/column {int(lo.max())}); TFLite would read outside the tensor")
        w = v - ONE * lo
    else:
        t = float_taps(r, axis, out_size, in_size)
        lo, hi = t.lo, t.hi
        w = np.floor(t.frac * ONE + 0.5).astype(np.int64)
    return np.stack([lo, hi, w], axis=1).astype(np.int16)


# ---- the kernel -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResizeParams:
    """mcuc_resize_params_t."""

    batches: int
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    bilinear: int

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.batches, self.out_h, self.out_w, self.channels)


def prepare_resize(input_shape: tuple[int, ...], size: tuple[int, int],
                   r: ResizeRule) -> tuple[ResizeParams, np.ndarray, np.ndarray]:
    """Parameters and the row and column tables (int16 [out, 3]) of mcuc_resize_s8 for an NHWC input."""
    n, h, w, c = (int(d) for d in input_shape)
    oh, ow = (int(d) for d in size)
    r.check()
    if min(n, h, w, c, oh, ow) < 1 or max(h, w, oh, ow) >= MAX_SIZE:
        raise ValueError(f"resize {input_shape} -> {size}: sizes must be in [1, {MAX_SIZE - 1}]")
    rows, cols = int_taps(r, 0, oh, h), int_taps(r, 1, ow, w)
    for t in (rows, cols):
        if not -ONE // 2 <= int(t[:, 2].min()) <= int(t[:, 2].max()) <= ONE + ONE // 2:
            raise ValueError(f"resize weights {t[:, 2].min()}..{t[:, 2].max()} outside [-512, 1536]")
    return ResizeParams(n, h, w, c, oh, ow, int(r.mode == "linear")), rows, cols


def resize_s8(params: ResizeParams, rows: np.ndarray, cols: np.ndarray, x: np.ndarray) -> np.ndarray:
    """mcuc_resize_s8: nearest copies input[y0, x0]; bilinear sums the four taps times (1024 - w) or w of their row
    and column, divides by 2^20 rounding half away from zero (TFLite's ResizeBilinearInteger)."""
    p = params
    if x.shape != (p.batches, p.in_h, p.in_w, p.channels):
        raise ValueError(f"input shape {x.shape} does not match params")
    y0, y1, wy = (rows[:, k].astype(np.int64) for k in range(3))
    x0, x1, wx = (cols[:, k].astype(np.int64) for k in range(3))
    if not p.bilinear:
        return np.ascontiguousarray(x[:, y0][:, :, x0])
    v = x.astype(np.int64)
    top = v[:, y0][:, :, x0] * (ONE - wx)[None, None, :, None] + v[:, y0][:, :, x1] * wx[None, None, :, None]
    bot = v[:, y1][:, :, x0] * (ONE - wx)[None, None, :, None] + v[:, y1][:, :, x1] * wx[None, None, :, None]
    acc = np.asarray(top * (ONE - wy)[None, :, None, None] + bot * wy[None, :, None, None], dtype=np.int64)
    half = 1 << 19
    out = np.where(acc > 0, (acc + half) >> 20, -((half - acc) >> 20))
    return np.clip(out, -128, 127).astype(np.int8)


def resize_float(x: np.ndarray, r: ResizeRule, size: tuple[int, int]) -> np.ndarray:
    """The float meaning of the op on an NHWC input (float64 weights, float32 result)."""
    _, h, w, _ = x.shape
    ty, tx = float_taps(r, 0, size[0], h), float_taps(r, 1, size[1], w)
    v = x.astype(np.float64)
    fx = tx.frac[None, None, :, None]
    top = v[:, ty.lo][:, :, tx.lo] * (1.0 - fx) + v[:, ty.lo][:, :, tx.hi] * fx
    bot = v[:, ty.hi][:, :, tx.lo] * (1.0 - fx) + v[:, ty.hi][:, :, tx.hi] * fx
    fy = ty.frac[None, :, None, None]
    return (top * (1.0 - fy) + bot * fy).astype(np.float32)
