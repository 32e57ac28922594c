"""Soak run: one firmware, one QEMU boot, many inferences on seeded random inputs.

    python -m bench.soak [--model mcunet-tiny] [--board qemu-mps2-an386] [--inferences 1000] [--seed 0]

Every output is compared with mcuc's int8 reference (all must be equal), the runner checks the guard blocks
around the arena after every inference (a broken guard stops the firmware), and each inference's stack depth
below mcuc_model_invoke() is measured from the painted stack (painted again before every inference), so a
depth that grows or varies between inferences shows.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.compiler import CompileOptions, compile_model
from mcuc.execute import run_int8
from mcuc.ir import Graph
from mcuc.project import load_project, write_project
from mcuc.targets.qemu import soak_qemu


def soak(outdir: Path, g: Graph, board: str, inferences: int, seed: int, timeout_s: float) -> dict[str, Any]:
    """Run ``inferences`` seeded random int8 samples through project ``outdir`` in one QEMU boot on ``board``
    and check them against the int8 reference of ``g``; return the numbers of the soak table."""
    rng = np.random.default_rng(seed)
    feeds = {n: rng.integers(*((0, 256) if g.tensors[n].dtype == "uint8" else (-128, 128)),
                             size=(inferences, *g.tensors[n].shape[1:]), dtype=np.dtype(g.tensors[n].dtype))
             for n in g.inputs}
    flat = np.concatenate([feeds[n].reshape(inferences, -1).view(np.int8) for n in g.inputs], axis=1)
    out_bytes = sum(g.tensors[n].nbytes for n in g.outputs)
    t0 = time.perf_counter()
    got, stacks, final = soak_qemu(outdir, board, flat, out_bytes, timeout_s)
    qemu_s = time.perf_counter() - t0
    mismatched_elements, mismatched_inferences = 0, 0
    for i in range(inferences):
        env = run_int8(g, {n: feeds[n][i:i + 1] for n in g.inputs})
        want = np.concatenate([env[n].reshape(-1).view(np.int8) for n in g.outputs])
        bad = int((want != got[i]).sum())
        mismatched_elements += bad
        mismatched_inferences += int(bad > 0)
    return {"board": board, "inferences": inferences, "qemu_seconds": qemu_s, "output_elements": got.size,
            "mismatched_elements": mismatched_elements, "mismatched_inferences": mismatched_inferences,
            "guards_intact": bool(final["arena_guards_intact"]), "invoke_stack_min": min(stacks),
            "invoke_stack_max": max(stacks), "invoke_stack_distinct": len(set(stacks)),
            "stack_used": final["stack_used_bytes"], "stack_reserved": final["stack_reserved_bytes"]}


def table(model: str, r: dict[str, Any]) -> str:
    rows = [("model", model), ("board", r["board"]), ("inferences (one QEMU boot)", f"{r['inferences']:,}"),
            ("QEMU wall time", f"{r['qemu_seconds']:.1f} s"),
            ("outputs equal to the int8 reference",
             f"{r['output_elements'] - r['mismatched_elements']:,} / {r['output_elements']:,} "
             f"({r['mismatched_inferences']} inferences differ)"),
            ("arena guards after every inference", "intact" if r["guards_intact"] else "CORRUPTED"),
            ("stack below invoke, per inference (min / max)", f"{r['invoke_stack_min']:,} / {r['invoke_stack_max']:,} B"
             f" ({r['invoke_stack_distinct']} distinct value{'s' if r['invoke_stack_distinct'] != 1 else ''})"),
            ("whole-program stack high-water / reserved", f"{r['stack_used']:,} / {r['stack_reserved']:,} B")]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def passed(r: dict[str, Any]) -> bool:
    return (r["mismatched_elements"] == 0 and r["guards_intact"]
            and r["invoke_stack_min"] == r["invoke_stack_max"] and r["stack_used"] <= r["stack_reserved"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mcunet-tiny", help="zoo model (see mcuc.zoo)")
    ap.add_argument("--board", default="qemu-mps2-an386")
    ap.add_argument("--inferences", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole QEMU run")
    args = ap.parse_args()
    from bench.common import export_zoo

    work = Path(tempfile.mkdtemp(prefix="mcuc-soak-"))
    onnx, _ = export_zoo(args.model, work)
    compiled = compile_model(str(onnx), CompileOptions(board=args.board), progress=lambda m: None)
    out = Path(write_project(compiled, str(work / "proj")))
    g, _ = load_project(str(out))
    r = soak(out, g, args.board, args.inferences, args.seed, args.timeout)
    print(table(args.model, r))
    print("PASS" if passed(r) else "FAIL")
    raise SystemExit(0 if passed(r) else 1)


if __name__ == "__main__":
    main()
