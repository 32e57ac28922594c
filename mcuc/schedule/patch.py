"""Patch-based schedule of the first stage of an int8 NHWC graph (MCUNetV2-style inference).

The first ``split`` ops (the stage) run once per spatial patch of the stage output: every op
computes only the output window that later ops of the same patch need, reading the input window
its receptive field covers (halo included). Windows are clipped to the tensor; the padding a
sub-window op applies is the part of the op's original padding that falls inside the window, so
each patch op is an ordinary kernel call with smaller shapes and the same numerics as the full op.

The stage input (the image) is cropped per patch into a small buffer, each patch's stage output is
placed into the assembled stage output, and the rest of the graph runs layer by layer. All of it
is one flat op list over one "schedule graph" (`PatchSchedule.graph`): the memory planner, the MAC
count, the numpy executor and the C generator all read that same list, so the reported peak SRAM
and MACs are those of the code that runs.

Ops allowed in a stage: conv2d (any kernel, stride, dilation, groups, padding), avgpool, maxpool,
add/sub/mul of two same-shaped activations (residual blocks are supported: a tensor read by
several ops is computed over the union of their windows and cropped for readers that need less),
lut and requantize. The stage reads only the graph's single 4-D input.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, Tensor
from mcuc.lower import Arg, Lowered, Struct, lower
from mcuc.ops import node_macs

WINDOWED_OPS = ("conv2d", "avgpool", "maxpool")
POINTWISE_OPS = ("add", "sub", "mul", "lut", "requantize")
COPY_OP = "copy_window"


@dataclass(frozen=True)
class Window:
    """Half-open spatial box [h0, h1) x [w0, w1) of an NHWC tensor."""

    h0: int
    h1: int
    w0: int
    w1: int

    @property
    def h(self) -> int:
        return self.h1 - self.h0

    @property
    def w(self) -> int:
        return self.w1 - self.w0

    def union(self, other: Window) -> Window:
        return Window(min(self.h0, other.h0), max(self.h1, other.h1), min(self.w0, other.w0), max(self.w1, other.w1))

    def contains(self, other: Window) -> bool:
        return self.h0 <= other.h0 and other.h1 <= self.h1 and self.w0 <= other.w0 and other.w1 <= self.w1

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.h0, self.h1, self.w0, self.w1)


@dataclass(frozen=True)
class OpWindow:
    """One stage op in one patch: the input window it reads per activation input, the output
    window it computes, and the (top, left, bottom, right) padding of the sub-window op."""

    node: Node
    in_windows: tuple[Window | None, ...]  # None for constant inputs
    out_window: Window
    pads: tuple[int, int, int, int]


@dataclass(frozen=True)
class PatchWindows:
    """All windows of one patch: per stage op (in stage order) and per stage tensor (the window
    each tensor is computed over in this patch, the union of what its readers need)."""

    index: int
    row: int
    col: int
    ops: tuple[OpWindow, ...]
    tensor_windows: dict[str, Window]


def _axis_split(size: int, parts: int) -> list[tuple[int, int]]:
    """[0, size) cut into ``parts`` contiguous ranges differing in length by at most one."""
    bounds = [(k * size) // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def _back_1d(o0: int, o1: int, k: int, s: int, d: int, pad_lo: int, size: int) -> tuple[int, int, int, int]:
    """Input range [i0, i1) and (pad_lo, pad_hi) of the sub-op computing outputs [o0, o1).

    Unclipped, output o reads input rows o*s - pad_lo + j*d for j < k; the sub-op reads the part
    of that span inside the tensor and pads the rest, which is exactly the original padding
    that falls inside this window.
    """
    a = o0 * s - pad_lo
    b = (o1 - 1) * s - pad_lo + (k - 1) * d + 1
    i0, i1 = max(a, 0), min(b, size)
    if i0 >= i1:
        raise MCUCError(f"output rows [{o0}, {o1}) read only padding; cannot run this op on a patch")
    return i0, i1, i0 - a, b - i1


def _geometry(g: Graph, n: Node) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(kernel, strides, dilations, pads) of a windowed op."""
    a = n.attrs
    if n.op == "conv2d":
        w = g.tensors[n.inputs[1]].shape
        kernel = (int(w[1]), int(w[2]))
        dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
    else:
        kernel = tuple(int(v) for v in a["kernel"])  # type: ignore[assignment]
        dil = (1, 1)
    strides = tuple(int(v) for v in a["strides"])
    pads = tuple(int(v) for v in a["pads"])
    return kernel, strides, dil, pads  # type: ignore[return-value]


def _is_act(g: Graph, name: str) -> bool:
    return bool(name) and not g.tensors[name].is_const


def check_stage(g: Graph, split: int) -> list[Node]:
    """The first ``split`` ops of ``g`` if they can run patch by patch; MCUCError naming why not."""
    if g.layout != "NHWC":
        raise MCUCError("patch schedules need an NHWC graph")
    if len(g.inputs) != 1 or len(g.tensors[g.inputs[0]].shape) != 4:
        raise MCUCError("patch schedules need a single 4-D graph input")
    if not 1 <= split <= len(g.nodes):
        raise MCUCError(f"split {split} outside 1..{len(g.nodes)}")
    stage = g.nodes[:split]
    produced = {g.inputs[0]}
    for n in stage:
        if n.op not in WINDOWED_OPS + POINTWISE_OPS:
            raise MCUCError(f"op {g.nodes.index(n)} '{n.name}' ({n.op}) cannot run on a patch")
        acts = [x for x in n.inputs if _is_act(g, x)]
        if not acts or any(x not in produced for x in acts):
            raise MCUCError(f"op '{n.name}' reads a tensor from outside the stage")
        out = g.tensors[n.outputs[0]]
        if len(out.shape) != 4 or len(n.outputs) != 1:
            raise MCUCError(f"op '{n.name}' does not produce one 4-D tensor")
        if n.op in POINTWISE_OPS and any(tuple(g.tensors[x].shape) != tuple(out.shape) for x in acts):
            raise MCUCError(f"op '{n.name}' ({n.op}) broadcasts; only same-shape elementwise ops run on patches")
        if n.op in WINDOWED_OPS and len(acts) != 1:
            raise MCUCError(f"op '{n.name}' has more than one activation input")
        produced.add(n.outputs[0])
    stage_out = stage[-1].outputs[0]
    inner = produced - {g.inputs[0], stage_out}
    later = {x for n in g.nodes[split:] for x in n.inputs} | set(g.outputs)
    escaping = sorted(inner & later)
    if escaping:
        raise MCUCError(f"stage tensors {escaping[:3]} are read after op {split - 1}; split elsewhere")
    if stage_out in g.outputs and split < len(g.nodes):
        pass  # the assembled stage output simply stays live to the end
    return stage


def valid_splits(g: Graph) -> list[int]:
    """Every split for which the first ``split`` ops form a patchable stage."""
    out = []
    for s in range(1, len(g.nodes) + 1):
        try:
            check_stage(g, s)
        except MCUCError:
            if g.nodes[s - 1].op not in WINDOWED_OPS + POINTWISE_OPS:
                break
            continue
        out.append(s)
    return out


_Range = tuple[int, int]
_Axis = tuple[dict[str, _Range], list[tuple[_Range, int, int]]]


def _propagate_axis(g: Graph, stage: list[Node], out: _Range, axis: int) -> _Axis:
    """One spatial axis (1 = H, 2 = W) of the back-propagation: the range of every stage tensor
    and, per op in reverse stage order, (input range, pad before, pad after). Windows are boxes and
    receptive fields act on each axis independently, so a patch's window is the product of its
    row and column results."""
    stage_out = stage[-1].outputs[0]
    need: dict[str, _Range] = {stage_out: out}
    per_op: list[tuple[_Range, int, int]] = []
    for n in reversed(stage):
        per_op.append(_back_op(g, n, axis, need[n.outputs[0]], need))
    return need, per_op


def _back_op(g: Graph, n: Node, axis: int, out: _Range, need: dict[str, _Range]) -> tuple[_Range, int, int]:
    """(input range, pad before, pad after) of op ``n`` on ``axis`` for output range ``out``; widens
    ``need`` of every activation input of ``n`` to cover that input range."""
    o0, o1 = out
    if n.op in WINDOWED_OPS:
        kernel, strides, dil, pads = _geometry(g, n)
        k = axis - 1
        size = g.tensors[n.inputs[0]].shape[axis]
        i0, i1, p_lo, p_hi = _back_1d(o0, o1, kernel[k], strides[k], dil[k], pads[k], size)
    else:
        i0, i1, p_lo, p_hi = o0, o1, 0, 0
    for x in n.inputs:
        if _is_act(g, x):
            have = need.get(x)
            need[x] = (i0, i1) if have is None else (min(have[0], i0), max(have[1], i1))
    return (i0, i1), p_lo, p_hi


def _propagate_rows_cached(g: Graph, stage: list[Node], bands: list[_Range]) -> list[tuple[_Axis, dict[str, _Range]]]:
    """The H axis when rows are cached between vertically adjacent patches (StreamNet-style).

    Band i needs rows need_i(T) of each stage tensor T, but rows up to need_{i-1}(T).end were
    already computed by band i-1: a cache keeps them, so band i computes only rows
    [max(need_i.start, need_{i-1}.end), need_i.end) and back-propagates that smaller range.
    Returns per band the axis result (need ranges, per-op input range and pads of the computed
    rows) and the computed range of every op output. At least one row is computed per op, so a
    band never reads a cache older than the band just above it.
    """
    stage_out = stage[-1].outputs[0]
    out: list[tuple[_Axis, dict[str, _Range]]] = []
    prev: dict[str, _Range] | None = None
    for band in bands:
        need: dict[str, _Range] = {stage_out: band}
        comp: dict[str, _Range] = {}
        per_op: list[tuple[_Range, int, int]] = []
        for n in reversed(stage):
            y = n.outputs[0]
            o0, o1 = need[y]
            if prev is not None and y != stage_out and y in prev:
                if prev[y][0] > o0:
                    raise MCUCError(f"rows of '{y}' needed by a band are older than the band above; cannot cache")
                o0 = min(max(o0, prev[y][1]), o1 - 1)
            comp[y] = (o0, o1)
            per_op.append(_back_op(g, n, 1, (o0, o1), need))
        out.append(((need, per_op), comp))
        prev = need
    return out


HALO_MODES = ("recompute", "cache")


def patch_windows(g: Graph, split: int, grid: tuple[int, int], halo: str = "recompute") -> list[PatchWindows]:
    """Back-propagate every patch's stage-output window through the stage (receptive fields).

    ``halo="recompute"`` (MCUNetV2): every patch computes its whole receptive field, overlaps
    included. ``halo="cache"``: overlapping rows are computed once and kept for the patch below
    (per column of patches), so only column overlaps are recomputed; with one column of patches
    nothing is. An op's ``out_window`` is what it computes; ``tensor_windows`` what the patch
    holds (computed rows plus cached rows).
    """
    if halo not in HALO_MODES:
        raise MCUCError(f"unknown halo mode '{halo}': use {' or '.join(HALO_MODES)}")
    stage = check_stage(g, split)
    stage_out = stage[-1].outputs[0]
    _, oh, ow, _ = g.tensors[stage_out].shape
    rows, cols = grid
    if not (1 <= rows <= oh and 1 <= cols <= ow):
        raise MCUCError(f"grid {rows}x{cols} does not fit the {oh}x{ow} stage output")
    bands = _axis_split(oh, rows)
    if halo == "cache":
        row_axes = _propagate_rows_cached(g, stage, bands)
    else:
        row_axes = [(ax, dict(ax[0])) for ax in (_propagate_axis(g, stage, r, 1) for r in bands)]
    col_axes = [_propagate_axis(g, stage, c, 2) for c in _axis_split(ow, cols)]
    acts = [[_is_act(g, x) for x in n.inputs] for n in stage]
    patches: list[PatchWindows] = []
    for pi, ((hneed, hops), hcomp) in enumerate(row_axes):
        for pj, (wneed, wops) in enumerate(col_axes):
            need = {t: Window(*hneed[t], *wneed[t]) for t in hneed}
            ops: list[OpWindow] = []
            for k, n in enumerate(stage):
                (hr, pt, pb), (wr, pl, pr) = hops[-1 - k], wops[-1 - k]
                in_win = Window(*hr, *wr)
                ins = tuple(in_win if a else None for a in acts[k])
                y = n.outputs[0]
                ops.append(OpWindow(n, ins, Window(*hcomp[y], *wneed[y]), (pt, pl, pb, pr)))
            patches.append(PatchWindows(len(patches), pi, pj, tuple(ops), need))
    return patches


def grid_stage_macs(g: Graph, split: int, grid: tuple[int, int]) -> int:
    """stage_macs_of(g, patch_windows(g, split, grid)) without building the patches: an op's
    patch windows are products of row and column ranges, so their areas sum to
    (sum of row lengths) x (sum of column lengths)."""
    stage = check_stage(g, split)
    _, oh, ow, _ = g.tensors[stage[-1].outputs[0]].shape
    if not (1 <= grid[0] <= oh and 1 <= grid[1] <= ow):
        raise MCUCError(f"grid {grid[0]}x{grid[1]} does not fit the {oh}x{ow} stage output")
    rows = [_propagate_axis(g, stage, r, 1)[0] for r in _axis_split(oh, grid[0])]
    cols = [_propagate_axis(g, stage, c, 2)[0] for c in _axis_split(ow, grid[1])]
    total = 0
    for n in stage:
        y = n.outputs[0]
        _, h, w, _ = g.tensors[y].shape
        sum_h = sum(r[y][1] - r[y][0] for r in rows)
        sum_w = sum(c[y][1] - c[y][0] for c in cols)
        total += node_macs(n, g) // (h * w) * sum_h * sum_w
    return total


def stage_macs_of(g: Graph, patches: list[PatchWindows]) -> int:
    """MACs of the patch stage from its windows alone (no schedule graph needed): every stage op's
    node_macs is proportional to its output area, so a window costs node_macs * window / full area.
    Equals the count over the built schedule graph (tests check it); the search uses it to skip
    schedules beyond the MAC overhead limit before building them."""
    per_pixel = {}
    for op in patches[0].ops:
        n = op.node
        _, h, w, _ = g.tensors[n.outputs[0]].shape
        per_pixel[n.name] = node_macs(n, g) // (h * w)
    return sum(per_pixel[op.node.name] * op.out_window.h * op.out_window.w for p in patches for op in p.ops)


# ---- the schedule graph ----------------------------------------------------------------------

@dataclass
class PatchSchedule:
    """A patch schedule lowered to one flat op list over ``graph`` (the schedule graph).

    ``graph`` holds the original tensors plus one tensor per (patch, stage tensor) window and per
    crop; its nodes are the per-patch stage ops, ``copy_window`` crops and places, then the rest
    of the original graph. ``stage_ops`` is the number of nodes that belong to the patch stage.
    """

    source: Graph
    split: int
    grid: tuple[int, int]
    patches: list[PatchWindows]
    graph: Graph
    stage_ops: int
    macs: int
    layer_macs: int
    stage_macs: int
    layer_stage_macs: int
    halo: str = "recompute"  # "cache": overlapping rows kept for the patch below instead of recomputed
    _lowered: list[Lowered] | None = field(default=None, repr=False)

    @property
    def mac_overhead(self) -> float:
        """Extra MACs from halo recomputation, relative to the whole layer-based network."""
        return (self.macs - self.layer_macs) / max(self.layer_macs, 1)

    @property
    def stage_mac_overhead(self) -> float:
        return (self.stage_macs - self.layer_stage_macs) / max(self.layer_stage_macs, 1)

    def describe(self) -> dict[str, Any]:
        return {"kind": "patch", "split_layer": self.split, "grid": list(self.grid), "halo": self.halo,
                "mac_overhead": round(self.mac_overhead, 6), "stage_mac_overhead": round(self.stage_mac_overhead, 6),
                "macs_layer_based": self.layer_macs, "stage_output": self.source.nodes[self.split - 1].outputs[0]}

    def lowered(self) -> list[Lowered]:
        """Kernel call of every schedule op (crops and places included), in execution order."""
        if self._lowered is None:
            self._lowered = [lower_step(self.graph, n) for n in self.graph.nodes]
        return self._lowered


def _copy_node(g: Graph, name: str, src: str, dst: str, src_yx: tuple[int, int], dst_yx: tuple[int, int],
               size: tuple[int, int], writes_dst: bool) -> Node:
    """A copy_window op; ``writes_dst`` makes ``dst`` its output (a crop, or the first place),
    otherwise ``dst`` is an input that the op updates (later places into the assembled output)."""
    attrs = {"src_yx": src_yx, "dst_yx": dst_yx, "size": size}
    if writes_dst:
        return Node(COPY_OP, name, [src], [dst], attrs)
    return Node(COPY_OP, name, [src, dst], [], attrs)


def build_schedule(g: Graph, split: int, grid: tuple[int, int],
                   patches: list[PatchWindows] | None = None, halo: str = "recompute") -> PatchSchedule:
    """The patch schedule of the first ``split`` ops of ``g`` over a rows x cols grid
    (``patches``: the result of patch_windows(g, split, grid, halo) if the caller has it already).

    With cached halos, an op whose rows are partly cached writes its new rows into their own
    buffer; the patch's full window of that tensor is then assembled from the cache and the new
    rows, and the rows the patch below will need are copied into a cache that lives until then.
    """
    if patches is None:
        patches = patch_windows(g, split, grid, halo)
    cols = grid[1]
    caches: dict[tuple[str, int], tuple[str, Window]] = {}
    image = g.inputs[0]
    stage = g.nodes[:split]
    stage_out = stage[-1].outputs[0]
    full_image = Window(0, g.tensors[image].shape[1], 0, g.tensors[image].shape[2])
    sg = Graph(layout="NHWC", meta=dict(g.meta))
    sg.tensors = dict(g.tensors)
    sg.inputs = list(g.inputs)
    sg.outputs = list(g.outputs)

    def add(base: str, like: str, win: Window) -> str:
        t = g.tensors[like]
        name = sg.unique_name(base)
        sg.add_tensor(Tensor(name, (t.shape[0], win.h, win.w, t.shape[3]), t.dtype, t.quant))
        return name

    placed = False
    for p in patches:
        tag = f"p{p.index}"
        buf: dict[str, tuple[str, Window]] = {image: (image, full_image)}
        for k, ow in enumerate(p.ops):
            n = ow.node
            inputs = []
            for i, (x, want) in enumerate(zip(n.inputs, ow.in_windows, strict=True)):
                if want is None:
                    inputs.append(x)
                    continue
                src, have = buf[x]
                if have == want:
                    inputs.append(src)
                    continue
                assert have.contains(want), (x, have, want)
                crop = add(f"{x}@{tag}.crop{k}_{i}", x, want)
                sg.nodes.append(_copy_node(sg, f"{tag}.crop{k}_{i}:{n.name}", src, crop,
                                           (want.h0 - have.h0, want.w0 - have.w0), (0, 0), (want.h, want.w), True))
                inputs.append(crop)
            y = n.outputs[0]
            comp, avail = ow.out_window, p.tensor_windows[y]
            out = add(f"{y}@{tag}" if comp == avail else f"{y}@{tag}.new", y, comp)
            attrs = dict(n.attrs)
            if n.op in WINDOWED_OPS:
                attrs["pads"] = ow.pads
            sg.nodes.append(Node(n.op, f"{n.name}@{tag}", inputs, [out], attrs))
            if comp == avail:
                buf[y] = (out, comp)
            else:  # rows [avail.h0, comp.h0) come from the cache the patch above left
                cname, cwin = caches.pop((y, p.col))
                assert cwin == Window(avail.h0, comp.h0, avail.w0, avail.w1) and comp.h1 == avail.h1, (y, cwin, comp)
                full = add(f"{y}@{tag}", y, avail)
                sg.nodes.append(_copy_node(sg, f"{tag}.uncache:{y}", cname, full, (0, 0), (0, 0),
                                           (cwin.h, cwin.w), True))
                sg.nodes.append(_copy_node(sg, f"{tag}.join:{y}", out, full, (0, 0),
                                           (comp.h0 - avail.h0, comp.w0 - avail.w0), (comp.h, comp.w), False))
                buf[y] = (full, avail)
            if y != stage_out and p.row + 1 < grid[0]:
                below = patches[p.index + cols]
                b_comp = below.ops[k].out_window
                b_avail = below.tensor_windows[y]
                if b_comp.h0 > b_avail.h0:
                    cwin = Window(b_avail.h0, b_comp.h0, b_avail.w0, b_avail.w1)
                    src, have = buf[y]
                    assert have.contains(cwin), (y, have, cwin)
                    cname = add(f"{y}@{tag}.cache", y, cwin)
                    sg.nodes.append(_copy_node(sg, f"{tag}.cache:{y}", src, cname,
                                               (cwin.h0 - have.h0, cwin.w0 - have.w0), (0, 0), (cwin.h, cwin.w), True))
                    caches[(y, p.col)] = (cname, cwin)
        src, win = buf[stage_out]
        sg.nodes.append(_copy_node(sg, f"{tag}.place:{stage_out}", src, stage_out, (0, 0), (win.h0, win.w0),
                                   (win.h, win.w), not placed))
        placed = True
    stage_ops = len(sg.nodes)
    sg.nodes.extend(g.nodes[split:])
    # MACs of the schedule's own op list (the rest of the graph is shared with g, so counted once there)
    stage_macs = sum(node_macs(n, sg) for n in sg.nodes[:stage_ops] if n.op != COPY_OP)
    layer_per_op = [node_macs(n, g) for n in g.nodes]
    layer_stage_macs = sum(layer_per_op[:split])
    layer_macs = sum(layer_per_op)
    macs = stage_macs + layer_macs - layer_stage_macs
    return PatchSchedule(g, split, grid, patches, sg, stage_ops, macs, layer_macs, stage_macs, layer_stage_macs,
                         halo)


# ---- lowering and execution ------------------------------------------------------------------

def lower_copy(g: Graph, n: Node) -> Lowered:
    """copy_window -> mcuc_copy_window_s8 (mcuc/runtime_c/include/mcuc_window.h) and its numpy twin."""
    src = n.inputs[0]
    dst = n.outputs[0] if n.outputs else n.inputs[1]
    sn, sh, sw, sc = g.tensors[src].shape
    _, dh, dw, _ = g.tensors[dst].shape
    (sy, sx), (dy, dx), (rows, cols) = n.attrs["src_yx"], n.attrs["dst_yx"], n.attrs["size"]
    params = {"batch": sn, "channels": sc, "src_h": sh, "src_w": sw, "src_y": sy, "src_x": sx,
              "dst_h": dh, "dst_w": dw, "dst_y": dy, "dst_x": dx, "rows": rows, "cols": cols}
    dst_shape = tuple(g.tensors[dst].shape)

    def ref(env: dict[str, np.ndarray]) -> np.ndarray:
        if dst not in env:
            env[dst] = np.zeros(dst_shape, dtype=np.int8)
        env[dst][:, dy:dy + rows, dx:dx + cols, :] = env[src][:, sy:sy + rows, sx:sx + cols, :]
        return env[dst]

    return Lowered(n, "mcuc_copy_window_s8", [Arg("struct", 0), Arg("tensor", src), Arg("tensor", dst)],
                   structs=[Struct("mcuc_copy_window_params_t", params)], ref=ref)


def lower_step(g: Graph, n: Node) -> Lowered:
    return lower_copy(g, n) if n.op == COPY_OP else lower(g, n)


def run_schedule(sched: PatchSchedule, feeds: dict[str, np.ndarray],
                 on_step: Callable[[int, Lowered], None] | None = None) -> dict[str, np.ndarray]:
    """Execute the schedule op by op in numpy (the same Lowered calls the C code makes)."""
    from mcuc.reference.int8_ref import initial_env

    g = sched.graph
    env = initial_env(g, feeds)
    for i, low in enumerate(sched.lowered()):
        if on_step is not None:
            on_step(i, low)
        assert low.ref is not None
        y = low.ref(env)
        n = low.node
        if n.op != COPY_OP:
            out = g.tensors[n.outputs[0]]
            env[n.outputs[0]] = np.asarray(y).reshape(out.shape).astype(np.int8)
    return env
