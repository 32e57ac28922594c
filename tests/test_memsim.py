"""Simulated memory model: the byte-level replay agrees with the planner and the report on every zoo
model and schedule, on random graphs, and catches broken plans."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcuc.boards import load_board
from mcuc.compiler import Compiled, CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.memory import Buffers, MemoryPlan, compute_buffers, place_buffers, plan_memory
from mcuc.memsim import MemoryViolation, check, simulate
from mcuc.plan import Buffer
from mcuc.report import Report, replay_differences
from tests.int8_graphs import Int8GraphBuilder, all_ops_graph

ZOO_MODELS = ["mcunet-tiny", "mcunet-vww1", "mobilenetv2-0.35"]


_EXPORTED: dict[str, str] = {}


def zoo_onnx(name: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The zoo model exported to ONNX once per test process (mcuc.zoo.build + export_onnx)."""
    if name not in _EXPORTED:
        pytest.importorskip("torch")
        from mcuc import zoo
        from mcuc.zoo.export import export_onnx

        model, shape = zoo.build(name)
        _EXPORTED[name] = str(export_onnx(model, shape, tmp_path_factory.mktemp("zoo") / f"{name}.onnx"))
    return _EXPORTED[name]


def _compile(path: str, schedule: str, board: str = "qemu-mps2-an386") -> Compiled:
    opts = CompileOptions(board=board, schedule=schedule, calib_samples=2, max_overhead=0.5)
    return compile_model(path, opts, progress=lambda _m: None)


@pytest.mark.parametrize("name", ZOO_MODELS)
@pytest.mark.parametrize("schedule", ["layer", "patch"])
def test_zoo_high_water_equals_arena(tmp_path_factory: pytest.TempPathFactory, name: str, schedule: str) -> None:
    c = _compile(zoo_onnx(name, tmp_path_factory), schedule)
    assert c.schedule.kind == schedule
    sim = check(simulate(c.schedule.graph, c.schedule.planned, c.board))
    assert sim.arena_needed == c.schedule.arena_bytes == c.report.arena_bytes
    assert sim.high_water <= c.report.arena_bytes < sim.high_water + 16
    assert replay_differences(c.report, sim) == []
    # the arena sits at the start of the board's data SRAM and stays inside it
    region = load_board("qemu-mps2-an386").extra["sram"][0]
    assert sim.arena_origin == int(region["origin"])
    assert sim.arena_needed <= int(region["size"])


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_replay_clean(seed: int) -> None:
    g = all_ops_graph(seed)
    for strategy in ("greedy", "best"):
        mem = plan_memory(g, strategy)
        sim = check(simulate(g, mem))
        assert sim.arena_needed == mem.arena_bytes
        assert sim.peak_occupied == mem.lower_bound
        assert sim.occupied == mem.live_bytes


def _two_live_roots(g, mem) -> tuple[str, str]:
    for a in mem.sizes:
        for b in mem.sizes:
            fa, la = mem.lifetimes[a]
            fb, lb = mem.lifetimes[b]
            if a != b and mem.sizes[a] and mem.sizes[b] and fa <= lb and fb <= la and mem.offsets[a] != mem.offsets[b]:
                return a, b
    raise AssertionError("no two buffers live together")


def test_overlapping_plan_is_caught() -> None:
    g = all_ops_graph(0)
    mem = plan_memory(g)
    a, b = _two_live_roots(g, mem)
    offsets = dict(mem.offsets)
    for t, r in mem.roots.items():
        if r == a:
            offsets[t] = mem.offsets[b]
    broken = dataclasses.replace(mem, offsets=offsets)
    sim = simulate(g, broken)
    # a buffer moved onto another live one: a plain overlap, or an unsafe alias where the other is an input of
    # the op writing it
    assert any("overlaps live buffer" in p or "unsafe in-place alias" in p for p in sim.problems), sim.problems
    with pytest.raises(MemoryViolation, match="overlaps|unsafe in-place alias"):
        check(sim)
    assert isinstance(MemoryViolation("x"), MCUCError)


def test_out_of_arena_and_lifetime_errors_are_caught() -> None:
    g = all_ops_graph(1)
    mem = plan_memory(g)
    big = max(mem.sizes, key=lambda r: mem.sizes[r])
    offsets = {t: (mem.arena_bytes if r == big else o) for t, (r, o) in
               ((t, (mem.roots[t], o)) for t, o in mem.offsets.items())}
    sim = simulate(g, dataclasses.replace(mem, offsets=offsets))
    assert any("outside the arena" in p for p in sim.problems), sim.problems
    # a plan whose lifetime ends one step early: the replay recomputes the lifetime from the op list
    r = next(r for r, (f, la) in mem.lifetimes.items() if la > f and mem.sizes[r])
    f, la = mem.lifetimes[r]
    short = dict(mem.lifetimes)
    short[r] = (f, la - 1)
    sim = simulate(g, dataclasses.replace(mem, lifetimes=short))
    assert any(p.startswith(f"buffer '{r}' is planned live over ops {f}..{la - 1} but its tensors live over ops "
                            f"{f}..{la}") for p in sim.problems), sim.problems


# ---- plans with wrong numbers, placed by the planner as they say: each caught by the recomputing replay ----


def _chain() -> Graph:
    """x -conv-> a -lut-> b -conv-> c; add(a, c) -> s -conv-> y: ``a`` is read again by the add."""
    bld = Int8GraphBuilder(5)
    g = bld.g
    x = bld.act((1, 8, 8, 4))
    g.inputs = [x]
    a = bld.conv(x, 8, 3, 1)
    table = g.const("lut", bld.rng.integers(-128, 128, 256).astype(np.int8))
    b = bld.node("lut", [a, table], (1, 8, 8, 8), function="sigmoid")
    c = bld.conv(b, 8, 3, 1)
    s = bld.node("add", [a, c], (1, 8, 8, 8), act_min=-128, act_max=127)
    g.outputs = [bld.conv(s, 4, 1, 1)]
    assert [n.outputs[0] for n in g.nodes] == ["t1", "t2", "t3", "t4", "t5"]  # a, b, c, s, y
    return g


def _replan(g: Graph, edit: Callable[[dict[str, str], dict[str, tuple[Buffer, ...]]], None]) -> MemoryPlan:
    """The plan of ``g`` with its buffers edited by ``edit(roots, pieces)`` before the planner places them."""
    bufs = compute_buffers(g)
    roots, pieces = dict(bufs.roots), dict(bufs.pieces)
    edit(roots, pieces)
    return place_buffers(Buffers(roots, pieces), len(g.nodes))


def test_chain_plan_replays_clean() -> None:
    g = _chain()
    mem = plan_memory(g)
    assert mem.roots["t4"] == "t1"  # the add works in place on a, which dies there
    sim = check(simulate(g, mem))
    assert sim.occupied == mem.live_bytes and sim.arena_needed == mem.arena_bytes


def test_wrong_lifetime_is_caught() -> None:
    """The plan says ``a`` dies after op 1; the planner gives its bytes to ``c``, written at op 2, while the
    add at op 3 still reads ``a``."""
    g = _chain()

    def edit(roots: dict[str, str], pieces: dict[str, tuple[Buffer, ...]]) -> None:
        for t in ("t1", "t4"):  # a, and the add's output in place on it: planned as one buffer
            roots[t] = t
        pieces["t1"] = (Buffer(512, 0, 1),)
        pieces["t4"] = (Buffer(512, 3, 4),)

    mem = _replan(g, edit)
    assert mem.offsets["t3"] == mem.offsets["t1"]  # c placed over a
    sim = simulate(g, mem)
    assert "buffer 't1' is planned live over ops 0..1 but its tensors live over ops 0..3 ('t1' ops 0..3)" \
        in sim.problems
    assert f"step 2 (n2_conv2d): buffer 't3' [{mem.offsets['t3']}, {mem.offsets['t3'] + 512}) overlaps live " \
        f"buffer 't1' [{mem.offsets['t1']}, {mem.offsets['t1'] + 512})" in sim.problems
    assert "step 3 (n3_add): tensor 't1' has bytes owned by 't3' when it is read" in sim.problems
    with pytest.raises(MemoryViolation, match="planned live over ops 0..1"):
        check(sim)


def test_wrong_size_is_caught() -> None:
    """The plan gives ``b`` (512 B) only 256 B; the planner places it at the end of an arena too small for it."""
    g = _chain()

    def edit(roots: dict[str, str], pieces: dict[str, tuple[Buffer, ...]]) -> None:
        pieces["t2"] = tuple(Buffer(256, p.first_use, p.last_use) for p in pieces["t2"])

    mem = _replan(g, edit)
    sim = simulate(g, mem)
    assert "buffer 't2' is planned with 256 B at op 1 but its tensor 't2' there has 512 B" in sim.problems
    # the planner sized the arena by the wrong number: b's real bytes run past its end
    assert sim.problems[1:] == [f"buffer 't2' at arena offset {mem.offsets['t2']} (512 B) lies outside the arena "
                                f"[0, {mem.arena_bytes})"]
    assert mem.offsets["t2"] + 256 == mem.arena_bytes
    with pytest.raises(MemoryViolation, match="planned with 256 B at op 1"):
        check(sim)


def test_unsafe_inplace_alias_is_caught() -> None:
    """Two aliases the planner's numbers allow but the kernels do not: the conv writing ``c`` over its input ``b``
    (a convolution reads every input row after writing output rows), and the lut writing ``b`` in place over
    ``a``, which the add reads again afterwards."""
    g = _chain()

    def conv_in_place(roots: dict[str, str], pieces: dict[str, tuple[Buffer, ...]]) -> None:
        roots["t3"] = "t2"
        pieces["t2"] = (Buffer(512, 1, 3),)
        del pieces["t3"]

    sim = simulate(g, _replan(g, conv_in_place))
    assert sim.problems == ["step 2 (n2_conv2d): unsafe in-place alias: 't3' is written over its input 't2': the "
                            "conv2d kernel does not work in place (it reads its inputs after it has written output "
                            "bytes)"]

    def lut_over_live_input(roots: dict[str, str], pieces: dict[str, tuple[Buffer, ...]]) -> None:
        roots["t2"] = "t1"
        pieces["t1"] = (Buffer(512, 0, 4),)  # a, b, and s in place on a: one buffer over ops 0..4
        del pieces["t2"]

    sim = simulate(g, _replan(g, lut_over_live_input))
    assert "step 1 (n1_lut): unsafe in-place alias: 't2' is written over its input 't1': 't1' is still read by " \
        "op 3" in sim.problems
    assert "step 3 (n3_add): tensor 't1' has bytes overwritten by a tensor since released when it is read" \
        in sim.problems
    with pytest.raises(MemoryViolation, match="unsafe in-place alias"):
        check(sim)


def test_report_mismatch_is_named() -> None:
    g = all_ops_graph(2)
    mem = plan_memory(g)
    sim = check(simulate(g, mem))
    rep = Report(model="", model_file="", board="host", sram_budget_bytes=1 << 20, arena_bytes=mem.arena_bytes + 16,
                 arena_lower_bound_bytes=mem.lower_bound, planner="best", scratch_bytes=0, stack_estimate_bytes=2048,
                 stack_bytes=2048, peak_sram_bytes=mem.arena_bytes + 2048, weights_bytes=0, predicted_flash_bytes=0,
                 macs=0, schedule={"kind": "layer"}, attention={}, buffers=[], layer_live_bytes=[], stage_ops=0,
                 simulated={},
                 ops=[{"index": i, "live_bytes": v} for i, v in enumerate(mem.live_bytes)])
    assert replay_differences(rep, sim) == [f"arena_bytes {mem.arena_bytes + 16} != simulated {mem.arena_bytes}"]


def test_arena_in_each_board_region() -> None:
    g = all_ops_graph(3)
    mem = plan_memory(g)
    for board in ("qemu-mps3-an547", "stm32h7", "host"):
        sim = check(simulate(g, mem, load_board(board)))
        assert sim.arena_needed == mem.arena_bytes
    assert np.all(np.diff([0, *sorted(mem.offsets.values())]) >= 0)


# ---- on-target truth: guard words around the arena and the painted stack, under QEMU ----------------

QEMU_BOARDS = ["qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps3-an547"]
needs_qemu_firmware = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("arm-none-eabi-gcc", "cmake", "qemu-system-arm")),
    reason="needs arm-none-eabi-gcc, cmake and qemu-system-arm")


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mcunet-tiny (zoo) compiled for the host board: each test builds the firmware it runs."""
    from mcuc.project import write_project

    c = _compile(zoo_onnx("mcunet-tiny", tmp_path_factory), "layer", board="host")
    return write_project(c, str(tmp_path_factory.mktemp("tiny") / "project"))


def _samples(outdir: Path, n: int) -> tuple[np.ndarray, int]:
    from mcuc.project import load_project

    g, _ = load_project(str(outdir))
    x = np.random.default_rng(0).integers(-128, 128, (n, g.tensors[g.inputs[0]].size), dtype=np.int8)
    return x, sum(g.tensors[o].nbytes for o in g.outputs)


@needs_qemu_firmware
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_measured_stack_within_reserved(tiny_project: Path, board: str) -> None:
    from mcuc.codegen.firmware import firmware_config
    from mcuc.execute import run_int8
    from mcuc.project import load_project
    from mcuc.targets.build import firmware_build_dir
    from mcuc.targets.qemu import run_qemu_checked

    x, out_bytes = _samples(tiny_project, 2)
    y, mc = run_qemu_checked(tiny_project, board, x, out_bytes)
    assert mc is not None and mc["board"] == board
    assert mc["arena_guards_intact"]
    reserved = firmware_config(load_board(board)).stack_bytes
    assert mc["stack_reserved_bytes"] == reserved
    assert 0 < mc["invoke_stack_bytes"] <= mc["stack_used_bytes"] <= reserved
    # outputs stay bit-exact with the reference while the checks run
    g, rep = load_project(str(tiny_project))
    ref = run_int8(g, {g.inputs[0]: x[:1].reshape(g.tensors[g.inputs[0]].shape)})[g.outputs[0]]
    assert np.array_equal(y[0], ref.reshape(-1))
    # the guard blocks touch the arena on both sides
    elf = firmware_build_dir(tiny_project, load_board(board)) / "mcuc_firmware.elf"
    syms = _elf_symbols(elf)
    lo, arena, hi = syms["mcuc_guard_lo"], syms["mcuc_arena"], syms["mcuc_guard_hi"]
    assert arena[1] == rep["arena_bytes"]
    assert lo[0] + lo[1] == arena[0] and arena[0] + arena[1] == hi[0] and lo[1] == hi[1] == 16


def _elf_symbols(elf: Path) -> dict[str, tuple[int, int]]:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: (int(s["st_value"]), int(s["st_size"])) for s in tab.iter_symbols() if s.name}


@needs_qemu_firmware
def test_cli_run_reports_stack_and_guards(tiny_project: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mcuc.cli import main

    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert main(["run", str(tiny_project), "--target", "qemu", "--board", "qemu-mps2-an386",
                 "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    err = capsys.readouterr().err
    m = re.search(r"stack: ([\d,]+) B used of 65,536 B reserved \(qemu-mps2-an386; one inference ([\d,]+) B, "
                  r"estimate 2,048 B\); arena guards intact", err)
    assert m is not None, err
    st = json.loads((tiny_project / "report.json").read_text())["measured"]["stack"]
    assert st["stack_used_bytes"] == int(m[1].replace(",", "")) and st["stack_within_reserved"]
    assert st["stack_estimate_bytes"] == 2048 and st["invoke_stack_bytes"] <= st["stack_estimate_bytes"]
    assert "one inference" in (tiny_project / "profile.txt").read_text()


@needs_qemu_firmware
def test_arena_overrun_trips_the_guards(tiny_project: Path, tmp_path: Path) -> None:
    from mcuc.targets.qemu import run_qemu_checked

    broken = tmp_path / "broken"
    shutil.copytree(tiny_project, broken, ignore=shutil.ignore_patterns("build-*"))
    model_c = broken / "model.c"
    text = model_c.read_text()
    hook = "    return 0;\n}"
    assert text.count(hook) == 1
    # one byte past the end of the arena: the first byte of the upper guard block
    overrun = "    { int8_t *volatile p = mcuc_arena; p[MCUC_ARENA_BYTES] ^= 1; }\n"
    model_c.write_text(text.replace(hook, overrun + hook))
    x, out_bytes = _samples(broken, 1)
    with pytest.raises(MCUCError, match="overwrote the guard words around the activation arena"):
        run_qemu_checked(broken, "qemu-mps2-an386", x, out_bytes)


@pytest.mark.parametrize("seed", range(6))
def test_random_patch_schedules_replay_clean(seed: int) -> None:
    from mcuc.schedule.patch import build_schedule, valid_splits
    from tests.test_patch_schedule import random_chain

    g = random_chain(seed)
    rng = np.random.default_rng(seed)
    splits = valid_splits(g)
    split = int(splits[rng.integers(len(splits))])
    _, h, w, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    grid = (int(min(h, rng.integers(1, 4))), int(min(w, rng.integers(1, 4))))
    for halo in ("recompute", "cache"):
        sched = build_schedule(g, split, grid, halo=halo)
        for strategy in ("greedy", "best"):
            mem = plan_memory(sched.graph, strategy)
            sim = check(simulate(sched.graph, mem, load_board("qemu-mps3-an547")))
            assert sim.arena_needed == mem.arena_bytes
            assert sim.occupied == mem.live_bytes and sim.peak_occupied == mem.lower_bound
