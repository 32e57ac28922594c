"""The memory/compute report written as report.json and printed after compile."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcuc.memory import op_scratch_bytes
from mcuc.ops import node_macs

if TYPE_CHECKING:
    from mcuc.compiler import Compiled
    from mcuc.ir import Graph, Node
    from mcuc.memsim import Simulation

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


def _profile_fields(g: Graph, n: Node, i: int, sim: Simulation, stage_ops: int) -> dict[str, Any]:
    """Per-op fields of the memory profile, from the simulated replay of the plan (mcuc.memsim)."""
    return {
        "arena_extent_bytes": sim.extent[i],  # highest arena byte in use at this op, + 1
        "live_tensors": sim.live[i],  # buffers (alias roots) holding bytes at this op, by offset
        "weights_bytes": sum(g.tensors[x].nbytes for x in n.inputs if x and g.tensors[x].is_const),
        "stage": i < stage_ops,  # runs patch by patch (patch schedules only)
    }


def _layer_live_bytes(c: Compiled) -> list[int]:
    """Bytes live at each op of the layer-based schedule of ``c.graph`` (what a patch schedule is compared to)."""
    from mcuc.memory import compute_buffers

    _, spans, sizes = compute_buffers(c.graph)
    live = [0] * len(c.graph.nodes)
    for k, (f, la) in spans.items():
        for s in range(f, la + 1):
            live[s] += sizes[k]
    return live


def build_report(c: Compiled) -> dict[str, Any]:
    from mcuc.memsim import simulate

    g, mem = c.graph, c.memory
    sched = c.schedule
    if sched is not None:  # the per-op list, live bytes and MACs of the patch schedule's own op list
        g = sched.graph  # type: ignore[attr-defined]
    stage_ops = int(getattr(sched, "stage_ops", 0))
    sim = simulate(g, mem, c.board)  # type: ignore[arg-type]
    scratch = 0  # kernel scratch outside the arena (op scratch such as attention's is planned in the arena)
    ops = []
    for i, n in enumerate(g.nodes):
        ops.append({
            "index": i,
            "name": n.name,
            "op": n.op,
            "output_shape": list(g.tensors[(n.outputs or n.inputs[-1:])[0]].shape),
            "macs": node_macs(n, g),
            "live_bytes": mem.live_bytes[i],  # type: ignore[attr-defined]
            **_profile_fields(g, n, i, sim, stage_ops),
        })
        if op_scratch_bytes(g, n):
            ops[-1]["scratch_bytes"] = op_scratch_bytes(g, n)  # included in live_bytes
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
        "attention": attention_report(g, getattr(c.options, "attention_block", "whole")),
        "ops": ops,
        "buffers": [{"name": r, "offset": o, "size": sz, "first": f, "last": la}
                    for r, o, sz, f, la in mem.buffers()],  # type: ignore[attr-defined]
        "layer_live_bytes": _layer_live_bytes(c),
        "stage_ops": stage_ops,
        "simulated": sim.as_dict(),
    }


def attention_report(g, block: str) -> dict[str, Any]:
    """The attention block option and, per fused attention op, its rows per block, scratch bytes and the
    bytes its whole score matrix would take unfused."""
    from mcuc.passes.attention import attention_nodes, key_count, query_rows, whole_scores_bytes

    return {"block": block, "ops": [{"name": n.name, "query_rows": query_rows(g, n), "keys": key_count(g, n),
                                     "block_rows": int(n.attrs["block_rows"]), "scratch_bytes": op_scratch_bytes(g, n),
                                     "whole_scores_bytes": whole_scores_bytes(g, n)} for n in attention_nodes(g)]}


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
    att = rep.get("attention", {}).get("ops", [])
    if att:
        rows = sorted({o["block_rows"] for o in att})
        lines.append(f"  attention    {len(att)} ops in blocks of {', '.join(map(str, rows))} query rows, "
                     f"scratch up to {max(o['scratch_bytes'] for o in att):,} B in the arena (whole scores up to "
                     f"{max(o['whole_scores_bytes'] for o in att):,} B)")
    return "\n".join(lines)
