"""Row pipelines: a chain of int8 ops run together row by row, so its inner tensors never exist whole.

A ``pipeline`` node stands for inner ops (``attrs["ops"]``, over ``attrs["tensors"]``) that read one
activation, the pipeline input ``x`` (inputs[0]), and write one, the pipeline output ``y``. Each inner
tensor lives in a ring of the last rows its readers still need; the last op writes the rows of ``y``.
The C kernel (mcuc_pipeline_s8) computes rows on demand: to make row r of an op it first makes the
rows of its inputs that row r reads, then calls the op's ordinary kernel on that window of input rows
(one output row, the window's top padding as ``pad_top``). Every row is computed once, with the same
integer arithmetic as the whole op, so the result is the ops' result bit for bit at no extra MACs.

``row_plan`` replays that demand order in Python (the C kernel follows the same order) to find each
ring's rows and how far the pipeline has read ``x`` when it writes each row of ``y``:

- source ``"resident"``: ops read rows of ``x`` where it lies; ``"ring"``: rows of ``x`` are copied into
  a ring as first needed, so ``y`` may overwrite ``x`` sooner; ``"stream"``: rows of ``x`` come from the
  application (a camera or sensor callback) into that ring and ``x`` never sits in the arena.
- ``overwrites_input``: ``y`` written from the start of ``x``'s buffer never overwrites a byte of ``x``
  that is still to be read, so the planner may give ``y`` the memory of ``x`` when ``x`` dies here.

Inner ops: conv2d (regular, grouped, depthwise, pointwise), avgpool, maxpool, and same-shape add /
sub / mul, lut and requantize; 4-D NHWC tensors with batch 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, Tensor
from mcuc.ops.base import (
    OPS,
    Arg,
    Array1D,
    CExpr,
    Lowered,
    OpDef,
    Shape,
    Struct,
    register,
)

SOURCES = ("resident", "ring", "stream")
RING_ALIGN = 4  # ring byte offsets in the scratch buffer stay word aligned
MAX_STAGES = 64  # mcuc_pipeline_s8's bound on inner ops (its per-call state lives on the stack)

# stage kinds of mcuc_pipeline_s8 (mcuc/runtime_c/include/mcuc_pipeline.h)
KIND_CONV, KIND_POOL, KIND_BINARY, KIND_LUT, KIND_REQUANTIZE, KIND_DW_PW = range(6)
CONV_FUNCS = ("mcuc_conv2d_s8", "mcuc_depthwise_conv2d_s8", "mcuc_depthwise_conv2d_3x3_s8")
POOL_FUNCS = ("mcuc_avgpool_s8", "mcuc_maxpool_s8")
BINARY_FUNCS = ("mcuc_add_s8", "mcuc_sub_s8", "mcuc_mul_s8")


def row_op(node: Node) -> bool:
    """Whether ``node`` can run inside a pipeline (its registry entry's ``row_kernel``)."""
    d = OPS.get(node.op)
    return d is not None and d.row_kernel


def stages(g: Graph) -> list[list[Node]]:
    """The inner ops of inner graph ``g`` as the stages the C kernel runs: one op each, except that a
    depthwise conv whose output only a pointwise (1x1, stride 1, unpadded) conv reads runs together with
    it, pixel by pixel, so the depthwise output never needs even one whole row."""
    readers: dict[str, int] = {}
    for op in g.nodes:
        for t in op.inputs:
            readers[t] = readers.get(t, 0) + 1
    out: list[list[Node]] = []
    for op in g.nodes:
        prev = out[-1] if out else None
        if (prev is not None and len(prev) == 1 and _depthwise(g, prev[0]) and _pointwise(g, op)
                and op.inputs[0] == prev[0].outputs[0] and readers.get(prev[0].outputs[0], 0) == 1):
            prev.append(op)
        else:
            out.append([op])
    return out


def _depthwise(g: Graph, op: Node) -> bool:
    if op.op != "conv2d":
        return False
    c = g.tensors[op.inputs[0]].shape[3]
    w = g.tensors[op.inputs[1]].shape
    return int(op.attrs.get("groups", 1)) == c > 1 and w[3] == 1


def _pointwise(g: Graph, op: Node) -> bool:
    if op.op != "conv2d" or int(op.attrs.get("groups", 1)) != 1:
        return False
    w = g.tensors[op.inputs[1]].shape
    return (w[1], w[2]) == (1, 1) and tuple(op.attrs["strides"]) == (1, 1) and not any(op.attrs["pads"]) \
        and tuple(op.attrs.get("dilations", (1, 1))) == (1, 1)


def inner_graph(g: Graph, n: Node) -> Graph:
    """The inner ops of pipeline node ``n`` as a graph over their own tensors and ``g``'s constants."""
    a = n.attrs
    ig = Graph(layout="NHWC", meta=dict(g.meta))
    x, y = n.inputs[0], n.outputs[0]
    ig.tensors[x] = g.tensors[x]
    ig.tensors[y] = g.tensors[y]
    for name in n.inputs[1:]:
        ig.tensors[name] = g.tensors[name]
    ig.tensors.update(a["tensors"])
    ig.nodes = list(a["ops"])
    ig.inputs, ig.outputs = [x], [y]
    return ig


# ---- the demand order of rows ------------------------------------------------------------------


@dataclass(frozen=True)
class RowPlan:
    """What ``row_plan`` found: the rows of each ring (inner tensors read by later ops; the pipeline input
    too under the ring and stream sources) and whether ``y`` may overwrite ``x`` (see the module doc)."""

    rings: dict[str, int]
    overwrites_input: bool


def _window(g: Graph, op: Node, src: str, r: int) -> tuple[int, int]:
    """Rows [lo, hi) of ``src`` that row ``r`` of ``op``'s output reads (clipped to the tensor)."""
    d = OPS[op.op]
    h = g.tensors[src].shape[1]
    if d.window == "spatial":
        geo = d.geometry(g, op)  # type: ignore[misc]
        top = r * geo.strides[0] - geo.pads[0]
        return max(top, 0), min(top + geo.dilations[0] * (geo.kernel[0] - 1) + 1, h)
    return r, r + 1


def row_plan(g: Graph, source: str = "resident") -> RowPlan:
    """Replay the demand order of mcuc_pipeline_s8 over inner graph ``g`` (see the module doc).

    Row r of an op is made by first making, input by input, the rows of each input that row r reads,
    then reading those windows (a ring must still hold them then). Under the resident source the x
    windows read while or after a row of y is written must lie above every byte of y written so far (a
    kernel re-reads its window while it writes its row; only an elementwise last op, which reads each
    element of the row of x it overwrites before writing it, may write over that row); under the ring
    source the rows of x not yet fetched must.
    """
    if source not in SOURCES:
        raise MCUCError(f"unknown pipeline source '{source}': use {', '.join(SOURCES)}")
    x, y = g.inputs[0], g.outputs[0]
    producer = {st[-1].outputs[0]: st[0] for st in stages(g)}  # a stage's output -> its first op (its windows)
    made = {t: 0 for t in producer}  # rows made so far (of x: rows fetched into its ring)
    made[x] = 0
    x_ring = source != "resident"
    rings: dict[str, int] = {t: 1 for t in producer if t != y}
    if x_ring:
        rings[x] = 1
    last_pointwise = OPS[producer[y].op].window == "pointwise"
    events: list[tuple[str, int]] = []  # ("read", first x row of a direct window) | ("write", rows of x safe)

    def ensure(t: str, upto: int) -> None:
        if t == x:
            made[x] = max(made[x], upto) if x_ring else made[x]
            return
        op = producer[t]
        while made[t] < upto:
            r = made[t]
            windows = [(src, *_window(g, op, src, r)) for src in op.inputs if src and not g.tensors[src].is_const]
            for src, _, hi in windows:
                ensure(src, hi)
            direct = []  # first rows of the windows this call reads from x where it lies
            for src, lo, _ in windows:
                if src == x and not x_ring:
                    direct.append(lo)
                else:
                    rings[src] = max(rings[src], made[src] - lo)
            if t == y:
                # the call writing row r of y reads its x windows while it writes: they count as later reads,
                # except the very row an elementwise op reads element by element before overwriting it
                events.append(("write", made[x]))
                if last_pointwise:
                    direct = []
            events.extend(("read", lo) for lo in direct)
            made[t] += 1

    h_y = g.tensors[y].shape[1]
    for r in range(h_y):
        ensure(y, r + 1)
    xt, yt = g.tensors[x], g.tensors[y]
    x_row, y_row = xt.nbytes // xt.shape[1], yt.nbytes // yt.shape[1]
    safe = source != "stream" and yt.nbytes <= xt.nbytes
    low = xt.shape[1]  # lowest x row any later direct read starts at
    r = h_y
    for kind, v in reversed(events):
        if kind == "read":
            low = min(low, v)
            continue
        r -= 1
        free_rows = v if x_ring else low  # rows of x below this are never read again
        safe = safe and (r + 1) * y_row <= free_rows * x_row
    return RowPlan(rings, safe)


# ---- the registry entry ---------------------------------------------------------------------------


def _shape(node: Node, ins: list[Shape], layout: str) -> list[Shape]:
    return [tuple(node.attrs["out_shape"])]


def _macs(node: Node, g: Graph) -> int:
    ig = inner_graph(g, node)
    return sum(OPS[op.op].macs(op, ig) for op in ig.nodes)


def _plan(g: Graph, n: Node) -> RowPlan:
    return row_plan(inner_graph(g, n), str(n.attrs.get("source", "resident")))


def ring_layout(g: Graph, n: Node) -> tuple[dict[str, tuple[int, int]], int]:
    """Per ring (inner tensor, or the pipeline input under ring/stream sources): (byte offset in the
    scratch buffer, rows); and the scratch bytes."""
    ig = inner_graph(g, n)
    return _layout(ig, _plan(g, n))


def _layout(ig: Graph, plan: RowPlan) -> tuple[dict[str, tuple[int, int]], int]:
    """Rings first, then one pixel of the depthwise output of each depthwise + pointwise stage (keyed by
    that depthwise output, 0 rows)."""
    out: dict[str, tuple[int, int]] = {}
    offset = 0
    for t, rows in plan.rings.items():
        shape = ig.tensors[t].shape
        out[t] = (offset, rows)
        offset += -(-rows * shape[2] * shape[3] // RING_ALIGN) * RING_ALIGN
    for st in stages(ig):
        if len(st) == 2:
            out[st[0].outputs[0]] = (offset, 0)
            offset += -(-ig.tensors[st[0].outputs[0]].shape[3] // RING_ALIGN) * RING_ALIGN
    return out, offset


def ring_bytes(ig: Graph, plan: RowPlan) -> int:
    """Scratch bytes of the rings of ``plan`` over inner graph ``ig``."""
    return _layout(ig, plan)[1]


def _scratch(g: Graph, n: Node) -> int:
    return ring_layout(g, n)[1]


def _overwrites_input(g: Graph, n: Node) -> bool:
    return _plan(g, n).overwrites_input


def _row_shapes(ig: Graph, op: Node) -> Graph:
    """A one-row copy of ``ig`` for a pointwise op: its kernel parameters for one row of the tensors."""
    rg = Graph(layout="NHWC", meta=ig.meta)
    rg.tensors = dict(ig.tensors)
    for t in [*op.inputs, *op.outputs]:
        if t and not ig.tensors[t].is_const:
            s = ig.tensors[t]
            rg.tensors[t] = Tensor(t, (1, 1, s.shape[2], s.shape[3]), s.dtype, s.quant)
    return rg


def _lower(g: Graph, n: Node) -> Lowered:
    ig = inner_graph(g, n)
    if len(ig.nodes) > MAX_STAGES:
        raise MCUCError(f"pipeline '{n.name}' has {len(ig.nodes)} ops; mcuc_pipeline_s8 runs at most {MAX_STAGES}")
    source = str(n.attrs.get("source", "resident"))
    rings, _ = ring_layout(g, n)
    x, y = n.inputs[0], n.outputs[0]
    groups = stages(ig)
    index = {st[-1].outputs[0]: i for i, st in enumerate(groups)}
    structs: list[Struct] = []
    arrays: list[Array1D] = []
    table = []
    for st in groups:
        calls = []
        for op in st:
            d = OPS[op.op]
            low = d.lower(_row_shapes(ig, op) if d.window == "pointwise" else ig, op)  # type: ignore[misc]
            base_s, base_a = len(structs), len(arrays)
            structs.extend(Struct(s.ctype, _remap(s.value, base_s, base_a)) for s in low.structs)
            arrays.extend(low.arrays)
            calls.append((op, low, base_s, base_a))
        table.append(_stage(ig, calls, index, rings, x, y))
    x_ring = rings.get(x, (0, 0))
    xt = ig.tensors[x]
    params = {"n_stages": len(table), "stages": CExpr(f"@struct{len(structs)}"), "source": SOURCES.index(source),
              "in_h": xt.shape[1], "in_row_bytes": xt.nbytes // xt.shape[1], "in_ring_offset": x_ring[0],
              "in_ring_rows": x_ring[1]}
    structs.append(Struct("mcuc_pipeline_stage_params_t[]", table))
    structs.append(Struct("mcuc_pipeline_params_t", params))

    def ref(env: dict[str, np.ndarray]) -> np.ndarray:
        local = dict(env)
        for op in ig.nodes:
            d = OPS[op.op]
            out = d.lower(ig, op).ref(local)  # type: ignore[misc, union-attr]
            local[op.outputs[0]] = np.asarray(out).reshape(ig.tensors[op.outputs[0]].shape).astype(np.int8)
        return local[y]

    src_args = [Arg("null"), Arg("reader"), Arg("reader_ctx")] if source == "stream" else \
        [Arg("tensor", x), Arg("null"), Arg("null")]
    args = [Arg("struct", len(structs) - 1), Arg("scratch"), *src_args, Arg("tensor", y)]
    return Lowered(n, "mcuc_pipeline_s8", args, structs=structs, arrays=arrays, ref=ref)


def _remap(value: object, base_s: int, base_a: int) -> object:
    """A struct value of one op's lowering with its @structN / @arrayN references moved past earlier ops'."""
    if isinstance(value, CExpr) and value.text.startswith("@struct"):
        return CExpr(f"@struct{base_s + int(value.text[7:])}")
    if isinstance(value, CExpr) and value.text.startswith("@array"):
        return CExpr(f"@array{base_a + int(value.text[6:])}")
    if isinstance(value, dict):
        return {k: _remap(v, base_s, base_a) for k, v in value.items()}
    if isinstance(value, list):
        return [_remap(v, base_s, base_a) for v in value]
    return value


def _kernel(ig: Graph, low: Lowered, base_s: int, base_a: int) -> tuple[int, int, list[CExpr]]:
    """(stage kind, kernel index within the kind, [params, aux, weights, bias]) of one op's call."""

    def arg(i: int) -> CExpr:
        a = low.args[i]
        if a.kind == "struct":
            return CExpr(f"@&struct{base_s + a.value}")
        if a.kind == "array":
            return CExpr(f"@array{base_a + a.value}")
        return CExpr(f"@tensor:{a.value}")

    null = CExpr("NULL")
    if low.func in CONV_FUNCS:  # (params, quant, input, weights, bias, output)
        return KIND_CONV, CONV_FUNCS.index(low.func), [arg(0), arg(1), arg(3), arg(4)]
    if low.func in POOL_FUNCS:  # (params, input, output)
        return KIND_POOL, POOL_FUNCS.index(low.func), [arg(0), null, null, null]
    if low.func in BINARY_FUNCS:  # (params, shape, in1, in2, output); a constant operand goes in weights
        const = [arg(i) for i in (2, 3) if ig.tensors[str(low.args[i].value)].is_const]
        return KIND_BINARY, BINARY_FUNCS.index(low.func), [arg(0), arg(1), const[0] if const else null, null]
    if low.func == "mcuc_lut_s8":  # (params, table, input, output)
        return KIND_LUT, 0, [arg(0), null, arg(1), null]
    if low.func == "mcuc_requantize_s8":  # (params, input, output)
        return KIND_REQUANTIZE, 0, [arg(0), null, null, null]
    raise MCUCError(f"op '{low.node.name}' ({low.node.op}) cannot run inside a row pipeline")


def _stage(ig: Graph, calls: list[tuple[Node, Lowered, int, int]], index: dict[str, int],
           rings: dict[str, tuple[int, int]], x: str, y: str) -> dict[str, object]:
    """One entry of the C stage table: which kernel(s), their parameters, where inputs and output rows are."""
    op = calls[0][0]
    d = OPS[op.op]
    acts = [i for i in op.inputs if i and not ig.tensors[i].is_const]
    out = calls[-1][0].outputs[0]
    t = ig.tensors[out]
    stride, pad, win = 1, 0, 1
    if d.window == "spatial":
        geo = d.geometry(ig, op)  # type: ignore[misc]
        stride, pad, win = geo.strides[0], geo.pads[0], geo.dilations[0] * (geo.kernel[0] - 1) + 1
    kind, func, consts = _kernel(ig, calls[0][1], calls[0][2], calls[0][3])
    null = CExpr("NULL")
    second = [null] * 4
    tmp = 0
    if len(calls) == 2:  # depthwise + pointwise, pixel by pixel
        kind, second, tmp = KIND_DW_PW, _kernel(ig, calls[1][1], calls[1][2], calls[1][3])[2], rings[op.outputs[0]][0]
    if kind == KIND_BINARY:  # both operands, in order: -1 the pipeline input, -2 the constant (weights)
        src = [-2 if ig.tensors[a].is_const else (-1 if a == x else index[a]) for a in op.inputs[:2]]
        acts = op.inputs[:2]
    else:
        src = [-1 if a == x else index[a] for a in acts] + [-1] * (2 - len(acts))
    ring = rings.get(out, (0, 0))
    return {"kind": kind, "func": func, "params": consts[0], "aux": consts[1], "weights": consts[2],
            "bias": consts[3], "params2": second[0], "aux2": second[1], "weights2": second[2], "bias2": second[3],
            "n_in": len(acts), "in": src, "out_h": t.shape[1], "row_bytes": t.nbytes // t.shape[1],
            "stride_h": stride, "pad_top": pad, "window_h": win, "ring_offset": ring[0],
            "ring_rows": 0 if out == y else ring[1], "tmp_offset": tmp}


register(OpDef("pipeline", "pipeline", _shape, macs=_macs, scratch=_scratch, lower=_lower,
               overwrites_input=_overwrites_input,
               streams_input=lambda g, n: n.attrs.get("source") == "stream"))
