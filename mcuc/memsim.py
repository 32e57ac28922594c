"""Simulated memory model: replays a schedule byte by byte on the board's SRAM to prove the memory numbers.

The planner and the report compute their numbers from buffer lifetimes, sizes and alias roots; this
module does not take those from the plan. It recomputes them from the op list itself: which
activations each op reads and writes (and the scratch its kernel needs, from the op registry), so
that a tensor lives from the op that writes it (graph inputs: op 0) to the last op that reads it
(graph outputs: the last op), with the bytes of its tensor type. Only the offsets come from the
plan. The arena is placed at the start of the SRAM region the board's linker script puts .data and
.bss in, below the stack when the stack shares that region, and every byte of the region records
which storage owns it (-1: free).

Step by step, every tensor the op reads must still own all of its bytes; every tensor it writes
claims its bytes. Claiming a byte another live tensor owns is an overlap, except where the kernel's
read/write pattern (op registry: ``view``, ``in_place``, ``overwrites_input``) makes it safe: a view
starts at its input and shares its bytes; an in-place output has the input's shape, size and
address and the input (with every view of it) is read by no later op; an ``overwrites_input`` output
starts at input 0 under the same condition. Anything else is an unsafe alias. A byte outside the
arena is an out-of-arena access. Tensors whose last reader has run release their bytes.

The plan's own numbers are then compared with the recomputed ones: every buffer's lifetime (the span
of its tensors) and its size at each op (the largest of its tensors live there). The high-water mark
(highest byte ever owned, rounded to the arena alignment) must equal the planner's arena, and the
bytes owned at each step must equal the report's live bytes for that op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuc.boards import Board
from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.memory import ALIGNMENT, MemoryPlan, op_scratch_bytes, scratch_key, streamed_inputs
from mcuc.ops import op_def
from mcuc.plan import align_up

# Beyond this many bytes the model covers only the arena plus a margin, not the whole region.
MAX_MODELLED_BYTES = 64 * 1024 * 1024


class MemoryViolation(MCUCError):
    """The simulated replay found two live buffers sharing a byte or an access outside the arena."""


@dataclass(frozen=True)
class Region:
    """A byte range of board SRAM: [origin, origin + size)."""

    name: str
    origin: int
    size: int


@dataclass
class Simulation:
    """What the replay measured. ``problems`` is empty for a correct plan."""

    region: Region
    arena_origin: int  # absolute address of arena byte 0
    arena_bytes: int  # the plan's arena (the window accesses must stay in)
    high_water: int  # highest arena byte ever owned + 1 (relative to the arena origin)
    occupied: list[int] = field(default_factory=list)  # per step: bytes owned by live buffers
    extent: list[int] = field(default_factory=list)  # per step: highest owned byte + 1
    live: list[list[str]] = field(default_factory=list)  # per step: buffers (alias roots) owning bytes
    problems: list[str] = field(default_factory=list)
    exceeds_region: bool = False  # the arena does not fit its SRAM region beside the stack (refused by compile)

    @property
    def arena_needed(self) -> int:
        """The arena the replay needs: the high-water mark rounded up to the arena alignment."""
        return align_up(self.high_water, ALIGNMENT)

    @property
    def peak_occupied(self) -> int:
        return max(self.occupied, default=0)

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region.name, "arena_origin": self.arena_origin, "high_water_bytes": self.high_water,
                "arena_bytes": self.arena_needed, "peak_live_bytes": self.peak_occupied,
                "exceeds_region": self.exceeds_region,
                "problems": list(self.problems)}


def sram_region(board: Board | None, arena_bytes: int) -> Region:
    """The SRAM region the arena lives in: the region the board's linker script places .data and .bss in
    (DATA_REGION); the host or no board gets a region exactly the arena's size at address 0."""
    if board is not None and board.linked:
        r = board.data_region
        return Region(r.name, r.origin, r.size)
    return Region("arena", 0, max(arena_bytes, ALIGNMENT))


def stack_in_region(board: Board | None) -> int:
    """Bytes at the top of the arena's region that the linker script reserves for the stack (0 when the stack
    has a region of its own)."""
    return board.stack_bytes if board is not None and board.linked and board.stack_in_data_region else 0


@dataclass(frozen=True)
class Uses:
    """What the op list itself says about the arena, without the plan: per tensor its bytes and the steps it
    lives over, and per step the activations it reads and writes (its kernel scratch last)."""

    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]  # tensor -> (op that writes it, last op that reads it)
    reads: list[tuple[str, ...]]
    writes: list[tuple[str, ...]]


def recompute_uses(g: Graph) -> Uses:
    """Sizes and lifetimes of the arena tensors of ``g``'s op list: outputs and inputs read by the ops (not
    constants, not inputs the application streams), and each op's scratch from the op registry."""
    streamed = streamed_inputs(g)
    sizes: dict[str, int] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    reads, writes = [], []
    for x in g.inputs:
        if x not in streamed:
            sizes[x], first[x], last[x] = g.tensors[x].nbytes, 0, 0
    for step, n in enumerate(g.nodes):
        ins = tuple(dict.fromkeys(x for x in n.inputs if x and not g.tensors[x].is_const and x not in streamed))
        outs = [y for y in n.outputs if y]
        for y in outs:
            sizes[y], first[y], last[y] = g.tensors[y].nbytes, step, step
        scratch = op_scratch_bytes(g, n)
        if scratch > 0:
            k = scratch_key(n)
            sizes[k], first[k], last[k] = scratch, step, step
            outs.append(k)
        for x in ins:
            if x in last:
                last[x] = max(last[x], step)
        reads.append(ins)
        writes.append(tuple(outs))
    end = max(len(g.nodes) - 1, 0)
    for y in g.outputs:
        if y in last:
            last[y] = end
    return Uses(sizes, {t: (first[t], last[t]) for t in first}, reads, writes)


def alias_fault(g: Graph, n: Node, x: str, y: str, offsets: dict[str, int], read_later: int | None) -> str | None:
    """Why output ``y`` of ``n`` may not take bytes of its input ``x`` (None: the kernel's read/write pattern,
    from the op registry, makes it safe). ``read_later``: a later op that still reads ``x``'s bytes (``x`` or a
    view of it), if any."""
    d = op_def(n)
    tx, ty = g.tensors[x], g.tensors[y]
    same_start = offsets[y] == offsets[x]
    if not n.outputs or y != n.outputs[0]:
        return f"only output 0 of an op may reuse an input's memory, and '{y}' is not output 0"
    if d.view:
        if n.inputs[0] == x and same_start and ty.nbytes <= tx.nbytes:
            return None
        return f"a view ({n.op}) must start at its input '{n.inputs[0]}' and lie within it"
    if read_later is not None:
        return f"'{x}' is still read by op {read_later}"
    if d.overwrites_input is not None:
        if n.inputs[0] == x and same_start and d.overwrites_input(g, n):
            return None
        return (f"the {n.op} kernel may write its output only from the start of input 0 and only where it writes "
                "behind its reads")
    if d.in_place:
        if same_start and tuple(tx.shape) == tuple(ty.shape) and tx.nbytes == ty.nbytes:
            return None
        return f"the in-place {n.op} kernel needs its output at the same address, shape and size as the input"
    return f"the {n.op} kernel does not work in place (it reads its inputs after it has written output bytes)"


def simulate(g: Graph, mem: MemoryPlan, board: Board | None = None, arena_origin: int | None = None) -> Simulation:
    """Replay the op list of ``g`` (a layer graph or a patch schedule's graph) with the offsets of ``mem``.

    Lifetimes, sizes and aliasing are recomputed from the op list (``recompute_uses``, ``alias_fault``); of
    ``mem`` only the offsets place bytes, its lifetimes, sizes and pieces are compared with the recomputed ones.
    Never raises for a bad plan: every violation is listed in ``Simulation.problems`` (use ``check`` to raise).
    ``arena_origin`` defaults to the start of the region.
    """
    uses = recompute_uses(g)
    region = sram_region(board, mem.arena_bytes)
    origin = region.origin if arena_origin is None else arena_origin
    sim = Simulation(region, origin, mem.arena_bytes, 0)
    # The owner map covers the region (or, for huge regions, the arena plus as much again).
    span = region.size if region.size <= MAX_MODELLED_BYTES else min(region.size, 2 * mem.arena_bytes + ALIGNMENT)
    # An arena larger than the region (less the stack at its top, when the stack shares it) is the "does not
    # fit" case the compiler refuses, not a plan bug: the model then extends past the region so that the replay
    # can still check the plan.
    sim.exceeds_region = origin + mem.arena_bytes > region.origin + region.size - stack_in_region(board)
    span = max(span, origin - region.origin + mem.arena_bytes)
    # A tensor placed beyond the arena is reported as such; the model still covers it, so that the replay goes on.
    reach = max((origin + mem.offsets[t] + uses.sizes[t] - region.origin for t in uses.sizes if t in mem.offsets),
                default=0)
    span = max(span, min(reach, 2 * MAX_MODELLED_BYTES))
    owners = np.full(span, -1, dtype=np.int32)
    base = region.origin
    arena_lo, arena_hi = origin, origin + mem.arena_bytes
    _compare_plan(mem, uses, sim.problems)
    offsets = {t: mem.offsets[t] for t in uses.sizes if t in mem.offsets}

    storage: dict[str, int] = {}  # live tensor -> id of the storage owning its bytes (a view shares its input's)
    members: dict[int, set[str]] = {}  # storage id -> its live tensors
    names: list[str] = []  # storage id -> the tensor that created it
    spans: list[tuple[int, int]] = []  # storage id -> indices into ``owners`` of its bytes
    outside: set[str] = set()  # tensors reported outside the arena
    occupied = 0

    def window(t: str) -> tuple[int, int] | None:
        """Indices into ``owners`` of tensor ``t``'s bytes; None if it has no offset or lies outside the model."""
        if t not in offsets:
            sim.problems.append(f"tensor '{t}' ({uses.sizes[t]} B) has no planned buffer")
            return None
        lo = origin + offsets[t]
        hi = lo + uses.sizes[t]
        if (lo < arena_lo or hi > arena_hi) and t not in outside:
            outside.add(t)
            sim.problems.append(f"buffer '{t}' at arena offset {offsets[t]} ({uses.sizes[t]} B) lies outside the "
                                f"arena [0, {mem.arena_bytes})")
        if lo < base or hi > base + span:
            sim.problems.append(f"buffer '{t}' at address {lo:#x} ({uses.sizes[t]} B) lies outside the modelled "
                                f"memory of SRAM region '{region.name}'")
            return None
        return lo - base, hi - base

    def read_later(sid: int, step: int) -> int | None:
        """A later op reading storage ``sid`` (through any of its live tensors), if any."""
        after = [uses.lifetimes[t][1] for t in members.get(sid, ()) if uses.lifetimes[t][1] > step]
        return min(after) if after else None

    def claim(y: str, step: int, n: Node | None) -> None:
        """Tensor ``y`` takes its bytes at ``step``, written by ``n`` (None: a graph input, before op 0)."""
        nonlocal occupied
        w = window(y)
        if w is None:
            return
        where = f"step {step} ({n.name if n is not None else 'graph input'})"
        taken = owners[w[0]:w[1]]
        sid = len(names)
        names.append(y)
        spans.append(w)
        for other in np.unique(taken[taken >= 0]):
            holder = next(iter(members.get(int(other), ())), names[int(other)])
            reads = uses.reads[step] if n is not None else ()
            src = next((x for x in reads if storage.get(x) == int(other)), None)
            if n is None or src is None:
                sim.problems.append(f"{where}: buffer '{y}' [{offsets[y]}, {offsets[y] + uses.sizes[y]}) "
                                    f"overlaps live buffer '{holder}' [{offsets.get(holder, 0)}, "
                                    f"{offsets.get(holder, 0) + uses.sizes.get(holder, 0)})")
                continue
            fault = alias_fault(g, n, src, y, offsets, read_later(int(other), step))
            if fault is not None:
                sim.problems.append(f"{where}: unsafe in-place alias: '{y}' is written over its input '{src}': "
                                    f"{fault}")
            elif op_def(n).view and sid == len(names) - 1:
                sid = int(other)  # the view shares its input's bytes (and lies within them)
                names.pop()
                spans.pop()
        occupied += int(np.count_nonzero(taken < 0))
        taken[:] = sid
        storage[y] = sid
        members.setdefault(sid, set()).add(y)

    for step, n in enumerate(g.nodes):
        if step == 0:
            for x in uses.sizes:
                if uses.lifetimes[x][0] == 0 and x in g.inputs and uses.sizes[x]:
                    claim(x, 0, None)
        for x in uses.reads[step]:  # every activation the op reads must still own all of its bytes
            if x not in storage:
                if x in offsets:
                    sim.problems.append(f"step {step} ({n.name}): tensor '{x}' read outside its lifetime")
                continue
            w = window(x)
            if w is not None:
                own = owners[w[0]:w[1]]
                bad = own[own != storage[x]]
                if bad.size:
                    by = f"owned by '{names[int(bad[0])]}'" if bad[0] >= 0 else "overwritten by a tensor since released"
                    sim.problems.append(f"step {step} ({n.name}): tensor '{x}' has bytes {by} when it is read")
        for y in uses.writes[step]:
            if uses.sizes[y]:
                claim(y, step, n)
        sim.occupied.append(occupied)
        top = max((offsets[t] + uses.sizes[t] for t in storage), default=0)
        sim.extent.append(top)
        sim.high_water = max(sim.high_water, top)
        live_roots = {mem.roots.get(t, t) for t in storage}
        sim.live.append(sorted(live_roots, key=lambda r: (mem.offsets.get(r, 0), r)))
        for t in [t for t in storage if uses.lifetimes[t][1] <= step]:
            sid = storage.pop(t)
            members[sid].discard(t)
            if not members[sid]:
                seg = owners[spans[sid][0]:spans[sid][1]]
                mine = seg == sid
                occupied -= int(np.count_nonzero(mine))
                seg[mine] = -1
    return sim


def _planned_size(mem: MemoryPlan, r: str, step: int) -> int:
    """Bytes the plan gives buffer ``r`` at ``step`` (0 outside its pieces)."""
    pieces = mem.pieces.get(r, ())
    if len(pieces) > 1:
        return next((p.size for p in pieces if p.first_use <= step <= p.last_use), 0)
    f, la = mem.lifetimes[r]
    return mem.sizes[r] if f <= step <= la else 0


def _compare_plan(mem: MemoryPlan, uses: Uses, problems: list[str]) -> None:
    """The plan's lifetime and size of every buffer against those recomputed from its tensors."""
    groups: dict[str, list[str]] = {}
    for t in uses.sizes:
        r = mem.roots.get(t)
        if r is None or r not in mem.lifetimes or r not in mem.sizes:
            problems.append(f"tensor '{t}' ({uses.sizes[t]} B) has no planned buffer")
            continue
        groups.setdefault(r, []).append(t)
    for r, ts in groups.items():
        first = min(uses.lifetimes[t][0] for t in ts)
        last = max(uses.lifetimes[t][1] for t in ts)
        if tuple(mem.lifetimes[r]) != (first, last):
            used = ", ".join(f"'{t}' ops {uses.lifetimes[t][0]}..{uses.lifetimes[t][1]}" for t in ts[:3])
            problems.append(f"buffer '{r}' is planned live over ops {mem.lifetimes[r][0]}..{mem.lifetimes[r][1]} "
                            f"but its tensors live over ops {first}..{last} ({used})")
            continue
        for step in range(first, last + 1):
            live = [t for t in ts if uses.lifetimes[t][0] <= step <= uses.lifetimes[t][1]]
            need = max((uses.sizes[t] for t in live), default=0)
            planned = _planned_size(mem, r, step)
            if planned != need:
                big = max(live, key=lambda t: uses.sizes[t]) if live else r
                problems.append(f"buffer '{r}' is planned with {planned} B at op {step} but its tensor '{big}' "
                                f"there has {need} B")
                break


def check(sim: Simulation) -> Simulation:
    """Raise MemoryViolation naming the first problems of ``sim``; return it when clean."""
    if sim.problems:
        more = f" (and {len(sim.problems) - 3} more)" if len(sim.problems) > 3 else ""
        raise MemoryViolation("simulated memory replay failed: " + "; ".join(sim.problems[:3]) + more)
    return sim
