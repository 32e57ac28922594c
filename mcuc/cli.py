"""mcuc command line: compile, run, verify, profile, search, boards, zoo. Errors print one 'error: ...' line."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mcuc.errors import MCUCError


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcuc", description="Compile neural networks to int8 C for microcontrollers.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compile", help="compile a model into a C project")
    c.add_argument("model", help="model file (.onnx, QDQ .onnx)")
    c.add_argument("--board", default="host", help="target board (see 'mcuc boards'); default host")
    c.add_argument("--sram", help="SRAM budget, e.g. 320k, 1M, 327680 (default: the board's SRAM)")
    c.add_argument("--flash", help="flash budget (default: the board's flash)")
    c.add_argument("--calib", help="calibration data: .npy batch in the model's input layout, or image folder")
    c.add_argument("--mean", type=float, nargs="+", help="per-channel mean for image-folder calibration")
    c.add_argument("--std", type=float, nargs="+", help="per-channel std for image-folder calibration")
    c.add_argument("--calib-method", default="minmax", choices=["minmax", "percentile"])
    c.add_argument("--planner", default="best", choices=["greedy", "best"], help="arena planning strategy")
    c.add_argument("--schedule", default="layer", choices=["layer", "patch", "auto"],
                   help="layer: op by op; patch: the first ops patch by patch (MCUNetV2); auto: patch only if "
                        "layer-based does not fit")
    c.add_argument("--patch-grid", type=int, nargs=2, metavar=("R", "C"), help="patch grid (default: searched)")
    c.add_argument("--split", type=int, metavar="N", help="the patch stage is the first N ops (default: searched)")
    c.add_argument("--max-overhead", type=float, default=0.2,
                   help="largest whole-network MAC overhead a patch schedule may add (default 0.2)")
    c.add_argument("--halo", default="recompute", choices=["recompute", "cache", "auto"],
                   help="patch overlaps: recompute (MCUNetV2), cache rows for the patch below, or search both")
    c.add_argument("--attention-block", default="auto", metavar="auto|whole|R",
                   help="attention: R query rows per block (scores never whole), auto (largest R not raising the "
                        "peak), or whole (unfused, whole score matrices); default auto")
    c.add_argument("-o", "--output", default="build/mcuc_out", help="output directory")
    c.add_argument("--no-build", action="store_true",
                   help="firmware boards: do not build the firmware (no measured sizes, no fit check)")

    r = sub.add_parser("run", help="run a compiled model on the host or an emulator")
    r.add_argument("outdir")
    r.add_argument("--target", default="host", choices=["host", "qemu"])
    r.add_argument("--board", help="QEMU board for --target qemu (default: the compile board if it is a "
                                   "QEMU board, else qemu-mps2-an386)")
    r.add_argument("--input", required=True, help="input .npy (float32, source layout, batch first)")
    r.add_argument("--output", required=True, help="output .npy (.npz for several outputs)")
    r.add_argument("--raw", action="store_true", help="int8 in and out using the model's quantization")
    r.add_argument("--profile", action="store_true",
                   help="with --target qemu: count the instructions of the first sample, total and per op, "
                        "into report.json (measured.instructions)")

    v = sub.add_parser("verify", help="check the generated C against the int8 reference, bit for bit")
    v.add_argument("model", help="compiled output directory, or a model file to compile first")
    v.add_argument("--target", default="host", choices=["host", "qemu"])
    v.add_argument("--qemu-board", help="QEMU board for --target qemu (default: the compile board if it is a "
                                        "QEMU board, else qemu-mps2-an386)")
    v.add_argument("--samples", type=int, default=16)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--board", default="host", help="board when compiling a model file")
    v.add_argument("--calib", help="calibration data when compiling a model file")

    s = sub.add_parser("search", help="search layer- and patch-based schedules; print the Pareto table")
    s.add_argument("model", help="model file (.onnx, QDQ .onnx)")
    s.add_argument("--sram", help="SRAM budget: choose the least MAC overhead that fits")
    s.add_argument("--max-overhead", type=float, default=0.2, help="largest whole-network MAC overhead (default 0.2)")
    s.add_argument("--calib", help="calibration data (as for compile)")
    s.add_argument("--all", action="store_true", help="print every candidate, not only the Pareto front")
    s.add_argument("--halo", default="auto", choices=["recompute", "cache", "auto"],
                   help="patch overlaps to consider: recompute, cache, or both (default)")

    pr = sub.add_parser("profile", help="memory profile: per-op table, JSON, or an HTML page with plots")
    pr.add_argument("model", help="compiled output directory, or a model file to compile first (default options)")
    pr.add_argument("--format", default="text", choices=["text", "json", "html"], help="output format (default text)")
    pr.add_argument("-o", "--output", help="write to this file instead of standard output")
    pr.add_argument("--board", default="host", help="board when compiling a model file")
    pr.add_argument("--calib", help="calibration data when compiling a model file")
    pr.add_argument("--schedule", default="layer", choices=["layer", "patch", "auto"],
                    help="schedule when compiling a model file (default layer)")

    sub.add_parser("boards", help="list the supported boards")

    z = sub.add_parser("zoo", help="export a zoo model to ONNX")
    z.add_argument("name", nargs="?", help="zoo model name (omit to list)")
    z.add_argument("-o", "--output", help="output .onnx path")
    z.add_argument("--resolution", type=int, help="input resolution override")
    z.add_argument("--width", type=float, help="width multiplier override (MobileNetV2)")
    z.add_argument("--qdq", action="store_true", help="also quantize with onnxruntime (QDQ format)")

    rd = sub.add_parser("redistribute", help="receptive-field redistribution search (kernels, expand ratios, "
                                             "patch-stage depth) for low patch-based peak SRAM")
    rd.add_argument("--base", required=True, choices=["mobilenetv2", "mcunet-vww1"], help="base configuration")
    rd.add_argument("--mac-budget", help="largest model MACs, e.g. 300M (default: the base's MACs x (1 + slack))")
    rd.add_argument("--slack", type=float, default=0.0, help="MAC budget slack over the base (default 0)")
    rd.add_argument("--resolution", type=int, help="input resolution override")
    rd.add_argument("--rounds", type=int, default=2, help="greedy search rounds (default 2)")
    rd.add_argument("-o", "--output", required=True, help="directory for config.json, model.pt and model.onnx")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        from mcuc import commands

        return int(getattr(commands, f"cmd_{args.cmd}")(args) or 0)
    except MCUCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
