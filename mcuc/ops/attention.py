"""Attention family: softmax(alpha * q @ k^T) @ v fused into one int8 op, run in blocks of query rows.

Made by mcuc/passes/attention.py from batch_matmul -> softmax -> batch_matmul, with the quantization
parameters of the fused-away scores and probabilities kept as attributes (scores_quant,
probs_quant), so the fused kernel computes exactly what the three unfused ops computed.
Attributes: transpose_b / transpose_v (as batch_matmul's transpose_b, for k and v), alpha, alpha_v,
scores_act (min, max), beta, act_min/act_max of the output, block_rows (query rows per block).
"""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Node
from mcuc.ops.base import (
    Arg,
    Array1D,
    Lowered,
    OpDef,
    Shape,
    Struct,
    act_bounds,
    c_fields,
    prepared,
    quant_of,
    register,
)
from mcuc.ops.matmul import matmul_shape
from mcuc.reference import attention as rattn
from mcuc.reference import softmax as rsoftmax
from mcuc.reference import transformer as rtf


def attention_shapes(node: Node, ins: list[Shape]) -> tuple[Shape, Shape]:
    """(scores shape, output shape) of an attention node with inputs of shapes q, k, v."""
    scores = matmul_shape(node.name, ins[0], ins[1], bool(node.attrs.get("transpose_b")))
    return scores, matmul_shape(node.name, scores, ins[2], bool(node.attrs.get("transpose_v")))


def key_count(g: Graph, n: Node) -> int:
    """Tk of an attention node (rows of k)."""
    k = g.tensors[n.inputs[1]].shape
    return int(k[-2] if n.attrs.get("transpose_b") else k[-1])


def _shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [attention_shapes(node, ins)[1]]


def _macs(node: Node, g: Graph) -> int:
    """The same products as the unfused q @ k^T and probs @ v."""
    scores, out = attention_shapes(node, [tuple(g.tensors[i].shape) for i in node.inputs])
    return int(np.prod(scores)) * g.tensors[node.inputs[0]].shape[-1] + int(np.prod(out)) * scores[-1]


def _scratch(g: Graph, n: Node) -> int:
    return rattn.attention_scratch_bytes(key_count(g, n), int(n.attrs["block_rows"]))


def _lower(g: Graph, n: Node) -> Lowered:
    """The two batch matmuls and the softmax prepared exactly as the unfused ops would be."""
    q, k, v = n.inputs
    y = n.outputs[0]
    a = n.attrs
    qq, qk, qv, qy = quant_of(g, q), quant_of(g, k), quant_of(g, v), quant_of(g, y)
    sq, pq = a["scores_quant"], a["probs_quant"]
    q_shape, k_shape, v_shape = (tuple(g.tensors[x].shape) for x in (q, k, v))
    scores = prepared(n, rtf.prepare_batch_matmul, q_shape, k_shape, qq.s * float(a.get("alpha", 1.0)), qq.zp,
                      qk.s, qk.zp, sq.s, sq.zp, *a["scores_act"], bool(a.get("transpose_b", False)))
    scores_shape = tuple(q_shape[:-1]) + (scores.n,)
    scores_shape = tuple(int(d) for d in np.broadcast_shapes(scores_shape[:-2], tuple(k_shape[:-2]))) \
        + scores_shape[-2:]
    softmax = prepared(n, rsoftmax.prepare_softmax, scores_shape, sq.s, float(a.get("beta", 1.0)), pq.s, pq.zp)
    output = prepared(n, rtf.prepare_batch_matmul, scores_shape, v_shape, pq.s * float(a.get("alpha_v", 1.0)),
                      pq.zp, qv.s, qv.zp, qy.s, qy.zp, *act_bounds(n), bool(a.get("transpose_v", False)))
    params = prepared(n, rattn.prepare_attention, scores, softmax, output, int(a["block_rows"]))
    out_shape = tuple(g.tensors[y].shape)
    return Lowered(n, "mcuc_attention_blocked_s8",
                   [Arg("struct", 0), Arg("array", 0), Arg("scratch"), Arg("tensor", q), Arg("tensor", k),
                    Arg("tensor", v), Arg("tensor", y)],
                   structs=[Struct("mcuc_attention_params_t", {"scores": c_fields(scores), "output": c_fields(output),
                                                               "block_rows": params.block_rows,
                                                               "probs_levels": params.probs_levels,
                                                               "probs_zp": params.probs_zp})],
                   arrays=[Array1D("uint32_t", params.exp_table)],
                   ref=lambda env: rattn.attention_s8(params, env[q], env[k], env[v]).reshape(out_shape))


register(OpDef("attention", "attention", _shape, macs=_macs, scratch=_scratch, lower=_lower))
