"""Post-training int8 quantization of a float NHWC graph, following TFLite's int8 spec.

Weights: int8 symmetric per output channel. Activations: int8 asymmetric per tensor from
calibration ranges (or from the model's own QDQ parameters). Bias: int32 with scale
in_scale * w_scale. Non-linear unary ops become 256-entry look-up tables; ops that only move
data (pooling, reshape, transpose, pad) keep their input's parameters as TFLite requires.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.quant import activation_range, choose_qparams, quantize_array
from mcuc.reference.elementwise import make_lut

SAME_QUANT_OPS = ("avgpool", "maxpool", "reshape", "transpose", "pad", "slice", "gather")
SOFTMAX_QUANT = QuantParams(np.array([1.0 / 256.0]), np.array([-128]))

UNARY_FUNCS: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "relu": lambda x, a: np.maximum(x, 0.0),
    "clip": lambda x, a: np.clip(x, a.get("lo", -np.inf), a.get("hi", np.inf)),
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "hardsigmoid": lambda x, a: np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "hardswish": lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "tanh": lambda x, a: np.tanh(x),
    "gelu": lambda x, a: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))),
    "erf": lambda x, a: np.vectorize(math.erf)(x),
    "sqrt": lambda x, a: np.sqrt(np.maximum(x, 0.0)),
    "pow": lambda x, a: _safe_pow(x, a["exponent"]),
}


def _safe_pow(x: np.ndarray, e: float) -> np.ndarray:
    """x ** e where defined (a table entry the float op leaves undefined becomes 0)."""
    with np.errstate(all="ignore"):
        y = np.power(x, e)
    return np.where(np.isfinite(y), y, 0.0)


class RangeObserver:
    """Collects per-tensor float ranges over calibration batches (min/max or percentile)."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99) -> None:
        if method not in ("minmax", "percentile"):
            raise MCUCError(f"unknown calibration method '{method}': use minmax or percentile")
        self.method = method
        self.percentile = percentile
        self.lo: dict[str, list[float]] = {}
        self.hi: dict[str, list[float]] = {}

    def observe(self, name: str, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=np.float32).reshape(-1)
        if self.method == "minmax":
            lo, hi = float(v.min()), float(v.max())
        else:
            lo, hi = (float(x) for x in np.percentile(v, [100 - self.percentile, self.percentile]))
        self.lo.setdefault(name, []).append(lo)
        self.hi.setdefault(name, []).append(hi)

    def range(self, name: str) -> tuple[float, float]:
        if self.method == "minmax":
            return min(self.lo[name]), max(self.hi[name])
        return float(np.mean(self.lo[name])), float(np.mean(self.hi[name]))


def calibrate(g: Graph, batches: list[dict[str, np.ndarray]], method: str = "minmax",
              progress: Callable[[int, int], None] | None = None) -> RangeObserver:
    """Run the float reference on every calibration sample and record activation ranges."""
    from mcuc.reference.float_ref import run_float

    obs = RangeObserver(method)
    for i, feeds in enumerate(batches):
        values = run_float(g, feeds)
        for name in g.activations():
            obs.observe(name, values[name])
        if progress:
            progress(i + 1, len(batches))
    return obs


def _per_channel_weights(w: np.ndarray, preset: QuantParams | None) -> tuple[np.ndarray, QuantParams]:
    """Symmetric per-output-channel int8 (axis 0); reuse the model's own scales when given."""
    if preset is not None and preset.axis in (0, None) and np.all(preset.zero_point == 0):
        scales = np.broadcast_to(preset.scale, (w.shape[0],)).astype(np.float64)
    else:
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
        scales = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.rint(w.astype(np.float64) / scales.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127)
    return q.astype(np.int8), QuantParams(scales, np.zeros(w.shape[0], dtype=np.int64), axis=0)


def quantize_graph(g: Graph, obs: RangeObserver) -> Graph:
    """Rewrite float graph ``g`` (NHWC, passes applied) into an int8 graph."""
    out = Graph(layout=g.layout, inputs=list(g.inputs), outputs=list(g.outputs), meta=dict(g.meta))
    qp: dict[str, QuantParams] = {}

    def act_quant(name: str) -> QuantParams:
        t = g.tensors[name]
        if t.quant is not None:
            return t.quant
        s, zp = choose_qparams(*obs.range(name))
        return QuantParams(np.array([s]), np.array([zp]))

    for name in g.inputs:
        t = g.tensors[name]
        qp[name] = act_quant(name)
        out.add_tensor(Tensor(name, t.shape, "int8", qp[name]))

    for n in g.nodes:
        _quantize_node(g, out, n, qp, act_quant)
    out.meta["quantized"] = True
    return out


def _new_act(out: Graph, g: Graph, name: str, q: QuantParams) -> None:
    out.add_tensor(Tensor(name, g.tensors[name].shape, "int8", q))


def _quantize_node(g: Graph, out: Graph, n: Node, qp: dict[str, QuantParams],
                   act_quant: Callable[[str], QuantParams]) -> None:
    op, y = n.op, n.outputs[0]
    attrs = dict(n.attrs)
    if op in ("conv2d", "fully_connected"):
        x, w, b = n.inputs[0], n.inputs[1], (n.inputs[2] if len(n.inputs) > 2 else "")
        xq = qp[x]
        wt = g.tensors[w]
        if wt.data is None:
            raise MCUCError(f"{op} '{n.name}' has non-constant weights; only constant weights are supported")
        wq, wquant = _per_channel_weights(wt.data, wt.quant)
        bias_scale = xq.s * wquant.scale
        bias_f = g.tensors[b].data if b else np.zeros(wt.shape[0], dtype=np.float32)
        if bias_f is None:
            raise MCUCError(f"{op} '{n.name}' has a non-constant bias")
        bq = np.clip(np.rint(bias_f.astype(np.float64) / bias_scale), -(2**31), 2**31 - 1).astype(np.int32)
        wn = out.const(w + "_q", wq, wquant)
        bn = out.const((b or n.name + "_bias") + "_q", bq,
                       QuantParams(bias_scale, np.zeros_like(bias_scale, dtype=np.int64), axis=0))
        yq = act_quant(y)
        _set_act_range(attrs, yq)
        qp[y] = yq
        _new_act(out, g, y, yq)
        out.nodes.append(Node(op, n.name, [x, wn, bn], [y], attrs))
        return
    if op in ("add", "sub", "mul"):
        ins = [_const_operand(g, out, i) for i in n.inputs]
        yq = act_quant(y)
        _set_act_range(attrs, yq)
        qp[y] = yq
        _new_act(out, g, y, yq)
        out.nodes.append(Node(op, n.name, ins, [y], attrs))
        return
    if op in UNARY_FUNCS:
        x = n.inputs[0]
        yq = act_quant(y)
        fn_attrs = {"lo": attrs.get("lo"), "hi": attrs.get("hi"), "alpha": attrs.get("alpha"),
                    "beta": attrs.get("beta"), "exponent": attrs.get("exponent")}
        fn_attrs = {k: v for k, v in fn_attrs.items() if v is not None}
        table = make_lut(lambda r: UNARY_FUNCS[op](r, fn_attrs), qp[x].s, qp[x].zp, yq.s, yq.zp)
        tn = out.const(n.name + "_lut", table)
        qp[y] = yq
        _new_act(out, g, y, yq)
        out.nodes.append(Node("lut", n.name, [x, tn], [y], {"function": op}))
        return
    if op == "softmax":
        qp[y] = SOFTMAX_QUANT
        _new_act(out, g, y, SOFTMAX_QUANT)
        out.nodes.append(Node(op, n.name, list(n.inputs), [y], attrs))
        return
    if op in SAME_QUANT_OPS:
        x = n.inputs[0]
        yq = qp[x]
        inputs = [x]
        if op == "pad":
            attrs["value"] = yq.zp
        preset = g.tensors[y].quant
        if preset is not None and not _same(preset, yq):
            # The model asks for different output parameters: compute in the input's, then requantize.
            mid = out.unique_name(y + "_pre")
            out.add_tensor(Tensor(mid, g.tensors[y].shape, "int8", yq))
            out.nodes.append(Node(op, n.name, inputs, [mid], attrs))
            qp[y] = preset
            _new_act(out, g, y, preset)
            out.nodes.append(Node("requantize", n.name + "_rq", [mid], [y], {}))
            return
        qp[y] = yq
        _new_act(out, g, y, yq)
        out.nodes.append(Node(op, n.name, inputs, [y], attrs))
        return
    if op == "concat":
        yq = act_quant(y)
        qp[y] = yq
        _new_act(out, g, y, yq)
        # a constant part (a transformer's class token) is stored in the output's parameters
        ins = [i if (d := g.tensors[i].data) is None else out.const(i + "_q", quantize_array(d, yq.s, yq.zp), yq)
               for i in n.inputs]
        out.nodes.append(Node(op, n.name, ins, [y], attrs))
        return
    if op in TRANSFORMER_QUANT:
        TRANSFORMER_QUANT[op](g, out, n, qp, act_quant)
        return
    raise MCUCError(f"int8 quantization does not support op '{op}' (node '{n.name}')")


def _const_operand(g: Graph, out: Graph, name: str) -> str:
    """A float constant operand of an int8 op, quantized per tensor over its own range."""
    data = g.tensors[name].data
    if data is None:
        return name
    s, zp = choose_qparams(float(data.min()), float(data.max()))
    return out.const(name + "_q", quantize_array(data, s, zp), QuantParams(np.array([s]), np.array([zp])))


def _quantize_own_output(g: Graph, out: Graph, n: Node, qp: dict[str, QuantParams],
                         act_quant: Callable[[str], QuantParams]) -> None:
    """layernorm, batch_matmul, mean: output parameters from calibration; constant matmul operands are
    quantized per tensor."""
    y = n.outputs[0]
    attrs = dict(n.attrs)
    inputs = list(n.inputs)
    if n.op == "layernorm":
        _quantize_layernorm(g, out, n, qp, act_quant)
        return
    if n.op == "batch_matmul":
        inputs = [_const_operand(g, out, i) for i in inputs]
        _set_act_range(attrs, act_quant(y))
    qp[y] = act_quant(y)
    _new_act(out, g, y, qp[y])
    for i in inputs:
        if i not in out.tensors:
            out.add_tensor(g.tensors[i])
    out.nodes.append(Node(n.op, n.name, inputs, [y], attrs))


def _quantize_layernorm(g: Graph, out: Graph, n: Node, qp: dict[str, QuantParams],
                        act_quant: Callable[[str], QuantParams]) -> None:
    """gamma and beta fold into the kernel's integer affine (int32 gamma_mult, int64 beta_bias), stored as
    constants like a conv's bias; eps_v and out_shift become attributes."""
    from mcuc.reference.transformer import prepare_layernorm

    x, y = n.inputs[0], n.outputs[0]
    gamma, beta = g.tensors[n.inputs[1]].data, g.tensors[n.inputs[2]].data
    if gamma is None or beta is None:
        raise MCUCError(f"layernorm '{n.name}' has non-constant gamma/beta")
    yq = act_quant(y)
    try:
        p = prepare_layernorm(g.tensors[x].shape, qp[x].s, gamma, beta, float(n.attrs.get("epsilon", 1e-5)),
                              yq.s, yq.zp)
    except ValueError as e:
        raise MCUCError(f"layernorm '{n.name}': {e}") from e
    gm = out.const(n.inputs[1] + "_mult", p.gamma_mult.astype(np.int32))
    bb = out.const(n.inputs[2] + "_bias", p.beta_bias.astype(np.int64))
    qp[y] = yq
    _new_act(out, g, y, yq)
    out.nodes.append(Node("layernorm", n.name, [x, gm, bb], [y],
                          {**n.attrs, "eps_v": p.eps_v, "out_shift": p.out_shift}))


TRANSFORMER_QUANT: dict[str, Callable[..., None]] = {
    "layernorm": _quantize_own_output,
    "batch_matmul": _quantize_own_output,
    "mean": _quantize_own_output,
}


def _same(a: QuantParams, b: QuantParams) -> bool:
    return bool(np.allclose(a.scale, b.scale, rtol=1e-6) and np.array_equal(a.zero_point, b.zero_point))


def _set_act_range(attrs: dict, yq: QuantParams) -> None:
    act = attrs.pop("act", None)
    lo, hi = attrs.pop("act_lo", None), attrs.pop("act_hi", None)
    attrs["act_min"], attrs["act_max"] = activation_range(act, yq.s, yq.zp, lo, hi)
