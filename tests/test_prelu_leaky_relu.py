"""PReLU and LeakyReLU: the prelu C kernel == its reference, TFLite PRELU / LEAKY_RELU == TFLite Micro, ONNX PRelu /
LeakyRelu == onnxruntime (float) and int8 C == reference."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from mcuc.compiler import CompileOptions, compile_model
from mcuc.execute import run_int8
from mcuc.frontend.tflite import load_tflite
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.project import write_project
from mcuc.quant import dequantize_array, quantize_array
from mcuc.reference.elementwise import prelu_s8, prepare_broadcast, prepare_prelu
from mcuc.runner import verify_project
from mcuc.tflite_export import export_tflite
from tests.cbuild import build_shared
from tests.test_frontend_onnx import check_against_ort, make_model, save
from tests.test_kernels_nn import CBroadcast, ptr, rand_broadcast_pair, rand_i8, rand_scale, rand_zp, to_c
from tests.test_pool_ceil_mode import int8_error_in_steps

I32 = ctypes.c_int32


class CPreluParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("in_offset", "alpha_offset", "out_offset", "pos_mult", "pos_shift", "neg_mult",
                                   "neg_shift")]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(["mcuc_prelu_s8"])


def _run_c(lib: ctypes.CDLL, x: np.ndarray, a: np.ndarray, p: object, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        out = np.zeros(np.broadcast_shapes(x.shape, a.shape), np.int8)
    lib.mcuc_prelu_s8(ctypes.byref(to_c(CPreluParams, p)), ctypes.byref(to_c(CBroadcast, prepare_broadcast(
        x.shape, a.shape))), ptr(x), ptr(a), ptr(out))
    return out


def _brute_prelu(x: np.ndarray, a: np.ndarray, p) -> np.ndarray:
    """TFLite's reference PRELU loop, element by element with Python integers."""
    from mcuc.quant import multiply_by_quantized_multiplier as mbqm

    xb, ab = np.broadcast_arrays(x.astype(np.int64), a.astype(np.int64))
    out = np.zeros(xb.shape, np.int64)
    for i in np.ndindex(xb.shape):
        v = int(xb[i]) + p.in_offset
        r = mbqm(np.array(v), p.pos_mult, p.pos_shift) if v >= 0 else \
            mbqm(np.array(v * (int(ab[i]) + p.alpha_offset)), p.neg_mult, p.neg_shift)
        out[i] = min(max(int(r) + p.out_offset, -128), 127)
    return out


def test_prelu_kernel_parity_and_float(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(50)
    cases = [((1, 7, 5, 16), (1, 1, 1, 16)), ((1, 3, 9, 5), (5,)), ((2, 4, 3, 3), (1,)), ((1, 5, 7, 2), (1, 5, 7, 2)),
             ((3, 1, 5), (3, 1, 1))] + [rand_broadcast_pair(rng) for _ in range(60)]
    worst = 0
    for i, (sx, sa) in enumerate(cases):  # either operand may broadcast, as in TFLite's BroadcastPrelu4DSlow
        x, a = rand_i8(rng, sx), rand_i8(rng, sa)
        s_in, s_a = rand_scale(rng, -2.5, -0.5), rand_scale(rng, -3, -1)
        z_in, z_a, z_out = rand_zp(rng), rand_zp(rng), rand_zp(rng)
        s_out = s_in * float(rng.uniform(0.3, 2.0))
        p = prepare_prelu(s_in, z_in, s_a, z_a, s_out, z_out)
        ref = prelu_s8(p, x, a)
        np.testing.assert_array_equal(_run_c(lib, x, a, p), ref, err_msg=f"case {i}: {sx} {sa}")
        if i < 12:
            np.testing.assert_array_equal(ref, _brute_prelu(x, a, p))
        fx, fa = dequantize_array(x, s_in, z_in).astype(np.float64), dequantize_array(a, s_a, z_a).astype(np.float64)
        want = np.clip(quantize_array(np.where(fx >= 0, fx, fx * fa), s_out, z_out).astype(np.int64), -128, 127)
        worst = max(worst, int(np.abs(ref.astype(np.int64) - want).max()))
    assert worst <= 1  # TFLite's requantization against the float result rounded once


def test_prelu_kernel_in_place(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(51)
    x, a = rand_i8(rng, (1, 6, 5, 8)), rand_i8(rng, (1, 1, 1, 8))
    p = prepare_prelu(0.05, 3, 0.01, -20, 0.04, -5)
    out = x.copy()
    _run_c(lib, out, a, p, out=out)
    np.testing.assert_array_equal(out, prelu_s8(p, x, a))


def test_prelu_prepare_refuses_overflowing_shift() -> None:
    with pytest.raises(ValueError, match="too small"):
        prepare_prelu(1.0, 0, 1.0, 0, 1e-6, 0)


# ---- TFLite PRELU: TFLM == our reference == the generated C --------------------------------------------------


def _prelu_graph(rng: np.random.Generator, x_shape: tuple[int, ...], slope_shape: tuple[int, ...]) -> Graph:
    f32 = np.float32
    g = Graph(layout="NHWC", meta={"quantized": True})
    s_in = float(f32(10 ** rng.uniform(-2.5, -0.5)))
    g.add_tensor(Tensor("x", x_shape, "int8", QuantParams([s_in], [int(rng.integers(-100, 100))])))
    g.add_tensor(Tensor("y", x_shape, "int8", QuantParams([float(f32(s_in * rng.uniform(0.3, 1.5)))],
                                                         [int(rng.integers(-60, 60))])))
    slope = rng.integers(-128, 128, slope_shape).astype(np.int8)
    g.const("slope", slope, QuantParams([float(f32(10 ** rng.uniform(-3, -1)))], [int(rng.integers(-50, 50))]))
    g.nodes.append(Node("prelu", "prelu", ["x", "slope"], ["y"], {}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


def test_tflite_prelu_equals_tflm(tmp_path: Path) -> None:
    """The slope per channel ([1, 1, C] and [C]), full-size and single: our reference == TFLM == LiteRT."""
    from tests.test_tflite import run_litert, run_tflm

    rng = np.random.default_rng(52)
    cases = [((1, 5, 7, 6), (1, 1, 6)), ((1, 4, 4, 3), (3,)), ((1, 3, 5, 4), (1, 3, 5, 4)), ((1, 6, 2, 5), (1,)),
             ((1, 9, 3, 1), (1, 1, 1))]
    for i, (sx, sa) in enumerate(cases):
        g = _prelu_graph(rng, sx, sa)
        data = export_tflite(g).data
        path = tmp_path / f"prelu{i}.tflite"
        path.write_bytes(data)
        back = load_tflite(str(path))
        assert [n.op for n in back.nodes] == ["prelu"]
        feeds = [{"x": rng.integers(-128, 128, sx).astype(np.int8)} for _ in range(4)]
        for f, w, lite in zip(feeds, run_tflm(data, feeds, g), run_litert(data, feeds, g), strict=True):
            got = run_int8(back, {back.inputs[0]: f["x"]})[back.outputs[0]]
            np.testing.assert_array_equal(got, w[0])
            np.testing.assert_array_equal(got, lite[0])  # LiteRT's reference PRELU agrees too
        if i == 0:  # the generated C of the .tflite model equals the reference (and so TFLM)
            compiled = compile_model(str(path), CompileOptions(), progress=lambda m: None)
            res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=4, seed=2,
                                 target="host")
            assert res["elements"] > 0 and res["mismatched"] == 0, res


# ---- ONNX PRelu / LeakyRelu ------------------------------------------------------------------------------------


def _onnx_model(tmp_path: Path) -> tuple[str, list[str]]:
    rng = np.random.default_rng(53)
    c = 5
    nodes = [
        helper.make_node("PRelu", ["x", "slope_c"], ["p_channel"]),  # per channel [C, 1, 1]
        helper.make_node("PRelu", ["x", "slope_1"], ["p_shared"]),  # one slope
        helper.make_node("LeakyRelu", ["x"], ["l_default"]),  # alpha 0.01
        helper.make_node("LeakyRelu", ["x"], ["l_02"], alpha=0.2),
    ]
    inits = {"slope_c": rng.uniform(-0.3, 0.6, (c, 1, 1)).astype(np.float32), "slope_1": np.array([0.25], np.float32)}
    outs = ["p_channel", "p_shared", "l_default", "l_02"]
    return save(make_model(nodes, {"x": (1, c, 9, 7)}, outs, inits, opset=13), tmp_path), outs


def test_onnx_prelu_leaky_relu_float_and_int8(tmp_path: Path) -> None:
    path, outs = _onnx_model(tmp_path)
    g, p = check_against_ort(path)
    assert {n.op for n in p.nodes} >= {"prelu", "leaky_relu"}
    slope = next(n for n in p.nodes if n.op == "prelu" and n.outputs[0] == "p_channel").inputs[1]
    assert p.tensors[slope].shape == (1, 1, 1, 5)  # [C, 1, 1] broadcast against NCHW -> [1, 1, 1, C] in NHWC
    rng = np.random.default_rng(54)
    calib = rng.standard_normal((8, 5, 9, 7)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    compiled = compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy")), progress=lambda m: None)
    assert {n.op for n in compiled.graph.nodes} >= {"prelu", "lut"}
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=4, seed=3,
                         target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res
    # int8 vs onnxruntime's float on the int8 input grid, in output steps: LeakyReLU is a table of the float
    # function (rounded once: 0.5); PReLU requantizes with the slope quantized per tensor (step s_alpha / 2)
    worst = {o: 0.0 for o in outs}
    for x in calib[:4]:
        for o, e in int8_error_in_steps(compiled, path, x[None]).items():
            worst[o] = max(worst[o], e)
    assert worst["l_default"] <= 0.5 + 1e-3 and worst["l_02"] <= 0.5 + 1e-3, worst
    g8 = compiled.graph
    qx = g8.tensors[g8.inputs[0]].quant
    assert qx is not None
    x_max = (127 - qx.zp) * qx.s if qx.zp < 0 else (qx.zp + 128) * qx.s  # largest |x| of the input grid
    for n in (n for n in g8.nodes if n.op == "prelu"):
        qs, qy = g8.tensors[n.inputs[1]].quant, g8.tensors[n.outputs[0]].quant
        assert qs is not None and qy is not None
        bound = 0.5 + x_max * qs.s / 2 / qy.s + 1e-3  # rounding, plus |x| times half a slope step
        assert worst[n.outputs[0]] <= bound, (n.outputs[0], worst, bound)  # measured: 0.58 and 0.50 steps
