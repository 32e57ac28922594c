"""The compile report: a typed record built once from a planned schedule, and report.json, written only here.

``build_report`` makes the ``Report`` of a compile; its memory numbers come from the byte-level
replay of the schedule (mcuc.memsim), and ``replay_differences`` lists any number the replay
does not confirm. ``write_report`` puts it into OUTDIR/report.json; measurements made later (the
firmware's size, its stack, instruction counts) are merged into the file's ``measured`` section by
``merge_measured``, which also refreshes the rendered profiles.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcuc.boards import Board
from mcuc.ir import Graph, Node
from mcuc.memory import layer_live_bytes, op_scratch_bytes
from mcuc.memsim import Simulation, simulate
from mcuc.ops import CExpr, node_macs, variant_of
from mcuc.ops.attention import key_count
from mcuc.passes.attention import attention_nodes, query_rows, whole_scores_bytes
from mcuc.passes.kernels import kernel_names
from mcuc.profile import write_profiles
from mcuc.schedule.base import SCRATCH_OUTSIDE_ARENA_BYTES, STACK_ESTIMATE_BYTES, Schedule, peak_sram_bytes

REPORT_FILE = "report.json"
CODE_ESTIMATE_BYTES = 12 * 1024  # firmware code: kernels, invoke, startup, newlib-nano (not weights or op arrays)


@dataclass
class Report:
    """What a compile produced and where every byte goes (report.json, in this field order)."""

    model: str  # source format of the model ("onnx", "tflite")
    model_file: str
    board: str
    sram_budget_bytes: int
    arena_bytes: int
    arena_lower_bound_bytes: int
    planner: str
    scratch_bytes: int  # kernel scratch outside the arena (scratch planned in the arena is in arena_bytes)
    stack_estimate_bytes: int  # the stack one inference needs, estimated (compared with the measured stack)
    stack_bytes: int  # the stack in the peak: what the board's linker script reserves (the host: the estimate)
    peak_sram_bytes: int  # arena + scratch_bytes + stack_bytes
    weights_bytes: int
    predicted_flash_bytes: int
    macs: int
    schedule: dict[str, Any]
    attention: dict[str, Any]
    ops: list[dict[str, Any]]  # per op of the schedule: shape, MACs, live bytes, arena extent, live buffers
    buffers: list[dict[str, Any]]  # per planned buffer: name, offset, size, first and last op
    layer_live_bytes: list[int]  # bytes live at each op of the layer-based schedule (what patches are compared to)
    stage_ops: int
    simulated: dict[str, Any]
    input: str = "resident"  # "streamed": the build reads the image row by row from the application
    peak_sram_resident_bytes: int | None = None  # fused builds: the peak with the image in the arena ...
    peak_sram_streamed_bytes: int | None = None  # ... and with it streamed (None: not computed / not possible)
    kernels: dict[str, Any] = field(default_factory=dict)  # ISA features, kernel mode, variant per op
    input_format: dict[str, Any] = field(default_factory=dict)  # a camera input's format and folding (mcuc/pixels.py)
    measured: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("input_format", "measured"):
            if not d[key]:
                del d[key]
        return d

    def peak_op(self) -> dict[str, Any]:
        """The op where the most bytes are live."""
        return max(self.ops, key=lambda o: o["live_bytes"])


def weights_bytes(g: Graph) -> int:
    return sum(t.nbytes for t in g.tensors.values() if t.is_const)


def unread_constant_bytes(sched: Schedule) -> int:
    """Bytes of graph constants that no kernel call reads (a variant that reads its weights re-laid, or its bias
    with the input offset folded in, from op arrays instead); weights.c does not hold them."""
    read: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, CExpr) and v.text.startswith("@tensor:"):
            read.add(v.text[8:])
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for low in sched.lowered():
        read.update(str(a.value) for a in low.args if a.kind == "tensor")
        for s in low.structs:
            walk(s.value)
    g = sched.graph
    return sum(t.nbytes for name, t in g.tensors.items() if t.is_const and name not in read)


def op_arrays_bytes(sched: Schedule) -> int:
    """Bytes of the per-op constant arrays weights.c holds besides the weights (requantization multipliers
    and shifts, tables), counting identical arrays once as the code generator does."""
    arrays = {(a.ctype, a.data.tobytes()): int(a.data.nbytes) for low in sched.lowered() for a in low.arrays}
    return sum(arrays.values())


def build_report(sched: Schedule, board: Board, sram_budget: int, attention_block: str = "whole",
                 model_file: str = "", kernels: str = "auto") -> Report:
    """The report of planned schedule ``sched`` on ``board`` under ``sram_budget`` bytes."""
    g, mem = sched.graph, sched.planned
    sim = simulate(g, mem, board)
    ops = [_op_record(g, n, i, mem.live_bytes[i], sim, sched.stage_ops) for i, n in enumerate(g.nodes)]
    w = weights_bytes(g)
    return Report(
        model=str(sched.source.meta.get("source", "")), model_file=model_file, board=board.name,
        sram_budget_bytes=sram_budget, arena_bytes=mem.arena_bytes, arena_lower_bound_bytes=mem.lower_bound,
        planner=mem.strategy, scratch_bytes=SCRATCH_OUTSIDE_ARENA_BYTES, stack_estimate_bytes=STACK_ESTIMATE_BYTES,
        stack_bytes=sched.stack_bytes, peak_sram_bytes=sched.peak_sram_bytes, weights_bytes=w,
        predicted_flash_bytes=w - unread_constant_bytes(sched) + op_arrays_bytes(sched) + CODE_ESTIMATE_BYTES,
        macs=sum(o["macs"] for o in ops), schedule=sched.describe(), attention=attention_report(g, attention_block),
        ops=ops,
        buffers=[{"name": r, "offset": o, "size": sz, "first": f, "last": la} for r, o, sz, f, la in mem.buffers()],
        layer_live_bytes=layer_live_bytes(sched.source), stage_ops=sched.stage_ops, simulated=sim.as_dict(),
        input="streamed" if sched.streamed else "resident",
        kernels={"isa": list(board.isa), "mode": kernels, "variants": kernel_names(sched.graph)},
        input_format=dict(sched.source.meta.get("pixel_input", {})))


def _op_record(g: Graph, n: Node, i: int, live: int, sim: Simulation, stage_ops: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "index": i, "name": n.name, "op": n.op,
        "output_shape": list(g.tensors[(n.outputs or n.inputs[-1:])[0]].shape),
        "macs": node_macs(n, g),
        "live_bytes": live,
        "arena_extent_bytes": sim.extent[i],  # highest arena byte in use at this op, + 1
        "live_tensors": sim.live[i],  # buffers (alias roots) holding bytes at this op, by offset
        "weights_bytes": sum(g.tensors[x].nbytes for x in n.inputs if x and g.tensors[x].is_const),
        "stage": i < stage_ops,  # runs patch by patch (patch schedules only)
    }
    variant = variant_of(g, n)
    if variant is not None:
        rec["variant"] = variant.func  # the kernel variant the op runs (mcuc/passes/kernels.py)
    scratch = op_scratch_bytes(g, n)
    if scratch:
        rec["scratch_bytes"] = scratch  # included in live_bytes
    return rec


def attention_report(g: Graph, block: str) -> dict[str, Any]:
    """The attention block option and, per fused attention op, its rows per block, scratch bytes and the
    bytes its whole score matrix would take unfused."""
    return {"block": block, "ops": [{"name": n.name, "query_rows": query_rows(g, n), "keys": key_count(g, n),
                                     "block_rows": int(n.attrs["block_rows"]), "scratch_bytes": op_scratch_bytes(g, n),
                                     "whole_scores_bytes": whole_scores_bytes(g, n)} for n in attention_nodes(g)]}


def replay_differences(report: Report, sim: Simulation) -> list[str]:
    """Every report number the replay recomputes, with the two values where they differ (empty: all equal)."""
    out = []
    if sim.arena_needed != report.arena_bytes:
        out.append(f"arena_bytes {report.arena_bytes} != simulated {sim.arena_needed}")
    if sim.peak_occupied != report.arena_lower_bound_bytes:
        out.append(f"arena_lower_bound_bytes {report.arena_lower_bound_bytes} != simulated peak live "
                   f"{sim.peak_occupied}")
    if len(report.ops) != len(sim.occupied):
        out.append(f"report has {len(report.ops)} ops, the replay {len(sim.occupied)} steps")
    for o, occ in zip(report.ops, sim.occupied, strict=False):
        if o["live_bytes"] != occ:
            out.append(f"op {o['index']} live_bytes {o['live_bytes']} != simulated {occ}")
            break
    peak = peak_sram_bytes(sim.arena_needed, report.stack_bytes)
    if peak != report.peak_sram_bytes:
        out.append(f"peak_sram_bytes {report.peak_sram_bytes} != arena + scratch + stack {peak}")
    return out


# ---- report.json ------------------------------------------------------------------------------


def write_report(outdir: Path, report: Report | dict[str, Any]) -> None:
    """Write OUTDIR/report.json."""
    data = report.as_dict() if isinstance(report, Report) else report
    (Path(outdir) / REPORT_FILE).write_text(json.dumps(data, indent=1) + "\n")


def read_report(outdir: Path) -> dict[str, Any]:
    """OUTDIR/report.json as written by ``write_report`` (with any measurements merged in since)."""
    return json.loads((Path(outdir) / REPORT_FILE).read_text())


def merge_measured(outdir: Path, section: str, data: dict[str, Any]) -> dict[str, Any]:
    """Put a measurement into OUTDIR/report.json as ``measured[section]``, refresh the rendered profiles so
    they show it, and return the whole report."""
    report = read_report(outdir)
    report.setdefault("measured", {})[section] = data
    write_report(outdir, report)
    if "buffers" in report:
        write_profiles(report, Path(outdir))
    return report


def _stack_note(r: dict[str, Any]) -> str:
    if r["stack_bytes"] == r["stack_estimate_bytes"]:
        return "estimate: no linker script reserves it"
    return f"reserved by the board's linker script; one inference needs about {r['stack_estimate_bytes']:,} B"


def summary_text(rep: Report | dict[str, Any]) -> str:
    """The memory summary printed after compile."""
    r = rep.as_dict() if isinstance(rep, Report) else rep
    kib = 1024.0
    pct = 100.0 * r["peak_sram_bytes"] / r["sram_budget_bytes"]
    lines = [
        f"board {r['board']}: SRAM budget {r['sram_budget_bytes'] / kib:.1f} KiB",
        f"  arena        {r['arena_bytes']:>10,} B  (lower bound {r['arena_lower_bound_bytes']:,} B, "
        f"planner {r['planner']})",
        f"  scratch      {r['scratch_bytes']:>10,} B",
        f"  stack        {r['stack_bytes']:>10,} B  ({_stack_note(r)})",
        f"  peak SRAM    {r['peak_sram_bytes']:>10,} B  ({pct:.1f} % of budget)",
        f"  weights      {r['weights_bytes']:>10,} B  (flash)",
        f"  MACs         {r['macs']:>10,}",
    ]
    if r.get("peak_sram_streamed_bytes") or r.get("peak_sram_resident_bytes"):
        res, st = r.get("peak_sram_resident_bytes"), r.get("peak_sram_streamed_bytes")
        lines.append(f"  input        {r.get('input', 'resident')} (peak with the image resident "
                     f"{f'{res:,} B' if res else '-'}, streamed by rows {f'{st:,} B' if st else '-'})")
    if r["ops"]:
        worst = max(r["ops"], key=lambda o: o["live_bytes"])
        lines.append(f"  peak at op {worst['index']} '{worst['name']}' ({worst['op']})")
    att = r.get("attention", {}).get("ops", [])
    if att:
        rows = sorted({o["block_rows"] for o in att})
        lines.append(f"  attention    {len(att)} ops in blocks of {', '.join(map(str, rows))} query rows, "
                     f"scratch up to {max(o['scratch_bytes'] for o in att):,} B in the arena (whole scores up to "
                     f"{max(o['whole_scores_bytes'] for o in att):,} B)")
    return "\n".join(lines)
