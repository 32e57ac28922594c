"""Arena layout of an int8 graph: tensor lifetimes, in-place aliasing, planner call, per-op live bytes."""
from __future__ import annotations

from dataclasses import dataclass, field

from mcuc.ir import Graph, Node
from mcuc.ops import op_def, variant_scratch_bytes
from mcuc.plan import Buffer, ScheduledOp, compute_lifetimes, lower_bound, make_planner, merge_inplace, merged_pieces

ALIGNMENT = 16
SCRATCH_SUFFIX = "#scratch"  # key of an op-local scratch buffer: the op's first output + this suffix


def scratch_key(n: Node) -> str:
    """Planner key of the scratch buffer of ``n`` (live only while ``n`` runs)."""
    return n.outputs[0] + SCRATCH_SUFFIX


def op_scratch_bytes(g: Graph, n: Node) -> int:
    """Bytes of arena scratch the kernel of ``n`` needs while it runs (its _get_buffer_size companion): the
    op's own scratch fact plus that of the kernel variant chosen for it (mcuc.ops.variant_of)."""
    scratch = op_def(n).scratch
    return (0 if scratch is None else scratch(g, n)) + variant_scratch_bytes(g, n)


@dataclass
class MemoryPlan:
    strategy: str
    arena_bytes: int
    lower_bound: int
    offsets: dict[str, int]  # activation tensor -> byte offset in the arena
    roots: dict[str, str]  # activation tensor -> buffer it shares memory with (itself if none)
    lifetimes: dict[str, tuple[int, int]]  # root -> (first op, last op) inclusive
    sizes: dict[str, int]  # root -> bytes (its largest piece)
    live_bytes: list[int] = field(default_factory=list)  # per op: bytes of buffers live there
    pieces: dict[str, tuple[Buffer, ...]] = field(default_factory=dict)  # root -> its pieces (at its offset)

    def buffers(self) -> list[tuple[str, int, int, int, int]]:
        """(root, offset, size, first, last) for every planned buffer piece (a root whose memory shrinks over
        time has one entry per piece, all at its offset)."""
        if not self.pieces:
            return [(r, self.offsets[r], self.sizes[r], *self.lifetimes[r]) for r in self.sizes]
        return [(r, self.offsets[r], p.size, p.first_use, p.last_use) for r, ps in self.pieces.items() for p in ps]


def _inplace_index(g: Graph, n: Node, last_use: dict[str, int], step: int) -> int | None:
    """Input whose memory ``n`` may overwrite, when that input dies at ``n``: a same-size input of an op whose
    kernel reads element i (layernorm: row i) before writing it (``in_place``), or input 0 of an op that
    writes its output behind its reads of input 0 (``overwrites_input``)."""
    d = op_def(n)
    if not n.outputs:
        return None
    t_out = g.tensors[n.outputs[0]]
    if d.overwrites_input is not None:
        x = n.inputs[0]
        if not g.tensors[x].is_const and last_use.get(x) == step and d.overwrites_input(g, n):
            return 0
        return None
    if not d.in_place:
        return None
    for idx, x in enumerate(n.inputs):
        t_in = g.tensors[x] if x else None
        if t_in is not None and not t_in.is_const and last_use.get(x) == step \
                and tuple(t_in.shape) == tuple(t_out.shape) and t_in.nbytes == t_out.nbytes:
            return idx
    return None


@dataclass(frozen=True)
class Buffers:
    """The arena buffers of an op list: each tensor's alias root, and per root its pieces (one piece,
    or several sharing the root's offset when the group's memory shrinks over time)."""

    roots: dict[str, str]
    pieces: dict[str, tuple[Buffer, ...]]

    @property
    def spans(self) -> dict[str, tuple[int, int]]:
        """Per root: (first op, last op) of the group."""
        return {r: (min(p.first_use for p in ps), max(p.last_use for p in ps)) for r, ps in self.pieces.items()}

    @property
    def sizes(self) -> dict[str, int]:
        """Per root: its largest size."""
        return {r: max(p.size for p in ps) for r, ps in self.pieces.items()}

    def all_pieces(self) -> list[Buffer]:
        return [p for ps in self.pieces.values() for p in ps]

    def live(self, steps: int) -> list[int]:
        """Bytes of the buffers live at each of ``steps`` ops."""
        live = [0] * steps
        for p in self.all_pieces():
            for s in range(p.first_use, p.last_use + 1):
                live[s] += p.size
        return live


def streamed_inputs(g: Graph) -> set[str]:
    """Graph inputs that the application delivers row by row to the ops reading them (``streams_input``):
    they never sit in the arena."""
    readers: dict[str, list[Node]] = {}
    for n in g.nodes:
        for x in n.inputs:
            readers.setdefault(x, []).append(n)
    out = set()
    for x in g.inputs:
        rs = readers.get(x, [])
        if rs and all((f := op_def(n).streams_input) is not None and f(g, n) and n.inputs[0] == x for n in rs):
            out.add(x)
    return out


def compute_buffers(g: Graph) -> Buffers:
    """Alias classes and memory over time of the arena buffers of ``g``.

    Graph inputs are live from op 0, outputs until the last op. A reshape output is a view of
    its input; an in-place op's output reuses its input when that input dies at the op. An op's
    scratch (``op_scratch_bytes``) is a buffer written and last used by that op alone, so the
    planner keeps it apart from the op's inputs and outputs and reuses its bytes elsewhere.
    """
    streamed = streamed_inputs(g)

    def acts(names: list[str]) -> tuple[str, ...]:
        return tuple(x for x in names if x and not g.tensors[x].is_const and x not in streamed)

    scratch = {scratch_key(n): b for n in g.nodes if (b := op_scratch_bytes(g, n)) > 0}

    def outs(n: Node) -> tuple[str, ...]:
        return tuple(n.outputs) + ((scratch_key(n),) if n.outputs and scratch_key(n) in scratch else ())

    plain = [ScheduledOp(acts(n.inputs), outs(n)) for n in g.nodes]
    lifetimes = compute_lifetimes(plain, [x for x in g.inputs if x not in streamed], g.outputs)
    last_use = {k: lt.last for k, lt in lifetimes.items()}
    ops = []
    for step, n in enumerate(g.nodes):
        ins = acts(n.inputs)
        idx = _inplace_index(g, n, last_use, step)
        ops.append(ScheduledOp(ins, outs(n),
                               inplace=None if idx is None else ins.index(n.inputs[idx]),
                               view=op_def(n).view and bool(ins)))
    sizes = {k: scratch[k] if k in scratch else g.tensors[k].nbytes for k in lifetimes}
    root = merge_inplace(ops, lifetimes, sizes)
    return Buffers(root, merged_pieces(lifetimes, sizes, root))


def plan_memory(g: Graph, strategy: str = "best") -> MemoryPlan:
    """Plan the arena of ``g``'s op list with the named planner strategy."""
    return place_buffers(compute_buffers(g), len(g.nodes), strategy)


def place_buffers(bufs: Buffers, steps: int, strategy: str = "best") -> MemoryPlan:
    """The memory plan of buffers ``bufs`` of an op list of ``steps`` ops, placed by planner ``strategy``."""
    planner = make_planner(strategy, alignment=ALIGNMENT)
    keys = list(bufs.pieces)
    ids = {k: planner.add_pieces(bufs.pieces[k]) for k in keys}
    offsets_root = {k: planner.offset(ids[k]) for k in keys}
    arena = planner.arena_bytes()
    offsets = {name: offsets_root[r] for name, r in bufs.roots.items()}
    return MemoryPlan(strategy, arena, lower_bound(bufs.all_pieces()), offsets, bufs.roots, bufs.spans, bufs.sizes,
                      bufs.live(steps), dict(bufs.pieces))


def layer_live_bytes(g: Graph) -> list[int]:
    """Bytes live at each op of ``g`` run op by op (no plan needed)."""
    return compute_buffers(g).live(len(g.nodes))


def arena_lower_bound(g: Graph) -> int:
    """max over ops of (bytes of live buffers), the bound no planner can beat."""
    return lower_bound(compute_buffers(g).all_pieces())
