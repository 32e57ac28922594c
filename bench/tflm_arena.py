"""Arena bytes: TFLite Micro's allocation report vs mcuc's planned arena (layer-based and patch-based).

For every shipped .tflite test model and for zoo networks (compiled from ONNX by mcuc, exported with
mcuc.tflite_export), TFLM's RecordingMicroAllocator reports its arena: the head (non-persistent section:
activations and kernel scratch, planned by TFLM's greedy planner) and the total (head plus the persistent tail:
tensor structs, node data, quantization data). mcuc's ``arena_bytes`` is the same quantity as TFLM's head
(every activation buffer; mcuc has no runtime structs in its arena). Prints the table and writes
bench/RESULTS-tflite.md.

    python -m bench.tflm_arena
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TFLITE_MODELS = ["dw_residual_cnn", "mobilenet_v3_block", "attention_relu", "layernorm_mlp", "detection_heads",
                 "tiny_cnn"]
ZOO_MODELS = [("mcunet-tiny (demo)", None, {}), ("mcunet-vww1", "mcunet-vww1", {}),
              ("mobilenetv2-0.35", "mobilenetv2-0.35", {"resolution": 144})]

_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))
it.print_allocations()
"""


def tflm_arena(path: str) -> tuple[int, int]:
    """(head, total) bytes of TFLM's arena for the model at ``path`` (from its allocation report)."""
    out = subprocess.run([sys.executable, "-c", _PROBE, path, str(64 << 20)], capture_output=True, text=True,
                         check=True).stderr
    head = int(re.search(r"Arena allocation head (\d+) bytes", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"Arena allocation total (\d+) bytes", out).group(1))  # type: ignore[union-attr]
    return head, total


def mcuc_arenas(model: str, calib: str | None = None) -> tuple[int, str]:
    """(layer-based arena, patch-based arena and schedule, or why not) for one model file."""
    from mcuc.compiler import CompileOptions, compile_model
    from mcuc.errors import MCUCError

    quiet = lambda m: None  # noqa: E731
    layer = compile_model(model, CompileOptions(calib=calib), progress=quiet).report.arena_bytes
    try:
        c = compile_model(model, CompileOptions(calib=calib, schedule="patch", max_overhead=0.3), progress=quiet)
        sched = c.report.schedule
        if sched.get("kind") != "patch":
            return layer, "n/a (layer-based chosen)"
        grid = "x".join(str(v) for v in sched.get("grid", []))
        return layer, f"{c.report.arena_bytes:,} ({grid} patches, first {sched.get('split_layer')} ops)"
    except (MCUCError, ValueError, KeyError) as e:
        why = str(e).split(":")[0].split(";")[0]
        return layer, f"n/a ({why[:70]})"


def zoo_onnx(name: str | None, overrides: dict, tmp: Path) -> tuple[str, str | None]:
    if name is None:
        data = ROOT / "mcuc" / "zoo" / "data"
        return str(data / "demo_fmnist.onnx"), str(data / "demo_calib.npy")
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name, **overrides)
    path = tmp / f"{name}.onnx"
    export_onnx(model, shape, str(path))
    return str(path), None


def main() -> None:
    from mcuc.compiler import CompileOptions, compile_model
    from mcuc.tflite_export import export_tflite

    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in TFLITE_MODELS:
            path = str(ROOT / "tests" / "data" / "tflite" / f"{name}.tflite")
            head, total = tflm_arena(path)
            layer, patch = mcuc_arenas(path)
            rows.append((f"{name}.tflite (TF converter)", head, total, layer, patch))
        for label, name, overrides in ZOO_MODELS:
            onnx, calib = zoo_onnx(name, overrides, tmp)
            c = compile_model(onnx, CompileOptions(calib=calib), progress=lambda m: None)
            tfl = tmp / f"{label.split()[0]}.tflite"
            export_tflite(c.graph, str(tfl))
            head, total = tflm_arena(str(tfl))
            layer, patch = mcuc_arenas(onnx, calib)
            rows.append((f"{label} (mcuc export)", head, total, layer, patch))
    lines = ["| model | TFLM arena head (B) | TFLM arena total (B) | mcuc layer-based (B) | layer / TFLM head | "
             "mcuc patch-based (B) | patch / TFLM head |", "|---|---|---|---|---|---|---|"]
    for label, head, total, layer, patch in rows:
        m = re.match(r"([\d,]+) ", patch)
        ratio = f"{int(m.group(1).replace(',', '')) / head:.2f}" if m else "-"
        lines.append(f"| {label} | {head:,} | {total:,} | {layer:,} | {layer / head:.2f} | {patch} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    doc = ("# Arena bytes: TFLite Micro vs mcuc\n\nPrinted by `python -m bench.tflm_arena`. TFLM's head is the "
           "non-persistent arena section (activations and kernel scratch, greedy planner); its total adds the "
           "persistent tail (tensor and node structs, quantization data) that mcuc keeps in flash or does not "
           "need. mcuc's columns are `arena_bytes` of `mcuc compile` (layer-based) and of `--schedule patch`.\n\n"
           + table + "\n")
    (ROOT / "bench" / "RESULTS-tflite.md").write_text(doc)


if __name__ == "__main__":
    main()
