"""Arena layout of an int8 graph: tensor lifetimes, in-place aliasing, planner call, per-op live bytes."""
from __future__ import annotations

from dataclasses import dataclass, field

from mcuc.ir import Graph, Node

ALIGNMENT = 16
# Ops whose kernel may write its output over the first input of identical size (documented in
# mcuc/runtime_c/include/mcuc_nn.h): element i of the output depends only on element i of that input
# (layernorm: on its row, which the kernel reads whole before writing it).
IN_PLACE_OPS = ("lut", "requantize", "add", "sub", "mul", "layernorm")
VIEW_OPS = ("reshape",)
SCRATCH_SUFFIX = "#scratch"  # key of an op-local scratch buffer: the op's first output + this suffix


def scratch_key(n: Node) -> str:
    """Planner key of the scratch buffer of ``n`` (live only while ``n`` runs)."""
    return n.outputs[0] + SCRATCH_SUFFIX


def op_scratch_bytes(g: Graph, n: Node) -> int:
    """Bytes of arena scratch the kernel of ``n`` needs while it runs (its _get_buffer_size companion)."""
    if n.op == "attention":
        from mcuc.reference.attention import attention_scratch_bytes

        k = g.tensors[n.inputs[1]].shape
        return attention_scratch_bytes(k[-2] if n.attrs.get("transpose_b") else k[-1], int(n.attrs["block_rows"]))
    return 0


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


def _inplace_index(g: Graph, n: Node, last_use: dict[str, int], step: int) -> int | None:
    """Input whose memory ``n`` may overwrite: same shape and size as the output, dying at ``n``."""
    if n.op not in IN_PLACE_OPS:
        return None
    t_out = g.tensors[n.outputs[0]]
    for idx, x in enumerate(n.inputs):
        t_in = g.tensors[x] if x else None
        if t_in is not None and not t_in.is_const and last_use.get(x) == step \
                and tuple(t_in.shape) == tuple(t_out.shape) and t_in.nbytes == t_out.nbytes:
            return idx
    return None


def compute_buffers(g: Graph) -> tuple[dict[str, str], dict[str, tuple[int, int]], dict[str, int]]:
    """Alias classes, lifetimes and sizes of the arena buffers of ``g``.

    Graph inputs are live from op 0, outputs until the last op. A reshape output is a view of
    its input; an in-place op's output reuses its input when that input dies at the op. An op's
    scratch (``op_scratch_bytes``) is a buffer written and last used by that op alone, so the
    planner keeps it apart from the op's inputs and outputs and reuses its bytes elsewhere.
    """
    from mcuc.plan import ScheduledOp, compute_lifetimes, merge_inplace, merged_buffers

    def acts(names: list[str]) -> tuple[str, ...]:
        return tuple(x for x in names if x and not g.tensors[x].is_const)

    scratch = {scratch_key(n): b for n in g.nodes if (b := op_scratch_bytes(g, n)) > 0}

    def outs(n: Node) -> tuple[str, ...]:
        return tuple(n.outputs) + ((scratch_key(n),) if n.outputs and scratch_key(n) in scratch else ())

    plain = [ScheduledOp(acts(n.inputs), outs(n)) for n in g.nodes]
    lifetimes = compute_lifetimes(plain, g.inputs, g.outputs)
    last_use = {k: lt.last for k, lt in lifetimes.items()}
    ops = []
    for step, n in enumerate(g.nodes):
        ins = acts(n.inputs)
        idx = _inplace_index(g, n, last_use, step)
        ops.append(ScheduledOp(ins, outs(n),
                               inplace=None if idx is None else ins.index(n.inputs[idx]),
                               view=n.op in VIEW_OPS and bool(ins)))
    sizes = {k: scratch[k] if k in scratch else g.tensors[k].nbytes for k in lifetimes}
    root = merge_inplace(ops, lifetimes, sizes)
    buffers = merged_buffers(lifetimes, sizes, root)
    spans = {k: (b.first_use, b.last_use) for k, b in buffers.items()}
    return root, spans, {k: b.size for k, b in buffers.items()}


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
    from mcuc.plan import lower_bound
    from mcuc.plan.check import Buffer

    _, spans, sizes = compute_buffers(g)
    return lower_bound([Buffer(sizes[k], *spans[k]) for k in sizes])
