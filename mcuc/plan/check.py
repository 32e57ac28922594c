"""Buffer records, the lower bound on any arena, and an independent checker for finished plans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Buffer(NamedTuple):
    """One arena allocation: `size` bytes live from op `first_use` to op `last_use`, both inclusive.

    Inclusive on both ends because an op reads its inputs while it writes its outputs: a tensor
    consumed by op 3 and one produced by op 3 must not share memory.
    """

    size: int
    first_use: int
    last_use: int


class InvalidPlanError(RuntimeError):
    """A plan breaks an arena invariant; this is a planner bug, never a user error."""


def align_up(value: int, alignment: int) -> int:
    """Round `value` up to a multiple of `alignment` (kernels rely on aligned tensor starts)."""
    return -(-value // alignment) * alignment


def lower_bound(buffers: Sequence[Buffer], alignment: int = 1) -> int:
    """The most bytes simultaneously live at any op: no plan can use a smaller arena.

    With `alignment` > 1 every size is rounded up first; that bound still holds for plans whose
    offsets are all aligned, because the next aligned start after a buffer is at its rounded end.
    The gap between this and a planner's arena is the cost of fragmentation.
    """
    delta: dict[int, int] = {}
    for buf in buffers:
        size = align_up(buf.size, alignment)
        delta[buf.first_use] = delta.get(buf.first_use, 0) + size
        delta[buf.last_use + 1] = delta.get(buf.last_use + 1, 0) - size
    live = peak = 0
    for step in sorted(delta):
        live += delta[step]
        peak = max(peak, live)
    return peak


def verify_plan(
    buffers: Sequence[Buffer], offsets: Sequence[int], arena_bytes: int, alignment: int = 16
) -> int:
    """Replay a plan and fail loudly on the first broken invariant; return the high-water mark.

    Written without any planner code so that a planner bug cannot hide behind a matching bug in
    its own bookkeeping. Checks: one offset per buffer, every offset aligned, every buffer inside
    [0, arena_bytes), and no two buffers whose lifetimes intersect share a byte. Zero-size buffers
    occupy no bytes and so conflict with nothing.
    """
    if len(offsets) != len(buffers):
        raise InvalidPlanError(f"{len(buffers)} buffers but {len(offsets)} offsets")
    high_water = 0
    for i, (buf, off) in enumerate(zip(buffers, offsets, strict=True)):
        if off < 0 or off % alignment:
            raise InvalidPlanError(f"buffer {i} {buf} has offset {off}, not a multiple of {alignment} >= 0")
        if off + buf.size > arena_bytes:
            raise InvalidPlanError(
                f"buffer {i} {buf} at offset {off} ends at {off + buf.size}, past the arena ({arena_bytes})"
            )
        high_water = max(high_water, off + buf.size)
    # Sweep over time: `active` holds the buffers whose lifetime has begun and not yet ended.
    order = sorted(range(len(buffers)), key=lambda i: buffers[i].first_use)
    active: list[int] = []
    for i in order:
        buf = buffers[i]
        active = [j for j in active if buffers[j].last_use >= buf.first_use]
        for j in active:
            other = buffers[j]
            disjoint = offsets[i] >= offsets[j] + other.size or offsets[j] >= offsets[i] + buf.size
            if buf.size and other.size and not disjoint:
                raise InvalidPlanError(
                    f"buffers {j} {other} at [{offsets[j]}, {offsets[j] + other.size}) and "
                    f"{i} {buf} at [{offsets[i]}, {offsets[i] + buf.size}) are live together and overlap"
                )
        active.append(i)
    return high_water
