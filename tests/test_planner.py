"""Memory planner tests: pinned TFLM results, exact optima, random plans replayed by verify_plan."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mcuc.errors import MCUCError
from mcuc.plan import (
    BestPlanner,
    Buffer,
    InvalidPlanError,
    Lifetime,
    MemoryPlanner,
    ScheduledOp,
    compute_lifetimes,
    lower_bound,
    make_planner,
    merge_inplace,
    merged_buffers,
    plan_buffers,
    verify_plan,
)
from mcuc.plan.placement import Problem, best_fit, first_fit, place


def _planned(strategy: str, buffers: list[Buffer], alignment: int = 16) -> MemoryPlanner:
    planner = make_planner(strategy, alignment)
    for buf in buffers:
        planner.add_buffer(*buf)
    return planner


def _random_buffers(
    rng: np.random.Generator, n: int, steps: int, max_len: int, max_size: int
) -> list[Buffer]:
    out = []
    for _ in range(n):
        first = int(rng.integers(0, steps))
        last = min(steps - 1, first + int(rng.integers(0, max_len)))
        out.append(Buffer(int(rng.integers(0, max_size + 1)), first, last))
    return out


# --- greedy pinned against TFLM ------------------------------------------------------------------


def test_greedy_matches_tflm_medium_case() -> None:
    # greedy_memory_planner_test.cc, TestGreedyMedium (TFLM itself does not align: alignment 1).
    bufs = [Buffer(10, 0, 1), Buffer(20, 1, 2), Buffer(30, 2, 3), Buffer(40, 3, 4), Buffer(50, 0, 1)]
    planner = _planned("greedy", bufs, alignment=1)
    assert [planner.offset(i) for i in range(5)] == [50, 70, 40, 0, 0]
    assert planner.arena_bytes() == 90


def test_greedy_matches_tflm_overlap_case() -> None:
    # TestOverlapCase. Order 100, 50, 20: 100@0; 50 [2,3] misses 100 [0,1] in time -> 0;
    # 20 [1,2] meets both, no gap below 100 -> 100.
    planner = _planned("greedy", [Buffer(100, 0, 1), Buffer(50, 2, 3), Buffer(20, 1, 2)], alignment=1)
    assert [planner.offset(i) for i in range(3)] == [0, 0, 100]
    assert planner.arena_bytes() == 120


def test_greedy_pinned_aligned_example() -> None:
    # Hand-run of TFLM's algorithm with sizes rounded to 16: order by aligned size, descending,
    # is 3 (208), 0 (112), 2 (64), 1 (48), 4 (16).
    #   3 -> 0 (nothing placed); 0 -> 0 (its [0,2] misses 3's [4,6]);
    #   2 [3,5] meets 3 at [0,208) -> 208;  1 [1,3] meets 0 [0,112) and 2 [208,272): gap 112..208 -> 112;
    #   4 [0,6] meets everything: spans end at 112, 208, 160, 272 with no gap of 16 -> 272.
    bufs = [Buffer(100, 0, 2), Buffer(40, 1, 3), Buffer(64, 3, 5), Buffer(200, 4, 6), Buffer(16, 0, 6)]
    planner = _planned("greedy", bufs)
    offsets = [planner.offset(i) for i in range(5)]
    assert offsets == [0, 112, 208, 0, 272]
    assert planner.arena_bytes() == 288
    assert verify_plan(bufs, offsets, 288) == 288
    assert lower_bound(bufs, alignment=16) == 288  # at step 4: 64 + 208 + 16, so greedy is optimal here


def test_greedy_equal_sizes_keep_insertion_order() -> None:
    # TFLM's bubble sort is stable: equal sizes are placed in the order they were added.
    planner = _planned("greedy", [Buffer(16, 0, 1), Buffer(16, 1, 2)])
    assert (planner.offset(0), planner.offset(1)) == (0, 16)


# --- exact optima ---------------------------------------------------------------------------------


def test_best_beats_greedy_on_known_case() -> None:
    # Greedy places A(3)@0, D(3)@0, B(2)@3, C(2) above B and D -> 7. Optimum 5 = lower bound:
    # B@0, C@3, A@2, D@0 (A meets only B, D meets only C).
    bufs = [Buffer(3, 0, 0), Buffer(2, 0, 1), Buffer(2, 1, 2), Buffer(3, 2, 2)]
    assert _planned("greedy", bufs, alignment=1).arena_bytes() == 7
    best = _planned("best", bufs, alignment=1)
    assert best.arena_bytes() == 5 == lower_bound(bufs)
    verify_plan(bufs, [best.offset(i) for i in range(4)], 5, alignment=1)


def test_alignment_costs_are_counted() -> None:
    # Two 1-byte buffers live together cannot share a 16-byte slot: optimum is 32, not 2.
    bufs = [Buffer(1, 0, 1), Buffer(1, 1, 2)]
    for strategy in ("greedy", "best"):
        assert _planned(strategy, bufs).arena_bytes() == 32
    assert lower_bound(bufs) == 2 and lower_bound(bufs, alignment=16) == 32


def _brute_force_optimum(bufs: list[Buffer]) -> int:
    """Try every offset assignment below the sum of sizes; only viable for a handful of buffers."""
    total = sum(b.size for b in bufs)
    best = total
    for offs in itertools.product(*[range(total - b.size + 1) for b in bufs]):
        top = max(o + b.size for o, b in zip(offs, bufs, strict=True))
        if top >= best:
            continue
        try:
            verify_plan(bufs, offs, top, alignment=1)
        except InvalidPlanError:
            continue
        best = top
    return best


def test_exact_search_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        bufs = _random_buffers(rng, n=4, steps=4, max_len=3, max_size=3)
        bufs = [Buffer(max(1, b.size), b.first_use, b.last_use) for b in bufs]
        planner = _planned("best", bufs, alignment=1)
        assert isinstance(planner, BestPlanner)
        assert planner.arena_bytes() == _brute_force_optimum(bufs)
        assert planner.proved_optimal


# --- random problems ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_random_plans_verify_and_best_never_worse(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    bufs = _random_buffers(rng, n=n, steps=int(rng.integers(1, 30)), max_len=8, max_size=5000)
    alignment = int(rng.choice([1, 4, 16]))
    arenas = {}
    for strategy in ("greedy", "best"):
        planner = _planned(strategy, bufs, alignment)
        offsets = [planner.offset(i) for i in range(n)]
        high_water = verify_plan(bufs, offsets, planner.arena_bytes(), alignment)
        assert planner.arena_bytes() - alignment < high_water <= planner.arena_bytes() or high_water == 0
        assert planner.arena_bytes() >= lower_bound(bufs, alignment)
        arenas[strategy] = planner.arena_bytes()
    assert arenas["best"] <= arenas["greedy"]


def test_small_random_problems_are_solved_exactly() -> None:
    rng = np.random.default_rng(123)
    for _ in range(20):
        bufs = _random_buffers(rng, n=10, steps=10, max_len=4, max_size=4000)
        planner = _planned("best", bufs)
        verify_plan(bufs, [planner.offset(i) for i in range(10)], planner.arena_bytes())
        assert planner.arena_bytes() <= _planned("greedy", bufs).arena_bytes()


def test_best_plans_500_buffers() -> None:
    rng = np.random.default_rng(0)
    bufs = _random_buffers(rng, n=500, steps=300, max_len=12, max_size=100_000)
    best = _planned("best", bufs)
    arena = best.arena_bytes()
    verify_plan(bufs, [best.offset(i) for i in range(500)], arena)
    assert arena <= _planned("greedy", bufs).arena_bytes()


def test_tflm_person_detection_lifetimes() -> None:
    # Buffer sizes and lifetimes of TFLM's person-detection MobileNet (TestPersonDetectionModel):
    # a chain where each activation lives for two ops. TFLM only asserts the plan beats the sum.
    sizes = [9216, 3, 256, 2304, 2304, 2304, 1152] + [4608] * 11 + [2304, 9216, 9216, 9216, 4608]
    sizes += [18432, 18432, 18432, 9216, 36864, 18432, 18432]
    bufs = [Buffer(9216, 0, 29)] + [Buffer(s, 29 - i, 30 - i) for i, s in enumerate(sizes[1:], start=1)]
    bufs[1] = Buffer(3, 28, 29)
    assert sum(sizes) == 241027
    greedy = _planned("greedy", bufs, alignment=1)
    best = _planned("best", bufs, alignment=1)
    for planner in (greedy, best):
        verify_plan(bufs, [planner.offset(i) for i in range(len(bufs))], planner.arena_bytes(), alignment=1)
        assert lower_bound(bufs) <= planner.arena_bytes() < 241027
    assert best.arena_bytes() <= greedy.arena_bytes()


def test_vectorised_fit_matches_scalar_fit() -> None:
    rng = np.random.default_rng(3)
    bufs = _random_buffers(rng, n=200, steps=6, max_len=6, max_size=3000)
    problem = Problem.build(bufs, 16)
    offsets, _ = place(problem, list(range(100)))
    offsets_np = np.array(offsets, dtype=np.int64)
    for buf in range(100, 200):
        assert first_fit(problem, buf, offsets) == first_fit(problem, buf, offsets, offsets_np)
        assert best_fit(problem, buf, offsets) == best_fit(problem, buf, offsets, offsets_np)


def test_best_plans_dense_500_buffers() -> None:
    rng = np.random.default_rng(1)
    bufs = _random_buffers(rng, n=500, steps=50, max_len=50, max_size=50_000)
    best = _planned("best", bufs)
    arena = best.arena_bytes()
    verify_plan(bufs, [best.offset(i) for i in range(500)], arena)
    assert lower_bound(bufs, 16) <= arena


# --- verify catches broken plans ------------------------------------------------------------------


def test_verify_names_overlapping_buffers() -> None:
    bufs = [Buffer(32, 0, 2), Buffer(32, 2, 3), Buffer(32, 5, 6)]
    verify_plan(bufs, [0, 32, 0], 64)  # buffer 2 may reuse buffer 0's bytes: lifetimes disjoint
    with pytest.raises(InvalidPlanError, match=r"buffers 0 .* and 1 .* overlap"):
        verify_plan(bufs, [0, 16, 0], 64)


def test_verify_rejects_misalignment_and_overflow() -> None:
    bufs = [Buffer(32, 0, 1)]
    with pytest.raises(InvalidPlanError, match="multiple of 16"):
        verify_plan(bufs, [8], 64)
    with pytest.raises(InvalidPlanError, match="past the arena"):
        verify_plan(bufs, [48], 64)
    with pytest.raises(InvalidPlanError, match="offsets"):
        verify_plan(bufs, [], 64)


# --- interface details ----------------------------------------------------------------------------


def test_interface_and_lazy_replanning() -> None:
    planner = make_planner("best")
    assert planner.arena_bytes() == 0
    a = planner.add_buffer(100, 0, 1)
    assert planner.arena_bytes() == 112
    b = planner.add_buffer(10, 1, 2)  # invalidates the cached plan
    assert (a, b) == (0, 1)
    assert planner.arena_bytes() == 128
    assert plan_buffers(planner.buffers, "greedy").arena_bytes == 128
    with pytest.raises(ValueError):
        planner.add_buffer(8, 3, 2)
    with pytest.raises(MCUCError, match="greedy"):
        make_planner("tetris")


# --- lifetimes and aliasing -----------------------------------------------------------------------


def test_lifetimes_from_schedule() -> None:
    ops = [
        ScheduledOp(("x",), ("a",)),
        ScheduledOp(("a",), ("b",)),
        ScheduledOp(("a", "b"), ("c",)),
        ScheduledOp(("c",), ("y", "unused")),
    ]
    lts = compute_lifetimes(ops, graph_inputs=["x"], graph_outputs=["y"])
    assert lts == {
        "x": Lifetime(0, 0),
        "a": Lifetime(0, 2),
        "b": Lifetime(1, 2),
        "c": Lifetime(2, 3),
        "y": Lifetime(3, 3),
        "unused": Lifetime(3, 3),
    }
    with pytest.raises(ValueError, match="before any op writes"):
        compute_lifetimes([ScheduledOp(("w",), ("a",))])


def test_inplace_merges_only_when_input_dies() -> None:
    # relu(x) in place: x dies there -> merged.  add(a, b) in place on a: a is read later -> not merged.
    ops = [
        ScheduledOp(("x",), ("r",), inplace=0),
        ScheduledOp(("r",), ("a",)),
        ScheduledOp(("a", "r"), ("s",), inplace=0),
        ScheduledOp(("a", "s"), ("y",), inplace=1),
    ]
    sizes = {"x": 64, "r": 64, "a": 64, "s": 64, "y": 48}
    lts = compute_lifetimes(ops, ["x"], ["y"])
    alias = merge_inplace(ops, lts, sizes)
    assert alias == {"x": "x", "r": "x", "a": "a", "s": "s", "y": "s"}
    bufs = merged_buffers(lts, sizes, alias)
    assert bufs == {"x": Buffer(64, 0, 2), "a": Buffer(64, 1, 3), "s": Buffer(64, 2, 3)}


def test_inplace_refuses_larger_output() -> None:
    ops = [ScheduledOp(("x",), ("y",), inplace=0)]
    lts = compute_lifetimes(ops, ["x"], ["y"])
    assert merge_inplace(ops, lts, {"x": 16, "y": 32})["y"] == "y"


def test_reshape_is_a_view_even_if_input_lives_on() -> None:
    # v = reshape(x) while x is still read by op 2: same bytes, so they share one buffer whose
    # lifetime is the union. A later in-place op on v must then wait for x's last reader too.
    ops = [
        ScheduledOp(("x",), ("v",), view=True),
        ScheduledOp(("v",), ("p",), inplace=0),
        ScheduledOp(("x", "p"), ("y",)),
    ]
    sizes = {"x": 32, "v": 32, "p": 32, "y": 32}
    lts = compute_lifetimes(ops, ["x"], ["y"])
    alias = merge_inplace(ops, lts, sizes)
    assert alias["v"] == "x" and alias["p"] == "p"
    bufs = merged_buffers(lts, sizes, alias)
    assert bufs["x"] == Buffer(32, 0, 2)
    plan = plan_buffers(list(bufs.values()))
    verify_plan(list(bufs.values()), plan.offsets, plan.arena_bytes)
