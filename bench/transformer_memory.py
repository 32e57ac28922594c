"""Whole-matrix vs blocked attention: peak SRAM, MACs and stm32f746 firmware size of the zoo transformers.

Each model is compiled three times with ``mcuc compile --board stm32f746``, which also builds the
firmware and measures the ELF (report.json ``measured``):

- whole: ``--attention-block whole``, the unfused int8 graph; batch_matmul writes the scores of every
  head [B, heads, Tq, Tk], softmax writes the probabilities of the same shape, both live at once;
- R=1: the fused attention op one query row at a time (scratch of Tk bytes);
- auto: the fused op with the block rows ``--attention-block auto`` picks (the largest R that does not
  raise the peak; printed as the distinct R values over the model's attention ops).

Arena is the planned activation arena (every scores scratch included); peak SRAM is the report's
``peak_sram_bytes`` (arena + stack estimate). Flash and RAM are measured from the linked ELF: flash =
text + rodata + .data image, RAM = data + bss + stack. MACs are the same in all three (no row of the
score matrix is computed twice). Numbers do not depend on the weights; the zoo models are used with
seeded random weights and synthetic calibration.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MODELS = ["dhvt", "dhvt-small", "crossvit", "crossvit-small"]
MODES = [("whole", "whole"), ("R=1", "1"), ("auto", "auto")]
BOARD = "stm32f746"


def _compile(onnx_path: Path, block: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "mcuc.cli", "compile", str(onnx_path), "--board", BOARD, "--attention-block", block,
           "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads((out / "report.json").read_text())


def _kb(b: int) -> str:
    return f"{b / 1024:,.1f}"


def measure(name: str, work: Path) -> dict[str, dict[str, Any]]:
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name)
    path = export_onnx(model, shape, work / f"{name}.onnx", opset=17)
    return {label: _compile(path, block, work / f"{name}-{label}") for label, block in MODES}


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    rows = ["| model | attention ops (Tq x Tk, heads) | MACs | whole: peak SRAM (KiB) | R=1: peak SRAM (KiB) "
            "| auto: R | auto: peak SRAM (KiB) | saved | flash whole / auto (KiB) | RAM whole / auto (KiB) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        whole, one, auto = r["whole"], r["R=1"], r["auto"]
        att = auto["attention"]["ops"]
        shapes = sorted({f"{o['query_rows']}x{o['keys']}" for o in att}, key=lambda s: -int(s.split("x")[0]))
        heads = sorted({o["whole_scores_bytes"] // (o["query_rows"] * o["keys"]) for o in att})
        rs = sorted({o["block_rows"] for o in att})
        assert whole["macs"] == one["macs"] == auto["macs"]
        saved = 1 - auto["peak_sram_bytes"] / whole["peak_sram_bytes"]
        mw, ma = whole.get("measured", {}), auto.get("measured", {})
        flash = f"{_kb(mw['flash_bytes'])} / {_kb(ma['flash_bytes'])}" if mw and ma else "-"
        ram = f"{_kb(mw['ram_bytes'])} / {_kb(ma['ram_bytes'])}" if mw and ma else "-"
        rows.append(f"| {name} | {len(att)} ({', '.join(shapes)}; {'/'.join(map(str, heads))}) | {auto['macs']:,} "
                    f"| {_kb(whole['peak_sram_bytes'])} | {_kb(one['peak_sram_bytes'])} "
                    f"| {', '.join(map(str, rs))} | {_kb(auto['peak_sram_bytes'])} | {saved:.0%} | {flash} | {ram} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mcuc-attention-") as td:
        results = {name: measure(name, Path(td)) for name in args.models}
    print(table(results))
    for name, r in results.items():
        arenas = ", ".join(f"{label} {r[label]['arena_bytes']:,} B" for label, _ in MODES)
        print(f"{name}: arena {arenas}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
