"""Attention fusion on the int8 graph: batch_matmul(q, k^T) -> softmax -> batch_matmul(probs, v) becomes
one ``attention`` op that runs head by head in blocks of query rows.

Unfused, the scores [B, heads, Tq, Tk] and the probabilities of the same shape are two whole tensors,
the largest in a small vision transformer (DHVT's 4 x 69 x 69 scores are 19 KB each, live together
at the softmax). The fused kernel (mcuc_attention_blocked_s8) needs only a scratch of R x Tk bytes
for the score rows of one block, planned in the arena as a buffer live during that op alone
(mcuc.memory.op_scratch_bytes). The pass runs after quantization and keeps the quantization
parameters of the fused-away scores and probabilities in the node, so the fused op computes
exactly what the three unfused ops computed (mcuc/reference/attention.py).

Block rows R: ``"auto"`` takes, per attention op, the largest R whose scratch keeps the bytes live
at that op within the peak the rest of the graph needs anyway (R = 1 when even one row raises the
peak), then keeps that choice only if the planned arena is no larger than with R = 1 everywhere.
The MAC count does not depend on R (no row is computed twice); larger blocks only mean fewer
kernel calls. An integer R is used as given (capped at Tq); ``"whole"`` leaves the graph unfused.
"""
from __future__ import annotations

import copy

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.memory import ALIGNMENT, layer_live_bytes, plan_memory
from mcuc.ops import infer_shapes, verify
from mcuc.ops.attention import key_count
from mcuc.passes.transformer import _replace, _View

BLOCK_CHOICES = ("auto", "whole")


def parse_block(text: str) -> str:
    """Validate an ``--attention-block`` value: auto, whole, or a positive integer number of rows."""
    t = str(text).strip().lower()
    if t in BLOCK_CHOICES or (t.isdigit() and int(t) >= 1):
        return t
    raise MCUCError(f"--attention-block must be auto, whole or a positive number of query rows, got '{text}'")


def fuse_attention(g: Graph, block: str = "auto", planner: str = "best") -> Graph:
    """Return a copy of int8 graph ``g`` with every attention pattern fused, blocked as ``block`` says."""
    block = parse_block(block)
    if block == "whole" or not any(n.op == "softmax" for n in g.nodes):
        return g
    g = copy.deepcopy(g)
    fused = 0
    while _fuse_one(g):
        fused += 1
    if not fused:
        return g
    g.prune()
    if block == "auto":
        _choose_block_rows(g, planner)
    else:
        for n in attention_nodes(g):
            n.attrs["block_rows"] = min(int(block), query_rows(g, n))
    verify(g, quantized=True)
    return g


def attention_nodes(g: Graph) -> list[Node]:
    return [n for n in g.nodes if n.op == "attention"]


def query_rows(g: Graph, n: Node) -> int:
    """Tq of an attention node (rows of q)."""
    return int(g.tensors[n.inputs[0]].shape[-2])


def whole_scores_bytes(g: Graph, n: Node) -> int:
    """Bytes of the whole score matrix (all heads) the unfused graph held for this attention."""
    out = infer_shapes(n, g)[0]  # the output shape's batch = the scores' batch
    size = 1
    for d in out[:-1]:
        size *= int(d)
    return size * key_count(g, n)


def _fuse_one(g: Graph) -> bool:
    v = _View(g)
    for mm1 in g.nodes:
        if mm1.op != "batch_matmul":
            continue
        scores = mm1.outputs[0]
        sm = v.only_consumer(scores, "softmax")
        rank = len(g.tensors[scores].shape)
        if sm is None or not 3 <= rank <= 4 or int(sm.attrs.get("axis", rank - 1)) != rank - 1:
            continue
        if sm.attrs.get("algorithm", "mcuc") != "mcuc":
            continue  # another softmax kernel (TFLite's, for .tflite models): the blocked kernel runs mcuc's
        if sm.attrs.get("algorithm") == "tflite":
            continue  # a .tflite model's softmax keeps TFLite's algorithm, which the fused kernel does not run
        probs = sm.outputs[0]
        mm2 = v.only_consumer(probs, "batch_matmul")
        if mm2 is None or mm2.inputs[0] != probs or mm2.inputs[1] == probs:
            continue
        out = mm2.outputs[0]
        if tuple(g.tensors[out].shape[:-2]) != tuple(g.tensors[scores].shape[:-2]):
            continue  # v broadcasting the batch beyond the scores' would repeat score rows
        sq, pq = g.tensors[scores].quant, g.tensors[probs].quant
        if sq is None or pq is None:
            continue
        attrs = {"alpha": float(mm1.attrs.get("alpha", 1.0)), "transpose_b": bool(mm1.attrs.get("transpose_b")),
                 "scores_quant": sq, "scores_act": (int(mm1.attrs.get("act_min", -128)),
                                                    int(mm1.attrs.get("act_max", 127))),
                 "beta": float(sm.attrs.get("beta", 1.0)), "probs_quant": pq,
                 "alpha_v": float(mm2.attrs.get("alpha", 1.0)), "transpose_v": bool(mm2.attrs.get("transpose_b")),
                 "act_min": int(mm2.attrs.get("act_min", -128)), "act_max": int(mm2.attrs.get("act_max", 127)),
                 "block_rows": 1}
        node = Node("attention", sm.name + "_attention", [mm1.inputs[0], mm1.inputs[1], mm2.inputs[1]], [out], attrs)
        _replace(g, [mm1, sm, mm2], node)
        return True
    return False


def _choose_block_rows(g: Graph, planner: str) -> None:
    """Per attention op, the largest R whose scratch stays within the peak of the R = 1 graph (see module doc)."""
    nodes = attention_nodes(g)
    for n in nodes:
        n.attrs["block_rows"] = 1
    live = layer_live_bytes(g)
    peak = max(live)
    step_of = {id(n): i for i, n in enumerate(g.nodes)}
    chosen = {}
    for n in nodes:
        tk, tq = key_count(g, n), query_rows(g, n)
        other = live[step_of[id(n)]] - tk
        rows = 1
        for r in range(tq, 0, -1):
            if other + -(-r * tk // ALIGNMENT) * ALIGNMENT <= peak:
                rows = r
                break
        chosen[id(n)] = rows
    if all(r == 1 for r in chosen.values()):
        return
    ones = plan_memory(g, planner).arena_bytes
    for n in nodes:
        n.attrs["block_rows"] = chosen[id(n)]
    if plan_memory(g, planner).arena_bytes > ones:
        for n in nodes:
            n.attrs["block_rows"] = 1
