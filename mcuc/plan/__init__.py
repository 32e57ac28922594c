"""Activation memory planning: tensor lifetimes -> offsets in one static arena.

`make_planner("greedy" | "best")` gives a planner with TFLM's interface (`add_buffer`, `offset`,
`arena_bytes`); `compute_lifetimes` / `merge_inplace` / `merged_buffers` turn a schedule into
buffers; `lower_bound` and `verify_plan` check any plan independently of the planner.
"""

from mcuc.plan.check import Buffer, InvalidPlanError, align_up, lower_bound, verify_plan
from mcuc.plan.lifetimes import (
    Lifetime,
    ScheduledOp,
    compute_lifetimes,
    merge_inplace,
    merged_buffers,
    merged_pieces,
)
from mcuc.plan.planner import (
    DEFAULT_ALIGNMENT,
    STRATEGIES,
    BestPlanner,
    GreedyPlanner,
    MemoryPlanner,
    Plan,
    make_planner,
    plan_buffers,
)

__all__ = [
    "DEFAULT_ALIGNMENT",
    "STRATEGIES",
    "BestPlanner",
    "Buffer",
    "GreedyPlanner",
    "InvalidPlanError",
    "Lifetime",
    "MemoryPlanner",
    "Plan",
    "ScheduledOp",
    "align_up",
    "compute_lifetimes",
    "lower_bound",
    "make_planner",
    "merge_inplace",
    "merged_buffers",
    "merged_pieces",
    "plan_buffers",
    "verify_plan",
]
