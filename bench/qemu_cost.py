"""Cost and size of the zoo models as firmware: instructions per inference under QEMU on M4/M7/M55,
and flash/RAM of the stm32h7 and stm32f746 firmware, predicted vs measured from the ELF.

    python -m bench.qemu_cost [--models mcunet-tiny,mcunet-vww1,mobilenetv2-0.35] [--mbv2-resolution R]

Instruction counts come from mcuc's QEMU instruction-count plugin (mcuc/targets/qemu_insn_plugin.c): one
inference of a random int8 input, counted exactly, identical on every run. They measure the portable C
kernels as compiled by arm-none-eabi-gcc -O2 for each core; they are not cycle counts.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mcuc.compiler import CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.project import write_project
from mcuc.targets.cost import count_instructions
from mcuc.targets.elfsize import measure_firmware
from mcuc.targets.qemu import DEFAULT_TIMEOUT_S

from .common import export_zoo

QEMU_BOARDS = [("M4", "qemu-mps2-an386"), ("M7", "qemu-mps2-an500"), ("M55", "qemu-mps3-an547")]
SIZE_BOARDS = ["stm32h7", "stm32f746"]
DEFAULT_MODELS = ["mcunet-tiny", "mcunet-vww1", "mobilenetv2-0.35", "mobilenetv2"]


def compile_for(onnx: Path, board: str, out: Path):
    compiled = compile_model(str(onnx), CompileOptions(board=board), progress=lambda m: None)
    return compiled, write_project(compiled, str(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--mbv2-resolution", type=int, default=0,
                    help="run MobileNetV2 models at this resolution instead of their default")
    args = ap.parse_args()
    cost_rows, size_rows = [], []
    work = Path(tempfile.mkdtemp(prefix="mcuc-bench-qemu-"))
    for name in args.models.split(","):
        overrides = {"resolution": args.mbv2_resolution} if name.startswith("mobilenetv2") and args.mbv2_resolution \
            else {}
        onnx, shape = export_zoo(name, work, **overrides)
        label = f"{name} ({shape[2]}x{shape[3]})"
        compiled, out = compile_for(onnx, "qemu-mps2-an386", work / f"{name}-qemu")
        g = compiled.graph
        x = np.random.default_rng(0).integers(-128, 128, (1, sum(g.tensors[i].size for i in g.inputs)), np.int8)
        row = [label, f"{compiled.report.macs:,}"]
        for _, board in QEMU_BOARDS:
            t0 = time.time()
            try:
                counts = count_instructions(out, g, board, x)
            except MCUCError as e:  # e.g. the weights exceed the board's code memory
                row += ["does not fit", str(e).split("region")[-1].split("|")[0].strip()[:60]]
                print(f"  {name} on {board}: {e}"[:200], flush=True)
                continue
            again = count_instructions(out, g, board, x)
            assert counts == again, f"instruction counts of {name} on {board} differ between runs"
            row += [f"{counts['total']:,}", f"{counts['per_mac']:.2f}"]
            print(f"  {name} on {board}: {counts['total']:,} instructions ({time.time() - t0:.1f} s for 2 runs)",
                  flush=True)
        cost_rows.append(row)
        for board in SIZE_BOARDS:
            compiled, out = compile_for(onnx, board, work / f"{name}-{board}")
            rep = compiled.report
            try:
                m = measure_firmware(out, compiled.board, rep["weights_bytes"])
                measured = [f"{m['flash_bytes']:,}", f"{m['ram_bytes']:,}",
                            f"{m['data_bytes'] + m['bss_bytes']:,}", f"{m['arena_bytes']:,}"]
            except MCUCError as e:
                measured = [f"does not fit: {str(e).split(': ', 1)[1].split(' (weights')[0]}", "", "", ""]
            size_rows.append([label, board, f"{rep['weights_bytes']:,}", f"{rep['predicted_flash_bytes']:,}",
                              measured[0], f"{rep['peak_sram_bytes']:,}", *measured[1:]])
    print()
    print(f"Instructions per inference under QEMU (one random int8 input; timeout {DEFAULT_TIMEOUT_S:.0f} s)")
    print()
    head = ["model", "MACs"] + [f"{c} {k}" for c, _ in QEMU_BOARDS for k in ("instructions", "per MAC")]
    print_table(head, cost_rows)
    print()
    print("Firmware size: predicted (report.json) vs measured (ELF), bytes")
    print()
    print_table(["model", "board", "weights", "flash predicted", "flash measured", "peak SRAM predicted",
                 "static RAM measured", "data+bss measured", "arena (ELF)"], size_rows)


def print_table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
