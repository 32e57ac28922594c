"""The compile pipeline as one function of (model, options): load, passes, quantize, plan, emit."""
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from math import isqrt
from pathlib import Path

import numpy as np

from mcuc.boards import Board, list_boards, load_board
from mcuc.calib import load_calibration, load_pixel_calibration
from mcuc.errors import MCUCError
from mcuc.frontend import model_file
from mcuc.frontend.onnx import load_onnx
from mcuc.frontend.tflite import load_tflite
from mcuc.ir import Graph
from mcuc.memsim import check, simulate
from mcuc.model_io import source_shape, to_graph_layout
from mcuc.ops import verify
from mcuc.passes.attention import fuse_attention
from mcuc.passes.kernels import KERNEL_MODES, fit_kernels, kernel_names, select_kernels
from mcuc.passes.pipeline import float_pipeline
from mcuc.passes.quantize import RangeObserver, calibrate, quantize_graph, unscaled_activations
from mcuc.pixels import add_pixel_input, pixel_format, plan_pixels
from mcuc.plan import InvalidPlanError
from mcuc.progress import Progress
from mcuc.report import Report, build_report, replay_differences
from mcuc.schedule.base import Schedule, fused_schedule, layer_schedule
from mcuc.schedule.search import select_schedule


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
    attention_block: str = "auto"  # --attention-block: auto | whole (unfused) | R query rows per block
    stream_input: bool = False  # --stream-input: the input arrives row by row from the application
    kernels: str = "auto"  # --kernels: fast | small | auto (fast if it fits the SRAM budget; see passes/kernels.py)
    input_format: str = "float"  # --input-format: float | uint8-rgb | uint8-gray (camera image, mcuc/pixels.py)
    input_layout: str | None = None  # --input-layout: hwc | chw of a camera image (default hwc)


@dataclass
class Compiled:
    graph: Graph  # int8, NHWC
    float_graph: Graph  # float, NHWC, after passes (the graph calibration ran on)
    board: Board
    options: CompileOptions
    schedule: Schedule  # planned: layer-based (no patch stage) or patch-based
    report: Report


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_model(path: str) -> Graph:
    """Parse a model file into a Graph in its source layout (float for .onnx, int8 for .tflite)."""
    suffix = model_file(path).suffix.lower()
    if suffix == ".onnx":
        return load_onnx(path)
    if suffix == ".tflite":
        return load_tflite(path)
    raise MCUCError(f"'{path}': unknown model format '{suffix}'; mcuc reads .onnx and .tflite files")


def float_graph_for(path: str) -> Graph:
    return float_pipeline(load_model(path))


def calibration_feeds(g: Graph, src_graph_input_shapes: dict[str, tuple[int, ...]],
                      opts: CompileOptions, warn: Callable[[str], None] = log,
                      unscaled: list[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Calibration samples per graph input; ``unscaled`` (QDQ models) names the activations they are for."""
    if len(g.inputs) != 1:
        if opts.calib:
            raise MCUCError("--calib supports single-input models only")
    feeds_per_input = {}
    for name in g.inputs:
        batch = load_calibration(opts.calib if len(g.inputs) == 1 else None, src_graph_input_shapes[name],
                                 mean=opts.mean, std=opts.std, samples=opts.calib_samples, warn=warn,
                                 unscaled=unscaled)
        feeds_per_input[name] = batch
    n = min(len(b) for b in feeds_per_input.values())
    return [{k: to_graph_layout(g, k, v[i:i + 1]) for k, v in feeds_per_input.items()} for i in range(n)]


def quantized_graph(model_path: str, opts: CompileOptions,
                    progress: Callable[[str], None] = log) -> tuple[Graph, Graph]:
    """The front half of a compile: (int8 graph with attention fused, float graph it was calibrated on).

    A .tflite model is already int8: its own quantization is kept and it is its own "float" graph.
    """
    fmt = pixel_format(opts.input_format, opts.mean, opts.std, opts.input_layout)
    plan = None
    if Path(model_path).suffix.lower() == ".tflite":
        if fmt is not None:
            raise MCUCError(f"--input-format {fmt.kind} folds the normalisation into a float model's quantization; "
                            "a .tflite model is already int8: compile its ONNX source, or feed it int8 input")
        if opts.calib:
            progress("note: --calib is ignored for a .tflite model (it carries its own quantization)")
        qg = fg = load_model(model_path)
        check_tensor_sizes(qg)
    else:
        fg = float_graph_for(model_path)
        verify(fg)
        check_tensor_sizes(fg)
        unscaled = unscaled_activations(fg) if fg.meta.get("qdq") else None
        if fmt is None and opts.calib is None and unscaled == []:
            obs = RangeObserver(opts.calib_method)  # a fully QDQ model: every activation has the model's own scale
        else:
            if fmt is None:
                feeds = calibration_feeds(fg, {n: source_shape(fg, n) for n in fg.inputs}, opts, progress, unscaled)
            else:
                plan = plan_pixels(fg, fmt)
                fg = plan.graph
                _, h, w, _ = fg.tensors[plan.input_name].shape
                images = load_pixel_calibration(opts.calib, fmt, h, w, samples=opts.calib_samples, warn=progress)
                feeds = [{plan.input_name: plan.float_input(images[i:i + 1])} for i in range(len(images))]
            progress(f"calibrating on {len(feeds)} samples ...")
            obs = calibrate(fg, feeds, opts.calib_method,
                            progress=Progress("  calibration sample") if progress is log else None)
        qg = quantize_graph(fg, obs, {plan.input_name: plan.quant} if plan else None)
        if plan is not None:
            qg = add_pixel_input(qg, plan)
            progress(f"camera input ({plan.fmt.kind}, {plan.fmt.layout}): {plan.describe()}")
    verify(qg, quantized=True)
    return fuse_attention(qg, opts.attention_block, opts.planner), fg


def check_tensor_sizes(g: Graph) -> None:
    """Refuse, before calibrating, an activation the generated C cannot address: its element count (and every
    offset into it) is an int32 there. Calibrating such a tensor in float32 would also take 8 GB or more."""
    for name in g.activations():
        t = g.tensors[name]
        size = math.prod(int(d) for d in t.shape)  # exact: Tensor.size would wrap around int64
        if size == 0:
            raise MCUCError(f"tensor '{name}' of shape {t.shape} is empty")
        if size > 2**31 - 1:
            raise MCUCError(f"tensor '{name}' of shape {t.shape} has {size:,} elements; the generated C "
                            "addresses at most 2^31-1 (check the model's input shape and attributes)")


def compile_model(model_path: str, opts: CompileOptions,
                  progress: Callable[[str], None] = log) -> Compiled:
    board = load_board(opts.board)
    if opts.sram is not None and opts.sram > board.sram_bytes:
        raise MCUCError(f"--sram {opts.sram:,} exceeds the {board.sram_bytes:,} B of SRAM a model can use on board "
                        f"'{board.name}' ({board.placement()}); pass a smaller budget or another board")
    if opts.flash is not None and opts.flash > board.flash_bytes:
        raise MCUCError(f"--flash {opts.flash:,} exceeds the {board.flash_bytes:,} B of flash region "
                        f"'{board.text_region.name}' on board '{board.name}'; pass a smaller budget or another board")
    qg, fg = quantized_graph(model_path, opts, progress)
    budget = opts.sram if opts.sram is not None else board.sram_bytes
    model_file = Path(model_path).name
    sched: Schedule | None = None
    error = MCUCError("no kernel choice")
    for choice, kg in kernel_graphs(qg, board, opts):  # the fastest kernels first
        try:
            sched = select_schedule(kg, opts.schedule, opts.planner, budget, opts.sram is not None,
                                    opts.max_overhead, opts.split, opts.patch_grid,
                                    ("recompute", "cache") if opts.halo == "auto" else (opts.halo,),
                                    opts.stream_input, progress=_search_progress(progress),
                                    stack_bytes=board.stack_bytes)
        except MCUCError as e:
            if not str(e).startswith("no schedule fits"):
                raise
            # nothing fits: name the layer-based peak, what is live there and what else would fit
            layer = layer_schedule(kg, board.stack_bytes).plan(opts.planner)
            rep = build_report(layer, board, budget, opts.attention_block, model_file, opts.kernels)
            error = MCUCError(_does_not_fit_message(rep, layer, opts, budget, board, patch_searched=True))
            sched = None
            continue
        sched.kernels = choice
        if sched.peak_sram_bytes <= budget:
            break
    if sched is None:
        raise error from None
    if sched.patch is not None:
        progress(f"schedule: {sched.label()}, +{sched.mac_overhead:.1%} MACs")
    compiled = assemble(sched, board, opts, fg, model_file)
    if sched.fused:  # the peak the other way of delivering the image would need
        compiled.report.peak_sram_resident_bytes = compiled.report.peak_sram_bytes if not sched.streamed else \
            _other_input_peak(sched, opts.planner, False)
        compiled.report.peak_sram_streamed_bytes = compiled.report.peak_sram_bytes if sched.streamed else \
            _other_input_peak(sched, opts.planner, True)
    if compiled.report.peak_sram_bytes > budget:
        raise MCUCError(_does_not_fit_message(compiled.report, sched, opts, budget, board))
    problems = fit_problems(compiled.report, board, opts.flash)
    if problems:
        raise MCUCError(f"model does not fit board '{board.name}' as its linker script places memory: "
                        + "; ".join(problems))
    return compiled


def kernel_graphs(qg: Graph, board: Board, opts: CompileOptions) -> list[tuple[str, Graph]]:
    """The int8 graph with its kernel variants chosen (mcuc/passes/kernels.py), one (choice, graph) per choice to
    try in order: ``--kernels fast`` or ``small`` give one; ``auto`` gives fast kernels, then (when that differs)
    small kernels upgraded where their scratch does not raise the peak ("fit")."""
    if opts.kernels in KERNEL_MODES:
        return [(opts.kernels, select_kernels(qg, board.isa, opts.kernels))]
    if opts.kernels != "auto":
        raise MCUCError(f"unknown --kernels '{opts.kernels}': use fast, small or auto")
    fast = select_kernels(qg, board.isa, "fast")
    fitted = fit_kernels(qg, board.isa, opts.planner)
    return [("fast", fast)] if kernel_names(fitted) == kernel_names(fast) else [("fast", fast), ("fit", fitted)]


def fit_problems(rep: Report, board: Board, flash_budget: int | None = None) -> list[str]:
    """What of a compiled model does not fit ``board`` where its linker script puts it (empty: it fits), known
    before any firmware is built: the arena, with the stack when they share a region, in the data region (as the
    memory replay places it, ``simulated.exceeds_region``); the stack in its region; the predicted flash image
    in the board's text region and in ``flash_budget``. A firmware build then checks the measured image too."""
    out = []
    arena = rep.arena_bytes + rep.scratch_bytes
    if rep.simulated.get("exceeds_region"):
        stack = f" + {rep.stack_bytes:,} B stack" if board.stack_in_data_region else ""
        out.append(f"the arena ({arena:,} B){stack} exceeds SRAM region '{board.data_region.name}' "
                   f"({board.data_region.size:,} B), where the linker places .data, .bss and the arena, by "
                   f"{arena + (rep.stack_bytes if board.stack_in_data_region else 0) - board.data_region.size:,} B")
    if not board.stack_in_data_region and rep.stack_bytes > board.stack_region.size:
        out.append(f"the stack ({rep.stack_bytes:,} B) exceeds SRAM region '{board.stack_region.name}' "
                   f"({board.stack_region.size:,} B)")
    flash = rep.predicted_flash_bytes
    what = f"predicted flash image {flash:,} B (weights {rep.weights_bytes:,} B + op arrays + code estimate)"
    for limit, name in ((board.flash_bytes, f"flash region '{board.text_region.name}'"),
                        (flash_budget, "the --flash budget")):
        if limit is not None and flash > limit:
            out.append(f"{what} exceeds the {limit:,} B of {name} by {flash - limit:,} B")
            break
    return out


def _other_input_peak(sched: Schedule, planner: str, stream: bool) -> int | None:
    """Peak SRAM of ``sched``'s layer-based schedule fused with the image resident or streamed (patch
    schedules: not computed)."""
    if sched.patch is not None:
        return None
    try:
        layer = layer_schedule(sched.source, sched.stack_bytes)
        return fused_schedule(layer, stream_input=stream).plan(planner).peak_sram_bytes
    except MCUCError:
        return None


def _search_progress(progress: Callable[[str], None]) -> Callable[[int, int], None] | None:
    """Progress of compile's patch-schedule search: redrawn in place on a terminal, silent otherwise (and
    silent for callers with their own progress function)."""
    if progress is not log or not sys.stderr.isatty():
        return None
    return Progress("  searching patch schedules (split x grid)")


def assemble(sched: Schedule, board: Board, opts: CompileOptions, float_graph: Graph | None = None,
             model_file: str = "") -> Compiled:
    """The compile result of planned schedule ``sched``: its report, checked against the memory replay. The peak
    counts the stack ``board`` reserves."""
    if sched.stack_bytes != board.stack_bytes:
        sched = replace(sched, stack_bytes=board.stack_bytes)
    budget = opts.sram if opts.sram is not None else board.sram_bytes
    report = build_report(sched, board, budget, opts.attention_block, model_file, opts.kernels)
    _check_simulated(sched, board, report)
    return Compiled(sched.source, float_graph if float_graph is not None else sched.source, board, opts, sched,
                    report)


def _check_simulated(sched: Schedule, board: Board, report: Report) -> None:
    """The byte-level replay of the schedule (mcuc.memsim) must find no overlap and reproduce every
    memory number of the report; a difference is a planner bug, never a user error."""
    sim = check(simulate(sched.graph, sched.planned, board))
    diffs = replay_differences(report, sim)
    if diffs:
        raise InvalidPlanError("report disagrees with the simulated memory replay: " + "; ".join(diffs))


def _does_not_fit_message(rep: Report, sched: Schedule, opts: CompileOptions, budget: int, board: Board,
                          patch_searched: bool = False) -> str:
    """One line: how far over the budget, where the peak is, what is live there, and what would fit."""
    peak = rep.peak_sram_bytes
    worst = rep.peak_op()
    sizes = {b["name"]: b["size"] for b in rep.buffers}
    top = sorted(worst.get("live_tensors", []), key=lambda r: -sizes.get(r, 0))[:3]
    contributors = ", ".join(f"'{r}' {sizes.get(r, 0):,} B" for r in top)
    of = "" if opts.sram is not None else f"; board '{board.name}': {board.placement()}"
    return (f"model needs {peak:,} B of SRAM but the budget is {budget:,} B ({peak - budget:,} B over{of}); "
            f"peak at op {worst['index']} '{worst['name']}' ({worst['op']}, {worst['live_bytes']:,} B live"
            + (f": largest {contributors}" if contributors else "") + "); would fit: "
            + "; ".join(_what_would_fit(rep, sched, opts, budget, patch_searched)))


def _what_would_fit(rep: Report, sched: Schedule, opts: CompileOptions, budget: int,
                    patch_searched: bool = False) -> list[str]:
    """Alternatives that fit ``budget``: a patch schedule, a smaller input, a board with more SRAM."""
    out = []
    fixed = rep.peak_sram_bytes - rep.arena_bytes  # stack and scratch outside the arena
    if not sched.fused:  # row pipelines: no extra MACs (auto has tried them already when it searched)
        for stream, flags, what in ((False, "--schedule fused", "the peak-setting ops fused into row pipelines"),
                                    (True, "--schedule fused --stream-input", "the image streamed by rows")):
            if patch_searched and not stream:
                continue
            try:
                f = fused_schedule(layer_schedule(sched.source, sched.stack_bytes),
                                   stream_input=stream).plan(opts.planner)
            except MCUCError:
                continue
            if f.peak_sram_bytes <= budget:
                out.append(f"{what} ({f.peak_sram_bytes:,} B peak, no extra MACs: {flags})")
                break
    if patch_searched:
        out.append(f"no patch schedule within {opts.max_overhead:.0%} MAC overhead (searched)")
    elif sched.patch is None:
        try:
            cand = select_schedule(sched.source, "patch", opts.planner, budget, True, opts.max_overhead,
                                   stack_bytes=sched.stack_bytes)
            out.append(f"{cand.label()} ({cand.peak_sram_bytes:,} B peak, "
                       f"+{cand.mac_overhead:.1%} MACs: --schedule patch --split {cand.split} "
                       f"--patch-grid {cand.grid[0]} {cand.grid[1]})")
        except MCUCError:
            out.append(f"no patch schedule within {opts.max_overhead:.0%} MAC overhead")
    g = sched.source
    shape = g.tensors[g.inputs[0]].shape if g.inputs else ()
    if len(shape) == 4 and budget > fixed:
        # activation bytes grow with H x W: scale both sides by sqrt(room / arena), down to a multiple of 8
        h, w = int(shape[1]), int(shape[2])
        room, arena = budget - fixed, max(rep.arena_bytes, 1)
        h2, w2 = (max(8, isqrt(v * v * room // arena) // 8 * 8) for v in (h, w))
        if (h2, w2) != (h, w):
            out.append(f"an input of about {h2}x{w2} instead of {h}x{w} (estimate: activations scale with H x W)")
    need = rep.arena_bytes + rep.scratch_bytes
    boards = [b for b in list_boards() if b.kind != "host" and b.name != rep.board and b.arena_room_bytes >= need]
    boards.sort(key=lambda b: (b.kind != "mcu", b.sram_bytes))  # real boards first, then emulated ones
    if boards:
        out.append("board " + " or ".join(f"{b.name} ({b.sram_bytes // 1024} KiB SRAM)" for b in boards[:2]))
    else:
        out.append("no board of 'mcuc boards' has enough SRAM")
    return out
