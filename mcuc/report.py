"""The memory/compute report written as report.json and printed after compile."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcuc.ops import node_macs

if TYPE_CHECKING:
    from mcuc.compiler import Compiled

STACK_ESTIMATE_BYTES = 2048  # call depth of invoke + kernel frames; no kernel recurses or uses VLAs


def weights_bytes(g) -> int:
    return sum(t.nbytes for t in g.tensors.values() if t.is_const)


def build_report(c: Compiled) -> dict[str, Any]:
    g, mem = c.graph, c.memory
    scratch = 0
    ops = []
    for i, n in enumerate(g.nodes):
        ops.append({
            "index": i,
            "name": n.name,
            "op": n.op,
            "output_shape": list(g.tensors[n.outputs[0]].shape),
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
        "macs": sum(o["macs"] for o in ops),
        "schedule": {"kind": "layer"},
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
