"""Float32 numpy kernels: the accuracy baseline and calibrator, evaluated node by node (mcuc/execute.py).

They must be fast enough to run a full MobileNetV2 per calibration sample, hence im2col + matmul
for convolutions and shifted-slice accumulation for depthwise convolutions. Images are NHWC here;
the op registry transposes NCHW graphs around the calls.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray


def to_nhwc(x: Array, layout: str) -> Array:
    return x.transpose(0, 2, 3, 1) if layout == "NCHW" else x


def from_nhwc(x: Array, layout: str) -> Array:
    return x.transpose(0, 3, 1, 2) if layout == "NCHW" else x


def apply_act(y: Array, attrs: dict) -> Array:
    """The fused activation (``act``: None, "relu", or "clip" with act_lo/act_hi) of a node's output."""
    act = attrs.get("act")
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "clip":
        lo, hi = attrs.get("act_lo"), attrs.get("act_hi")
        return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return y


# ---- convolution ------------------------------------------------------------------------


def _pad_hw(x: Array, pads: tuple[int, int, int, int], value: float = 0.0) -> Array:
    t, left, b, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _windows(xp: Array, kh: int, kw: int, strides: tuple[int, int], dil: tuple[int, int],
             oh: int, ow: int) -> Array:
    """[N, OH, OW, C, kh, kw] view of an NHWC padded input."""
    eh, ew = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    v = sliding_window_view(xp, (eh, ew), axis=(1, 2))
    return v[:, :oh * strides[0]:strides[0], :ow * strides[1]:strides[1], :, ::dil[0], ::dil[1]]


def conv2d_nhwc(x: Array, w: Array, b: Array | None, strides: tuple[int, int],
                pads: tuple[int, int, int, int], dil: tuple[int, int], groups: int) -> Array:
    """NHWC conv with OHWI weights [O, kh, kw, I/groups]."""
    n, h, wd, c = x.shape
    o, kh, kw, ci = w.shape
    sh, sw = strides
    xp = _pad_hw(x, pads)
    oh = (xp.shape[1] - dil[0] * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[2] - dil[1] * (kw - 1) - 1) // sw + 1
    if groups == c and ci == 1:
        mult = o // c
        src = np.repeat(xp, mult, axis=3) if mult > 1 else xp
        out = np.zeros((n, oh, ow, o), dtype=np.float32)
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dil[0], j * dil[1]
                out += src[:, r0:r0 + sh * (oh - 1) + 1:sh, c0:c0 + sw * (ow - 1) + 1:sw, :] * w[:, i, j, 0]
    else:
        og = o // groups
        parts = []
        for gi in range(groups):
            xg = xp[..., gi * ci:(gi + 1) * ci]
            wg = w[gi * og:(gi + 1) * og]
            if kh == 1 and kw == 1:
                cols = xg[:, :sh * (oh - 1) + 1:sh, :sw * (ow - 1) + 1:sw, :].reshape(-1, ci)
                wm = wg.reshape(og, ci)
            else:
                cols = _windows(xg, kh, kw, strides, dil, oh, ow).reshape(-1, ci * kh * kw)
                wm = wg.transpose(0, 3, 1, 2).reshape(og, ci * kh * kw)
            parts.append((cols @ wm.T).reshape(n, oh, ow, og))
        out = parts[0] if groups == 1 else np.concatenate(parts, axis=3)
    if b is not None:
        out = out + b
    return out.astype(np.float32, copy=False)


# ---- pooling --------------------------------------------------------------------------


def pool_nhwc(x: Array, kind: str, kernel: tuple[int, int], strides: tuple[int, int],
              pads: tuple[int, int, int, int]) -> Array:
    """``kind`` "max" or "avg" pooling of an NHWC input; taps in the padding are skipped (the average
    divides by the number of taps inside the input)."""
    kh, kw = kernel
    n, h, w, c = x.shape
    if kind == "avg" and (kh, kw) == (h, w) and not any(pads):
        return x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)
    sh, sw = strides
    oh = (h + pads[0] + pads[2] - kh) // sh + 1
    ow = (w + pads[1] + pads[3] - kw) // sw + 1
    if kind == "max":
        win = _windows(_pad_hw(x, pads, -np.inf), kh, kw, (sh, sw), (1, 1), oh, ow)
        return win.max(axis=(4, 5)).astype(np.float32)
    win = _windows(_pad_hw(x, pads), kh, kw, (sh, sw), (1, 1), oh, ow)
    total = win.sum(axis=(4, 5), dtype=np.float64)
    ones = np.ones((1, h, w, 1), dtype=np.float64)
    count = _windows(_pad_hw(ones, pads), kh, kw, (sh, sw), (1, 1), oh, ow).sum(axis=(4, 5))
    return (total / count).astype(np.float32)


# ---- normalisation and the rest ---------------------------------------------------------


def batchnorm(x: Array, scale: Array, bias: Array, mean: Array, var: Array, epsilon: float, axis: int) -> Array:
    shape = [1] * x.ndim
    shape[axis] = -1
    k = scale / np.sqrt(var + np.float32(epsilon))
    return (x - mean.reshape(shape)) * k.reshape(shape) + bias.reshape(shape)


def layernorm(x: Array, gamma: Array, beta: Array, epsilon: float) -> Array:
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x64 - mean) / np.sqrt(var + epsilon) * gamma + beta


def softmax(x: Array, axis: int) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def erf(x: Array) -> Array:
    return np.vectorize(math.erf, otypes=[np.float64])(x)
