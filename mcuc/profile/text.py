"""The memory profile as a terminal table: one row per op of the schedule that runs."""
from __future__ import annotations

from typing import Any

NAME_WIDTH = 40
TENSORS_WIDTH = 48


def peak_index(report: dict[str, Any]) -> int:
    """Index of the op with the most live bytes (the first such op)."""
    ops = report["ops"]
    return max(range(len(ops)), key=lambda i: (ops[i]["live_bytes"], -i)) if ops else -1


def _clip(s: str, width: int) -> str:
    return s if len(s) <= width else "…" + s[-(width - 1):]


def _short(name: str) -> str:
    """The last two path components of an ONNX-style tensor name (enough to tell tensors apart in a row)."""
    parts = name.split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else name


def _shape(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape)


def render_text(rep: dict[str, Any]) -> str:
    """Header lines (board, budget, arena, peak), then the op table; '*' marks the peak op, 'P' a patch-stage op."""
    ops = rep["ops"]
    peak = peak_index(rep)
    sched = rep.get("schedule", {"kind": "layer"})
    kind = sched.get("kind", "layer")
    if kind == "patch":
        kind += f" (split {sched.get('split_layer')}, grid {'x'.join(map(str, sched.get('grid', [])))}, " \
                f"{rep.get('stage_ops', 0)} stage ops marked P)"
    sim = rep.get("simulated", {})
    lines = [
        f"model {rep.get('model_file') or rep.get('model', '')} on board {rep['board']}: schedule {kind}, "
        f"planner {rep.get('planner', '')}",
        f"SRAM budget {rep['sram_budget_bytes']:,} B; peak SRAM {rep['peak_sram_bytes']:,} B = arena "
        f"{rep['arena_bytes']:,} + scratch {rep['scratch_bytes']:,} + stack "
        f"{rep.get('stack_bytes', rep['stack_estimate_bytes']):,}; "
        f"lower bound {rep['arena_lower_bound_bytes']:,} B",
    ]
    if sim:
        lines.append(f"simulated replay: high-water {sim['high_water_bytes']:,} B -> arena {sim['arena_bytes']:,} B, "
                     f"{'no overlaps' if not sim.get('problems') else '; '.join(sim['problems'][:2])}")
    measured = rep.get("measured", {})
    if "flash_bytes" in measured:
        lines.append(f"firmware {measured.get('board', '')}: flash {measured['flash_bytes']:,} B, static RAM "
                     f"{measured['ram_bytes']:,} B (arena {measured['arena_bytes']:,} B)")
    st = measured.get("stack")
    if st:
        lines.append(f"measured on {st['board']}: stack {st['stack_used_bytes']:,} of {st['stack_reserved_bytes']:,} B "
                     f"reserved (one inference {st['invoke_stack_bytes']:,} B, estimate {rep['stack_estimate_bytes']:,}"
                     f" B); arena guards {'intact' if st['arena_guards_intact'] else 'CORRUPTED'}")
    hdr = (f"{'#':>4} {'':2} {'name':<{NAME_WIDTH}} {'type':<16} {'output':<14} {'MACs':>12} {'live B':>10} "
           f"{'arena top B':>11} {'scratch':>8} {'n':>3}  live tensors")
    lines += ["", hdr, "-" * len(hdr)]
    for i, o in enumerate(ops):
        mark = ("*" if i == peak else " ") + ("P" if o.get("stage") else " ")
        live = o.get("live_tensors", [])
        lines.append(f"{o['index']:>4} {mark} {_clip(o['name'], NAME_WIDTH):<{NAME_WIDTH}} {o['op']:<16} "
                     f"{_shape(o['output_shape']):<14} {o['macs']:>12,} {o['live_bytes']:>10,} "
                     f"{o.get('arena_extent_bytes', 0):>11,} {o.get('scratch_bytes', 0):>8,} {len(live):>3}  "
                     f"{_clip(', '.join(_short(t) for t in live), TENSORS_WIDTH)}")
    lines.append("-" * len(hdr))
    lines.append(f"{len(ops)} ops, {rep['macs']:,} MACs, weights {rep['weights_bytes']:,} B (flash); "
                 "* peak op" + (", P patch stage" if rep.get("stage_ops") else ""))
    return "\n".join(lines) + "\n"
