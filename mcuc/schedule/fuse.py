"""Fused row segments: runs of ops of an int8 NHWC graph replaced by row pipelines (mcuc/ops/pipeline.py).

A segment [start, end) of the op list can run as one pipeline when every op in it can run on rows
(conv2d, pools, same-shape elementwise ops, tables), it reads exactly one activation from outside
(the pipeline input), and only its last op's output is read after it. Inside, every tensor exists
only as a ring of the rows its readers still need, so a block's expanded tensor never exists whole;
the segment's output may take its input's memory when the rows of the output are written behind the
reads (``overwrites_input`` of the pipeline op).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.memory import compute_buffers
from mcuc.ops import OPS, verify
from mcuc.ops.pipeline import SOURCES, inner_graph, ring_bytes, row_op, row_plan


def segment_problem(g: Graph, start: int, end: int) -> str | None:
    """Why ops [start, end) of ``g`` cannot run as one pipeline, or None if they can."""
    if g.layout != "NHWC":
        return "the graph is not NHWC"
    if not 0 <= start < end <= len(g.nodes):
        return f"segment [{start}, {end}) outside the {len(g.nodes)} ops"
    ops = g.nodes[start:end]
    inside: set[str] = set()
    outside: set[str] = set()
    for n in ops:
        if not row_op(n):
            return f"op '{n.name}' ({n.op}) cannot run on rows"
        if len(n.outputs) != 1:
            return f"op '{n.name}' has {len(n.outputs)} outputs"
        for t in [*n.inputs, *n.outputs]:
            if t and not g.tensors[t].is_const:
                shape = g.tensors[t].shape
                if len(shape) != 4 or shape[0] != 1:
                    return f"tensor '{t}' is not a 4-D tensor of batch 1"
        acts = [x for x in n.inputs if x and not g.tensors[x].is_const]
        if OPS[n.op].window == "pointwise" and any(g.tensors[x].shape != g.tensors[n.outputs[0]].shape
                                                   for x in acts):
            return f"op '{n.name}' ({n.op}) broadcasts"
        consts = [g.tensors[x].shape for x in n.inputs[1:] if x and g.tensors[x].is_const]
        if OPS[n.op].window == "pointwise" and any(len(c) >= 3 and c[-3] > 1 for c in consts):
            return f"op '{n.name}' ({n.op}) has a constant operand that differs from row to row"
        outside.update(x for x in acts if x not in inside)
        inside.add(n.outputs[0])
    if len(outside) != 1:
        return f"the segment reads {len(outside)} tensors from outside it (a pipeline reads one)"
    y = ops[-1].outputs[0]
    later = {x for n in g.nodes[end:] for x in n.inputs} | set(g.outputs)
    escaping = sorted((inside - {y}) & later)
    if escaping:
        return f"tensors {escaping[:3]} of the segment are read after it"
    return None


def fuse_segments(g: Graph, segments: list[tuple[int, int]], sources: dict[int, str] | None = None) -> Graph:
    """A copy of ``g`` with each op range [start, end) in ``segments`` (disjoint) replaced by one pipeline
    node; ``sources[start]`` picks how that pipeline reads its input (default "resident")."""
    sources = sources or {}
    spans = sorted(segments)
    for (s0, e0), (s1, _) in zip(spans, spans[1:], strict=False):
        if s1 < e0:
            raise MCUCError(f"segments [{s0}, {e0}) and [{s1}, ...) overlap")
    for s, e in spans:
        problem = segment_problem(g, s, e)
        if problem is not None:
            raise MCUCError(f"ops [{s}, {e}) cannot be fused: {problem}")
    out = copy.copy(g)
    out.tensors = dict(g.tensors)
    nodes: list[Node] = []
    i = 0
    for s, e in spans:
        nodes.extend(g.nodes[i:s])
        node = pipeline_node(g, s, e, sources.get(s, "resident"))
        for t in node.attrs["tensors"]:
            out.tensors.pop(t, None)
        nodes.append(node)
        i = e
    nodes.extend(g.nodes[i:])
    out.nodes = nodes
    out.prune()
    verify(out, quantized=True)
    return out


def pipeline_node(g: Graph, start: int, end: int, source: str = "resident") -> Node:
    """The pipeline node running ops [start, end) of ``g`` (not checked: see segment_problem)."""
    if source not in SOURCES:
        raise MCUCError(f"unknown pipeline source '{source}': use {', '.join(SOURCES)}")
    ops = [copy.copy(n) for n in g.nodes[start:end]]
    inner = {n.outputs[0] for n in ops}
    y = ops[-1].outputs[0]
    x = next(t for n in ops for t in n.inputs if t and not g.tensors[t].is_const and t not in inner)
    consts = list(dict.fromkeys(t for n in ops for t in n.inputs if t and g.tensors[t].is_const))
    tensors = {t: g.tensors[t] for t in inner - {y}}
    name = f"{ops[0].name}..{ops[-1].name}" if len(ops) > 1 else ops[0].name
    return Node("pipeline", name, [x, *consts], [y],
                {"ops": ops, "tensors": tensors, "out_shape": tuple(g.tensors[y].shape), "source": source})


# ---- choosing segments -------------------------------------------------------------------------

MAX_SEGMENT_OPS = 24


@dataclass(frozen=True)
class Choice:
    """A segmentation: the fused op ranges, each one's input source, and the bytes the choice keeps live at
    its worst op (the live-bytes bound the planner then meets or comes close to)."""

    segments: tuple[tuple[int, int], ...]
    sources: dict[int, str]
    live_peak: int


def choose_segments(g: Graph, stream_input: bool = False, max_ops: int = MAX_SEGMENT_OPS) -> Choice:
    """The op ranges of ``g`` to fuse so that the most bytes live at any op is least; among equal peaks,
    the fewest fused ops (every pipeline costs ring copies). ``stream_input``: a pipeline starting at op 0
    reads the graph input from the application, so the input never sits in the arena.

    Dynamic programming over the op list: best[j] is the best segmentation of ops [0, j), where op j-1
    either runs alone (the bytes live at it, layer-based) or ends a pipeline [i, j) whose cost is the
    bytes live around it, its input (unless its output takes the input's memory), output and rings.
    """
    bufs = compute_buffers(g)
    roots, spans, sizes = bufs.roots, bufs.spans, bufs.sizes
    n = len(g.nodes)
    live = bufs.live(n)
    streamed = g.inputs[0] if stream_input and g.inputs else None
    best: list[tuple[int, int]] = [(0, 0)] + [(1 << 62, 0)] * n
    pick: list[tuple[int, str] | None] = [None] * (n + 1)
    for j in range(1, n + 1):
        # an op reading a streamed input must be inside the pipeline that reads it row by row
        alone = 1 << 62 if streamed is not None and _reads(g, j - 1, streamed) else live[j - 1]
        best[j] = (max(best[j - 1][0], alone), best[j - 1][1])
        for i in range(max(0, j - max_ops), j):
            if segment_problem(g, i, j) is not None:
                continue
            for source in _sources(g, i, streamed):
                cost = _segment_cost(g, i, j, source, roots, spans, sizes)
                cand = (max(best[i][0], cost), best[i][1] + (j - i))
                if cand < best[j]:
                    best[j], pick[j] = cand, (i, source)
    segs: list[tuple[int, int]] = []
    sources: dict[int, str] = {}
    j = n
    while j > 0:
        p = pick[j]
        if p is None:
            j -= 1
            continue
        segs.append((p[0], j))
        sources[p[0]] = p[1]
        j = p[0]
    return Choice(tuple(reversed(segs)), sources, best[n][0])


def _reads(g: Graph, k: int, t: str) -> bool:
    return t in g.nodes[k].inputs


def _sources(g: Graph, start: int, streamed: str | None) -> tuple[str, ...]:
    x = next(t for t in g.nodes[start].inputs if t and not g.tensors[t].is_const)
    if streamed is not None and x == streamed:  # only one pipeline, the first, reads a streamed input
        return ("stream",) if start == 0 else ()
    return ("resident", "ring")


def _segment_cost(g: Graph, start: int, end: int, source: str, roots: dict[str, str],
                  spans: dict[str, tuple[int, int]], sizes: dict[str, int]) -> int:
    """Bytes live while ops [start, end) run as one pipeline: buffers live across it, the input unless the
    output takes its memory (or it is streamed), the output, and the rings."""
    node = pipeline_node(g, start, end, source)
    x, y = node.inputs[0], node.outputs[0]
    plan = row_plan(inner_graph(g, node), source)
    scratch = ring_bytes(inner_graph(g, node), plan)
    inside = {roots[t] for m in g.nodes[start:end] for t in m.outputs}
    rx = roots[x]
    around = sum(sz for r, sz in sizes.items()
                 if r not in inside and r != rx and spans[r][0] < start and spans[r][1] >= end - 1)
    xb = 0 if source == "stream" else sizes[rx]
    yb = g.tensors[y].nbytes
    x_dies = x not in g.outputs and all(x not in m.inputs for m in g.nodes[end:])
    if source != "stream" and x_dies and plan.overwrites_input:
        return around + max(xb, yb) + scratch
    return around + xb + yb + scratch
