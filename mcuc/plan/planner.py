"""Memory planners: buffer lifetimes in, arena offsets out, behind TFLM's planner interface.

The interface mirrors TFLite Micro's (`AddBuffer(size, first, last)`, `GetOffsetForBuffer`,
`GetMaximumMemorySize`) so results can be compared with TFLM buffer for buffer. Strategies are
subclasses that only decide offsets; recording buffers, alignment and lazy planning live here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcuc.errors import MCUCError
from mcuc.plan.check import Buffer, align_up, lower_bound
from mcuc.plan.placement import Problem, exact_plan, place

DEFAULT_ALIGNMENT = 16
RESTART_GAP = 0.02  # BestPlanner: a plan further than this above the lower bound tries more seeds


@dataclass(frozen=True)
class Plan:
    """Offsets indexed by buffer id, and the arena size rounded up to the alignment."""

    offsets: tuple[int, ...]
    arena_bytes: int


class MemoryPlanner:
    """Collects buffers, plans them on first query, answers offset and arena-size questions.

    Planning is lazy (as in TFLM) so callers can add buffers in any order and query at the end;
    adding a buffer after a query simply invalidates the plan.
    """

    name = "base"

    def __init__(self, alignment: int = DEFAULT_ALIGNMENT) -> None:
        if alignment < 1:
            raise ValueError(f"alignment must be >= 1, got {alignment}")
        self.alignment = alignment
        self._buffers: list[Buffer] = []
        self._pieces: list[tuple[Buffer, ...]] = []
        self._plan: Plan | None = None

    def add_buffer(self, size: int, first_use: int, last_use: int) -> int:
        """Record a buffer live over op indices [first_use, last_use] inclusive; return its id."""
        if size < 0 or first_use < 0 or last_use < first_use:
            raise ValueError(f"bad buffer: size={size} first_use={first_use} last_use={last_use}")
        self._buffers.append(Buffer(size, first_use, last_use))
        self._pieces.append((self._buffers[-1],))
        self._plan = None
        return len(self._buffers) - 1

    def add_pieces(self, pieces: Sequence[Buffer]) -> int:
        """Record a buffer made of pieces that share one offset (each live over its own op range, of its
        own size: memory that shrinks or grows over time); return its id."""
        if not pieces:
            raise ValueError("a buffer needs at least one piece")
        for p in pieces:
            if p.size < 0 or p.first_use < 0 or p.last_use < p.first_use:
                raise ValueError(f"bad piece: {p}")
        self._buffers.append(Buffer(max(p.size for p in pieces), min(p.first_use for p in pieces),
                                    max(p.last_use for p in pieces)))
        self._pieces.append(tuple(pieces))
        self._plan = None
        return len(self._buffers) - 1

    @property
    def buffers(self) -> tuple[Buffer, ...]:
        """The buffers added so far, indexed by id."""
        return tuple(self._buffers)

    def plan(self) -> Plan:
        """Compute (or return the cached) plan."""
        if self._plan is None:
            if not self._buffers:
                self._plan = Plan((), 0)
            else:
                multi = any(len(ps) > 1 for ps in self._pieces)
                problem = Problem.build(self._buffers, self.alignment, self._pieces if multi else None)
                offsets = self._place(problem)
                top = max(off + self._buffers[i].size for i, off in enumerate(offsets))
                self._plan = Plan(tuple(offsets), align_up(top, self.alignment))
        return self._plan

    def offset(self, buf_id: int) -> int:
        """Byte offset of buffer `buf_id` from the start of the arena."""
        return self.plan().offsets[buf_id]

    def arena_bytes(self) -> int:
        """End of the highest buffer, rounded up to the alignment."""
        return self.plan().arena_bytes

    def _place(self, problem: Problem) -> list[int]:
        raise NotImplementedError


def _greedy_order(problem: Problem) -> list[int]:
    """TFLM's order: size descending; equal sizes keep insertion order (its bubble sort is stable)."""
    return sorted(range(len(problem)), key=lambda i: -problem.sizes[i])


class GreedyPlanner(MemoryPlanner):
    """TFLM's GreedyMemoryPlanner: largest first, each at the lowest offset that fits.

    Kept as the baseline because it is what TFLM ships, so its arena is the number users compare
    against. Sizes are rounded up to the alignment before planning, as TFLM's allocator does before
    calling AddBuffer; with alignment 1 the offsets equal TFLM's exactly.
    """

    name = "greedy"

    def _place(self, problem: Problem) -> list[int]:
        return place(problem, _greedy_order(problem))[0]


def _heuristic_orders(problem: Problem) -> list[list[int]]:
    """Orders that each win on some graph shapes: big first, long-lived first, early first, ..."""
    n = len(problem)
    sizes, first, last = problem.sizes, problem.first, problem.last
    duration = [last[i] - first[i] + 1 for i in range(n)]
    pressure = [sum(sizes[j] for j in problem.neighbours[i]) for i in range(n)]
    keys: list[Callable[[int], tuple[int, ...]]] = [
        lambda i: (-sizes[i], first[i], i),
        lambda i: (-sizes[i] * duration[i], -sizes[i], i),
        lambda i: (-duration[i], -sizes[i], i),
        lambda i: (first[i], -sizes[i], i),
        lambda i: (-last[i], -sizes[i], i),
        lambda i: (-(sizes[i] + pressure[i]), -sizes[i], i),
    ]
    return [sorted(range(n), key=key) for key in keys]


class BestPlanner(MemoryPlanner):
    """Smallest arena we can find in reasonable time; never larger than the greedy plan.

    Tries several orders with both first-fit and best-fit placement, then improves the best order
    by seeded random swaps (deterministic for a given seed, so a compile stays a function of its
    inputs). Problems of at most `exact_limit` buffers are then solved exactly by branch and bound
    (within `node_budget` search nodes); `proved_optimal` says whether that succeeded or the plan
    met the lower bound.
    """

    name = "best"

    def __init__(
        self,
        alignment: int = DEFAULT_ALIGNMENT,
        seed: int = 0,
        exact_limit: int = 12,
        node_budget: int = 20_000,
        work_budget: int = 400_000,
        restarts: int = 3,
    ) -> None:
        super().__init__(alignment)
        self.seed = seed
        self.restarts = restarts
        self.exact_limit = exact_limit
        self.node_budget = node_budget
        self.work_budget = work_budget
        self.proved_optimal = False

    def _local_search(self, problem: Problem, offsets: list[int], top: int, order: list[int], best_fit_mode: bool,
                      target: int, tries: int, seed: int) -> tuple[list[int], int, list[int]]:
        """Swap a few nearby entries of ``order`` at random (seeded), keeping any order that plans no higher."""
        n = len(problem)
        rng = random.Random(seed)
        for _ in range(tries):
            if top <= target or n < 2:
                break
            cand = list(order)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(n)
                j = min(n - 1, max(0, i + rng.randint(-4, 4)))
                cand[i], cand[j] = cand[j], cand[i]
            cand_offsets, cand_top = place(problem, cand, best_fit_mode)
            if cand_top <= top:  # accept ties too: lets the search drift across plateaus
                offsets, top, order = cand_offsets, cand_top, cand
        return offsets, top, order

    def _place(self, problem: Problem) -> list[int]:
        n = len(problem)
        target = lower_bound([Buffer(s, f, la) for i in range(n) for s, f, la in problem.pieces_of(i)])
        best_offsets, best_top = place(problem, _greedy_order(problem))
        best_order, best_fit_mode = _greedy_order(problem), False
        for order in _heuristic_orders(problem):
            for use_best_fit in (False, True):
                if best_top <= target:
                    break
                offsets, top = place(problem, order, use_best_fit)
                if top < best_top:
                    best_offsets, best_top, best_order, best_fit_mode = offsets, top, order, use_best_fit

        # Local search: swap a few nearby entries of the best order; the number of tries scales
        # down with problem size so large graphs still plan quickly. A plan still more than
        # RESTART_GAP above the lower bound gets further searches from the start order with other seeds.
        work_per_try = n + sum(len(ns) for ns in problem.neighbours)
        tries = min(300, self.work_budget // max(work_per_try, 1))
        start = (best_offsets, best_top, best_order)
        for k in range(1 + self.restarts):
            if k and best_top <= target * (1 + RESTART_GAP):
                break
            offsets, top, order = self._local_search(problem, *start, best_fit_mode, target, tries, self.seed + k)
            if top < best_top:
                best_offsets, best_top, best_order = offsets, top, order

        self.proved_optimal = best_top <= target
        if not self.proved_optimal and n <= self.exact_limit:
            exact, finished = exact_plan(problem, best_top, target, self.node_budget)
            if exact is not None:
                best_offsets = exact
            self.proved_optimal = finished
        return best_offsets


STRATEGIES: dict[str, Callable[..., MemoryPlanner]] = {"greedy": GreedyPlanner, "best": BestPlanner}


def make_planner(strategy: str = "best", alignment: int = DEFAULT_ALIGNMENT) -> MemoryPlanner:
    """A fresh planner for a strategy name (the names a command-line option accepts)."""
    try:
        factory = STRATEGIES[strategy]
    except KeyError:
        raise MCUCError(
            f"unknown memory planner {strategy!r}; choose one of: {', '.join(sorted(STRATEGIES))}"
        ) from None
    return factory(alignment=alignment)


def plan_buffers(
    buffers: Sequence[Buffer], strategy: str = "best", alignment: int = DEFAULT_ALIGNMENT
) -> Plan:
    """Plan a whole buffer list in one call (for callers that already have the list)."""
    planner = make_planner(strategy, alignment)
    for buf in buffers:
        planner.add_buffer(*buf)
    return planner.plan()
