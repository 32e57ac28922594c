"""The memory/compute report written as report.json and printed after compile."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcuc.ops import node_macs

if TYPE_CHECKING:
    from mcuc.compiler import Compiled

STACK_ESTIMATE_BYTES = 2048  # call depth of invoke + kernel frames; no kernel recurses or uses VLAs
CODE_ESTIMATE_BYTES = 12 * 1024  # firmware code: kernels, invoke, startup, newlib-nano (not weights or op arrays)


def weights_bytes(g) -> int:
    return sum(t.nbytes for t in g.tensors.values() if t.is_const)


def op_arrays_bytes(c: Compiled) -> int:
    """Bytes of the per-op constant arrays weights.c holds besides the weights (requantization multipliers
    and shifts, tables), counting identical arrays once as the code generator does."""
    from mcuc.lower import lower

    sched = getattr(c, "schedule", None)
    steps = sched.lowered() if sched is not None else [lower(c.graph, n) for n in c.graph.nodes]  # type: ignore[attr-defined]
    arrays = {(a.ctype, a.data.tobytes()): int(a.data.nbytes) for low in steps for a in low.arrays}
    return sum(arrays.values())


def build_report(c: Compiled) -> dict[str, Any]:
    g, mem = c.graph, c.memory
    sched = c.schedule
    if sched is not None:  # the per-op list, live bytes and MACs of the patch schedule's own op list
        g = sched.graph  # type: ignore[attr-defined]
    scratch = 0
    ops = []
    for i, n in enumerate(g.nodes):
        ops.append({
            "index": i,
            "name": n.name,
            "op": n.op,
            "output_shape": list(g.tensors[(n.outputs or n.inputs[-1:])[0]].shape),
            "macs": node_macs(n, g),
            "live_bytes": mem.live_bytes[i],  # type: ignore[attr-defined]
        })
    arena = mem.arena_bytes  # type: ignore[attr-defined]
    budget = c.options.sram if c.options.sram is not None else c.board.sram_bytes
    return {
        "model": c.graph.meta.get("source", ""),
        "board": c.board.name,
        "sram_budget_bytes": budget,
        "arena_bytes": arena,
        "arena_lower_bound_bytes": mem.lower_bound,  # type: ignore[attr-defined]
        "planner": mem.strategy,  # type: ignore[attr-defined]
        "scratch_bytes": scratch,
        "stack_estimate_bytes": STACK_ESTIMATE_BYTES,
        "peak_sram_bytes": arena + scratch + STACK_ESTIMATE_BYTES,
        "weights_bytes": weights_bytes(g),
        "predicted_flash_bytes": weights_bytes(g) + op_arrays_bytes(c) + CODE_ESTIMATE_BYTES,
        "macs": sum(o["macs"] for o in ops),
        "schedule": sched.describe() if sched is not None else {"kind": "layer"},  # type: ignore[attr-defined]
        "ops": ops,
    }


def summary_text(rep: dict[str, Any]) -> str:
    kib = 1024.0
    pct = 100.0 * rep["peak_sram_bytes"] / rep["sram_budget_bytes"]
    lines = [
        f"board {rep['board']}: SRAM budget {rep['sram_budget_bytes'] / kib:.1f} KiB",
        f"  arena        {rep['arena_bytes']:>10,} B  (lower bound {rep['arena_lower_bound_bytes']:,} B, "
        f"planner {rep['planner']})",
        f"  scratch      {rep['scratch_bytes']:>10,} B",
        f"  stack (est.) {rep['stack_estimate_bytes']:>10,} B",
        f"  peak SRAM    {rep['peak_sram_bytes']:>10,} B  ({pct:.1f} % of budget)",
        f"  weights      {rep['weights_bytes']:>10,} B  (flash)",
        f"  MACs         {rep['macs']:>10,}",
    ]
    if rep["ops"]:
        worst = max(rep["ops"], key=lambda o: o["live_bytes"])
        lines.append(f"  peak at op {worst['index']} '{worst['name']}' ({worst['op']})")
    return "\n".join(lines)
