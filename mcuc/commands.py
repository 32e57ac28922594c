"""Implementations of the mcuc sub-commands (argument parsing lives in mcuc/cli.py)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.sizes import parse_size


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_compile(args: argparse.Namespace) -> int:
    from mcuc.compiler import CompileOptions, compile_model
    from mcuc.passes.attention import parse_block
    from mcuc.project import write_project
    from mcuc.report import summary_text

    opts = CompileOptions(board=args.board, sram=parse_size(args.sram) if args.sram else None,
                          flash=parse_size(args.flash) if args.flash else None, calib=args.calib,
                          mean=args.mean, std=args.std, calib_method=args.calib_method,
                          planner=args.planner, schedule=args.schedule,
                          patch_grid=tuple(args.patch_grid) if args.patch_grid else None, split=args.split,
                          max_overhead=args.max_overhead, halo=args.halo,
                          attention_block=parse_block(args.attention_block))
    compiled = compile_model(args.model, opts)
    out = write_project(compiled, args.output)
    measured = _build_and_measure(out, compiled, build=not getattr(args, "no_build", False))
    print(summary_text(compiled.report))
    if measured:
        from mcuc.targets.elfsize import size_summary

        print(size_summary(measured, compiled.report.as_dict()))
    from mcuc.profile import write_profiles

    write_profiles(compiled.report.as_dict(), out)
    print(f"wrote {out}/ (model.c, model.h, weights.c, CMakeLists.txt, report.json, report.html, profile.txt)")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Render the memory profile of OUTDIR/report.json, or of a fresh compile of a model file."""
    import json

    from mcuc.profile import render

    src = Path(args.model)
    if src.is_dir():
        path = src / "report.json"
        if not path.exists():
            raise MCUCError(f"'{src}' is not a compiled mcuc project (no report.json); run 'mcuc compile' first")
        report = json.loads(path.read_text())
        if "buffers" not in report:
            raise MCUCError(f"'{path}' was written by an older mcuc (no buffer layout); compile the model again")
    else:
        from mcuc.compiler import CompileOptions, compile_model
        from mcuc.project import write_project

        with tempfile.TemporaryDirectory() as td:
            compiled = compile_model(str(src), CompileOptions(board=args.board, calib=args.calib,
                                                              schedule=args.schedule))
            write_project(compiled, str(Path(td) / "project"))
            report = compiled.report.as_dict()
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text)
        log(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _build_and_measure(out: Path, compiled, build: bool) -> dict | None:
    """For a firmware board: build the firmware, put its measured size into report.json, fail if it does not fit.

    On failure OUTDIR is removed, as for any other compile error.
    """
    import shutil

    from mcuc.codegen.firmware import FIRMWARE_KINDS
    from mcuc.report import write_report
    from mcuc.targets.qemu import have_arm_toolchain

    if not build or compiled.board.kind not in FIRMWARE_KINDS:
        return None
    if not have_arm_toolchain():
        log(f"note: firmware for '{compiled.board.name}' not built (needs cmake and arm-none-eabi-gcc); "
            "report.json has no measured sizes")
        return None
    from mcuc.targets.elfsize import measure_firmware

    log(f"building firmware for {compiled.board.name} ...")
    try:
        measured = measure_firmware(out, compiled.board, compiled.report.weights_bytes)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    compiled.report.measured.update(measured)
    write_report(out, compiled.report)
    return measured


def _io_bytes(g: Graph, names: list[str]) -> int:
    return sum(g.tensors[n].nbytes for n in names)


DEFAULT_QEMU_BOARD = "qemu-mps2-an386"


def qemu_board_for(outdir: Path, requested: str | None) -> str:
    """The QEMU board to run on: the one asked for, else the compile board if it is a QEMU board."""
    from mcuc.boards import load_board

    if requested:
        board = load_board(requested)
        if board.kind != "qemu":
            raise MCUCError(f"board '{requested}' is not a QEMU board; use qemu-mps2-an386, qemu-mps2-an500 "
                            "or qemu-mps3-an547")
        return board.name
    from mcuc.project import load_project

    _, report = load_project(str(outdir))
    compiled_for = str(report.get("board", ""))
    if compiled_for and load_board(compiled_for).kind == "qemu":
        return compiled_for
    return DEFAULT_QEMU_BOARD


def run_samples(outdir: Path, g: Graph, q_inputs: dict[str, np.ndarray], target: str,
                sanitize: bool = True, board: str | None = None) -> dict[str, np.ndarray]:
    """Run int8 graph-layout inputs (each N x shape[1:]) on ``target``; return int8 outputs."""
    n = next(iter(q_inputs.values())).shape[0]
    flat = np.concatenate([q_inputs[k].reshape(n, -1) for k in g.inputs], axis=1)
    out_bytes = _io_bytes(g, g.outputs)
    if target == "host":
        from mcuc.targets.host import run_host

        raw = run_host(outdir, flat, out_bytes, sanitize=sanitize)
    elif target == "qemu":
        from mcuc.progress import Progress
        from mcuc.targets.qemu import run_qemu_checked

        qboard = qemu_board_for(outdir, board)
        log(f"running {n} samples under QEMU ({qboard}) ...")
        raw, memcheck = run_qemu_checked(outdir, qboard, flat, out_bytes, progress=Progress("  QEMU samples"))
        if memcheck is not None:
            log(record_memcheck(outdir, memcheck))
    else:
        raise MCUCError(f"unknown target '{target}': use host or qemu")
    outs, pos = {}, 0
    for name in g.outputs:
        t = g.tensors[name]
        outs[name] = raw[:, pos:pos + t.size].reshape((n, *t.shape[1:]))
        pos += t.size
    return outs


def record_memcheck(outdir: Path, memcheck: dict) -> str:
    """Put the firmware's measured stack and guard check into OUTDIR/report.json (measured.stack) beside the
    predictions (stack reserved by the linker script, the report's estimate); return the line to print."""
    import json

    path = Path(outdir) / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    estimate = int(report.get("stack_estimate_bytes", 0))
    entry = {**memcheck, "stack_estimate_bytes": estimate,
             # the lowest reserved word overwritten means the stack may have run past its reservation
             "stack_within_reserved": memcheck["stack_used_bytes"] < memcheck["stack_reserved_bytes"]}
    if path.exists():
        report.setdefault("measured", {})["stack"] = entry
        path.write_text(json.dumps(report, indent=1) + "\n")
        if "buffers" in report:  # refresh the rendered profiles so they show the measurement too
            from mcuc.profile import write_profiles

            write_profiles(report, Path(outdir))
    guards = "intact" if memcheck["arena_guards_intact"] else "CORRUPTED"
    return (f"stack: {memcheck['stack_used_bytes']:,} B used of {memcheck['stack_reserved_bytes']:,} B reserved "
            f"({memcheck['board']}; one inference {memcheck['invoke_stack_bytes']:,} B, estimate {estimate:,} B); "
            f"arena guards {guards}")


def cmd_run(args: argparse.Namespace) -> int:
    from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, to_graph_layout
    from mcuc.project import load_project

    if getattr(args, "profile", False) and args.target != "qemu":
        raise MCUCError("--profile counts instructions under QEMU: use it with --target qemu")
    g, _ = load_project(args.outdir)
    if len(g.inputs) != 1:
        raise MCUCError("mcuc run supports single-input models; feed multi-input models through the C API")
    name = g.inputs[0]
    try:
        x = np.load(args.input, allow_pickle=False)
    except FileNotFoundError as e:
        raise MCUCError(f"input file '{args.input}' does not exist") from e
    except Exception as e:
        raise MCUCError(f"cannot read input '{args.input}' as .npy ({e.__class__.__name__})") from e
    from mcuc.model_io import source_shape

    want = source_shape(g, name)
    if x.ndim == len(want) - 1:
        x = x[None]
    if tuple(x.shape[1:]) != tuple(want[1:]):
        raise MCUCError(f"input has shape {x.shape}; the model wants (N, {', '.join(map(str, want[1:]))})")
    xg = to_graph_layout(g, name, x)
    if args.raw:
        if x.dtype != np.int8:
            raise MCUCError(f"--raw needs an int8 input array, got {x.dtype}")
        q = xg.astype(np.int8)
    else:
        q = quantize_input(g, name, xg.astype(np.float32))
    outs = run_samples(Path(args.outdir), g, {name: q}, args.target, board=args.board)
    if getattr(args, "profile", False):
        _profile_first_sample(Path(args.outdir), g, q[:1], args.board)
    results = {}
    for oname, y in outs.items():
        y = from_graph_layout(g, oname, y)
        results[oname] = y if args.raw else dequantize_output(g, oname, y)
    if len(results) == 1:
        np.save(args.output, next(iter(results.values())))
    else:
        np.savez(args.output, **results)  # type: ignore[arg-type]
    log(f"ran {x.shape[0]} samples on {args.target}; wrote {args.output}")
    return 0


def _profile_first_sample(outdir: Path, g: Graph, q: np.ndarray, board: str | None) -> None:
    """Count the instructions of the first sample's inference under QEMU; write them into report.json."""
    from mcuc.targets.cost import count_instructions, instructions_text, save_instructions

    qboard = qemu_board_for(outdir, board)
    log(f"counting instructions of one inference under QEMU ({qboard}) ...")
    counts = count_instructions(outdir, g, qboard, q)
    save_instructions(outdir, counts)
    print(instructions_text(counts))


def verify_project(outdir: Path, g: Graph, samples: int, seed: int, target: str,
                   board: str | None = None) -> dict:
    """Random int8 inputs through the C build and the int8 reference; count differing elements."""
    from mcuc.execute import run_int8

    rng = np.random.default_rng(seed)
    q_inputs = {n: rng.integers(-128, 128, size=(samples, *g.tensors[n].shape[1:]), dtype=np.int8)
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


def cmd_verify(args: argparse.Namespace) -> int:
    from mcuc.project import load_project

    src = Path(args.model)
    with tempfile.TemporaryDirectory() as td:
        if src.is_dir():
            outdir = src
        else:
            from mcuc.compiler import CompileOptions, compile_model
            from mcuc.project import write_project

            compiled = compile_model(str(src), CompileOptions(board=args.board, calib=args.calib))
            outdir = write_project(compiled, str(Path(td) / "project"))
        g, _ = load_project(str(outdir))
        log(f"verifying {args.samples} random inputs on {args.target} ...")
        res = verify_project(outdir, g, args.samples, args.seed, args.target,
                             board=args.qemu_board if args.target == "qemu" else None)
    ok = res["mismatched"] == 0
    print(f"{'PASS' if ok else 'FAIL'}: {res['samples']} samples, {res['elements']} output elements, "
          f"{res['mismatched']} differ, max |diff| {res['max_lsb']} LSB ({res.get('where', args.target)} vs int8 "
          "reference)")
    return 0 if ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    from mcuc.compiler import CompileOptions, calibration_feeds, float_graph_for
    from mcuc.model_io import source_shape
    from mcuc.passes.quantize import calibrate, quantize_graph
    from mcuc.schedule.search import choose, enumerate_candidates, pareto_table

    fg = float_graph_for(args.model)
    feeds = calibration_feeds(fg, {n: source_shape(fg, n) for n in fg.inputs}, CompileOptions(calib=args.calib))
    qg = quantize_graph(fg, calibrate(fg, feeds, "minmax"))
    sram = parse_size(args.sram) if args.sram else None
    log("searching layer-based and patch-based schedules ...")
    halos = ("recompute", "cache") if args.halo == "auto" else (args.halo,)
    from mcuc.progress import Progress

    cands = enumerate_candidates(qg, max_overhead=args.max_overhead, halos=halos,
                                 progress=Progress("  planned patch schedules"))
    try:
        chosen = choose(cands, args.max_overhead, sram)
    except MCUCError:
        print(pareto_table(cands))
        raise
    if args.all:
        from mcuc.schedule.search import pareto

        front = set(map(id, pareto(cands)))
        for c in sorted(cands, key=lambda c: (c.arena_bytes, c.mac_overhead)):
            print(f"{'*' if id(c) in front else ' '} {c.label():<32} {c.strategy:<6} arena {c.arena_bytes:>10,} B  "
                  f"MACs {c.mac_overhead:+.1%}")
    print(pareto_table(cands, chosen))
    flags = "--schedule layer" if chosen.kind == "layer" else (
        f"--schedule patch --split {chosen.split} --patch-grid {chosen.grid[0]} {chosen.grid[1]} --halo {chosen.halo}")
    print(f"chosen: {chosen.label()} (planner {chosen.strategy}): peak SRAM {chosen.peak_sram_bytes:,} B, "
          f"+{chosen.mac_overhead:.1%} MACs; compile with {flags}")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from mcuc.boards import list_boards

    print(f"{'board':<18} {'core':<12} {'SRAM':>10} {'flash':>10}  description")
    for b in list_boards():
        print(f"{b.name:<18} {b.core:<12} {b.sram_bytes // 1024:>8}K {b.flash_bytes // 1024:>8}K  {b.description}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    try:
        from mcuc import zoo
        from mcuc.zoo.export import export_onnx, export_qdq
    except ImportError as e:
        raise MCUCError(f"the model zoo needs PyTorch ({e.name} is missing): pip install -e '.[dev]'") from e

    if not args.name:
        for name in zoo.ZOO:
            print(name)
        return 0
    if args.name not in zoo.ZOO:
        raise MCUCError(f"unknown zoo model '{args.name}': choose one of {', '.join(zoo.ZOO)}")
    if not args.output:
        raise MCUCError("mcuc zoo NAME needs -o OUT.onnx")
    overrides: dict = {}
    if args.resolution:
        overrides["resolution"] = args.resolution
    if args.width:
        overrides["width"] = args.width
    try:
        model, shape = zoo.build(args.name, **overrides)
    except (TypeError, ValueError) as e:
        raise MCUCError(f"zoo model '{args.name}' does not take {', '.join(f'--{k}' for k in overrides)}: {e}") from e
    export_onnx(model, shape, args.output)
    if args.qdq:
        rng = np.random.default_rng(0)
        qdq_path = str(Path(args.output).with_suffix("")) + ".qdq.onnx"
        export_qdq(args.output, qdq_path, [rng.standard_normal(shape).astype(np.float32) for _ in range(8)])
        print(f"wrote {qdq_path}")
    print(f"wrote {args.output} (input {list(shape)})")
    return 0


def cmd_redistribute(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mcuc.search.redistribution import BASES, describe_blocks, search, write_result

    base, split_block = BASES[args.base]
    if args.resolution:
        base = replace(base, resolution=args.resolution)
    budget = int(_parse_count(args.mac_budget)) if args.mac_budget else None
    res = search(base, split_block, mac_budget=budget, slack=args.slack, rounds=args.rounds, progress=log)
    out = write_result(res, args.output)
    for label, e in (("base", res.base), ("chosen", res.best)):
        print(f"{label}: {describe_blocks(e.config)}\n  patch split {e.split_op} grid {e.grid[0]}x{e.grid[1]}: "
              f"peak {e.arena:,} B (layer-based {e.layer_arena:,} B), MACs {e.macs:,} (budget {res.budget:,}), "
              f"overhead {e.overhead:+.1%} network / {e.stage_overhead:+.1%} patch stage")
    print(f"wrote {out / 'config.json'}, {out / 'model.pt'}, {out / 'model.onnx'}")
    return 0


def _parse_count(text: str) -> float:
    """'300M', '1.2G', '5e6' -> a number."""
    t = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], 1.0)
    try:
        return float(t[:-1] if scale != 1.0 else t) * scale
    except ValueError as e:
        raise MCUCError(f"bad MAC count {text!r}: use e.g. 300M") from e

