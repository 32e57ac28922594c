"""Blocked attention: the fused kernel (C) == its numpy reference == the unfused int8 ops, and the planner
and report account for its scratch; zoo transformers bit-exact on the host and under QEMU."""
from __future__ import annotations

import ctypes
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcuc.boards import load_board
from mcuc.compiler import Compiled, CompileOptions, assemble, compile_model
from mcuc.errors import MCUCError
from mcuc.execute import run_int8
from mcuc.ir import Graph
from mcuc.memory import op_scratch_bytes, plan_memory, scratch_key
from mcuc.ops import OPS, verify
from mcuc.ops.quant_rules import SOFTMAX_QUANT
from mcuc.passes.attention import attention_nodes, fuse_attention, parse_block
from mcuc.plan import Buffer, verify_plan
from mcuc.project import write_project
from mcuc.reference.attention import attention_s8, prepare_attention
from mcuc.reference.softmax import prepare_softmax, softmax_s8
from mcuc.reference.transformer import batch_matmul_s8, prepare_batch_matmul
from mcuc.runner import verify_project
from mcuc.schedule.base import layer_schedule
from tests.cbuild import build_shared
from tests.int8_graphs import Int8GraphBuilder

I32 = ctypes.c_int32
I32x2 = I32 * 2


class CBatchMatmulParams(ctypes.Structure):
    _fields_ = [("batch", I32x2), ("m", I32), ("k", I32), ("n", I32), ("a_batch_strides", I32x2),
                ("b_batch_strides", I32x2)]
    _fields_ += [(f, I32) for f in ("b_k_stride", "b_n_stride", "a_offset", "b_offset", "out_zp", "out_mult",
                                    "out_shift", "act_min", "act_max")]


class CAttentionParams(ctypes.Structure):
    _fields_ = [("scores", CBatchMatmulParams), ("output", CBatchMatmulParams), ("block_rows", I32),
                ("probs_levels", I32), ("probs_zp", I32)]


def _bmm_struct(p: Any) -> CBatchMatmulParams:
    vals = {name: (I32x2(*getattr(p, name)) if isinstance(getattr(p, name), tuple) else getattr(p, name))
            for name, _ in CBatchMatmulParams._fields_}
    return CBatchMatmulParams(**vals)


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(["mcuc_attention_blocked_s8", "mcuc_attention_blocked_s8_get_buffer_size",
                         "mcuc_batch_matmul_s8", "mcuc_softmax_s8"])


def _ptr(a: np.ndarray, ctype: Any = ctypes.c_int8) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def _case(rng: np.random.Generator) -> tuple[Any, ...]:
    """Random attention shapes (rank 3 or 4, broadcast batch axes, k stored either way) and quantization."""
    tq, tk, d, dv = (int(v) for v in rng.integers(1, 24, 4))
    rank = int(rng.integers(3, 5))
    batch = tuple(int(v) for v in rng.integers(1, 4, rank - 2))
    bq, bk, bv = (tuple(x if rng.random() < 0.75 else 1 for x in batch) for _ in range(3))
    bq = batch  # the scores' batch is the output's
    transpose_b = bool(rng.random() < 0.5)
    k_shape = bk + ((tk, d) if transpose_b else (d, tk))
    q = rng.integers(-128, 128, bq + (tq, d)).astype(np.int8)
    k = rng.integers(-128, 128, k_shape).astype(np.int8)
    v = rng.integers(-128, 128, bv + (tk, dv)).astype(np.int8)
    zp = [int(x) for x in rng.integers(-128, 128, 4)]
    sq, sk, sv = (float(10 ** rng.uniform(-2.5, -1)) for _ in range(3))
    s_scores = sq * sk * float(10 ** rng.uniform(0.5, 2.5))
    scores = prepare_batch_matmul(q.shape, k.shape, sq * 0.25, zp[0], sk, zp[1], s_scores, zp[2],
                                  transpose_b=transpose_b)
    scores_shape = bq + (tq, tk)
    softmax = prepare_softmax(scores_shape, s_scores)
    output = prepare_batch_matmul(scores_shape, v.shape, 1 / 256, -128, sv, zp[3], sv * float(rng.uniform(0.2, 2)),
                                  int(rng.integers(-20, 20)))
    return q, k, v, scores, softmax, output, tq


def _unfused(q: np.ndarray, k: np.ndarray, v: np.ndarray, scores: Any, softmax: Any, output: Any) -> np.ndarray:
    s = batch_matmul_s8(scores, q, k)
    return batch_matmul_s8(output, softmax_s8(softmax, s), v)


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_reference_and_unfused_ops(lib: ctypes.CDLL, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, k, v, scores, softmax, output, tq = _case(rng)
    want = _unfused(q, k, v, scores, softmax, output)
    for rows in sorted({1, int(rng.integers(1, tq + 1)), tq}):
        p = prepare_attention(scores, softmax, output, rows)
        ref = attention_s8(p, q, k, v)
        assert np.array_equal(ref.reshape(want.shape), want), rows
        cp = CAttentionParams(_bmm_struct(scores), _bmm_struct(output), rows, p.probs_levels, p.probs_zp)
        size = lib.mcuc_attention_blocked_s8_get_buffer_size(ctypes.byref(cp))
        assert size == rows * scores.n
        scratch = np.full(size + 16, 77, np.int8)  # a guard past the end must stay untouched
        out = np.zeros(want.size + 16, np.int8)
        lib.mcuc_attention_blocked_s8(ctypes.byref(cp), _ptr(p.exp_table, ctypes.c_uint32), _ptr(scratch), _ptr(q),
                                      _ptr(k), _ptr(v), _ptr(out))
        assert np.array_equal(out[:want.size].reshape(want.shape), want), rows
        assert np.all(scratch[size:] == 77) and np.all(out[want.size:] == 0)


def _attention_graph(seed: int) -> Graph:
    """Inputs q, k, v into one int8 attention op: random heads, lengths, k stored either way, block rows."""
    b = Int8GraphBuilder(seed)
    r = b.rng
    tq, tk, d, dv = (int(x) for x in r.integers(1, 20, 4))
    heads = int(r.integers(1, 4))
    transpose_b = bool(r.random() < 0.5)
    q = b.act((1, heads, tq, d))
    k = b.act((1, heads) + ((tk, d) if transpose_b else (d, tk)))
    v = b.act((1, heads, tk, dv))
    y = b.node("attention", [q, k, v], (1, heads, tq, dv), scores_quant=b.quant(), probs_quant=SOFTMAX_QUANT,
               scores_act=(-128, 127), alpha=float(d) ** -0.5, transpose_b=transpose_b, beta=1.0, alpha_v=1.0,
               transpose_v=False, act_min=-128, act_max=127, block_rows=int(r.integers(1, tq + 1)))
    b.g.inputs, b.g.outputs = [q, k, v], [y]
    verify(b.g, quantized=True)
    return b.g


@pytest.mark.parametrize("seed", range(30))
def test_registry_scratch_equals_kernel_buffer_size(lib: ctypes.CDLL, seed: int) -> None:
    """The scratch the compiler plans (the registry's fact) is what the C companion asks for, from the very
    struct the lowering emits."""
    g = _attention_graph(seed)
    (n,) = g.nodes
    low = OPS["attention"].lower(g, n)  # type: ignore[misc]
    fields = low.structs[0].value
    cp = CAttentionParams(*(CBatchMatmulParams(**{f: I32x2(*v) if isinstance(v, tuple) else v
                                                  for f, v in fields[part].items()})
                            for part in ("scores", "output")), fields["block_rows"], fields["probs_levels"],
                            fields["probs_zp"])
    assert lib.mcuc_attention_blocked_s8_get_buffer_size(ctypes.byref(cp)) == op_scratch_bytes(g, n) > 0


def test_generated_code_checks_scratch(tmp_path: Path) -> None:
    """model.c built with MCUC_CHECK_BUFFER_SIZES (the sanitized host build) compares the planned scratch with
    the kernel's _get_buffer_size before the call, and invoke fails when they differ."""
    g = _attention_graph(7)
    c = assemble(layer_schedule(g).plan("best"), load_board("host"), CompileOptions())
    out = write_project(c, str(tmp_path / "proj"))
    res = verify_project(out, g, samples=3, seed=1, target="host")
    assert res["mismatched"] == 0 and res["elements"] > 0, res
    model_c = out / "model.c"
    check = f"mcuc_attention_blocked_s8_get_buffer_size(&mcuc_op0_s0) != {op_scratch_bytes(g, g.nodes[0])})"
    assert check in model_c.read_text()
    model_c.write_text(model_c.read_text().replace(check, check.replace(" != ", " != 1 + ")))
    with pytest.raises(MCUCError, match="invoke failed with status 1"):
        verify_project(out, g, samples=1, seed=1, target="host")


def test_prepare_rejects_mismatched_pieces() -> None:
    q, k, v, scores, softmax, output, tq = _case(np.random.default_rng(5))
    with pytest.raises(ValueError, match="block"):
        prepare_attention(scores, softmax, output, tq + 1)
    with pytest.raises(ValueError, match="softmax row"):
        prepare_attention(scores, prepare_softmax((3, scores.n + 1), 0.1), output, 1)


def test_parse_block() -> None:
    assert [parse_block(x) for x in ("auto", "WHOLE", "8")] == ["auto", "whole", "8"]
    for bad in ("0", "-3", "half", ""):
        with pytest.raises(MCUCError, match="--attention-block"):
            parse_block(bad)


# ---- zoo transformers (PyTorch exports them: the fixture skips without it, the tests above still run) -------

ZOO_CASES = ["dhvt", "dhvt-small", "crossvit", "crossvit-small"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    from mcuc.zoo import build
    from mcuc.zoo.export import export_onnx

    root = tmp_path_factory.mktemp("attention_zoo")
    out = {}
    for name in ZOO_CASES:
        model, shape = build(name)
        out[name] = export_onnx(model, shape, root / f"{name}.onnx", opset=17)
    return out


def _compile(path: Path, **kw: Any) -> Compiled:
    return compile_model(str(path), CompileOptions(**kw), progress=lambda m: None)


def _scratch_checked(c: Compiled) -> None:
    """Every attention op's scratch is planned, live only at its op, and overlaps no live buffer."""
    g, mem = c.graph, c.schedule.planned
    bufs = mem.buffers()  # type: ignore[attr-defined]
    verify_plan([Buffer(s, f, la) for _, _, s, f, la in bufs], [o for _, o, _, _, _ in bufs],
                mem.arena_bytes, 16)  # type: ignore[attr-defined]
    ops = c.report.ops
    for i, n in enumerate(g.nodes):
        if n.op != "attention":
            assert "scratch_bytes" not in ops[i]
            continue
        key = scratch_key(n)
        assert mem.lifetimes[key] == (i, i) and mem.sizes[key] == op_scratch_bytes(g, n)  # type: ignore[attr-defined]
        assert ops[i]["scratch_bytes"] == op_scratch_bytes(g, n)
        live = sum(size for _, _, size, f, la in bufs if f <= i <= la)
        assert ops[i]["live_bytes"] == live


@pytest.mark.parametrize("name", ZOO_CASES)
def test_zoo_fused_equals_unfused_and_host_c(exported: dict[str, Path], tmp_path: Path, name: str) -> None:
    whole = _compile(exported[name], attention_block="whole")
    assert not attention_nodes(whole.graph) and whole.report.attention["ops"] == []
    blocked = _compile(exported[name])
    fused = attention_nodes(blocked.graph)
    assert fused and {n.op for n in blocked.graph.nodes}.isdisjoint({"softmax"})
    assert blocked.report.macs == whole.report.macs
    assert blocked.report.arena_bytes < whole.report.arena_bytes
    _scratch_checked(blocked)
    for op in blocked.report.attention["ops"]:
        assert op["scratch_bytes"] == op["block_rows"] * op["keys"] < op["whole_scores_bytes"]
    # the same int8 graph fused with fixed blocks: every tensor both graphs hold is bit-identical
    graphs = [blocked.graph, fuse_attention(whole.graph, "1"), fuse_attention(whole.graph, "7")]
    rng = np.random.default_rng(11)
    g = whole.graph
    for _ in range(2):
        feeds = {i: rng.integers(-128, 128, g.tensors[i].shape, dtype=np.int8) for i in g.inputs}
        want = run_int8(g, feeds)
        for fg in graphs:
            got = run_int8(fg, feeds)
            shared = [t for t in got if t in want and g.tensors[t].data is None]
            assert set(fg.outputs) <= set(shared)
            for t in shared:
                assert np.array_equal(got[t], want[t]), t
    out = write_project(blocked, str(tmp_path / "proj"))
    assert "mcuc_attention_blocked_s8(" in (out / "model.c").read_text()
    res = verify_project(out, blocked.graph, samples=4, seed=2, target="host")
    assert res["mismatched"] == 0 and res["elements"] > 0, res


def test_fixed_block_rows_on_host(exported: dict[str, Path], tmp_path: Path) -> None:
    c = _compile(exported["dhvt-small"], attention_block="5")
    assert {n.attrs["block_rows"] for n in attention_nodes(c.graph)} == {5}
    _scratch_checked(c)
    res = verify_project(write_project(c, str(tmp_path / "proj")), c.graph, samples=3, seed=4, target="host")
    assert res["mismatched"] == 0, res


def test_auto_blocks_never_plan_larger_than_single_rows(exported: dict[str, Path]) -> None:
    c = _compile(exported["dhvt"])
    ones = fuse_attention(_compile(exported["dhvt"], attention_block="whole").graph, "1")
    assert c.report.arena_bytes <= plan_memory(ones).arena_bytes
    assert any(n.attrs["block_rows"] > 1 for n in attention_nodes(c.graph))


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc (make sysdeps)")
@pytest.mark.parametrize("name,board", [(name, board) for name in ("dhvt", "crossvit")
                                        for board in ("qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps3-an547")]
                         + [("dhvt-small", "qemu-mps2-an500"), ("crossvit-small", "qemu-mps2-an500")])
def test_zoo_blocked_attention_bit_exact_under_qemu(exported: dict[str, Path], tmp_path: Path, name: str,
                                                    board: str) -> None:
    """The full-size transformers on the M4, M7 and M55 (DSP and MVE variants), the small ones on the M7 (on the
    M4 and M55 in tests/test_e2e_variants.py), with fast kernels as auto chooses on these boards."""
    c = _compile(exported[name], board=board, kernels="fast")
    assert attention_nodes(c.graph)
    out = write_project(c, str(tmp_path / "proj"))
    res = verify_project(out, c.graph, samples=2, seed=3, target="qemu", board=board)
    assert res["mismatched"] == 0 and res["where"] == f"qemu {board}", res
