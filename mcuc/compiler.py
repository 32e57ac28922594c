"""The compile pipeline as one function of (model, options): load, passes, quantize, plan, emit."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcuc.boards import Board, load_board
from mcuc.errors import MCUCError
from mcuc.ir import Graph, verify
from mcuc.model_io import to_graph_layout


@dataclass
class CompileOptions:
    board: str = "host"
    sram: int | None = None
    flash: int | None = None
    calib: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    calib_method: str = "minmax"
    planner: str = "best"
    schedule: str = "layer"
    calib_samples: int = 8
    patch_grid: tuple[int, int] | None = None  # --patch-grid R C (patch/auto schedules)
    split: int | None = None  # --split N: the patch stage is the first N ops
    max_overhead: float = 0.2  # --max-overhead: largest whole-network MAC overhead a patch schedule may add
    halo: str = "recompute"  # --halo: recompute | cache (rows kept for the patch below) | auto (search both)


@dataclass
class Compiled:
    graph: Graph  # int8, NHWC
    float_graph: Graph  # float, NHWC, after passes (the graph calibration ran on)
    board: Board
    options: CompileOptions
    memory: object  # mcuc.memory.MemoryPlan
    report: dict = field(default_factory=dict)
    schedule: object = None  # mcuc.schedule.patch.PatchSchedule for a patch schedule, None for layer-based


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_model(path: str) -> Graph:
    """Parse a model file into a float Graph in its source layout."""
    p = Path(path)
    if not p.exists():
        raise MCUCError(f"model file '{path}' does not exist")
    if p.is_dir():
        raise MCUCError(f"'{path}' is a directory, not a model file (.onnx)")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from mcuc.frontend.onnx import load_onnx

        return load_onnx(str(p))
    if suffix == ".tflite":
        raise MCUCError(f"'{path}': .tflite models are not supported yet; export the model to ONNX")
    raise MCUCError(f"'{path}': unknown model format '{suffix}'; mcuc reads .onnx files")


def float_graph_for(path: str) -> Graph:
    from mcuc.passes.pipeline import float_pipeline

    return float_pipeline(load_model(path))


def calibration_feeds(g: Graph, src_graph_input_shapes: dict[str, tuple[int, ...]],
                      opts: CompileOptions) -> list[dict[str, np.ndarray]]:
    from mcuc.calib import load_calibration

    if len(g.inputs) != 1:
        if opts.calib:
            raise MCUCError("--calib supports single-input models only")
    feeds_per_input = {}
    for name in g.inputs:
        batch = load_calibration(opts.calib if len(g.inputs) == 1 else None, src_graph_input_shapes[name],
                                 mean=opts.mean, std=opts.std, samples=opts.calib_samples, warn=log)
        feeds_per_input[name] = batch
    n = min(len(b) for b in feeds_per_input.values())
    return [{k: to_graph_layout(g, k, v[i:i + 1]) for k, v in feeds_per_input.items()} for i in range(n)]


def compile_model(model_path: str, opts: CompileOptions,
                  progress: Callable[[str], None] = log) -> Compiled:
    from mcuc.memory import plan_memory
    from mcuc.model_io import source_shape
    from mcuc.passes.quantize import calibrate, quantize_graph
    from mcuc.report import build_report

    board = load_board(opts.board)
    if opts.sram is not None and opts.sram > board.sram_bytes:
        raise MCUCError(f"--sram {opts.sram} exceeds the {board.sram_bytes} bytes of SRAM on board "
                        f"'{board.name}'; pass a smaller budget or another board")
    fg = float_graph_for(model_path)
    verify(fg)
    shapes = {n: source_shape(fg, n) for n in fg.inputs}
    feeds = calibration_feeds(fg, shapes, opts)
    progress(f"calibrating on {len(feeds)} samples ...")
    obs = calibrate(fg, feeds, opts.calib_method)
    qg = quantize_graph(fg, obs)
    verify(qg, quantized=True)
    budget = opts.sram if opts.sram is not None else board.sram_bytes
    if opts.schedule == "layer":
        mem, sched = plan_memory(qg, opts.planner), None
    else:
        from mcuc.schedule.search import select_schedule

        chosen = select_schedule(qg, opts.schedule, opts.planner, budget, opts.sram is not None, opts.max_overhead,
                                 opts.split, opts.patch_grid,
                                 ("recompute", "cache") if opts.halo == "auto" else (opts.halo,))
        mem, sched = chosen.memory, chosen.schedule
        progress(f"schedule: {chosen.label()}, +{chosen.mac_overhead:.1%} MACs")
    compiled = Compiled(qg, fg, board, opts, mem, schedule=sched)
    compiled.report = build_report(compiled)
    peak = compiled.report["peak_sram_bytes"]
    if peak > budget:
        raise MCUCError(_does_not_fit_message(compiled, budget))
    return compiled


def _does_not_fit_message(c: Compiled, budget: int) -> str:
    rep = c.report
    worst = max(rep["ops"], key=lambda o: o["live_bytes"])
    return (f"model needs {rep['peak_sram_bytes']:,} B of SRAM but the budget is {budget:,} B "
            f"({rep['peak_sram_bytes'] - budget:,} B over); peak at op '{worst['name']}' ({worst['op']}, "
            f"{worst['live_bytes']:,} B live); use a larger --sram, a board with more SRAM, "
            f"or a smaller input resolution")
