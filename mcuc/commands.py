"""Implementations of the mcuc sub-commands (argument parsing lives in mcuc/cli.py)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mcuc.errors import MCUCError
from mcuc.progress import log
from mcuc.runner import (
    input_samples,
    profile_first_sample,
    run_samples,
    source_outputs,
    verify_project,
)
from mcuc.sizes import parse_count, parse_size
from mcuc.targets.firmware import build_and_measure


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
    measured = None if args.no_build else build_and_measure(out, compiled)
    print(summary_text(compiled.report))
    if measured:
        from mcuc.targets.elfsize import size_summary

        print(size_summary(measured, compiled.report))
    from mcuc.profile import write_profiles

    write_profiles(compiled.report, out)
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
            report = compiled.report
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text)
        log(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mcuc.project import load_project
    from mcuc.targets.cost import instructions_text

    if args.profile and args.target != "qemu":
        raise MCUCError("--profile counts instructions under QEMU: use it with --target qemu")
    g, _ = load_project(args.outdir)
    try:
        x = np.load(args.input, allow_pickle=False)
    except FileNotFoundError as e:
        raise MCUCError(f"input file '{args.input}' does not exist") from e
    except Exception as e:
        raise MCUCError(f"cannot read input '{args.input}' as .npy ({e.__class__.__name__})") from e
    q = input_samples(g, x, args.raw)
    outs = run_samples(Path(args.outdir), g, {g.inputs[0]: q}, args.target, board=args.board)
    if args.profile:
        print(instructions_text(profile_first_sample(Path(args.outdir), g, q[:1], args.board)))
    results = source_outputs(g, outs, args.raw)
    if len(results) == 1:
        np.save(args.output, next(iter(results.values())))
    else:
        np.savez(args.output, **results)  # type: ignore[arg-type]
    log(f"ran {q.shape[0]} samples on {args.target}; wrote {args.output}")
    return 0


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
    budget = int(parse_count(args.mac_budget)) if args.mac_budget else None
    res = search(base, split_block, mac_budget=budget, slack=args.slack, rounds=args.rounds, progress=log)
    out = write_result(res, args.output)
    for label, e in (("base", res.base), ("chosen", res.best)):
        print(f"{label}: {describe_blocks(e.config)}\n  patch split {e.split_op} grid {e.grid[0]}x{e.grid[1]}: "
              f"peak {e.arena:,} B (layer-based {e.layer_arena:,} B), MACs {e.macs:,} (budget {res.budget:,}), "
              f"overhead {e.overhead:+.1%} network / {e.stage_overhead:+.1%} patch stage")
    print(f"wrote {out / 'config.json'}, {out / 'model.pt'}, {out / 'model.onnx'}")
    return 0
