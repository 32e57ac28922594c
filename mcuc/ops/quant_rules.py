"""Quantization rules the ops share (TFLite's int8 spec), applied node by node by mcuc/passes/quantize.py.

Weights: int8 symmetric per output channel. Activations: int8 asymmetric per tensor from the
calibration ranges, or from the model's own QDQ parameters. Bias: int32 with scale
in_scale * w_scale. A non-linear unary op becomes a 256-entry look-up table built from the op's own
float function; ops that only move data keep their input's parameters, as TFLite requires.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Node, QuantParams, Tensor
from mcuc.ops.base import QuantContext
from mcuc.quant import activation_range
from mcuc.reference.elementwise import make_lut
from mcuc.reference.softmax import output_levels

SOFTMAX_QUANT = QuantParams(np.array([1.0 / 256.0]), np.array([-128]))


def set_act_range(attrs: dict, yq: QuantParams) -> None:
    """The fused float activation (act, act_lo, act_hi) becomes int8 clamp bounds act_min/act_max."""
    act = attrs.pop("act", None)
    lo, hi = attrs.pop("act_lo", None), attrs.pop("act_hi", None)
    attrs["act_min"], attrs["act_max"] = activation_range(act, yq.s, yq.zp, lo, hi)


def per_channel_weights(w: np.ndarray, preset: QuantParams | None) -> tuple[np.ndarray, QuantParams]:
    """Symmetric per-output-channel int8 (axis 0); reuse the model's own scales when given."""
    if preset is not None and preset.axis in (0, None) and np.all(preset.zero_point == 0):
        scales = np.broadcast_to(preset.scale, (w.shape[0],)).astype(np.float64)
    else:
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
        # a channel of zeros (or of weights so small that amax / 127 is not a normal float32) quantizes to 0
        scales = np.where(amax / 127.0 >= np.finfo(np.float32).tiny, amax / 127.0, 1.0)
    q = np.clip(np.rint(w.astype(np.float64) / scales.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127)
    return q.astype(np.int8), QuantParams(scales, np.zeros(w.shape[0], dtype=np.int64), axis=0)


def weighted(ctx: QuantContext, n: Node) -> None:
    """conv2d / fully_connected: per-channel int8 weights, int32 bias, calibrated output, fused clamp."""
    x, w, b = n.inputs[0], n.inputs[1], (n.inputs[2] if len(n.inputs) > 2 else "")
    xq = ctx.qp[x]
    wt = ctx.src.tensors[w]
    if wt.data is None:
        raise MCUCError(f"{n.op} '{n.name}' has non-constant weights; only constant weights are supported")
    if not np.all(np.isfinite(wt.data)):
        raise MCUCError(f"{n.op} '{n.name}' has NaN or infinite weights (after folding any batchnorm: check its "
                        "variance and epsilon)")
    wq, wquant = per_channel_weights(wt.data, wt.quant)
    bias_scale = xq.s * wquant.scale
    bias_f = ctx.src.tensors[b].data if b else np.zeros(wt.shape[0], dtype=np.float32)
    if bias_f is None:
        raise MCUCError(f"{n.op} '{n.name}' has a non-constant bias")
    bias_r = np.rint(bias_f.astype(np.float64) / bias_scale)
    if not np.all(np.abs(bias_r) <= 2**31 - 1):  # NaN fails too
        o = int(np.argmax(~(np.abs(bias_r) <= 2**31 - 1)))
        raise MCUCError(f"{n.op} '{n.name}': bias {float(bias_f.reshape(-1)[o])!r} of output channel {o} does not fit "
                        f"int32 at its scale {float(bias_scale[o]):.3g} (input scale x weight scale)")
    bq = bias_r.astype(np.int32)
    wn = ctx.out.const(w + "_q", wq, wquant)
    bn = ctx.out.const((b or n.name + "_bias") + "_q", bq,
                       QuantParams(bias_scale, np.zeros_like(bias_scale, dtype=np.int64), axis=0))
    y = n.outputs[0]
    attrs = dict(n.attrs)
    yq = ctx.act_quant(y)
    set_act_range(attrs, yq)
    ctx.output(y, yq)
    ctx.emit(n.op, n.name, [x, wn, bn], [y], attrs)


def calibrated(ctx: QuantContext, n: Node) -> None:
    """An op with its own output parameters (calibrated); constant operands quantized per tensor over their
    range, the fused activation (none: the full range) as clamp bounds."""
    y = n.outputs[0]
    attrs = dict(n.attrs)
    yq = ctx.act_quant(y)
    set_act_range(attrs, yq)
    ctx.output(y, yq)
    ctx.emit(n.op, n.name, [ctx.const_operand(i) for i in n.inputs], [y], attrs)


def calibrated_plain(ctx: QuantContext, n: Node) -> None:
    """An op with its own calibrated output parameters and nothing else to choose (mean)."""
    y = n.outputs[0]
    ctx.output(y, ctx.act_quant(y))
    ctx.emit(n.op, n.name, list(n.inputs), [y], dict(n.attrs))


def lut_of(fn: Callable[[np.ndarray, dict], np.ndarray]) -> Callable[[QuantContext, Node], None]:
    """A unary float op becomes an int8 ``lut`` node: its table is ``fn`` on the 256 dequantized inputs."""

    def rule(ctx: QuantContext, n: Node) -> None:
        x, y = n.inputs[0], n.outputs[0]
        xq, yq = ctx.qp[x], ctx.act_quant(y)
        table = make_lut(lambda r: fn(r, n.attrs), xq.s, xq.zp, yq.s, yq.zp)
        tn = ctx.out.const(n.name + "_lut", table)
        ctx.output(y, yq)
        ctx.emit("lut", n.name, [x, tn], [y], {"function": n.op, **n.attrs})  # the attributes name the function

    return rule


def softmax_output(ctx: QuantContext, n: Node) -> None:
    """Softmax's output parameters: the model's own (QDQ) when the kernel computes them exactly (scale 1/L for an
    integer L <= 256, e.g. onnxruntime's 1/255 and -128), so its rounding grid is the model's; other QDQ
    parameters get the kernel's 1/256 and -128 and a requantize; without QDQ parameters, 1/256 and -128."""
    y = n.outputs[0]
    preset = ctx.src.tensors[y].quant
    if preset is not None and preset.scale.size == 1 and output_levels(preset.s) is not None \
            and -128 <= preset.zp <= 127:
        ctx.output(y, preset)
        ctx.emit(n.op, n.name, list(n.inputs), [y], dict(n.attrs))
        return
    if preset is not None and not _same(preset, SOFTMAX_QUANT):
        mid = ctx.out.unique_name(y + "_pre")
        ctx.out.add_tensor(Tensor(mid, ctx.src.tensors[y].shape, "int8", SOFTMAX_QUANT))
        ctx.emit(n.op, n.name, list(n.inputs), [mid], dict(n.attrs))
        ctx.output(y, preset)
        ctx.emit("requantize", n.name + "_rq", [mid], [y], {})
        return
    ctx.output(y, SOFTMAX_QUANT)
    ctx.emit(n.op, n.name, list(n.inputs), [y], dict(n.attrs))


def same_as_input(ctx: QuantContext, n: Node, **set_attrs: object) -> None:
    """Data movement keeps the input's parameters; where the model asks for other output parameters, the op
    computes in the input's and a requantize follows. ``set_attrs`` replace attributes of the int8 node."""
    x, y = n.inputs[0], n.outputs[0]
    yq = ctx.qp[x]
    attrs = {**n.attrs, **set_attrs}
    preset = ctx.src.tensors[y].quant
    if preset is not None and not _same(preset, yq):
        mid = ctx.out.unique_name(y + "_pre")
        ctx.out.add_tensor(Tensor(mid, ctx.src.tensors[y].shape, "int8", yq))
        ctx.emit(n.op, n.name, [x], [mid], attrs)
        ctx.output(y, preset)
        ctx.emit("requantize", n.name + "_rq", [mid], [y], {})
        return
    ctx.output(y, yq)
    ctx.emit(n.op, n.name, [x], [y], attrs)


def _same(a: QuantParams, b: QuantParams) -> bool:
    return bool(np.allclose(a.scale, b.scale, rtol=1e-6) and np.array_equal(a.zero_point, b.zero_point))
