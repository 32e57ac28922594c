"""Row pipelines (fused row-streaming segments): the same int8 results as layer by layer, in numpy and in C,
memory that shrinks as rows are written behind the reads, streamed input, and the pinned arenas."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.boards import load_board
from mcuc.compiler import CompileOptions, assemble, compile_model
from mcuc.errors import MCUCError
from mcuc.execute import run_int8
from mcuc.memsim import check, simulate
from mcuc.ops import OPS
from mcuc.ops.pipeline import inner_graph, row_plan, stages
from mcuc.plan import Buffer, make_planner, verify_plan
from mcuc.project import write_project
from mcuc.runner import verify_project
from mcuc.schedule.base import fused_schedule, layer_schedule
from mcuc.schedule.fuse import choose_segments, fuse_segments, segment_problem
from tests.test_patch_schedule import _feed, random_chain


@pytest.mark.parametrize("seed", range(40))
def test_fused_chain_equals_layer_execution(seed: int) -> None:
    """Every source, on the longest fusable prefix and on the segments the search picks."""
    g = random_chain(seed)
    feeds = _feed(g, seed)
    ref = run_int8(g, feeds)
    end = next(e for e in range(len(g.nodes), 0, -1) if segment_problem(g, 0, e) is None)
    for source in ("resident", "ring"):
        fg = fuse_segments(g, [(0, end)], {0: source})
        got = run_int8(fg, feeds)
        assert all(np.array_equal(got[o], ref[o]) for o in g.outputs), source
    choice = choose_segments(g)
    fg = fuse_segments(g, list(choice.segments), choice.sources)
    got = run_int8(fg, feeds)
    assert all(np.array_equal(got[o], ref[o]) for o in g.outputs)
    # the choice never keeps more bytes live than layer by layer
    assert choice.live_peak <= max(layer_schedule(g).plan().planned.live_bytes)


@pytest.mark.parametrize("seed", [1, 4, 7, 11])
@pytest.mark.parametrize("stream", [False, True])
def test_fused_chain_c_bit_exact(tmp_path, seed: int, stream: bool) -> None:
    """Host C (sanitizers on) equals the int8 reference; the pipelines' own scratch checks pass."""
    g = random_chain(seed)
    sched = fused_schedule(layer_schedule(g), stream_input=stream).plan("best")
    assert sched.fused and sched.streamed == stream
    c = assemble(sched, load_board("host"), CompileOptions())
    out = write_project(c, str(tmp_path / "proj"))
    res = verify_project(out, g, samples=3, seed=seed, target="host")
    assert res["mismatched"] == 0, res
    if stream:
        assert g.inputs[0] not in sched.planned.offsets  # the input never sits in the arena
        assert "mcuc_model_invoke_streamed" in (out / "model.h").read_text()


def test_depthwise_pointwise_pairs_share_one_stage() -> None:
    g = random_chain(28)
    choice = choose_segments(g)
    fg = fuse_segments(g, list(choice.segments), choice.sources)
    pairs = [st for n in fg.nodes if n.op == "pipeline" for st in stages(inner_graph(fg, n)) if len(st) == 2]
    for dw, pw in pairs:
        assert dw.outputs[0] == pw.inputs[0]
        assert int(dw.attrs["groups"]) > 1 and fg.tensors[pw.inputs[1]].shape[1:3] == (1, 1)


def test_output_written_behind_reads_takes_the_input_memory() -> None:
    """A residual block run in place: its output takes its input's buffer, and the replay agrees."""
    g = random_chain(28)
    choice = choose_segments(g)
    fg = fuse_segments(g, list(choice.segments), choice.sources)
    mem = layer_schedule(fg).plan().planned
    aliased = [n for n in fg.nodes if n.op == "pipeline" and mem.roots[n.outputs[0]] == mem.roots[n.inputs[0]]]
    assert aliased
    for n in aliased:
        assert OPS["pipeline"].overwrites_input(fg, n)  # type: ignore[misc]
    check(simulate(fg, mem))


def test_unsafe_overwrite_is_refused() -> None:
    """A spatial op reading rows of its input above the row it writes: the output cannot take the input's
    memory when read directly, but can through an input ring."""
    g = random_chain(2)
    i = next(k for k, n in enumerate(g.nodes) if n.op == "conv2d" and g.tensors[n.inputs[1]].shape[1] > 1
             and tuple(n.attrs["strides"]) == (1, 1)
             and g.tensors[n.inputs[0]].nbytes >= g.tensors[n.outputs[0]].nbytes)
    fg = fuse_segments(g, [(i, i + 1)])
    ig = inner_graph(fg, fg.nodes[i])
    assert not row_plan(ig, "resident").overwrites_input
    assert row_plan(ig, "ring").overwrites_input


def test_pointwise_conv_never_writes_over_the_row_it_reads(tmp_path) -> None:
    """A 1x1 conv re-reads each input pixel for every output channel: written over its own input row (even
    with fewer output channels) it would read what it just wrote. Only a ring of input rows makes it safe."""
    from tests.test_patch_schedule import _Chain

    b = _Chain(5)
    x = b.act((1, 6, 7, 16))
    b.g.inputs = [x]
    y = b.conv(x, 8, 1, 1)
    b.g.outputs = [y]
    g = b.g
    ig = inner_graph(fuse_segments(g, [(0, 1)]), fuse_segments(g, [(0, 1)]).nodes[0])
    assert not row_plan(ig, "resident").overwrites_input
    assert row_plan(ig, "ring").overwrites_input
    for source in ("resident", "ring"):
        fg = fuse_segments(g, [(0, 1)], {0: source})
        c = assemble(layer_schedule(fg).plan("best"), load_board("host"), CompileOptions())
        res = verify_project(write_project(c, str(tmp_path / source)), g, samples=3, seed=0, target="host")
        assert res["mismatched"] == 0, (source, res)


def test_planner_places_shrinking_buffers() -> None:
    """A buffer of pieces (large, then small at the same offset) lets another buffer use the freed tail."""
    planner = make_planner("best")
    a = planner.add_pieces([Buffer(1000, 0, 2), Buffer(400, 3, 6)])
    b = planner.add_buffer(600, 3, 6)
    assert planner.arena_bytes() == 1008  # 1000 rounded to 16 + nothing: b fits in a's freed tail
    offsets = [planner.offset(a), planner.offset(a), planner.offset(b)]
    verify_plan([Buffer(1000, 0, 2), Buffer(400, 3, 6), Buffer(600, 3, 6)], offsets, planner.arena_bytes())


def test_broken_piece_plan_is_caught() -> None:
    g = random_chain(28)
    choice = choose_segments(g)
    fg = fuse_segments(g, list(choice.segments), choice.sources)
    mem = layer_schedule(fg).plan().planned
    shrinking = [r for r, ps in mem.pieces.items() if len(ps) > 1]
    assert shrinking
    r = shrinking[0]
    other = next(o for o in mem.sizes if o != r and mem.lifetimes[o][0] > mem.lifetimes[r][0])
    import dataclasses

    broken = dataclasses.replace(mem, offsets={t: (mem.offsets[r] if mem.roots[t] == other else o)
                                               for t, o in mem.offsets.items()})
    assert simulate(fg, broken).problems


def _zoo_onnx(tmp_path, name: str, resolution: int):
    pytest.importorskip("torch")
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name, resolution=resolution)
    return export_onnx(model, shape, tmp_path / f"{name}-{resolution}.onnx")


def test_fused_arenas_pinned(tmp_path) -> None:
    """MobileNetV2-0.35 at 96x96: layer-based, fused with the image resident, fused with it streamed."""
    path = _zoo_onnx(tmp_path, "mobilenetv2-0.35", 96)
    arenas = {}
    for name, opts in (("layer", CompileOptions(calib_samples=2)),
                       ("fused", CompileOptions(schedule="fused", calib_samples=2)),
                       ("streamed", CompileOptions(schedule="fused", stream_input=True, calib_samples=2))):
        c = compile_model(str(path), opts, progress=lambda m: None)
        arenas[name] = c.report.arena_bytes
        if name != "layer":
            assert c.report.arena_bytes == c.report.arena_lower_bound_bytes  # the planner meets the bound
    assert arenas == {"layer": 138240, "fused": 29968, "streamed": 15136}


def test_stream_input_needs_a_fused_schedule() -> None:
    from mcuc.schedule.search import select_schedule

    g = random_chain(2)
    for kind in ("layer", "patch"):
        with pytest.raises(MCUCError, match="streamed input needs a fused schedule"):
            select_schedule(g, kind, "best", 1 << 30, False, 0.2, stream_input=True)


@pytest.mark.parametrize("seed", [2, 8, 13])
def test_patch_schedule_with_fused_patches_is_bit_exact(tmp_path, seed: int) -> None:
    """A patch schedule whose per-patch chains run as row pipelines: numpy and host C equal layer by layer."""
    from mcuc.execute import run_schedule
    from mcuc.schedule.patch import build_schedule, valid_splits

    g = random_chain(seed)
    split = valid_splits(g)[-1]
    _, oh, ow, _ = g.tensors[g.nodes[split - 1].outputs[0]].shape
    patch = build_schedule(g, split, (min(2, oh), min(2, ow)))
    sched = fused_schedule(patch).plan("best")
    assert sched.patch is not None and sched.fused
    # the patch stage still ends with the place of its last patch (pipelines replaced ops inside the stage)
    assert sched.graph.nodes[sched.stage_ops - 1].op == "copy_window" and ".place:" in sched.graph.nodes[
        sched.stage_ops - 1].name
    feeds = _feed(g, seed)
    ref, got = run_int8(g, feeds), run_schedule(sched, feeds)
    assert all(np.array_equal(got[o], ref[o]) for o in g.outputs)
    c = assemble(sched, load_board("host"), CompileOptions(schedule="patch"))
    assert c.report.schedule["kind"] == "patch" and c.report.schedule["fused_segments"]
    res = verify_project(write_project(c, str(tmp_path / "proj")), g, samples=2, seed=seed, target="host")
    assert res["mismatched"] == 0, res
