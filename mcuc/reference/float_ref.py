"""Float32 numpy interpreter for float graphs (NCHW or NHWC): the accuracy baseline and calibrator.

It returns every activation, because calibration needs each tensor's range, and it must be
fast enough to run a full MobileNetV2 per calibration sample, hence im2col + matmul for
convolutions and shifted-slice accumulation for depthwise convolutions.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.ops import spatial_axes

Array = np.ndarray


def run_float(g: Graph, feeds: dict[str, Array]) -> dict[str, Array]:
    """Evaluate ``g`` on ``feeds`` (arrays in the graph's layout); return every activation by name."""
    env: dict[str, Array] = {}
    for name in g.inputs:
        if name not in feeds:
            raise MCUCError(f"no value fed for graph input '{name}'")
        x = np.asarray(feeds[name], dtype=np.float32)
        if tuple(x.shape) != tuple(g.tensors[name].shape):
            raise MCUCError(f"input '{name}' has shape {x.shape}, the graph wants {g.tensors[name].shape}")
        env[name] = x
    for node in g.nodes:
        args = [_value(g, env, i) for i in node.inputs]
        fn = _OPS.get(node.op)
        if fn is None:
            raise MCUCError(f"the float reference cannot run op '{node.op}' (node '{node.name}')")
        y = fn(node, args, g.layout)
        if node.op in _ACT_OPS:
            y = apply_act(y, node.attrs)
        env[node.outputs[0]] = np.asarray(y, dtype=np.float32)
    return env


def _value(g: Graph, env: dict[str, Array], name: str) -> Array:
    if name in env:
        return env[name]
    data = g.tensors[name].data
    if data is None:
        raise MCUCError(f"tensor '{name}' is used before it is computed")
    return data.astype(np.float32, copy=False)


def apply_act(y: Array, attrs: dict) -> Array:
    """The fused activation of conv2d / fully_connected / add / sub / mul."""
    act = attrs.get("act")
    if act is None:
        return y
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "clip":
        lo, hi = attrs.get("act_lo"), attrs.get("act_hi")
        return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    raise MCUCError(f"unknown fused activation '{act}'")


# ---- convolution ------------------------------------------------------------------------


def _to_nhwc(x: Array, layout: str) -> Array:
    return x.transpose(0, 2, 3, 1) if layout == "NCHW" else x


def _from_nhwc(x: Array, layout: str) -> Array:
    return x.transpose(0, 3, 1, 2) if layout == "NCHW" else x


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


def _conv2d(node: Node, a: list[Array], layout: str) -> Array:
    w = a[1] if layout == "NHWC" else a[1].transpose(0, 2, 3, 1)
    at = node.attrs
    y = conv2d_nhwc(_to_nhwc(a[0], layout), np.ascontiguousarray(w), a[2] if len(a) > 2 else None,
                    tuple(at["strides"]), tuple(at["pads"]), tuple(at.get("dilations", (1, 1))),
                    int(at.get("groups", 1)))
    return _from_nhwc(y, layout)


# ---- pooling --------------------------------------------------------------------------


def _pool(node: Node, a: list[Array], layout: str) -> Array:
    at = node.attrs
    x = _to_nhwc(a[0], layout)
    kh, kw = at["kernel"]
    pads = tuple(at["pads"])
    n, h, w, c = x.shape
    if node.op == "avgpool" and (kh, kw) == (h, w) and not any(pads):
        return _from_nhwc(x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32), layout)
    sh, sw = at["strides"]
    oh = (h + pads[0] + pads[2] - kh) // sh + 1
    ow = (w + pads[1] + pads[3] - kw) // sw + 1
    if node.op == "maxpool":
        win = _windows(_pad_hw(x, pads, -np.inf), kh, kw, (sh, sw), (1, 1), oh, ow)
        y = win.max(axis=(4, 5))
    else:
        win = _windows(_pad_hw(x, pads), kh, kw, (sh, sw), (1, 1), oh, ow)
        total = win.sum(axis=(4, 5), dtype=np.float64)
        ones = np.ones((1, h, w, 1), dtype=np.float64)
        count = _windows(_pad_hw(ones, pads), kh, kw, (sh, sw), (1, 1), oh, ow).sum(axis=(4, 5))
        y = total / count
    return _from_nhwc(y.astype(np.float32), layout)


# ---- the rest --------------------------------------------------------------------------


def _batchnorm(node: Node, a: list[Array], layout: str) -> Array:
    x, scale, bias, mean, var = a
    axis = spatial_axes(layout)[0] if x.ndim == 4 else 1
    shape = [1] * x.ndim
    shape[axis] = -1
    k = scale / np.sqrt(var + np.float32(node.attrs.get("epsilon", 1e-5)))
    return (x - mean.reshape(shape)) * k.reshape(shape) + bias.reshape(shape)


def _softmax(node: Node, a: list[Array], layout: str) -> Array:
    ax = node.attrs["axis"]
    e = np.exp(a[0] - a[0].max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


def _clip(node: Node, a: list[Array], layout: str) -> Array:
    return np.clip(a[0], node.attrs.get("lo", -np.inf), node.attrs.get("hi", np.inf))


def _hardsigmoid(node: Node, a: list[Array], layout: str) -> Array:
    alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
    return np.clip(np.float32(alpha) * a[0] + np.float32(beta), 0.0, 1.0)


def _gelu(node: Node, a: list[Array], layout: str) -> Array:
    from math import erf, sqrt

    return 0.5 * a[0] * (1.0 + np.vectorize(erf)(a[0] / sqrt(2.0)))


def _erf(x: Array) -> Array:
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x)


def _layernorm(node: Node, a: list[Array], layout: str) -> Array:
    x = a[0].astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5))) * a[1] + a[2]


def _slice(node: Node, a: list[Array], layout: str) -> Array:
    at = node.attrs
    idx = tuple(slice(s, e, k) for s, e, k in zip(at["starts"], at["ends"], at["steps"], strict=True))
    return np.ascontiguousarray(a[0][idx])


def _mean(node: Node, a: list[Array], layout: str) -> Array:
    return a[0].mean(axis=tuple(node.attrs["axes"]), keepdims=bool(node.attrs.get("keepdims", True)),
                     dtype=np.float64)


_OPS: dict[str, Callable[[Node, list[Array], str], Array]] = {
    "conv2d": _conv2d,
    "fully_connected": lambda n, a, lay: a[0] @ a[1].T + (a[2] if len(a) > 2 else 0.0),
    "add": lambda n, a, lay: a[0] + a[1],
    "sub": lambda n, a, lay: a[0] - a[1],
    "mul": lambda n, a, lay: a[0] * a[1],
    "relu": lambda n, a, lay: np.maximum(a[0], 0.0),
    "clip": _clip,
    "sigmoid": lambda n, a, lay: 1.0 / (1.0 + np.exp(-a[0])),
    "hardsigmoid": _hardsigmoid,
    "hardswish": lambda n, a, lay: a[0] * np.clip(a[0] / np.float32(6.0) + np.float32(0.5), 0.0, 1.0),
    "tanh": lambda n, a, lay: np.tanh(a[0]),
    "gelu": _gelu,
    "batchnorm": _batchnorm,
    "avgpool": _pool,
    "maxpool": _pool,
    "reshape": lambda n, a, lay: a[0].reshape(n.attrs["shape"]),
    "transpose": lambda n, a, lay: np.ascontiguousarray(a[0].transpose(n.attrs["perm"])),
    "concat": lambda n, a, lay: np.concatenate(a, axis=n.attrs["axis"]),
    "softmax": _softmax,
    "pad": lambda n, a, lay: np.pad(a[0], [tuple(p) for p in n.attrs["pads"]],
                                    constant_values=n.attrs.get("value", 0.0)),
    "identity": lambda n, a, lay: a[0],
    "div": lambda n, a, lay: a[0] / a[1],
    "erf": lambda n, a, lay: _erf(a[0]),
    "sqrt": lambda n, a, lay: np.sqrt(a[0]),
    "pow": lambda n, a, lay: np.power(a[0], np.float32(n.attrs["exponent"])),
    "layernorm": _layernorm,
    "batch_matmul": lambda n, a, lay: np.matmul(
        a[0].astype(np.float64), np.swapaxes(a[1], -1, -2) if n.attrs.get("transpose_b") else a[1]
    ) * float(n.attrs.get("alpha", 1.0)),
    "slice": _slice,
    "gather": lambda n, a, lay: np.take(a[0], list(n.attrs["indices"]), axis=n.attrs["axis"]),
    "mean": _mean,
}
_ACT_OPS = ("conv2d", "fully_connected", "add", "sub", "mul")
