"""Running a compiled project on the host or under QEMU, and checking it bit for bit against the int8 reference.

Inputs and outputs cross this module as int8 arrays in graph layout (NHWC), one sample per row of the first
axis; input_samples and source_outputs convert from and to the source model's layout and dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mcuc.boards import load_board
from mcuc.errors import MCUCError
from mcuc.execute import run_int8
from mcuc.ir import Graph
from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, source_shape, to_graph_layout
from mcuc.pixels import PixelFormat, load_images, to_camera_layout
from mcuc.progress import Progress, log
from mcuc.project import load_project
from mcuc.report import REPORT_FILE, merge_measured, read_report
from mcuc.targets.cost import count_instructions, save_instructions
from mcuc.targets.host import run_host
from mcuc.targets.qemu import run_qemu_checked

DEFAULT_QEMU_BOARD = "qemu-mps2-an386"


def qemu_board_for(outdir: Path, requested: str | None) -> str:
    """The QEMU board to run on: the one asked for, else the compile board if it is a QEMU board."""
    if requested:
        board = load_board(requested)
        if board.kind != "qemu":
            raise MCUCError(f"board '{requested}' is not a QEMU board; use qemu-mps2-an386, qemu-mps2-an500 "
                            "or qemu-mps3-an547")
        return board.name
    _, report = load_project(str(outdir))
    compiled_for = str(report.get("board", ""))
    if compiled_for and load_board(compiled_for).kind == "qemu":
        return compiled_for
    return DEFAULT_QEMU_BOARD


def run_samples(outdir: Path, g: Graph, q_inputs: dict[str, np.ndarray], target: str,
                sanitize: bool = True, board: str | None = None,
                progress: Callable[[str], None] = log) -> dict[str, np.ndarray]:
    """Run graph-layout inputs (each N x shape[1:], int8 or uint8 pixels) on ``target``; return int8 outputs."""
    n = next(iter(q_inputs.values())).shape[0]
    flat = np.concatenate([q_inputs[k].reshape(n, -1).view(np.int8) for k in g.inputs], axis=1)
    out_bytes = sum(g.tensors[name].nbytes for name in g.outputs)
    if target == "host":
        raw = run_host(outdir, flat, out_bytes, sanitize=sanitize)
    elif target == "qemu":
        qboard = qemu_board_for(outdir, board)
        progress(f"running {n} samples under QEMU ({qboard}) ...")
        raw, memcheck = run_qemu_checked(outdir, qboard, flat, out_bytes, progress=Progress("  QEMU samples"))
        if memcheck is not None:
            progress(record_memcheck(outdir, memcheck))
    else:
        raise MCUCError(f"unknown target '{target}': use host or qemu")
    outs, pos = {}, 0
    for name in g.outputs:
        t = g.tensors[name]
        outs[name] = raw[:, pos:pos + t.size].reshape((n, *t.shape[1:]))
        pos += t.size
    return outs


def record_memcheck(outdir: Path, memcheck: dict[str, Any]) -> str:
    """Put the firmware's measured stack and guard check into OUTDIR/report.json (measured.stack) beside the
    predictions (stack reserved by the linker script, the report's estimate); return the line to print."""
    has_report = (Path(outdir) / REPORT_FILE).exists()
    estimate = int(read_report(outdir).get("stack_estimate_bytes", 0)) if has_report else 0
    entry = {**memcheck, "stack_estimate_bytes": estimate,
             # the lowest reserved word overwritten means the stack may have run past its reservation
             "stack_within_reserved": memcheck["stack_used_bytes"] < memcheck["stack_reserved_bytes"]}
    if has_report:
        merge_measured(outdir, "stack", entry)
    guards = "intact" if memcheck["arena_guards_intact"] else "CORRUPTED"
    return (f"stack: {memcheck['stack_used_bytes']:,} B used of {memcheck['stack_reserved_bytes']:,} B reserved "
            f"({memcheck['board']}; one inference {memcheck['invoke_stack_bytes']:,} B, estimate {estimate:,} B); "
            f"arena guards {guards}")


def input_samples(g: Graph, x: np.ndarray, raw: bool) -> np.ndarray:
    """A single-input model's input batch in the source layout (one sample may omit the batch axis) as int8 in
    graph layout: quantized with the model's input quantization, or, ``raw``, taken as int8 as it is."""
    if len(g.inputs) != 1:
        raise MCUCError("mcuc run supports single-input models; feed multi-input models through the C API")
    name = g.inputs[0]
    want = source_shape(g, name)
    if x.dtype.kind not in "biuf":
        raise MCUCError(f"the input holds {x.dtype} values; mcuc runs real numbers (float32, or int8 with --raw)")
    if x.ndim == len(want) - 1:
        x = x[None]
    if x.ndim == len(want) and x.shape[0] == 0:
        raise MCUCError(f"the input batch holds no samples (shape {x.shape})")
    if tuple(x.shape[1:]) != tuple(want[1:]):
        raise MCUCError(f"input has shape {x.shape}; the model wants (N, {', '.join(map(str, want[1:]))})")
    if g.tensors[name].dtype == "uint8":  # a camera image: uint8 pixels in, with or without --raw
        if x.dtype != np.uint8:
            pix = g.meta.get("pixel_input", {})
            raise MCUCError(f"this model takes uint8 camera pixels ({pix.get('format', 'uint8')}, "
                            f"{pix.get('layout', 'hwc')}), got {x.dtype} values: pass a uint8 .npy batch or images")
        return np.ascontiguousarray(x)
    xg = to_graph_layout(g, name, x)
    if raw:
        if x.dtype != np.int8:
            raise MCUCError(f"--raw needs an int8 input array, got {x.dtype}")
        return xg.astype(np.int8)
    xf = xg.astype(np.float32)
    if not np.all(np.isfinite(xf)):
        raise MCUCError("the input holds NaN or infinite values (or values beyond float32)")
    return quantize_input(g, name, xf)


def read_input(g: Graph, path: str) -> np.ndarray:
    """The --input of ``mcuc run``: an .npy array; for a camera-input model also an image or a folder of images
    (read as uint8 at the model's resolution)."""
    pix = g.meta.get("pixel_input")
    if pix and not path.lower().endswith(".npy"):
        fmt = PixelFormat(pix["format"], tuple(pix["mean"]), tuple(pix["std"]), pix["layout"])
        _, h, w, _ = g.tensors[pix["input"]].shape  # the int8 NHWC tensor the pixel op writes
        return to_camera_layout(load_images(path, fmt, h, w), fmt)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise MCUCError(f"input file '{path}' does not exist") from e
    except Exception as e:
        raise MCUCError(f"cannot read input '{path}' as .npy ({e.__class__.__name__})") from e


def source_outputs(g: Graph, outs: dict[str, np.ndarray], raw: bool) -> dict[str, np.ndarray]:
    """int8 graph-layout outputs in the source layout: dequantized to float32, or, ``raw``, int8."""
    results = {}
    for name, y in outs.items():
        y = from_graph_layout(g, name, y)
        results[name] = y if raw else dequantize_output(g, name, y)
    return results


def profile_first_sample(outdir: Path, g: Graph, q: np.ndarray, board: str | None,
                         progress: Callable[[str], None] = log) -> dict[str, Any]:
    """Count the instructions of one inference of ``q`` (int8, graph layout) under QEMU; write them into
    report.json (measured.instructions) and return them."""
    qboard = qemu_board_for(outdir, board)
    progress(f"counting instructions of one inference under QEMU ({qboard}) ...")
    counts = count_instructions(outdir, g, qboard, q)
    save_instructions(outdir, counts)
    return counts


def verify_project(outdir: Path, g: Graph, samples: int, seed: int, target: str,
                   board: str | None = None) -> dict[str, Any]:
    """Random int8 inputs through the C build and the int8 reference; count differing elements."""
    rng = np.random.default_rng(seed)
    q_inputs = {n: rng.integers(*((0, 256) if g.tensors[n].dtype == "uint8" else (-128, 128)),
                                size=(samples, *g.tensors[n].shape[1:]), dtype=np.dtype(g.tensors[n].dtype))
                for n in g.inputs}
    c_out = run_samples(outdir, g, q_inputs, target, board=board)
    worst, total = 0, 0
    mismatched = 0
    for i in range(samples):
        ref = run_int8(g, {n: q_inputs[n][i:i + 1] for n in g.inputs})
        for name in g.outputs:
            d = np.abs(ref[name].astype(np.int32) - c_out[name][i:i + 1].astype(np.int32))
            worst = max(worst, int(d.max()))
            mismatched += int((d != 0).sum())
            total += d.size
    where = f"qemu {qemu_board_for(outdir, board)}" if target == "qemu" else target
    return {"samples": samples, "elements": total, "mismatched": mismatched, "max_lsb": worst, "where": where}
