"""Peak SRAM with fused row pipelines, beside TinyEngine's and MCUNetV2's published figures.

    python -m bench.fused_memory [--verify] [--tinyengine DIR]

Models: the zoo's MobileNetV2-1.0 at 224x224 and, when a checkout of mit-han-lab/tinyengine is given
(--tinyengine or TINYENGINE_DIR; fetched for the benchmark, not part of this repository), its int8
models assets/vww.tflite, assets/mcunetv2_large.tflite (MCUNetV2 with SE blocks, 224x224) and
assets/detection.tflite. For each: mcuc's peak SRAM (report.json peak_sram_bytes: planned arena plus a
2 KiB stack estimate; weights in flash) layer-based, fused with the image resident, fused with the image
streamed by rows, the MAC overhead (none: rows are computed once) and how far the arena is above the
schedule's live-bytes lower bound. TinyEngine's PEAK_MEM counts activations + im2col + kernel buffer
(weights in flash, no stack); MCUNetV2's 172 kB for MobileNetV2 counts one layer's input and output of
the patch stage. ``--verify`` also checks the generated C against the int8 reference on the host.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from mcuc.compiler import CompileOptions, compile_model
from mcuc.project import write_project
from mcuc.runner import verify_project

# TinyEngine's code generator on its own models (layer-based, patch-based PEAK_MEM in bytes), and the
# MCUNetV2 paper's MobileNetV2-224 figure (Table 1), as listed in REFERENCES.md.
PUBLISHED = {
    "mobilenetv2-224": ("-", "-", "172 kB (MCUNetV2, 4x4 patches, per-layer count)"),
    "vww": ("93,992", "62,352", "-"),
    "mcunetv2_large": ("1,431,784", "444,168", "-"),
    "detection": ("257,448", "-", "-"),
}


def _quiet(_msg: str) -> None:
    pass


def _compile(path: str, opts: CompileOptions, verify: bool) -> tuple[str, str]:
    c = compile_model(path, opts, progress=_quiet)
    r = c.report
    gap = (r.arena_bytes - r.arena_lower_bound_bytes) / max(r.arena_lower_bound_bytes, 1)
    cell = f"{r.peak_sram_bytes:,}"
    if verify:
        with tempfile.TemporaryDirectory() as td:
            res = verify_project(write_project(c, str(Path(td) / "p")), c.graph, samples=2, seed=0, target="host")
        cell += " (bit-exact)" if res["mismatched"] == 0 else f" ({res['mismatched']} differ!)"
    return cell, f"{c.schedule.mac_overhead:+.1%}, arena {gap:+.1%} over bound"


def models(tinyengine: str | None) -> list[tuple[str, str]]:
    out = []
    mbv2 = Path(tempfile.gettempdir()) / "mcuc-bench-mobilenetv2-224.onnx"
    if not mbv2.exists():
        from mcuc import zoo
        from mcuc.zoo.export import export_onnx

        model, shape = zoo.build("mobilenetv2", resolution=224)
        export_onnx(model, shape, mbv2)
    out.append(("mobilenetv2-224", str(mbv2)))
    if tinyengine:
        for name in ("vww", "mcunetv2_large", "detection"):
            path = Path(tinyengine) / "assets" / f"{name}.tflite"
            if not path.exists():
                sys.exit(f"error: {path} not found; --tinyengine must point at a checkout of mit-han-lab/tinyengine")
            out.append((name, str(path)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tinyengine", default=os.environ.get("TINYENGINE_DIR"), help="checkout of mit-han-lab/tinyengine")
    ap.add_argument("--verify", action="store_true", help="check the generated C against the reference (host)")
    args = ap.parse_args()
    print("| model | TinyEngine layer | TinyEngine patch | MCUNetV2 | mcuc layer | mcuc fused, image resident "
          "| mcuc fused, image streamed | MACs, arena vs bound (streamed) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path in models(args.tinyengine):
        layer, _ = _compile(path, CompileOptions(calib_samples=2), False)
        resident, _ = _compile(path, CompileOptions(schedule="fused", calib_samples=2), args.verify)
        streamed, note = _compile(path, CompileOptions(schedule="fused", stream_input=True, calib_samples=2),
                                  args.verify)
        te_layer, te_patch, paper = PUBLISHED[name]
        print(f"| {name} | {te_layer} | {te_patch} | {paper} | {layer} | {resident} | {streamed} | {note} |",
              flush=True)


if __name__ == "__main__":
    main()
