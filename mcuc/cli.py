"""mcuc command line (click): compile, run, verify, profile, search, flash, boards, zoo, redistribute.

Each command only turns options into calls of the library and prints the result. Exit status: 0 done,
1 an error (one 'error: ...' line on stderr, no traceback) or a failed verification, 2 a usage error
(click's usage message), 130 interrupted.
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from mcuc.boards import list_boards, load_board
from mcuc.compiler import CompileOptions, compile_model, quantized_graph
from mcuc.errors import MCUCError
from mcuc.flash import flash
from mcuc.parallel import Workers
from mcuc.passes.attention import parse_block
from mcuc.passes.kernels import kernel_names, select_kernels
from mcuc.profile import render, write_profiles
from mcuc.progress import Progress, log
from mcuc.project import load_project, write_project
from mcuc.report import REPORT_FILE, read_report, summary_text
from mcuc.runner import (
    input_samples,
    profile_first_sample,
    read_input,
    run_samples,
    source_outputs,
    verify_project,
)
from mcuc.schedule.base import peak_sram_bytes
from mcuc.schedule.search import choose, pareto, pareto_table, search_candidates
from mcuc.sizes import parse_count, parse_size
from mcuc.targets.cost import instructions_text
from mcuc.targets.elfsize import size_summary
from mcuc.targets.firmware import build_and_measure

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
SCHEDULES = click.Choice(["layer", "fused", "patch", "auto"])
HALOS = click.Choice(["recompute", "cache", "auto"])
TARGETS = click.Choice(["host", "qemu"])


def _examples(*lines: str) -> str:
    """A help epilog kept as written (click's \\b marker stops rewrapping)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


class Floats(click.ParamType):
    """One or more numbers: the words after the option (`--mean 0.485 0.456 0.406`, joined into one value by
    VariadicCommand) or one word with commas (`--mean 0.485,0.456,0.406`)."""

    name = "floats"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[float]:
        if isinstance(value, list):
            return value
        try:
            numbers = [float(v) for v in str(value).replace(",", " ").split()]
        except ValueError:
            numbers = []
        if not numbers:
            self.fail(f"{value!r} is not a list of numbers", param, ctx)
        return numbers


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


class VariadicCommand(click.Command):
    """A command whose Floats options take every number that follows them, as in `--mean 0.5 0.5 0.5 model.onnx`
    (click options otherwise take a fixed number of values)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = {o for p in self.params if isinstance(p, click.Option) and isinstance(p.type, Floats) for o in p.opts}
        words: list[str] = []
        i = 0
        while i < len(args):
            word = args[i]
            words.append(word)
            i += 1
            if word == "--":
                words.extend(args[i:])
                break
            if word in names:
                end = i
                while end < len(args) and _is_number(args[end]):
                    end += 1
                if end > i:
                    words.append(" ".join(args[i:end]))
                    i = end
        return super().parse_args(ctx, words)


@click.group(context_settings=CONTEXT, epilog=_examples(
    "mcuc compile model.onnx --board stm32f746 --calib calib.npy -o build/model",
    "mcuc run build/model --input x.npy --output y.npy",
    "mcuc verify build/model --samples 16",
    "mcuc COMMAND --help      options and an example of each command"))
def cli() -> None:
    """Compile neural networks to int8 C for microcontrollers."""


@cli.command("compile", cls=VariadicCommand, epilog=_examples(
    "mcuc compile model.onnx --board stm32f746 --sram 320k --calib calib.npy -o build/model",
    "mcuc compile model.onnx --calib images/ --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 -o build/model",
    "mcuc compile model.onnx --input-format uint8-rgb --calib images/ --mean 0.5 --std 0.5 -o build/camera",
    "mcuc compile model.tflite --board qemu-mps3-an547 --schedule auto -o build/tfl"))
@click.argument("model")
@click.option("--board", default="host", show_default=True, metavar="BOARD", help="target board (see 'mcuc boards')")
@click.option("--sram", metavar="SIZE", help="SRAM budget, e.g. 320k, 1M, 327680  [default: the board's SRAM]")
@click.option("--flash", metavar="SIZE", help="flash budget  [default: the board's flash]")
@click.option("--calib", metavar="FILE.npy|DIR",
              help="calibration data: .npy batch in the model's input layout, or image folder")
@click.option("--mean", type=Floats(), metavar="M [M ...]",
              help="per-channel mean of the normalisation x = (p/255 - mean)/std (image-folder calibration, "
                   "camera input)")
@click.option("--std", type=Floats(), metavar="S [S ...]", help="per-channel std of that normalisation")
@click.option("--input-format", type=click.Choice(["float", "uint8-rgb", "uint8-gray"]), default="float",
              show_default=True,
              help="float: the model's own input, quantized by the caller; uint8-rgb/uint8-gray: the camera's "
                   "uint8 pixels, normalised by the model (--mean/--std folded into its int8 input)")
@click.option("--input-layout", type=click.Choice(["hwc", "chw"]),
              help="camera image layout for uint8 input: hwc (interleaved) or chw (planar)  [default: hwc]")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile"]), default="minmax", show_default=True,
              help="activation range from calibration")
@click.option("--planner", type=click.Choice(["greedy", "best"]), default="best", show_default=True,
              help="arena planning strategy")
@click.option("--schedule", type=SCHEDULES, default="layer", show_default=True,
              help="layer: op by op; fused: the op ranges that set the peak run row by row as pipelines (no "
                   "extra MACs); patch: the first ops patch by patch (MCUNetV2); auto: the first of layer, fused, "
                   "patch (plain or fused) that fits")
@click.option("--stream-input", is_flag=True,
              help="the application hands the input over row by row while the model runs (a camera DMA), so "
                   "the image never sits in SRAM (fused schedules; model.h: mcuc_model_invoke_streamed)")
@click.option("--patch-grid", type=int, nargs=2, metavar="R C", help="patch grid  [default: searched]")
@click.option("--split", type=int, metavar="N", help="the patch stage is the first N ops  [default: searched]")
@click.option("--max-overhead", type=float, default=0.2, show_default=True, metavar="F",
              help="largest whole-network MAC overhead a patch schedule may add")
@click.option("--halo", type=HALOS, default="recompute", show_default=True,
              help="patch overlaps: recompute (MCUNetV2), cache rows for the patch below, or search both")
@click.option("--attention-block", default="auto", show_default=True, metavar="auto|whole|R",
              help="attention: R query rows per block (scores never whole), auto (largest R not raising the "
                   "peak), or whole (unfused, whole score matrices)")
@click.option("--kernels", type=click.Choice(["auto", "fast", "small"]), default="auto", show_default=True,
              help="kernel variants: fast (the fastest for the board's core, with any scratch they need), small "
                   "(no kernel scratch), auto (fast if it fits --sram, else small plus the fast ones whose scratch "
                   "does not raise the peak)")
@click.option("-o", "--output", default="build/mcuc_out", show_default=True, metavar="OUTDIR",
              help="output directory")
@click.option("--no-build", is_flag=True,
              help="firmware boards: do not build the firmware (no measured sizes, no fit check)")
def compile_command(model: str, board: str, sram: str | None, flash: str | None, calib: str | None,
                    mean: list[float] | None, std: list[float] | None, calib_method: str, planner: str,
                    input_format: str, input_layout: str | None, schedule: str, stream_input: bool,
                    patch_grid: tuple[int, int] | None, split: int | None, max_overhead: float, halo: str,
                    attention_block: str, kernels: str, output: str, no_build: bool) -> int:
    """Compile a model into a C project.

    MODEL is a float or QDQ .onnx file, or a full-integer .tflite file with its own quantization. OUTDIR gets
    model.c, model.h, weights.c, CMakeLists.txt, report.json and the memory profile; for a firmware board the
    firmware is also built, measured and checked against the board's flash and RAM.
    """
    opts = CompileOptions(board=board, sram=parse_size(sram) if sram is not None else None,
                          flash=parse_size(flash) if flash is not None else None, calib=calib, mean=mean, std=std,
                          calib_method=calib_method, planner=planner, schedule=schedule,
                          patch_grid=patch_grid or None, split=split, max_overhead=max_overhead, halo=halo,
                          attention_block=parse_block(attention_block), input_format=input_format,
                          input_layout=input_layout, stream_input=stream_input, kernels=kernels)
    compiled = compile_model(model, opts)
    built: list[dict[str, Any] | None] = []
    # the firmware is built in the new OUTDIR before the previous one is deleted: a failed build keeps the old one
    out = write_project(compiled, output, finish=None if no_build else lambda d: built.append(
        build_and_measure(d, compiled)))
    measured = built[0] if built else None
    print(summary_text(compiled.report))
    if measured:
        print(size_summary(measured, compiled.report.as_dict()))
    write_profiles(compiled.report.as_dict(), out)
    print(f"wrote {out}/ (model.c, model.h, weights.c, CMakeLists.txt, report.json, report.html, profile.txt)")
    return 0


@cli.command("run", epilog=_examples(
    "mcuc run build/model --input x.npy --output y.npy",
    "mcuc run build/model --raw --input xq.npy --output yq.npy",
    "mcuc run build/m4 --target qemu --board qemu-mps2-an386 --input x.npy --output y.npy --profile"))
@click.argument("outdir")
@click.option("--target", type=TARGETS, default="host", show_default=True)
@click.option("--board", metavar="BOARD",
              help="QEMU board for --target qemu  [default: the compile board if it is a QEMU board, "
                   "else qemu-mps2-an386]")
@click.option("--input", "input_path", required=True, metavar="X.npy",
              help="input .npy (float32, source layout, batch first); for a camera-input model uint8 pixels: "
                   ".npy, an image or a folder of images")
@click.option("--output", "output_path", required=True, metavar="Y.npy",
              help="output .npy (.npz for several outputs)")
@click.option("--raw", is_flag=True, help="int8 in and out using the model's quantization")
@click.option("--profile", is_flag=True,
              help="with --target qemu: count the instructions of the first sample, total and per op, "
                   "into report.json (measured.instructions)")
def run_command(outdir: str, target: str, board: str | None, input_path: str, output_path: str, raw: bool,
                profile: bool) -> int:
    """Run a compiled model on the host or an emulator.

    Float32 in and out in the model's own layout (NCHW for ONNX), the first axis the batch; --raw means int8
    in and out with the model's quantization. Several outputs go to an .npz archive.
    """
    if profile and target != "qemu":
        raise MCUCError("--profile counts instructions under QEMU: use it with --target qemu")
    g, _ = load_project(outdir)
    if len(g.outputs) > 1 and Path(output_path).suffix.lower() != ".npz":
        raise MCUCError(f"the model has {len(g.outputs)} outputs, written as one .npz archive: name --output "
                        f"'{Path(output_path).with_suffix('.npz')}' instead of '{output_path}'")
    q = input_samples(g, read_input(g, input_path), raw)
    outs = run_samples(Path(outdir), g, {g.inputs[0]: q}, target, board=board)
    if profile:
        print(instructions_text(profile_first_sample(Path(outdir), g, q[:1], board)))
    results = source_outputs(g, outs, raw)
    try:
        with open(output_path, "wb") as f:  # a file object: numpy appends no suffix, the file is the path given
            if len(results) == 1:
                np.save(f, next(iter(results.values())))
            else:
                np.savez(f, **results)  # type: ignore[arg-type]
    except OSError as e:
        raise MCUCError(f"cannot write output '{output_path}': {e.strerror or e}") from e
    log(f"ran {q.shape[0]} samples on {target}; wrote {output_path}")
    return 0


@cli.command("verify", epilog=_examples(
    "mcuc verify build/model --samples 16",
    "mcuc verify model.onnx --calib calib.npy",
    "mcuc verify build/m7 --target qemu --qemu-board qemu-mps2-an500"))
@click.argument("model", metavar="MODEL|OUTDIR")
@click.option("--target", type=TARGETS, default="host", show_default=True)
@click.option("--qemu-board", metavar="BOARD",
              help="QEMU board for --target qemu  [default: the compile board if it is a QEMU board, "
                   "else qemu-mps2-an386]")
@click.option("--samples", type=int, default=16, metavar="N", show_default=True, help="random int8 inputs")
@click.option("--seed", type=int, default=0, metavar="S", show_default=True, help="seed of the random inputs")
@click.option("--board", default="host", show_default=True, metavar="BOARD", help="board when compiling a model file")
@click.option("--calib", metavar="FILE.npy|DIR", help="calibration data when compiling a model file")
def verify_command(model: str, target: str, qemu_board: str | None, samples: int, seed: int, board: str,
                   calib: str | None) -> int:
    """Check the C against the int8 reference, bit for bit.

    MODEL|OUTDIR is a compiled project, or a model file compiled first (with --board and --calib) into a
    temporary directory. Exits with status 1 if any output element differs.
    """
    src = Path(model)
    with tempfile.TemporaryDirectory() as td:
        if src.is_dir():
            outdir = src
        else:
            outdir = write_project(compile_model(model, CompileOptions(board=board, calib=calib)),
                                   str(Path(td) / "project"))
        g, _ = load_project(str(outdir))
        log(f"verifying {samples} random inputs on {target} ...")
        res = verify_project(outdir, g, samples, seed, target, board=qemu_board if target == "qemu" else None)
    ok = res["mismatched"] == 0
    print(f"{'PASS' if ok else 'FAIL'}: {res['samples']} samples, {res['elements']} output elements, "
          f"{res['mismatched']} differ, max |diff| {res['max_lsb']} LSB ({res['where']} vs int8 reference)")
    return 0 if ok else 1


@cli.command("profile", epilog=_examples(
    "mcuc profile build/model",
    "mcuc profile build/model --format html -o profile.html",
    "mcuc profile model.onnx --calib calib.npy --schedule auto --format json"))
@click.argument("model", metavar="MODEL|OUTDIR")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="output format")
@click.option("-o", "--output", metavar="FILE", help="write to this file instead of standard output")
@click.option("--board", default="host", show_default=True, metavar="BOARD", help="board when compiling a model file")
@click.option("--calib", metavar="FILE.npy|DIR", help="calibration data when compiling a model file")
@click.option("--schedule", type=SCHEDULES, default="layer", show_default=True,
              help="schedule when compiling a model file")
def profile_command(model: str, fmt: str, output: str | None, board: str, calib: str | None, schedule: str) -> int:
    """Memory profile: per-op table, JSON, or an HTML page.

    Of a compiled OUTDIR, or of a model file compiled first (with --board, --calib and --schedule) into a
    temporary directory.
    """
    src = Path(model)
    if src.is_dir():
        if not (src / REPORT_FILE).exists():
            raise MCUCError(f"'{src}' is not a compiled mcuc project (no report.json); run 'mcuc compile' first")
        report = read_report(src)
        if "buffers" not in report:
            raise MCUCError(f"'{src / REPORT_FILE}' was written by an older mcuc (no buffer layout); "
                            "compile the model again")
    else:
        compiled = compile_model(model, CompileOptions(board=board, calib=calib, schedule=schedule))
        with tempfile.TemporaryDirectory() as td:
            write_project(compiled, str(Path(td) / "project"))
        report = compiled.report.as_dict()
    text = render(report, fmt)
    if output:
        Path(output).write_text(text)
        log(f"wrote {output}")
    else:
        sys.stdout.write(text)
    return 0


@cli.command("search", epilog=_examples(
    "mcuc search model.onnx --sram 256k --calib calib.npy",
    "mcuc search model.tflite --max-overhead 0.3 --halo cache --all",
    "mcuc search mbv2.onnx --jobs 2",
    "mcuc search mbv2.onnx --ray-address auto"))
@click.argument("model")
@click.option("--sram", metavar="SIZE", help="SRAM budget: choose the least MAC overhead that fits")
@click.option("--max-overhead", type=float, default=0.2, show_default=True, metavar="F",
              help="largest whole-network MAC overhead")
@click.option("--calib", metavar="FILE.npy|DIR", help="calibration data (as for compile)")
@click.option("--all", "show_all", is_flag=True, help="print every candidate, not only the Pareto front")
@click.option("--halo", type=HALOS, default="auto", show_default=True,
              help="patch overlaps to consider: recompute, cache, or both (auto)")
@click.option("--board", default="host", show_default=True, metavar="BOARD",
              help="target board: its core decides which fast kernels exist (see 'mcuc boards')")
@click.option("--kernels", type=click.Choice(["auto", "fast", "small"]), default="auto", show_default=True,
              help="kernel variants to consider: fast, small (no kernel scratch), or both (auto)")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="plan candidates in N local processes")
@click.option("--ray-address", metavar="ADDR",
              help="plan candidates on a Ray cluster instead (auto, ray://HOST:10001; needs mcuc[search])")
def search_command(model: str, sram: str | None, max_overhead: float, calib: str | None, show_all: bool,
                   halo: str, board: str, kernels: str, jobs: int, ray_address: str | None) -> int:
    """Search schedules; print the Pareto table of SRAM vs MACs.

    Plans the layer-based and every patch-based schedule (split x grid x planner x halo x kernels) of the int8
    graph that compile plans (calibrated, attention fused; a .tflite model as it is). With --sram: the least
    MAC overhead that fits (ties: the faster kernels), else the lowest peak within --max-overhead.
    """
    budget = parse_size(sram) if sram is not None else None
    b = load_board(board)
    qg, _ = quantized_graph(model, CompileOptions(calib=calib, board=board))
    workers = Workers(jobs, ray_address)
    log(f"searching layer-based, fused and patch-based schedules ({workers.describe()}) ...")
    halos = ("recompute", "cache") if halo == "auto" else (halo,)
    t0 = time.perf_counter()
    cands = []
    for mode in (("fast", "small") if kernels == "auto" else (kernels,)):
        kg = select_kernels(qg, b.isa, mode)
        if mode == "small" and kernel_names(kg) == kernel_names(select_kernels(qg, b.isa, "fast")):
            continue  # no fast kernel needs scratch here: the small candidates would be the same
        # the board's stack reservation counts in every peak, as compile counts it
        cands += [replace(c, kernels=mode, peak_sram_bytes=peak_sram_bytes(c.arena_bytes, b.stack_bytes))
                  for c in search_candidates(
            kg, max_overhead=max_overhead, halos=halos, workers=workers, fused=True,
            progress=Progress(f"  planned (split, grid) tasks ({mode} kernels)"))]
    log(f"planned {len(cands)} candidates in {time.perf_counter() - t0:.1f} s ({workers.describe()})")
    try:
        chosen = choose(cands, max_overhead, budget)
    except MCUCError:
        print(pareto_table(cands))
        raise
    if show_all:
        front = set(map(id, pareto(cands)))
        for c in sorted(cands, key=lambda c: (c.arena_bytes, c.mac_overhead)):
            print(f"{'*' if id(c) in front else ' '} {c.label():<32} {c.strategy:<6} arena {c.arena_bytes:>10,} B  "
                  f"MACs {c.mac_overhead:+.1%}")
    print(pareto_table(cands, chosen))
    flags = "--schedule layer" if chosen.kind == "layer" else (
        f"--schedule patch --split {chosen.split} --patch-grid {chosen.grid[0]} {chosen.grid[1]} --halo {chosen.halo}")
    if chosen.fused:
        flags = "--schedule fused" if chosen.kind == "layer" else "--schedule auto"
    flags += f" --kernels {chosen.kernels}"
    bound = chosen.lower_bound
    print(f"chosen: {chosen.label()} (planner {chosen.strategy}): peak SRAM {chosen.peak_sram_bytes:,} B, "
          f"+{chosen.mac_overhead:.1%} MACs; arena {chosen.arena_bytes:,} B against a lower bound of {bound:,} B "
          f"(+{(chosen.arena_bytes - bound) / max(bound, 1):.1%}); compile with {flags}")
    return 0


@cli.command("flash", epilog=_examples(
    "mcuc flash build/f746 --dry-run",
    "mcuc flash build/f746",
    "mcuc flash build/nrf --probe 000683xxxxxx"))
@click.argument("outdir")
@click.option("--probe", metavar="ID", help="serial number / unique id of the debug probe to use")
@click.option("--dry-run", is_flag=True, help="print the exact command, run nothing")
def flash_command(outdir: str, probe: str | None, dry_run: bool) -> int:
    """Program a real board with the compiled firmware.

    Builds the firmware if it is missing or older than the sources, then runs the board's flash tool (pyOCD or
    OpenOCD, see its board.yaml). QEMU boards and the host have nothing to flash.
    """
    flash(Path(outdir), probe, dry_run)
    return 0


@cli.command("boards", epilog=_examples("mcuc boards"))
def boards_command() -> int:
    """List the supported boards with core, SRAM and flash."""
    print(f"{'board':<18} {'core':<12} {'SRAM':>10} {'flash':>10}  description")
    for b in list_boards():
        print(f"{b.name:<18} {b.core:<12} {b.sram_bytes // 1024:>8}K {b.flash_bytes // 1024:>8}K  {b.description}")
    return 0


@cli.command("zoo", epilog=_examples(
    "mcuc zoo",
    "mcuc zoo mobilenetv2 --width 0.35 --resolution 144 -o mbv2.onnx --qdq"))
@click.argument("name", required=False)
@click.option("-o", "--output", metavar="OUT.onnx", help="output .onnx path")
@click.option("--resolution", type=int, metavar="R", help="input resolution override")
@click.option("--width", type=float, metavar="W", help="width multiplier override (MobileNetV2)")
@click.option("--qdq", is_flag=True, help="also quantize with onnxruntime (QDQ format)")
def zoo_command(name: str | None, output: str | None, resolution: int | None, width: float | None,
                qdq: bool) -> int:
    """Export a zoo model to ONNX, or list the zoo.

    Without NAME, prints the names of the zoo's models. Needs PyTorch.
    """
    try:  # the zoo is PyTorch code: imported only here, so the rest of the CLI works without it
        from mcuc import zoo
        from mcuc.zoo.export import export_onnx, export_qdq
    except ImportError as e:
        raise MCUCError(f"the model zoo needs PyTorch ({e.name} is missing): pip install -e '.[dev]'") from e

    if not name:
        for zoo_name in zoo.ZOO:
            print(zoo_name)
        return 0
    if name not in zoo.ZOO:
        raise MCUCError(f"unknown zoo model '{name}': choose one of {', '.join(zoo.ZOO)}")
    if not output:
        raise MCUCError("mcuc zoo NAME needs -o OUT.onnx")
    overrides: dict[str, Any] = {}
    if resolution:
        overrides["resolution"] = resolution
    if width:
        overrides["width"] = width
    try:
        model, shape = zoo.build(name, **overrides)
    except (TypeError, ValueError) as e:
        raise MCUCError(f"zoo model '{name}' does not take {', '.join(f'--{k}' for k in overrides)}: {e}") from e
    export_onnx(model, shape, output)
    if qdq:
        rng = np.random.default_rng(0)
        qdq_path = str(Path(output).with_suffix("")) + ".qdq.onnx"
        export_qdq(output, qdq_path, [rng.standard_normal(shape).astype(np.float32) for _ in range(8)])
        print(f"wrote {qdq_path}")
    print(f"wrote {output} (input {list(shape)})")
    return 0


@cli.command("redistribute", epilog=_examples(
    "mcuc redistribute --base mcunet-vww1 -o build/vww1-rd",
    "mcuc redistribute --base mobilenetv2 --mac-budget 300M --resolution 160 --rounds 3 -o build/mbv2-rd",
    "mcuc redistribute --base mcunet-vww1 --jobs 2 --train-steps 200 -o build/vww1-rd",
    "mcuc redistribute --base mcunet-vww1 --ray-address auto -o build/vww1-rd"))
@click.option("--base", type=click.Choice(["mobilenetv2", "mcunet-vww1"]), required=True,
              help="base configuration")
@click.option("--mac-budget", metavar="M", help="largest model MACs, e.g. 300M  [default: the base's MACs x "
                                                "(1 + slack)]")
@click.option("--slack", type=float, default=0.0, show_default=True, metavar="F", help="MAC budget slack over the base")
@click.option("--resolution", type=int, metavar="R", help="input resolution override")
@click.option("--rounds", type=int, default=2, show_default=True, metavar="N", help="greedy search rounds")
@click.option("--train-steps", type=click.IntRange(min=0), default=100, show_default=True, metavar="N",
              help="short training of every candidate (0: no training, the weights written are untrained)")
@click.option("--train-batch", type=click.IntRange(min=1), default=32, show_default=True, metavar="B",
              help="images per training step")
@click.option("--eval-images", type=click.IntRange(min=1), default=2000, show_default=True, metavar="N",
              help="held-out test images each trained candidate is scored on")
@click.option("--data", metavar="DIR", help="IDX image files (train-/t10k-images/labels) to train on  "
                                            "[default: Fashion-MNIST from the Debian package dataset-fashion-mnist]")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="evaluate (compile, schedule, train) candidates in N local processes")
@click.option("--ray-address", metavar="ADDR",
              help="evaluate candidates as tasks on a Ray cluster instead (auto, ray://HOST:10001; needs mcuc[search])")
@click.option("-o", "--output", required=True, metavar="DIR",
              help="directory for config.json, model.pt and model.onnx")
def redistribute_command(base: str, mac_budget: str | None, slack: float, resolution: int | None, rounds: int,
                         train_steps: int, train_batch: int, eval_images: int, data: str | None, jobs: int,
                         ray_address: str | None, output: str) -> int:
    """Redistribute receptive fields for low patch-based SRAM.

    Searches per-block kernel size, expand ratio and patch-stage depth under a MAC budget. Every candidate is
    compiled, scheduled and trained for --train-steps steps on the data set (Fashion-MNIST by default; its
    classes replace the base's), in parallel with --jobs or on Ray; writes the chosen config, its trained
    PyTorch weights and ONNX model. Needs PyTorch.
    """
    budget = int(parse_count(mac_budget)) if mac_budget else None
    try:  # PyTorch code, as the zoo
        from mcuc.search.redistribution import BASES, describe_blocks, load_training_data, search, write_result
        from mcuc.zoo import FASHION_MNIST_DIR
    except ImportError as e:
        raise MCUCError(f"redistribute needs PyTorch ({e.name} is missing): pip install -e '.[dev]'") from e

    config, split_block = BASES[base]
    if resolution:
        config = replace(config, resolution=resolution)
    training = None
    if train_steps:
        training = load_training_data(train_steps, train_batch, eval_images, root=Path(data or FASHION_MNIST_DIR))
    workers = Workers(jobs, ray_address)
    log(f"evaluating candidates with {workers.describe()}"
        + (f", each trained for {train_steps} steps of {train_batch} images" if training else ", untrained"))
    res = search(config, split_block, mac_budget=budget, slack=slack, rounds=rounds, progress=log, training=training,
                 workers=workers, task_progress=Progress("  evaluated candidates of this batch"))
    out = write_result(res, output)
    for label, ev in (("base", res.base), ("chosen", res.best)):
        acc = f"; test top-1 {ev.accuracy:.2%}" if ev.accuracy is not None else ""
        print(f"{label}: {describe_blocks(ev.config)}\n  patch split {ev.split_op} grid {ev.grid[0]}x{ev.grid[1]}: "
              f"peak {ev.arena:,} B (layer-based {ev.layer_arena:,} B), MACs {ev.macs:,} (budget {res.budget:,}), "
              f"overhead {ev.overhead:+.1%} network / {ev.stage_overhead:+.1%} patch stage{acc}")
    if training:
        print(f"weights: trained for {training.steps} steps of {training.batch} images on {training.source}; "
              f"test top-1 {res.best.accuracy:.2%} on {len(training.test_x)} held-out images")
    else:
        print("weights: UNTRAINED (--train-steps 0): model.pt and model.onnx hold the seeded random initialisation")
    print(f"wrote {out / 'config.json'}, {out / 'model.pt'}, {out / 'model.onnx'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one mcuc command (arguments from ``argv``, else the process's); return its exit status."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="mcuc", standalone_mode=False)
    except MCUCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: the model's tensors are too large for this machine", file=sys.stderr)
        return 1
    except click.ClickException as e:  # usage errors: click's message, status 2
        e.show()
        return e.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
