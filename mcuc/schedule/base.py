"""One schedule type for every kind of execution: an op list over a schedule graph, its plan and its peak.

A layer-based schedule runs the int8 graph op by op: its schedule graph is the graph itself. A
patch-based schedule (mcuc/schedule/patch.py) runs the first ops patch by patch: its schedule graph
holds one tensor per (patch, window) and one node per patch op, crop and place, followed by the
rest of the graph. Either way the same flat op list feeds the numpy executor (mcuc/execute.py), the
memory planner, the MAC count, the memory replay (mcuc/memsim.py), the report and the C generator,
so every number shown is a number of the code that runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mcuc.boards import STACK_ESTIMATE_BYTES
from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node
from mcuc.memory import MemoryPlan, plan_memory
from mcuc.ops import Lowered, lower, node_macs
from mcuc.schedule.fuse import choose_segments, fuse_segments

SCRATCH_OUTSIDE_ARENA_BYTES = 0  # every kernel scratch (attention's) is planned in the arena


def peak_sram_bytes(arena_bytes: int, stack_bytes: int = STACK_ESTIMATE_BYTES) -> int:
    """Peak SRAM of a schedule whose arena is ``arena_bytes``: arena + scratch outside it + the stack
    (the board's reservation, ``Board.stack_bytes``; the estimate where no board is given)."""
    return arena_bytes + SCRATCH_OUTSIDE_ARENA_BYTES + stack_bytes


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


@dataclass(frozen=True)
class PatchStage:
    """The first ``split`` ops of the source graph run patch by patch over a ``grid`` (rows, cols)."""

    split: int
    grid: tuple[int, int]
    halo: str  # "recompute" (MCUNetV2) | "cache" (overlapping rows kept for the patch below)
    patches: list[PatchWindows]
    ops: int  # nodes of the schedule graph that belong to the stage (they come first)
    macs: int  # MACs of the stage as scheduled (halo recomputation included)
    layer_macs: int  # MACs of the same ops run layer by layer


@dataclass
class Schedule:
    """An op list over ``graph`` computing int8 graph ``source``; ``patch`` is None for layer-based execution.

    ``plan(strategy)`` lays its buffers out in the arena; ``memory`` and the numbers derived from it
    (arena, peak SRAM, bottleneck) exist once it is planned.
    """

    source: Graph
    graph: Graph
    macs: int
    layer_macs: int
    patch: PatchStage | None = None
    memory: MemoryPlan | None = None
    fused: tuple[tuple[int, int], ...] = ()  # op ranges (of the unfused schedule) run as row pipelines
    streamed: bool = False  # the first pipeline reads the graph input row by row from the application
    kernels: str = ""  # kernel choice of the graph's nodes (mcuc/passes/kernels.py): fast, small or fit
    stack_bytes: int = STACK_ESTIMATE_BYTES  # the stack counted in the peak: the board's reservation
    _lowered: list[Lowered] | None = field(default=None, repr=False)

    # ---- what kind of schedule -------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "layer" if self.patch is None else "patch"

    @property
    def split(self) -> int:
        return 0 if self.patch is None else self.patch.split

    @property
    def grid(self) -> tuple[int, int]:
        return (1, 1) if self.patch is None else self.patch.grid

    @property
    def halo(self) -> str:
        return "-" if self.patch is None else self.patch.halo

    @property
    def stage_ops(self) -> int:
        """Nodes of ``graph`` that run patch by patch (0 for layer-based)."""
        return 0 if self.patch is None else self.patch.ops

    @property
    def mac_overhead(self) -> float:
        """Extra MACs from halo recomputation, relative to the whole layer-based network."""
        return (self.macs - self.layer_macs) / max(self.layer_macs, 1)

    @property
    def stage_mac_overhead(self) -> float:
        if self.patch is None:
            return 0.0
        return (self.patch.macs - self.patch.layer_macs) / max(self.patch.layer_macs, 1)

    def label(self) -> str:
        fused = f" + {len(self.fused)} fused segments" if self.fused else ""
        fused += ", streamed input" if self.streamed else ""
        if self.patch is None:
            return "layer" + fused
        cached = ", cached halos" if self.halo == "cache" else ""
        return f"patch split {self.split} grid {self.grid[0]}x{self.grid[1]}{cached}{fused}"

    def describe(self) -> dict[str, Any]:
        """The ``schedule`` entry of report.json."""
        d: dict[str, Any] = {"kind": "layer"}
        if self.patch is not None:
            d = {"kind": "patch", "split_layer": self.split, "grid": list(self.grid), "halo": self.halo,
                 "mac_overhead": round(self.mac_overhead, 6), "stage_mac_overhead": round(self.stage_mac_overhead, 6),
                 "macs_layer_based": self.layer_macs, "stage_output": self.source.nodes[self.split - 1].outputs[0]}
        if self.fused:
            d["fused_segments"] = [list(s) for s in self.fused]
        if self.streamed:
            d["input"] = "streamed"
        if self.kernels:
            d["kernels"] = self.kernels
        return d

    # ---- what runs ---------------------------------------------------------------------------
    def lowered(self) -> list[Lowered]:
        """Kernel call of every op of the schedule, in execution order."""
        if self._lowered is None:
            self._lowered = [lower(self.graph, n) for n in self.graph.nodes]
        return self._lowered

    # ---- memory ----------------------------------------------------------------------------------
    def plan(self, strategy: str = "best") -> Schedule:
        """Lay the schedule's buffers out with the planner ``strategy``; returns self."""
        self.memory = plan_memory(self.graph, strategy)
        return self

    @property
    def planned(self) -> MemoryPlan:
        if self.memory is None:
            raise MCUCError("schedule has no memory plan yet (call plan())")
        return self.memory

    @property
    def strategy(self) -> str:
        return self.planned.strategy

    @property
    def arena_bytes(self) -> int:
        return self.planned.arena_bytes

    @property
    def peak_sram_bytes(self) -> int:
        return peak_sram_bytes(self.planned.arena_bytes, self.stack_bytes)

    @property
    def bottleneck(self) -> str:
        """The op (and its index in the schedule) where the most bytes are live."""
        live = self.planned.live_bytes
        if not live:
            return "-"
        i = max(range(len(live)), key=lambda k: live[k])
        n = self.graph.nodes[i]
        return f"op {i} '{n.name}' ({n.op})"


def layer_schedule(g: Graph, stack_bytes: int = STACK_ESTIMATE_BYTES) -> Schedule:
    """``g`` run op by op; ``stack_bytes``: the stack its peak counts (the board's reservation)."""
    macs = sum(node_macs(n, g) for n in g.nodes)
    return Schedule(g, g, macs, macs, stack_bytes=stack_bytes)


def fused_schedule(sched: Schedule, stream_input: bool = False) -> Schedule:
    """``sched`` with the op ranges that lower the bytes live at its worst op run as row pipelines
    (mcuc/schedule/fuse.py); ``stream_input``: the first pipeline reads the graph input from the
    application, so the input never sits in the arena (MCUCError when the first op cannot)."""
    choice = choose_segments(sched.graph, stream_input)
    if stream_input and not (choice.segments and choice.segments[0][0] == 0 and choice.sources[0] == "stream"
                             and choice.live_peak < 1 << 62):
        raise MCUCError("the input cannot be streamed: the first ops of the schedule cannot read it row by row in "
                        "one pipeline (they are not convolutions, pools or elementwise ops on the image, or several "
                        "branches read the image); compile with the image resident (no --stream-input)")
    graph = fuse_segments(sched.graph, list(choice.segments), choice.sources)
    patch = sched.patch
    if patch is not None:
        merged = sum(e - s - 1 for s, e in choice.segments if e <= patch.ops)
        patch = replace(patch, ops=patch.ops - merged)
    return Schedule(sched.source, graph, sched.macs, sched.layer_macs, patch, fused=choice.segments,
                    streamed=stream_input, stack_bytes=sched.stack_bytes)
