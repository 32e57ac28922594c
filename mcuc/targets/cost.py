"""Deterministic cost of one inference: instructions counted under QEMU, total and per op, per MAC.

The numbers come from mcuc.targets.qemu.profile_qemu (a TCG plugin counting executed instructions
between profile marks), so they depend only on the firmware ELF and its input, never on the host.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.report import merge_measured, read_report
from mcuc.targets.qemu import profile_qemu

# model.c names each op in a comment right before its profile mark:
#     /* 12: /features/features.4/conv/Conv (conv2d) -> 1x8x8x48 */
#     MCUC_PROFILE_MARK(5);
_MARKED_OP = re.compile(r"/\* (\d+): (.*) \((\w+)\) -> [0-9x]* \*/\n\s*MCUC_PROFILE_MARK\((\d+)\);")


def marked_ops(outdir: Path) -> list[tuple[int, str, str]]:
    """(report op index, name, op type) of each op model.c marks, in mark order.

    Read from the generated model.c, which is what the firmware runs, so the mapping holds for any
    schedule (ops without a kernel call, such as reshape views, have no mark).
    """
    text = (Path(outdir) / "model.c").read_text()
    found = [(int(i), name, op, int(k)) for i, name, op, k in _MARKED_OP.findall(text)]
    if [k for *_, k in found] != list(range(len(found))):
        raise MCUCError(f"{outdir}/model.c has no consecutive profile marks; recompile it with this version of mcuc")
    return [(i, name, op) for i, name, op, _ in found]


def per_mac(instructions: int, macs: int) -> float | None:
    return round(instructions / macs, 3) if macs else None


def count_instructions(outdir: Path, g: Graph, board: str, sample: np.ndarray) -> dict[str, Any]:
    """Instructions of one inference of ``sample`` (int8, graph layout, one sample) on QEMU ``board``.

    Returns {"board", "total", "macs", "per_mac", "overhead", "per_op": [{index, name, op, macs,
    instructions, per_mac}]}; total == overhead + sum of the per-op instructions.
    """
    ops = marked_ops(outdir)
    report_ops = read_report(outdir)["ops"]
    out_bytes = sum(g.tensors[n].nbytes for n in g.outputs)
    _, counts = profile_qemu(outdir, board, np.asarray(sample, dtype=np.int8).reshape(1, -1), out_bytes, len(ops))
    per_op = []
    for (i, name, op), insns in zip(ops, counts["per_op"], strict=True):
        macs = int(report_ops[i]["macs"]) if i < len(report_ops) else 0
        per_op.append({"index": i, "name": name, "op": op, "macs": macs, "instructions": insns,
                       "per_mac": per_mac(insns, macs)})
    macs_total = sum(int(o["macs"]) for o in report_ops)
    return {"board": counts["board"], "total": counts["total"], "macs": macs_total,
            "per_mac": per_mac(counts["total"], macs_total), "overhead": counts["overhead"], "per_op": per_op}


def save_instructions(outdir: Path, instructions: dict[str, Any]) -> None:
    """Put ``instructions`` into OUTDIR/report.json as report["measured"]["instructions"]."""
    merge_measured(outdir, "instructions", instructions)


def instructions_text(instructions: dict[str, Any], top: int = 5) -> str:
    """A few lines: total, per MAC and the most expensive ops."""
    lines = [f"instructions per inference on {instructions['board']}: {instructions['total']:,} "
             f"({instructions['per_mac']} per MAC, {instructions['macs']:,} MACs)"]
    worst = sorted(instructions["per_op"], key=lambda o: -o["instructions"])[:top]
    for o in worst:
        lines.append(f"  op {o['index']:>3} {o['op']:<22} {o['instructions']:>12,}  ({o['per_mac']} per MAC)  "
                     f"{o['name']}")
    return "\n".join(lines)
