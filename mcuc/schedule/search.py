"""Schedule search: layer-based vs patch-based (split x grid x planner), Pareto table, and choice.

Every candidate is the real schedule: built by mcuc.schedule.patch.build_schedule, planned by the
same planner the compiler uses, with MACs counted on the op list the C code runs. Nothing here is
an estimate, so the table's numbers are the numbers of the code a chosen row compiles to.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.memory import ALIGNMENT, MemoryPlan, arena_lower_bound
from mcuc.ops import node_macs
from mcuc.parallel import Workers, run_ordered
from mcuc.plan import Buffer, align_up, verify_plan
from mcuc.schedule.base import STACK_ESTIMATE_BYTES, Schedule, fused_schedule, layer_schedule, peak_sram_bytes
from mcuc.schedule.patch import build_schedule, grid_stage_macs, patch_windows, stage_macs_of, valid_splits

DEFAULT_GRIDS: tuple[tuple[int, int], ...] = tuple(
    sorted({(n, n) for n in range(2, 9)} | {(n, n + 1) for n in range(1, 8)} | {(n + 1, n) for n in range(1, 8)}))
DEFAULT_STRATEGIES = ("best", "greedy")


def replay(g: Graph, mem: MemoryPlan) -> int:
    """Simulated memory replay: every planned buffer checked against every other live at the same
    step (mcuc.plan.verify_plan, independent of the planner); returns the arena the replay needs:
    the high-water mark rounded up to the arena alignment, which must equal the reported arena."""
    bufs = mem.buffers()
    high = verify_plan([Buffer(s, f, la) for _, _, s, f, la in bufs], [o for _, o, _, _, _ in bufs],
                       mem.arena_bytes, ALIGNMENT)
    return align_up(high, ALIGNMENT)


def layer_candidate(g: Graph, strategy: str = "best") -> Schedule:
    return layer_schedule(g).plan(strategy)


def patch_candidate(g: Graph, split: int, grid: tuple[int, int], strategy: str = "best",
                    schedule: Schedule | None = None) -> Schedule:
    """The patch schedule (built unless given) planned with ``strategy``; a schedule given is copied, so one
    built schedule can be planned by several strategies."""
    sched = schedule if schedule is not None else build_schedule(g, split, grid)
    return replace(sched, memory=None).plan(strategy)


def enumerate_candidates(g: Graph, grids: Iterable[tuple[int, int]] = DEFAULT_GRIDS,
                         strategies: Sequence[str] = DEFAULT_STRATEGIES, splits: Sequence[int] | None = None,
                         include_layer: bool = True, max_overhead: float | None = None,
                         halos: Sequence[str] = ("recompute",),
                         progress: Callable[[int, int], None] | None = None, fused: bool = False) -> list[Schedule]:
    """Layer-based schedule plus every valid (split, grid, planner) patch schedule; with
    ``max_overhead``, only schedules adding at most that many MACs. ``fused``: also the layer-based
    schedule and the patch schedules with the lowest live-bytes bounds with their peak-setting op ranges
    run as row pipelines. ``progress(done, total)`` is called after each patch schedule is planned."""
    out: list[Schedule] = []
    if include_layer:
        out.extend(layer_candidate(g, s) for s in strategies)
        if fused:
            layer = layer_schedule(g)
            out.extend(fused_schedule(layer).plan(s) for s in strategies)
    scheds = _schedules(g, splits if splits is not None else valid_splits(g), list(grids), max_overhead, halos)
    for k, sched in enumerate(scheds):
        out.extend(patch_candidate(g, sched.split, sched.grid, s, sched) for s in strategies)
        if progress is not None:
            progress(k + 1, len(scheds))
    if fused:
        for sched in sorted(scheds, key=lambda s: arena_lower_bound(s.graph))[:FUSED_PATCH_TRIES]:
            out.extend(fused_schedule(sched).plan(s) for s in strategies)
    return out


@dataclass(frozen=True)
class Candidate:
    """The numbers of one planned schedule, without its graph: what a search compares, prints and sends between
    processes (a schedule holds the whole graph and its weights)."""

    kind: str
    split: int
    grid: tuple[int, int]
    halo: str
    strategy: str
    arena_bytes: int
    peak_sram_bytes: int
    macs: int
    mac_overhead: float
    stage_mac_overhead: float
    bottleneck: str
    fused: tuple[tuple[int, int], ...] = ()
    streamed: bool = False
    lower_bound: int = 0
    kernels: str = ""  # kernel choice of the schedule's nodes (mcuc/passes/kernels.py): fast, small or fit

    @staticmethod
    def of(s: Schedule) -> Candidate:
        return Candidate(s.kind, s.split, s.grid, s.halo, s.strategy, s.arena_bytes, s.peak_sram_bytes, s.macs,
                         s.mac_overhead, s.stage_mac_overhead, s.bottleneck, s.fused, s.streamed,
                         s.planned.lower_bound, s.kernels)

    def label(self) -> str:
        fused = f" + {len(self.fused)} fused segments" if self.fused else ""
        fused += ", streamed input" if self.streamed else ""
        if self.kind == "layer":
            return "layer" + fused
        cached = ", cached halos" if self.halo == "cache" else ""
        return f"patch split {self.split} grid {self.grid[0]}x{self.grid[1]}{cached}{fused}"


def search_candidates(g: Graph, grids: Iterable[tuple[int, int]] = DEFAULT_GRIDS,
                      strategies: Sequence[str] = DEFAULT_STRATEGIES, splits: Sequence[int] | None = None,
                      include_layer: bool = True, max_overhead: float | None = None,
                      halos: Sequence[str] = ("recompute",), workers: Workers | None = None,
                      progress: Callable[[int, int], None] | None = None, fused: bool = False) -> list[Candidate]:
    """What :func:`enumerate_candidates` finds, as :class:`Candidate` numbers, with the (split, grid) pairs
    built and planned by ``workers`` (local processes or Ray). The list is the same, in the same order, for any
    number of workers: every pair is planned on its own and the results are joined in pair order.
    ``progress(done, total)`` counts finished tasks. ``fused``: also the fused schedules of
    :func:`enumerate_candidates` (planned here, after the pairs)."""
    workers = workers or Workers()
    out = [Candidate.of(layer_candidate(g, s)) for s in strategies] if include_layer else []
    pairs = [(split, grid) for split in (splits if splits is not None else valid_splits(g)) for grid in grids]
    tasks = 16 if workers.ray_address else 4 * workers.jobs if workers.jobs > 1 else 1
    # every tasks-th pair to one task, so each task gets early (cheap) and late (costly) splits alike
    chunks = [pairs[k::tasks] for k in range(min(tasks, len(pairs)))]
    done = run_ordered(_plan_pairs, (g, tuple(strategies), max_overhead, tuple(halos)), chunks, workers, progress)
    by_pair: dict[tuple[int, tuple[int, int]], list[Candidate]] = {}
    for chunk, result in zip(chunks, done, strict=True):
        for pair, cands in zip(chunk, result, strict=True):
            by_pair[pair] = cands
    for pair in pairs:
        out.extend(by_pair[pair])
    if fused:
        if include_layer:
            layer = layer_schedule(g)
            out.extend(Candidate.of(fused_schedule(layer).plan(s)) for s in strategies)
        scheds = _schedules(g, splits if splits is not None else valid_splits(g), list(grids), max_overhead, halos)
        for sched in sorted(scheds, key=lambda s: arena_lower_bound(s.graph))[:FUSED_PATCH_TRIES]:
            out.extend(Candidate.of(fused_schedule(sched).plan(s)) for s in strategies)
    return out


def _plan_pairs(shared: tuple[Graph, tuple[str, ...], float | None, tuple[str, ...]],
                pairs: Sequence[tuple[int, tuple[int, int]]]) -> list[list[Candidate]]:
    """One task of :func:`search_candidates`: per (split, grid) pair, its candidates of every halo and planner."""
    g, strategies, max_overhead, halos = shared
    out = []
    for split, grid in pairs:
        scheds = _schedules(g, [split], [grid], max_overhead, halos)
        out.append([Candidate.of(patch_candidate(g, s.split, s.grid, st, s)) for s in scheds for st in strategies])
    return out


C = TypeVar("C", Schedule, Candidate)

KERNEL_SPEED = {"fast": 0, "fit": 1, "small": 2}  # kernel choices (mcuc/passes/kernels.py), fastest first


def kernel_speed(c: Schedule | Candidate) -> int:
    """Rank of a candidate's kernel choice: 0 for the fastest (or when no choice was recorded)."""
    return KERNEL_SPEED.get(c.kernels, 0)


def pareto(cands: Sequence[C]) -> list[C]:
    """Non-dominated candidates on (peak SRAM, MAC overhead, kernel speed), sorted by peak."""
    front: list[C] = []
    for c in sorted(cands, key=lambda c: (c.arena_bytes, c.mac_overhead, kernel_speed(c), c.kind != "layer")):
        if not any(d.mac_overhead <= c.mac_overhead + 1e-12 and kernel_speed(d) <= kernel_speed(c) for d in front):
            front.append(c)
    return front


def choose(cands: Sequence[C], max_overhead: float, sram: int | None) -> C:
    """Given ``sram``: the least MAC overhead whose peak SRAM fits (ties: faster kernels, then lower peak); otherwise
    the lowest peak within ``max_overhead``. MCUCError saying by how much and where it fails."""
    within = [c for c in cands if c.mac_overhead <= max_overhead + 1e-12]
    if not within:
        raise MCUCError(f"no schedule has a MAC overhead within {max_overhead:.0%}")
    lowest = min(within, key=lambda c: (c.arena_bytes, c.mac_overhead))
    if sram is None:
        return lowest
    fits = [c for c in within if c.peak_sram_bytes <= sram]
    if fits:
        return min(fits, key=lambda c: (c.mac_overhead, kernel_speed(c), c.arena_bytes))
    raise MCUCError(
        f"no schedule fits {sram:,} B of SRAM within {max_overhead:.0%} MAC overhead: the best, {lowest.label()} "
        f"(planner {lowest.strategy}, +{lowest.mac_overhead:.1%} MACs), needs {lowest.peak_sram_bytes:,} B "
        f"({lowest.peak_sram_bytes - sram:,} B over); bottleneck {lowest.bottleneck}; allow more overhead "
        "(--max-overhead), a larger --sram, or a smaller input resolution")


def pareto_table(cands: Sequence[C], chosen: C | None = None) -> str:
    """Markdown table of the Pareto front (peak SRAM vs MAC overhead)."""
    lines = ["| schedule | kernels | split | grid | halo | planner | arena (B) | peak SRAM (B) | MACs | MAC overhead "
             "| bottleneck |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in pareto(cands):
        mark = " (chosen)" if chosen is not None and c is chosen else ""
        grid = "-" if c.kind == "layer" else f"{c.grid[0]}x{c.grid[1]}"
        split = "-" if c.kind == "layer" else str(c.split)
        kind = c.kind + (" + fused" if c.fused else "") + (", streamed input" if c.streamed else "")
        lines.append(f"| {kind}{mark} | {c.kernels or '-'} | {split} | {grid} | {c.halo} | {c.strategy} | "
                     f"{c.arena_bytes:,} | {c.peak_sram_bytes:,} | {c.macs:,} | {c.mac_overhead:+.1%} | "
                     f"{c.bottleneck} |")
    return "\n".join(lines)


SCHEDULE_KINDS = ("layer", "fused", "patch", "auto")


def select_schedule(g: Graph, kind: str, planner: str, budget: int, sram_given: bool, max_overhead: float,
                    split: int | None = None, grid: tuple[int, int] | None = None,
                    halos: Sequence[str] = ("recompute",), stream_input: bool = False,
                    progress: Callable[[int, int], None] | None = None,
                    stack_bytes: int = STACK_ESTIMATE_BYTES) -> Schedule:
    """The schedule ``mcuc compile --schedule kind`` uses (``layer``, ``fused``, ``patch`` or ``auto``).

    ``fused`` runs the op ranges that lower the peak as row pipelines (no extra MACs). ``patch``
    with both split and grid builds exactly that schedule; otherwise the search runs over the given
    split and/or grid (all when absent). ``auto`` takes the first that fits ``budget`` of: layer-based,
    fused, then the patch schedules (plain or fused) with the least MAC overhead. ``stream_input``
    (fused schedules) reads the graph input row by row from the application. ``progress(done, total)``
    follows the (split, grid) pairs the patch search builds. ``stack_bytes``: the stack every candidate's peak
    counts (the board's reservation).
    """
    if kind not in SCHEDULE_KINDS:
        raise MCUCError(f"unknown schedule '{kind}': use {', '.join(SCHEDULE_KINDS)}")
    if stream_input and kind in ("layer", "patch"):
        raise MCUCError(f"a streamed input needs a fused schedule (--schedule fused or auto), not '{kind}'")
    layer = layer_schedule(g, stack_bytes).plan(planner)
    if kind == "layer" or (kind == "auto" and layer.peak_sram_bytes <= budget and not stream_input):
        return layer
    if kind in ("fused", "auto"):
        fused = fused_schedule(layer, stream_input).plan(planner)
        if kind == "fused" or fused.peak_sram_bytes <= budget:
            if kind == "fused" and sram_given and fused.peak_sram_bytes > budget:
                return choose([fused], max_overhead, budget)
            return fused
        return _patch_or_fused_patch(g, planner, budget, max_overhead, split, grid, halos, stream_input, fused)
    if split is not None and grid is not None and len(halos) == 1:
        sched = replace(build_schedule(g, split, grid, halo=halos[0]), stack_bytes=stack_bytes)
        return patch_candidate(g, split, grid, planner, sched)
    splits = [split] if split is not None else valid_splits(g)
    grids = [grid] if grid is not None else list(DEFAULT_GRIDS)
    scheds = [replace(s, stack_bytes=stack_bytes) for s in _schedules(g, splits, grids, max_overhead, halos, progress)]
    if not scheds:
        raise MCUCError(f"no patch schedule within {max_overhead:.0%} MAC overhead: the model does not start with "
                        "a stage of convolutions, pools or elementwise ops on a single 4-D input, or every stage "
                        "recomputes too much (raise --max-overhead)")
    sram = budget if (sram_given or kind == "auto") else None
    # The same choice as choose() over every candidate, planning only those that can still win:
    # a schedule whose live-bytes lower bound cannot beat the answer so far is never planned.
    bounds = {id(s): arena_lower_bound(s.graph) for s in scheds}
    if sram is not None:
        for s in sorted(scheds, key=lambda s: (s.mac_overhead, bounds[id(s)])):
            if peak_sram_bytes(bounds[id(s)], stack_bytes) <= sram:
                c = patch_candidate(g, s.split, s.grid, planner, s)
                if c.peak_sram_bytes <= sram:
                    return c
    best: Schedule | None = None
    for s in sorted(scheds, key=lambda s: (bounds[id(s)], s.mac_overhead)):
        if best is not None and bounds[id(s)] > best.arena_bytes:
            break
        c = patch_candidate(g, s.split, s.grid, planner, s)
        if best is None or (c.arena_bytes, c.mac_overhead) < (best.arena_bytes, best.mac_overhead):
            best = c
    assert best is not None
    return choose([best], max_overhead, sram)


def _schedules(g: Graph, splits: Sequence[int], grids: Sequence[tuple[int, int]],
               max_overhead: float | None, halos: Sequence[str] = ("recompute",),
               progress: Callable[[int, int], None] | None = None) -> list[Schedule]:
    """Patch schedules of every (split, grid) that fits; with ``max_overhead``, only those within it
    (their MACs come from the windows first, so schedules over the limit are never built).
    ``progress(done, total)`` after each (split, grid) pair."""
    per_op = [node_macs(n, g) for n in g.nodes]
    total = max(sum(per_op), 1)
    out = []
    pairs = [(split, grid) for split in splits for grid in grids]
    for k, (split, grid) in enumerate(pairs):
        if _grid_fits(g, split, grid):
            for halo in halos:
                if halo == "recompute":
                    patches, stage = None, grid_stage_macs(g, split, grid)
                else:
                    patches = patch_windows(g, split, grid, halo)
                    stage = stage_macs_of(g, patches)
                if max_overhead is not None and (stage - sum(per_op[:split])) / total > max_overhead + 1e-12:
                    continue
                out.append(build_schedule(g, split, grid, patches, halo))
        if progress is not None:
            progress(k + 1, len(pairs))
    return out


def _grid_fits(g: Graph, split: int, grid: tuple[int, int]) -> bool:
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    return oh * ow >= 4 and grid[0] <= oh and grid[1] <= ow


FUSED_PATCH_TRIES = 6  # patch schedules (lowest arenas first) that auto also tries fused


def _patch_or_fused_patch(g: Graph, planner: str, budget: int, max_overhead: float, split: int | None,
                          grid: tuple[int, int] | None, halos: Sequence[str], stream_input: bool,
                          fused: Schedule) -> Schedule:
    """auto when neither layer-based nor fused fits: the patch schedules within ``max_overhead``, each also with
    its own op ranges fused; the least MAC overhead that fits ``budget``, else the lowest peak (which then
    does not fit, and choose() says by how much)."""
    splits = [split] if split is not None else valid_splits(g)
    grids = [grid] if grid is not None else list(DEFAULT_GRIDS)
    scheds = [replace(s, stack_bytes=fused.stack_bytes) for s in _schedules(g, splits, grids, max_overhead, halos)]
    cands: list[Schedule] = [fused]
    if not stream_input:
        cands.extend(patch_candidate(g, s.split, s.grid, planner, s) for s in scheds)
    by_bound = sorted(scheds, key=lambda s: (arena_lower_bound(s.graph), s.mac_overhead))
    for s in by_bound[:FUSED_PATCH_TRIES]:
        try:
            cands.append(fused_schedule(s, stream_input).plan(planner))
        except MCUCError:
            continue
    return choose(cands, max_overhead, budget)
