"""Lowering of int8 IR nodes to kernel calls: one description used by both the C code generator
and the integer reference interpreter, so the two cannot drift apart.

A ``Lowered`` op names the C function, its call arguments, the parameter structs and per-op
constant arrays it needs, and a ``ref`` callable computing the same result in numpy.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.reference import attention as rattn
from mcuc.reference import conv as rconv
from mcuc.reference import elementwise as relem
from mcuc.reference import layout as rlayout
from mcuc.reference import pool as rpool
from mcuc.reference import softmax as rsoftmax
from mcuc.reference import transformer as rtf


@dataclass
class Struct:
    ctype: str
    value: Any  # dict (fields in declaration order), list, int, or CExpr


@dataclass
class Array:
    ctype: str  # element type, e.g. "int32_t"
    data: np.ndarray


@dataclass(frozen=True)
class CExpr:
    text: str


@dataclass(frozen=True)
class Arg:
    """One call argument: a tensor, an op-local struct/array (by index), an int, or NULL."""

    kind: str  # "tensor" | "struct" | "array" | "int" | "null" | "scratch" (the op's planned arena scratch)
    value: Any = None


@dataclass
class Lowered:
    node: Node
    func: str
    args: list[Arg]
    structs: list[Struct] = field(default_factory=list)
    arrays: list[Array] = field(default_factory=list)
    ref: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None


def _q(g: Graph, name: str):
    q = g.tensors[name].quant
    if q is None:
        raise MCUCError(f"tensor '{name}' has no quantization parameters")
    return q


def _data(g: Graph, name: str) -> np.ndarray:
    d = g.tensors[name].data
    assert d is not None, name
    return d


def lower_conv2d(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    xq, wq, yq = _q(g, x), _q(g, w), _q(g, y)
    a = n.attrs
    params = rconv.Conv2dParams(strides=tuple(a["strides"]), dilations=tuple(a.get("dilations", (1, 1))),
                                pads=tuple(a["pads"]), groups=int(a.get("groups", 1)), input_zp=xq.zp,
                                output_zp=yq.zp, act_min=int(a["act_min"]), act_max=int(a["act_max"]))
    wdata, bdata = _data(g, w), _data(g, b)
    quant = rconv.prepare_per_channel_quant(xq.s, wq.scale, yq.s, out_channels=wdata.shape[0])
    in_c = g.tensors[x].shape[3]
    depthwise = params.groups == in_c and wdata.shape[3] == 1 and params.groups > 1
    fields = rconv.conv2d_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    func = "mcuc_conv2d_s8"
    ref_fn = rconv.conv2d_s8
    if depthwise:
        ref_fn = rconv.depthwise_conv2d_s8
        dw3x3 = wdata.shape[1:3] == (3, 3) and params.dilations == (1, 1) and wdata.shape[0] == in_c
        func = "mcuc_depthwise_conv2d_3x3_s8" if dw3x3 else "mcuc_depthwise_conv2d_s8"
    return Lowered(
        n, func,
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b),
         Arg("tensor", y)],
        structs=[Struct("mcuc_conv2d_params_t", fields),
                 Struct("mcuc_per_channel_quant_t", {"multiplier": CExpr("@array0"),
                                                     "shift": CExpr("@array1")})],
        arrays=[Array("int32_t", quant.multiplier), Array("int32_t", quant.shift)],
        ref=lambda env: ref_fn(env[x], wdata, bdata, params, quant))


def lower_fully_connected(g: Graph, n: Node) -> Lowered:
    x, w, b = n.inputs[0], n.inputs[1], n.inputs[2]
    y = n.outputs[0]
    xq, wq, yq = _q(g, x), _q(g, w), _q(g, y)
    a = n.attrs
    params = rconv.FullyConnectedParams(input_zp=xq.zp, output_zp=yq.zp, act_min=int(a["act_min"]),
                                        act_max=int(a["act_max"]))
    wdata, bdata = _data(g, w), _data(g, b)
    quant = rconv.prepare_per_channel_quant(xq.s, wq.scale, yq.s, out_channels=wdata.shape[0])
    fields = rconv.fully_connected_kernel_fields(g.tensors[x].shape, wdata.shape, params)
    return Lowered(
        n, "mcuc_fully_connected_s8",
        [Arg("struct", 0), Arg("struct", 1), Arg("tensor", x), Arg("tensor", w), Arg("tensor", b),
         Arg("tensor", y)],
        structs=[Struct("mcuc_fully_connected_params_t", fields),
                 Struct("mcuc_per_channel_quant_t", {"multiplier": CExpr("@array0"),
                                                     "shift": CExpr("@array1")})],
        arrays=[Array("int32_t", quant.multiplier), Array("int32_t", quant.shift)],
        ref=lambda env: rconv.fully_connected_s8(env[x], wdata, bdata, params, quant))


LOWERINGS: dict[str, Callable[[Graph, Node], Lowered]] = {
    "conv2d": lower_conv2d,
    "fully_connected": lower_fully_connected,
}


def lower(g: Graph, n: Node) -> Lowered:
    fn = LOWERINGS.get(n.op)
    if fn is None:
        raise MCUCError(f"no int8 kernel for op '{n.op}' (node '{n.name}')")
    return fn(g, n)


def lower_reshape(g: Graph, n: Node) -> Lowered:
    """A reshape is a view: the planner gives its output the input's memory, so no call is emitted."""
    x, y = n.inputs[0], n.outputs[0]
    shape = tuple(g.tensors[y].shape)
    return Lowered(n, "", [], ref=lambda env: env[x].reshape(shape))


LOWERINGS["reshape"] = lower_reshape


def _c_fields(obj: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A params dataclass as an ordered dict of its C struct fields (its fields minus ``drop``)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in drop}


def _binary(g: Graph, n: Node) -> Lowered:
    a, b = n.inputs
    y = n.outputs[0]
    qa, qb, qy = _q(g, a), _q(g, b), _q(g, y)
    act = (int(n.attrs.get("act_min", -128)), int(n.attrs.get("act_max", 127)))
    shape = relem.prepare_broadcast(tuple(g.tensors[a].shape), tuple(g.tensors[b].shape))
    if n.op == "mul":
        params: Any = relem.prepare_mul(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act)
        func, ctype = "mcuc_mul_s8", "mcuc_mul_params_t"
        ref_fn: Callable[..., np.ndarray] = relem.mul_s8
    else:
        params = relem.prepare_add(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, *act)
        func = "mcuc_add_s8" if n.op == "add" else "mcuc_sub_s8"
        ref_fn = relem.add_s8 if n.op == "add" else relem.sub_s8
        ctype = "mcuc_add_params_t"
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, func, [Arg("struct", 0), Arg("struct", 1), Arg("tensor", a), Arg("tensor", b),
                             Arg("tensor", y)],
                   structs=[Struct(ctype, _c_fields(params)), Struct("mcuc_broadcast_t", _c_fields(shape))],
                   ref=lambda env: ref_fn(env[a], env[b], params).reshape(out_shape))


def _squared_difference(g: Graph, n: Node) -> Lowered:
    """TFLite's SQUARED_DIFFERENCE (int8, from .tflite models): the add kernel's structure with a squared difference."""
    from mcuc.reference import tflite as rtfl

    a, b = n.inputs
    y = n.outputs[0]
    qa, qb, qy = _q(g, a), _q(g, b), _q(g, y)
    params = rtfl.prepare_squared_difference(qa.s, qa.zp, qb.s, qb.zp, qy.s, qy.zp, int(n.attrs.get("act_min", -128)),
                                             int(n.attrs.get("act_max", 127)))
    shape = relem.prepare_broadcast(tuple(g.tensors[a].shape), tuple(g.tensors[b].shape))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_squared_difference_s8", [Arg("struct", 0), Arg("struct", 1), Arg("tensor", a),
                                                      Arg("tensor", b), Arg("tensor", y)],
                   structs=[Struct("mcuc_add_params_t", _c_fields(params)),
                            Struct("mcuc_broadcast_t", _c_fields(shape))],
                   ref=lambda env: rtfl.squared_difference_s8(env[a], env[b], params).reshape(out_shape))


def _pool(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    a = n.attrs
    n_, h_, w_, c_ = g.tensors[x].shape
    params = rpool.prepare_pool((n_, h_, w_, c_), tuple(a["kernel"]), tuple(a["strides"]),
                                tuple(a["pads"]), int(a.get("act_min", -128)), int(a.get("act_max", 127)))
    avg = n.op == "avgpool"
    ref_fn = rpool.avgpool_s8 if avg else rpool.maxpool_s8
    return Lowered(n, "mcuc_avgpool_s8" if avg else "mcuc_maxpool_s8",
                   [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_pool_params_t", _c_fields(params))],
                   ref=lambda env: ref_fn(env[x], params))


def _lut(g: Graph, n: Node) -> Lowered:
    x, table, y = n.inputs[0], n.inputs[1], n.outputs[0]
    tdata = _data(g, table)
    size = g.tensors[x].size
    return Lowered(n, "mcuc_lut_s8", [Arg("tensor", x), Arg("tensor", y), Arg("int", size), Arg("tensor", table)],
                   ref=lambda env: relem.lut_s8(env[x], tdata))


def _softmax(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    shape = tuple(g.tensors[x].shape)
    if n.attrs.get("axis", len(shape) - 1) != len(shape) - 1:
        raise MCUCError(f"softmax '{n.name}' over axis {n.attrs['axis']} of {shape}: only the last axis is supported")
    if n.attrs.get("algorithm") == "tflite":
        return _softmax_tflite(g, n)
    params = rsoftmax.prepare_softmax(shape, _q(g, x).s, float(n.attrs.get("beta", 1.0)))
    return Lowered(n, "mcuc_softmax_s8", [Arg("struct", 0), Arg("array", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_softmax_params_t", _c_fields(params, drop=("exp_table",)))],
                   arrays=[Array("uint32_t", params.exp_table)],
                   ref=lambda env: rsoftmax.softmax_s8(env[x], params))


def _softmax_tflite(g: Graph, n: Node) -> Lowered:
    """TFLite's int8 softmax (gemmlowp fixed point), for .tflite models: bit-exact with TFLM."""
    from mcuc.reference import tflite as rtfl

    x, y = n.inputs[0], n.outputs[0]
    params = _prepared(n, rtfl.prepare_softmax_tflite, tuple(g.tensors[x].shape), _q(g, x).s,
                       float(n.attrs.get("beta", 1.0)))
    return Lowered(n, "mcuc_softmax_tflite_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_softmax_tflite_params_t", _c_fields(params))],
                   ref=lambda env: rtfl.softmax_tflite_s8(env[x], params))


def _requantize(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    qx, qy = _q(g, x), _q(g, y)
    params = relem.prepare_requantize(qx.s, qx.zp, qy.s, qy.zp)
    return Lowered(n, "mcuc_requantize_s8",
                   [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y), Arg("int", g.tensors[x].size)],
                   structs=[Struct("mcuc_requant_params_t", _c_fields(params))],
                   ref=lambda env: relem.requantize_s8(env[x], params))


def _concat(g: Graph, n: Node) -> Lowered:
    xs, y = list(n.inputs), n.outputs[0]
    qy = _q(g, y)
    params = rlayout.prepare_concat([tuple(g.tensors[x].shape) for x in xs], int(n.attrs["axis"]),
                                    [(_q(g, x).s, _q(g, x).zp) for x in xs], (qy.s, qy.zp))
    inputs = [{"inner": i.inner, "rescale": int(i.rescale), "requant": _c_fields(i.requant)} for i in params.inputs]
    ptrs = [CExpr(f"@tensor:{x}") for x in xs]
    return Lowered(n, "mcuc_concat_s8", [Arg("struct", 2), Arg("struct", 1), Arg("tensor", y)],
                   structs=[Struct("mcuc_concat_input_t[]", inputs),
                            Struct("int8_t *const[]", ptrs),
                            Struct("mcuc_concat_params_t", {"outer": params.outer, "n_inputs": len(xs),
                                                            "inputs": CExpr("@struct0")})],
                   ref=lambda env: rlayout.concat_s8([env[x] for x in xs], params))


def _pad(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    params = rlayout.prepare_pad(tuple(g.tensors[x].shape), [tuple(p) for p in n.attrs["pads"]],
                                 int(n.attrs.get("value", _q(g, x).zp)))
    return Lowered(n, "mcuc_pad_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_pad_params_t", _c_fields(params))],
                   ref=lambda env: rlayout.pad_s8(env[x], params))


def _transpose(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    params = rlayout.prepare_transpose(tuple(g.tensors[x].shape), tuple(n.attrs["perm"]))
    return Lowered(n, "mcuc_transpose_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_transpose_params_t", _c_fields(params, drop=("perm",)))],
                   ref=lambda env: rlayout.transpose_s8(env[x], params))


LOWERINGS.update({"add": _binary, "sub": _binary, "mul": _binary, "avgpool": _pool, "maxpool": _pool,
                  "lut": _lut, "softmax": _softmax, "requantize": _requantize, "concat": _concat,
                  "pad": _pad, "transpose": _transpose, "squared_difference": _squared_difference})


# ---- transformer kernels (mcuc/runtime_c/include/mcuc_transformer.h) ----------------------------


def _layernorm(g: Graph, n: Node) -> Lowered:
    """Quantized layernorm: inputs [x, gamma_mult int32 [C], beta_bias int64 [C]], attrs eps_v, out_shift."""
    x, gm, bb = n.inputs
    y = n.outputs[0]
    shape = tuple(g.tensors[x].shape)
    params = rtf.LayerNormParams(int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1]), int(n.attrs["eps_v"]),
                                 int(n.attrs["out_shift"]), _q(g, y).zp, _data(g, gm), _data(g, bb))
    return Lowered(n, "mcuc_layernorm_s8",
                   [Arg("struct", 0), Arg("tensor", gm), Arg("tensor", bb), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_layernorm_params_t",
                                   _c_fields(params, drop=("gamma_mult", "beta_bias")))],
                   ref=lambda env: rtf.layernorm_s8(env[x], params))


def _batch_matmul(g: Graph, n: Node) -> Lowered:
    a, b = n.inputs
    y = n.outputs[0]
    qa, qb, qy = _q(g, a), _q(g, b), _q(g, y)
    alpha = float(n.attrs.get("alpha", 1.0))
    params = _prepared(n, rtf.prepare_batch_matmul, tuple(g.tensors[a].shape), tuple(g.tensors[b].shape),
                       qa.s * alpha, qa.zp, qb.s, qb.zp, qy.s, qy.zp, int(n.attrs.get("act_min", -128)),
                       int(n.attrs.get("act_max", 127)), bool(n.attrs.get("transpose_b", False)))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_batch_matmul_s8",
                   [Arg("struct", 0), Arg("tensor", a), Arg("tensor", b), Arg("tensor", y)],
                   structs=[Struct("mcuc_batch_matmul_params_t", _c_fields(params))],
                   ref=lambda env: rtf.batch_matmul_s8(env[a], env[b], params).reshape(out_shape))


def _prepared(n: Node, prepare: Callable[..., Any], *args: Any) -> Any:
    """Call a reference ``prepare_*``; its ValueError (shape or range outside the kernel's) names the node."""
    try:
        return prepare(*args)
    except ValueError as e:
        raise MCUCError(f"{n.op} '{n.name}': {e}") from e


def _copy_like(g: Graph, n: Node, func: str, ctype: str, params: Any,
               ref_fn: Callable[[np.ndarray, Any], np.ndarray]) -> Lowered:
    """A kernel called as func(&params, input, output), whose reference result is reshaped to the output."""
    x, y = n.inputs[0], n.outputs[0]
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, func, [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct(ctype, _c_fields(params))],
                   ref=lambda env: ref_fn(env[x], params).reshape(out_shape))


def _mean(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    qx, qy = _q(g, x), _q(g, y)
    params = _prepared(n, rtf.prepare_mean, tuple(g.tensors[x].shape), tuple(n.attrs["axes"]), qx.s, qx.zp, qy.s,
                       qy.zp)
    if "tflite_mult" in n.attrs:  # a .tflite model's MEAN: TFLM's multiplier (1/count folded in by division)
        params = replace(params, mult=int(n.attrs["tflite_mult"]), shift=int(n.attrs["tflite_shift"]))
    return _copy_like(g, n, "mcuc_mean_s8", "mcuc_mean_params_t", params, rtf.mean_s8)


def _slice(g: Graph, n: Node) -> Lowered:
    a = n.attrs
    shape, starts, ends, steps = rtf.simplify_slice(tuple(g.tensors[n.inputs[0]].shape), tuple(a["starts"]),
                                                    tuple(a["ends"]), tuple(a["steps"]))
    params = _prepared(n, rtf.prepare_slice, shape, starts, ends, steps)
    return _copy_like(g, n, "mcuc_slice_s8", "mcuc_slice_params_t", params, rtf.slice_s8)


def _gather(g: Graph, n: Node) -> Lowered:
    x, y = n.inputs[0], n.outputs[0]
    params = _prepared(n, rtf.prepare_gather, tuple(g.tensors[x].shape), int(n.attrs["axis"]),
                       tuple(n.attrs["indices"]))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_gather_s8", [Arg("struct", 0), Arg("array", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_gather_params_t", _c_fields(params, drop=("indices",)))],
                   arrays=[Array("int32_t", params.indices)],
                   ref=lambda env: rtf.gather_s8(env[x], params).reshape(out_shape))


def _transpose_any_rank(g: Graph, n: Node) -> Lowered:
    """transpose of any rank that reduces to <= 4 axes once size-1 axes are dropped and adjacent ones merged."""
    x, y = n.inputs[0], n.outputs[0]
    shape, perm = rtf.simplify_transpose(tuple(g.tensors[x].shape), tuple(n.attrs["perm"]))
    params = _prepared(n, rlayout.prepare_transpose, shape, perm)
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_transpose_s8", [Arg("struct", 0), Arg("tensor", x), Arg("tensor", y)],
                   structs=[Struct("mcuc_transpose_params_t", _c_fields(params, drop=("perm",)))],
                   ref=lambda env: rlayout.transpose_s8(env[x].reshape(shape), params).reshape(out_shape))


LOWERINGS.update({"layernorm": _layernorm, "batch_matmul": _batch_matmul, "mean": _mean, "slice": _slice,
                  "gather": _gather, "transpose": _transpose_any_rank})


def _attention(g: Graph, n: Node) -> Lowered:
    """Fused attention (mcuc/passes/attention.py): the two batch matmuls and the softmax prepared exactly as
    the unfused ops would be, from the quantization parameters the fused-away scores and probs carried."""
    q, k, v = n.inputs
    y = n.outputs[0]
    a = n.attrs
    qq, qk, qv, qy = _q(g, q), _q(g, k), _q(g, v), _q(g, y)
    sq, pq = a["scores_quant"], a["probs_quant"]
    q_shape, k_shape, v_shape = (tuple(g.tensors[x].shape) for x in (q, k, v))
    scores = _prepared(n, rtf.prepare_batch_matmul, q_shape, k_shape, qq.s * float(a.get("alpha", 1.0)), qq.zp,
                       qk.s, qk.zp, sq.s, sq.zp, *a["scores_act"], bool(a.get("transpose_b", False)))
    scores_shape = tuple(q_shape[:-1]) + (scores.n,)
    scores_shape = tuple(int(d) for d in np.broadcast_shapes(scores_shape[:-2], tuple(k_shape[:-2]))) \
        + scores_shape[-2:]
    softmax = _prepared(n, rsoftmax.prepare_softmax, scores_shape, sq.s, float(a.get("beta", 1.0)))
    output = _prepared(n, rtf.prepare_batch_matmul, scores_shape, v_shape, pq.s * float(a.get("alpha_v", 1.0)),
                       pq.zp, qv.s, qv.zp, qy.s, qy.zp, int(a.get("act_min", -128)), int(a.get("act_max", 127)),
                       bool(a.get("transpose_v", False)))
    params = _prepared(n, rattn.prepare_attention, scores, softmax, output, int(a["block_rows"]))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_attention_blocked_s8",
                   [Arg("struct", 0), Arg("array", 0), Arg("tensor", q), Arg("tensor", k), Arg("tensor", v),
                    Arg("scratch"), Arg("tensor", y)],
                   structs=[Struct("mcuc_attention_params_t", {"scores": _c_fields(scores),
                                                               "output": _c_fields(output),
                                                               "block_rows": params.block_rows})],
                   arrays=[Array("uint32_t", params.exp_table)],
                   ref=lambda env: rattn.attention_s8(env[q], env[k], env[v], params).reshape(out_shape))


LOWERINGS["attention"] = _attention
