"""Simulated memory model: replays a schedule byte by byte on the board's SRAM to prove the memory numbers.

The planner and the report compute their numbers from buffer lifetimes and offsets; this module
computes the same numbers a different way, by executing the schedule on a model of the SRAM. The
arena is placed at the start of the board's first SRAM region (the region every board's linker
script uses for .data and .bss) and every byte of that region records which buffer owns it (-1:
free). Step by
step, buffers whose lifetime begins are claimed (claiming a byte another live buffer owns is an
overlap; a byte outside the arena is an out-of-arena access), every tensor the op reads or writes
is checked to still own all of its bytes, and buffers whose lifetime ended are released. The
high-water mark (highest byte ever owned, rounded to the arena alignment) must equal the planner's
arena, and the bytes owned at each step must equal the report's live bytes for that op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuc.boards import Board
from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.memory import ALIGNMENT, MemoryPlan, streamed_inputs
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


def simulate(g: Graph, mem: MemoryPlan, board: Board | None = None, arena_origin: int | None = None) -> Simulation:
    """Replay the op list of ``g`` (a layer graph or a patch schedule's graph) with the offsets of ``mem``.

    Never raises for a bad plan: every violation is listed in ``Simulation.problems`` (use
    ``check`` to raise). ``arena_origin`` defaults to the start of the region.
    """
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
    owners = np.full(span, -1, dtype=np.int32)
    base = region.origin
    roots = list(mem.sizes)
    rid = {r: i for i, r in enumerate(roots)}
    starts: dict[int, list[tuple[str, int]]] = {}  # step -> (root, bytes) of the pieces that begin there
    ends: dict[int, list[tuple[str, int]]] = {}
    for r in roots:
        pieces = mem.pieces.get(r, ())
        for piece in pieces if len(pieces) > 1 else ((mem.sizes[r], *mem.lifetimes[r]),):
            size, f, la = piece
            starts.setdefault(f, []).append((r, size))
            ends.setdefault(la, []).append((r, size))
    size_now: dict[str, int] = {}  # bytes each live root holds at this step
    streamed = streamed_inputs(g)  # delivered row by row by the application: not in the arena
    live: set[str] = set()
    occupied = 0
    arena_lo, arena_hi = origin, origin + mem.arena_bytes

    def window(r: str, size: int) -> tuple[int, int] | None:
        """Indices into ``owners`` of ``size`` bytes at root ``r``'s address; None if outside the model."""
        lo = origin + mem.offsets[r]
        hi = lo + size
        if lo < arena_lo or hi > arena_hi:
            sim.problems.append(f"buffer '{r}' at arena offset {mem.offsets[r]} ({size} B) lies outside the "
                                f"arena [0, {mem.arena_bytes})")
        if lo < base or hi > base + span:
            sim.problems.append(f"buffer '{r}' at address {lo:#x} ({size} B) lies outside the modelled "
                                f"memory of SRAM region '{region.name}'")
            return None
        return lo - base, hi - base

    for step, n in enumerate(g.nodes):
        for r, size in starts.get(step, []):
            if size == 0:
                continue
            w = window(r, size)
            if w is None:
                continue
            taken = owners[w[0]:w[1]]
            clash = np.unique(taken[taken >= 0])
            for other in clash:
                sim.problems.append(f"step {step} ({n.name}): buffer '{r}' [{mem.offsets[r]}, "
                                    f"{mem.offsets[r] + size}) overlaps live buffer '{roots[other]}' "
                                    f"[{mem.offsets[roots[other]]}, "
                                    f"{mem.offsets[roots[other]] + size_now.get(roots[other], 0)})")
            taken[taken < 0] = rid[r]
            live.add(r)
            size_now[r] = size
            occupied += size
        # every activation the op touches must still own all of its bytes
        for t in [*n.inputs, *n.outputs]:
            if not t or g.tensors[t].is_const or t in streamed:
                continue
            root = mem.roots.get(t)
            if root is None:
                sim.problems.append(f"step {step} ({n.name}): tensor '{t}' has no planned buffer")
                continue
            r = root
            nbytes = g.tensors[t].nbytes
            if r in live and nbytes > size_now[r]:
                sim.problems.append(f"step {step} ({n.name}): tensor '{t}' ({nbytes} B) is larger than its "
                                    f"buffer '{r}' ({size_now[r]} B here)")
            if r not in live:
                sim.problems.append(f"step {step} ({n.name}): tensor '{t}' accessed outside the lifetime of its "
                                    f"buffer '{r}' {mem.lifetimes[r]}")
                continue
            lo = origin + mem.offsets[r] - base
            own = owners[lo:lo + min(nbytes, size_now[r])]
            if own.size and not bool((own == rid[r]).all()):
                sim.problems.append(f"step {step} ({n.name}): tensor '{t}' of buffer '{r}' has bytes owned by "
                                    "another buffer")
        sim.occupied.append(occupied)
        top = max((mem.offsets[r] + size_now[r] for r in live), default=0)
        sim.extent.append(top)
        sim.high_water = max(sim.high_water, top)
        sim.live.append(sorted(live, key=lambda r: mem.offsets[r]))
        for r, size in ends.get(step, []):
            if r not in live or size == 0:
                continue
            lo = origin + mem.offsets[r] - base
            seg = owners[lo:lo + size]
            seg[seg == rid[r]] = -1
            live.discard(r)
            occupied -= size
    return sim


def check(sim: Simulation) -> Simulation:
    """Raise MemoryViolation naming the first problems of ``sim``; return it when clean."""
    if sim.problems:
        more = f" (and {len(sim.problems) - 3} more)" if len(sim.problems) > 3 else ""
        raise MemoryViolation("simulated memory replay failed: " + "; ".join(sim.problems[:3]) + more)
    return sim
