"""Patch-based schedules: receptive-field windows, bit-exact patch execution (numpy and host C),
exact memory accounting (simulated replay) and the schedule search."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from mcuc.boards import load_board
from mcuc.compiler import CompileOptions, assemble
from mcuc.errors import MCUCError
from mcuc.execute import run_int8, run_schedule
from mcuc.ir import Graph, QuantParams
from mcuc.memory import plan_memory
from mcuc.ops import node_macs, verify
from mcuc.passes.kernels import select_kernels
from mcuc.project import write_project
from mcuc.runner import verify_project
from mcuc.schedule.patch import (
    Window,
    build_schedule,
    check_stage,
    grid_stage_macs,
    patch_windows,
    stage_macs_of,
    valid_splits,
)
from mcuc.schedule.search import choose, enumerate_candidates, pareto, replay, select_schedule
from mcuc.shapes import conv_out_dim
from tests.int8_graphs import Int8GraphBuilder


class _Chain(Int8GraphBuilder):
    """Random int8 NHWC networks: conv/depthwise/pool/residual/lut stage, then pool + FC head."""

    min_scale = 0.02

    def conv(self, x: str, cout: int, k: int, stride: int, depthwise: bool = False, dil: int = 1,
             pads: tuple[int, int, int, int] | None = None) -> str:
        r = self.rng
        n, h, w, c = self.g.tensors[x].shape
        groups = c if depthwise else 1
        cout = c if depthwise else cout
        wt = r.integers(-127, 128, (cout, k, k, c // groups)).astype(np.int8)
        wn = self.g.const("w", wt, QuantParams(r.uniform(0.002, 0.02, cout), np.zeros(cout), axis=0))
        bn = self.g.const("b", r.integers(-2000, 2000, cout).astype(np.int32))
        p = pads if pads is not None else (dil * (k // 2),) * 4
        oh = conv_out_dim(h, k, stride, p[0], p[2], dil)
        ow = conv_out_dim(w, k, stride, p[1], p[3], dil)
        q = self.quant()
        return self.node("conv2d", [x, wn, bn], (n, oh, ow, cout), q, strides=(stride, stride), pads=p,
                         dilations=(dil, dil), groups=groups, act_min=q.zp, act_max=127)


def random_chain(seed: int) -> Graph:
    b = _Chain(seed)
    r = b.rng
    g = b.g
    h, w = int(r.integers(9, 26)), int(r.integers(9, 26))
    x = b.act((1, h, w, int(r.integers(1, 4))))
    g.inputs = [x]
    for _ in range(int(r.integers(2, 7))):
        _, ch, cw, c = g.tensors[x].shape
        kind = r.choice(["conv", "conv", "dw", "block", "pool", "lut"])
        k = int(r.choice([1, 3, 5, 7]))
        stride = int(r.choice([1, 2])) if min(ch, cw) >= 8 else 1
        if min(ch, cw) < k + 2:
            k = 1 if min(ch, cw) < 5 else 3
        if kind == "conv":
            asym = r.random() < 0.3 and k > 1
            pads = tuple(int(v) for v in r.integers(0, k // 2 + 1, 4)) if asym else None
            dil = 2 if (k == 3 and r.random() < 0.2 and min(ch, cw) >= 7) else 1
            x = b.conv(x, int(r.integers(2, 9)), k, stride, dil=dil, pads=pads)  # type: ignore[arg-type]
        elif kind == "dw":
            x = b.conv(x, 0, k, stride, depthwise=True)
        elif kind == "block":  # inverted residual: 1x1 expand, depthwise, 1x1 project, add
            e = b.conv(x, 2 * c + 1, 1, 1)
            d = b.conv(e, 0, k, 1, depthwise=True)
            p = b.conv(d, c, 1, 1)
            x = b.node("add", [x, p], g.tensors[x].shape, act_min=-128, act_max=127)
        elif kind == "pool":
            op = str(r.choice(["maxpool", "avgpool"]))
            kk = int(r.choice([2, 3]))
            pad = kk // 2 if r.random() < 0.5 else 0
            oh, ow = conv_out_dim(ch, kk, stride, pad, pad), conv_out_dim(cw, kk, stride, pad, pad)
            x = b.node(op, [x], (1, oh, ow, c), g.tensors[x].quant, kernel=(kk, kk), strides=(stride, stride),
                       pads=(pad, pad, pad, pad))
        else:
            table = g.const("lut", r.integers(-128, 128, 256).astype(np.int8))
            x = b.node("lut", [x, table], g.tensors[x].shape, function="sigmoid")
    _, ch, cw, c = g.tensors[x].shape
    gap = b.node("avgpool", [x], (1, 1, 1, c), g.tensors[x].quant, kernel=(ch, cw), strides=(1, 1),
                 pads=(0, 0, 0, 0))
    flat = b.node("reshape", [gap], (1, c), g.tensors[gap].quant, shape=(1, c))
    wn = g.const("wfc", r.integers(-127, 128, (5, c)).astype(np.int8),
                 QuantParams(r.uniform(0.001, 0.01, 5), np.zeros(5), axis=0))
    bn = g.const("bfc", r.integers(-500, 500, 5).astype(np.int32))
    fc = b.node("fully_connected", [flat, wn, bn], (1, 5), act_min=-128, act_max=127)
    g.outputs = [fc]
    verify(g, quantized=True)
    return g


def _feed(g: Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {g.inputs[0]: rng.integers(-128, 128, g.tensors[g.inputs[0]].shape).astype(np.int8)}


def _check_schedule(g: Graph, split: int, grid: tuple[int, int], seed: int, halo: str = "recompute") -> None:
    feeds = _feed(g, seed)
    ref = run_int8(g, feeds)
    sched = build_schedule(g, split, grid, halo=halo)
    got = run_schedule(sched, feeds)
    stage_out = g.nodes[split - 1].outputs[0]
    assert np.array_equal(got[stage_out], ref[stage_out]), (split, grid)
    for o in g.outputs:
        assert np.array_equal(got[o], ref[o]), (split, grid, o)
    # MACs: a single patch only skips outputs nothing reads (e.g. a last row a stride-2 layer never
    # reaches), so it never costs more than layer-based; more patches add halo recomputation
    if grid == (1, 1):
        assert sched.macs <= sched.layer_macs
    assert sched.macs == sum(node_macs(n, sched.graph) for n in sched.graph.nodes)
    assert sched.patch is not None
    assert sched.patch.macs == stage_macs_of(g, sched.patch.patches)
    if halo == "recompute":
        assert sched.patch.macs == grid_stage_macs(g, split, grid)
    else:  # cached rows are never computed twice: no more MACs than recomputing them
        assert sched.patch.macs <= build_schedule(g, split, grid).patch.macs  # type: ignore[union-attr]
    # exact accounting: the replay of the plan finds no overlap and reaches the reported arena
    for strategy in ("greedy", "best"):
        mem = plan_memory(sched.graph, strategy)
        assert replay(sched.graph, mem) == mem.arena_bytes
        assert mem.arena_bytes >= mem.lower_bound == max(mem.live_bytes)


@pytest.mark.parametrize("seed", range(60))
def test_patch_execution_equals_layer_execution(seed):
    g = random_chain(seed)
    rng = np.random.default_rng(1000 + seed)
    splits = valid_splits(g)
    assert splits
    for split in rng.choice(splits, size=min(3, len(splits)), replace=False):
        _, oh, ow, _ = g.tensors[g.nodes[int(split) - 1].outputs[0]].shape
        grid = (int(rng.integers(1, min(oh, 5) + 1)), int(rng.integers(1, min(ow, 5) + 1)))
        for halo in ("recompute", "cache"):
            _check_schedule(g, int(split), grid, seed, halo)


def test_one_patch_has_no_overhead():
    g = random_chain(3)
    split = valid_splits(g)[-1]
    sched = build_schedule(g, split, (1, 1))
    assert sched.macs <= sched.layer_macs and sched.mac_overhead <= 0.0
    _check_schedule(g, split, (1, 1), 0)


def test_windows_of_a_strided_padded_chain():
    """Hand-checked receptive fields: 3x3 s2 p1 conv then 3x3 s1 p1 depthwise on 8x8 -> 4x4, 2x2 grid."""
    b = _Chain(0)
    x = b.act((1, 8, 8, 2))
    b.g.inputs = [x]
    c1 = b.conv(x, 4, 3, 2)
    c2 = b.conv(c1, 0, 3, 1, depthwise=True)
    b.g.outputs = [c2]
    p = patch_windows(b.g, 2, (2, 2))
    top_left, bottom_right = p[0], p[3]
    assert top_left.ops[1].out_window == Window(0, 2, 0, 2)
    assert top_left.ops[1].in_windows[0] == Window(0, 3, 0, 3) and top_left.ops[1].pads == (1, 1, 0, 0)
    assert top_left.ops[0].out_window == Window(0, 3, 0, 3)
    assert top_left.ops[0].in_windows[0] == Window(0, 6, 0, 6) and top_left.ops[0].pads == (1, 1, 0, 0)
    assert bottom_right.ops[1].in_windows[0] == Window(1, 4, 1, 4) and bottom_right.ops[1].pads == (0, 0, 1, 1)
    # outputs 1..3 of the s2 conv read input rows 1..7 (2*1-1 .. 2*3-1+2), no padding inside the window
    assert bottom_right.ops[0].in_windows[0] == Window(1, 8, 1, 8) and bottom_right.ops[0].pads == (0, 0, 0, 0)


def test_uneven_grid_covers_output_exactly():
    g = random_chain(7)
    split = valid_splits(g)[-1]
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    grid = (min(3, oh), min(3, ow))
    cover = np.zeros((oh, ow), dtype=int)
    for p in patch_windows(g, split, grid):
        w = p.ops[-1].out_window
        cover[w.h0:w.h1, w.w0:w.w1] += 1
    assert (cover == 1).all()


def test_stage_rejects_unpatchable_ops():
    g = random_chain(2)
    with pytest.raises(MCUCError):
        check_stage(g, len(g.nodes))  # the FC head cannot run on a patch
    with pytest.raises(MCUCError, match="grid"):
        patch_windows(g, 1, (1000, 1))


def _compile_graph_with_schedule(g: Graph, split: int, grid: tuple[int, int], out: Path,
                                 board: str = "host") -> Path:
    g = select_kernels(g, load_board(board).isa, "fast")
    cand = select_schedule(g, "patch", "best", 1 << 30, False, 100.0, split, grid)
    c = assemble(cand, load_board(board), CompileOptions(board=board, schedule="patch"))
    assert c.report.arena_bytes == replay(cand.graph, cand.planned)
    return write_project(c, str(out))


@pytest.mark.parametrize("seed", [2, 8])
def test_cached_halo_c_bit_exact_random_chain(tmp_path, seed):
    g = random_chain(seed)
    split = valid_splits(g)[-1]
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    cand = select_schedule(g, "patch", "best", 1 << 30, False, 100.0, split, (min(3, oh), min(2, ow)), ("cache",))
    assert cand.patch is not None and cand.halo == "cache"
    c = assemble(cand, load_board("host"), CompileOptions(schedule="patch"))
    assert c.report.schedule["halo"] == "cache"
    assert c.report.arena_bytes == replay(cand.graph, cand.planned)
    out = write_project(c, str(tmp_path / "proj"))
    res = verify_project(out, g, samples=4, seed=seed, target="host")
    assert res["mismatched"] == 0, res


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_patch_c_bit_exact_random_chain(tmp_path, seed):
    g = random_chain(seed)
    rng = np.random.default_rng(seed)
    split = int(rng.choice(valid_splits(g)))
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    grid = (min(3, oh), min(2, ow))
    out = _compile_graph_with_schedule(g, split, grid, tmp_path / "proj")
    assert "mcuc_copy_window_s8(" in (out / "model.c").read_text()
    res = verify_project(out, g, samples=4, seed=seed, target="host")
    assert res["mismatched"] == 0, res


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_patch_firmware_bit_exact_under_qemu(tmp_path):
    g = random_chain(11)
    split = valid_splits(g)[-1]
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    out = _compile_graph_with_schedule(g, split, (min(2, oh), min(3, ow)), tmp_path / "proj", "qemu-mps2-an386")
    res = verify_project(out, g, samples=2, seed=3, target="qemu")
    assert res["mismatched"] == 0 and res["elements"] == 2 * 5, res


def test_auto_keeps_layer_schedule_when_it_fits_and_patches_otherwise():
    g = random_chain(9)
    layer = select_schedule(g, "layer", "best", 1 << 30, True, 0.5)
    assert select_schedule(g, "auto", "best", layer.peak_sram_bytes, True, 0.5).kind == "layer"
    cands = enumerate_candidates(g, strategies=("best",), max_overhead=0.5, include_layer=False)
    smaller = [c for c in cands if c.arena_bytes < layer.arena_bytes]
    if smaller:
        target = min(c.peak_sram_bytes for c in smaller)
        auto = select_schedule(g, "auto", "best", target, True, 0.5)
        assert auto.kind == "patch" and auto.peak_sram_bytes <= target
        assert auto.mac_overhead == choose(cands, 0.5, target).mac_overhead
    with pytest.raises(MCUCError, match="B over"):
        select_schedule(g, "auto", "best", 64, True, 0.5)


def test_search_pareto_and_choice():
    g = random_chain(4)
    cands = enumerate_candidates(g, grids=[(1, 2), (2, 2), (3, 3)], strategies=("greedy", "best"))
    front = pareto(cands)
    assert any(c.kind == "layer" for c in cands)
    for a, b2 in zip(front, front[1:], strict=False):
        assert a.arena_bytes <= b2.arena_bytes and a.mac_overhead > b2.mac_overhead
    lowest = choose(cands, 100.0, None)
    assert lowest.arena_bytes == min(c.arena_bytes for c in cands)
    layer = min(c.arena_bytes for c in cands if c.kind == "layer")
    fit = choose(cands, 100.0, layer + 2048)
    assert fit.mac_overhead == 0.0
    with pytest.raises(MCUCError, match="B over"):
        choose(cands, 100.0, 16)


# ---- zoo models (PyTorch exports them: each test skips without it, the tests above still run) -----------------


def _export(name: str, tmp: Path, **overrides) -> Path:
    pytest.importorskip("torch")
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name, **overrides)
    return export_onnx(model, shape, tmp / f"{name}.onnx")


def test_mcunet_tiny_patch_c_bit_exact(tmp_path):
    import json

    from mcuc.compiler import compile_model

    path = _export("mcunet-tiny", tmp_path)
    for split, grid in ((6, (3, 2)), (None, None)):
        opts = CompileOptions(schedule="patch", split=split, patch_grid=grid, max_overhead=0.5)
        c = compile_model(str(path), opts, progress=lambda m: None)
        assert c.schedule.patch is not None
        mem = c.schedule.planned
        assert replay(c.schedule.graph, mem) == mem.arena_bytes == c.report.arena_bytes
        assert max(mem.live_bytes) == mem.lower_bound <= mem.arena_bytes  # type: ignore[attr-defined]
        out = write_project(c, str(tmp_path / f"proj{split}"))
        rep = json.loads((out / "report.json").read_text())
        assert rep["schedule"]["kind"] == "patch" and rep["schedule"]["mac_overhead"] <= 0.5
        assert rep["macs"] == c.schedule.macs  # type: ignore[attr-defined]
        assert f"#define MCUC_ARENA_BYTES {rep['arena_bytes']}\n" in (out / "model.h").read_text()
        res = verify_project(out, c.graph, samples=4, seed=2, target="host")
        assert res["mismatched"] == 0, res


def test_mobilenetv2_035_224_needs_patches_for_256k(tmp_path):
    from mcuc.compiler import compile_model

    path = _export("mobilenetv2-0.35", tmp_path, resolution=224)
    layer = CompileOptions(board="stm32h7", sram=256 * 1024, calib_samples=2)
    with pytest.raises(MCUCError, match=r"B over\).*peak at op"):
        compile_model(str(path), layer, progress=lambda m: None)
    opts = CompileOptions(board="stm32h7", sram=256 * 1024, calib_samples=2, schedule="patch")
    c = compile_model(str(path), opts, progress=lambda m: None)
    assert c.schedule.patch is not None and c.report.peak_sram_bytes <= 256 * 1024
    assert c.report.schedule["kind"] == "patch" and c.report.schedule["mac_overhead"] <= 0.2
    assert replay(c.schedule.graph, c.schedule.planned) == c.report.arena_bytes
    # the fast search picks what choose() picks over every candidate
    # (with the 16 KiB stack stm32h7's linker script reserves in every candidate's peak)
    cands = [dataclasses.replace(s, stack_bytes=c.board.stack_bytes)
             for s in enumerate_candidates(c.graph, strategies=("best",), max_overhead=0.2, include_layer=False)]
    slow = choose(cands, 0.2, 256 * 1024)
    assert (slow.split, slow.grid, slow.arena_bytes) == (c.schedule.split, c.schedule.grid, c.report.arena_bytes)
    x = _feed(c.graph, 0)
    ref = run_int8(c.graph, x)
    got = run_schedule(c.schedule, x)
    assert all(np.array_equal(got[o], ref[o]) for o in c.graph.outputs)
