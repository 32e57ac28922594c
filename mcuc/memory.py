"""Arena layout of an int8 graph: tensor lifetimes, in-place aliasing, planner call, per-op live bytes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuc.ir import Graph, Node

ALIGNMENT = 16
# Ops whose kernel may write its output over the first input of identical size (documented in
# runtime_c/include/mcuc_nn.h): element i of the output depends only on element i of that input.
IN_PLACE_OPS = ("lut", "requantize", "add", "sub", "mul")
VIEW_OPS = ("reshape",)


@dataclass
class MemoryPlan:
    strategy: str
    arena_bytes: int
    lower_bound: int
    offsets: dict[str, int]  # activation tensor -> byte offset in the arena
    roots: dict[str, str]  # activation tensor -> buffer it shares memory with (itself if none)
    lifetimes: dict[str, tuple[int, int]]  # root -> (first op, last op) inclusive
    sizes: dict[str, int]  # root -> bytes
    live_bytes: list[int] = field(default_factory=list)  # per op: bytes of buffers live there

    def buffers(self) -> list[tuple[str, int, int, int, int]]:
        """(root, offset, size, first, last) for every planned buffer."""
        return [(r, self.offsets[r], self.sizes[r], *self.lifetimes[r]) for r in self.sizes]


def _can_alias_input(g: Graph, n: Node, idx: int, last_use: dict[str, int], step: int) -> bool:
    x = n.inputs[idx]
    t_in, t_out = g.tensors[x], g.tensors[n.outputs[0]]
    return (not t_in.is_const and x not in g.outputs and last_use.get(x) == step
            and tuple(t_in.shape) == tuple(t_out.shape) and t_in.nbytes == t_out.nbytes)


def compute_buffers(g: Graph) -> tuple[dict[str, str], dict[str, tuple[int, int]], dict[str, int]]:
    """Alias classes, lifetimes and sizes of the arena buffers of ``g``.

    Graph inputs are live from op 0, outputs until the last op. A reshape output is a view of
    its input; an in-place op's output reuses its input when that input dies at the op.
    """
    last_n = len(g.nodes) - 1
    first: dict[str, int] = {name: 0 for name in g.inputs}
    last: dict[str, int] = {name: 0 for name in g.inputs}
    for i, n in enumerate(g.nodes):
        for x in n.inputs:
            if x and not g.tensors[x].is_const:
                last[x] = i
        for o in n.outputs:
            first[o] = i
            last.setdefault(o, i)
    for o in g.outputs:
        last[o] = last_n
    root: dict[str, str] = {name: name for name in first}
    for i, n in enumerate(g.nodes):
        y = n.outputs[0]
        if n.op in VIEW_OPS and not g.tensors[n.inputs[0]].is_const:
            root[y] = root[n.inputs[0]]
        elif n.op in IN_PLACE_OPS:
            for idx in range(len(n.inputs)):
                if n.inputs[idx] and not g.tensors[n.inputs[idx]].is_const and \
                        _can_alias_input(g, n, idx, last, i):
                    root[y] = root[n.inputs[idx]]
                    break
    spans: dict[str, tuple[int, int]] = {}
    sizes: dict[str, int] = {}
    for name, r in root.items():
        f, la = first[name], last[name]
        if r in spans:
            spans[r] = (min(spans[r][0], f), max(spans[r][1], la))
        else:
            spans[r] = (f, la)
        sizes[r] = max(sizes.get(r, 0), g.tensors[name].nbytes)
    return root, spans, sizes


def plan_memory(g: Graph, strategy: str = "best") -> MemoryPlan:
    from mcuc.plan import lower_bound, make_planner
    from mcuc.plan.check import Buffer

    root, spans, sizes = compute_buffers(g)
    planner = make_planner(strategy, alignment=ALIGNMENT)
    keys = list(sizes)
    ids = {k: planner.add_buffer(sizes[k], *spans[k]) for k in keys}
    offsets_root = {k: planner.offset(ids[k]) for k in keys}
    arena = planner.arena_bytes()
    offsets = {name: offsets_root[r] for name, r in root.items()}
    bufs = [Buffer(sizes[k], *spans[k]) for k in keys]
    live = [0] * len(g.nodes)
    for k in keys:
        f, la = spans[k]
        for s in range(f, la + 1):
            live[s] += sizes[k]
    return MemoryPlan(strategy, arena, lower_bound(bufs), offsets, root, spans, sizes, live)


def arena_lower_bound(g: Graph) -> int:
    """max over ops of (bytes of live buffers), the bound no planner can beat."""
    _, spans, sizes = compute_buffers(g)
    live = np.zeros(max(len(g.nodes), 1), dtype=np.int64)
    for k, (f, la) in spans.items():
        live[f:la + 1] += sizes[k]
    return int(live.max())
