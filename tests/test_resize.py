"""Resize (nearest, bilinear): mcuc_resize_s8 == its reference, TFLite RESIZE_* == TFLite Micro, ONNX Resize ==
onnxruntime (float) with the int8 C == the reference, and one-line errors for what is not supported."""
from __future__ import annotations

import ctypes
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import helper

from mcuc.compiler import CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.execute import run_float, run_int8
from mcuc.frontend.onnx import load_onnx
from mcuc.frontend.tflite import load_tflite
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.project import write_project
from mcuc.reference import resize as rresize
from mcuc.runner import verify_project
from mcuc.tflite_export import export_tflite
from tests.cbuild import build_shared
from tests.test_frontend_onnx import make_model, ort_run, save
from tests.test_kernels_nn import ptr, rand_i8, to_c
from tests.test_pool_ceil_mode import int8_error_in_steps

I32 = ctypes.c_int32
P16 = ctypes.POINTER(ctypes.c_int16)


class CResizeParams(ctypes.Structure):
    _fields_ = [(n, I32) for n in ("batches", "in_h", "in_w", "channels", "out_h", "out_w", "bilinear")]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared(["mcuc_resize_s8"])


def _run_c(lib: ctypes.CDLL, x: np.ndarray, p: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    out = np.zeros(p.out_shape, np.int8)
    r, c = np.ascontiguousarray(rows, np.int16), np.ascontiguousarray(cols, np.int16)
    lib.mcuc_resize_s8(ctypes.byref(to_c(CResizeParams, p)), r.ctypes.data_as(P16), c.ctypes.data_as(P16), ptr(x),
                       ptr(out))
    return out


def _rand_rule(rng: np.random.Generator, h: int, w: int, oh: int, ow: int) -> rresize.ResizeRule:
    mode = str(rng.choice(["nearest", "linear"]))
    if rng.random() < 0.5:
        return rresize.ResizeRule(mode, "tflite", str(rng.choice(rresize.TFLITE_COORDS)))
    scales = (float(np.float32(oh) / np.float32(h)), float(np.float32(ow) / np.float32(w)))
    return rresize.ResizeRule(mode, "onnx", str(rng.choice(rresize.ONNX_COORDS)),
                              str(rng.choice(rresize.NEAREST_MODES)), scales)


def _brute_tflite_bilinear(x: np.ndarray, oh: int, ow: int, align: bool, half: bool) -> np.ndarray:
    """TFLite's ResizeBilinearInteger transcribed loop by loop (Python integers, C division)."""
    def cdiv(a: int, b: int) -> int:
        return -(-a // b) if a < 0 else a // b

    n, h, w, c = x.shape

    def scale10(i: int, o: int) -> int:
        return ((1 << 10) * (i - 1) + (o - 1) // 2) // (o - 1) if align and o > 1 else ((1 << 10) * i + o // 2) // o

    def interp(v: int, s: int, size: int) -> tuple[int, int, int]:
        sv = v * s + s // 2 - (1 << 9) if half else v * s
        return sv, max(cdiv(sv, 1 << 10), 0), min(cdiv(sv + (1 << 10) - 1, 1 << 10), size - 1)

    out = np.zeros((n, oh, ow, c), np.int64)
    sh, sw = scale10(h, oh), scale10(w, ow)
    for b, yy, xx in itertools.product(range(n), range(oh), range(ow)):
        iy, y0, y1 = interp(yy, sh, h)
        ix, x0, x1 = interp(xx, sw, w)
        for ch in range(c):
            t = (int(x[b, y0, x0, ch]) * ((1 << 10) - (iy - (1 << 10) * y0)) * ((1 << 10) - (ix - (1 << 10) * x0))
                 + int(x[b, y1, x0, ch]) * (iy - (1 << 10) * y0) * ((1 << 10) - (ix - (1 << 10) * x0))
                 + int(x[b, y0, x1, ch]) * ((1 << 10) - (iy - (1 << 10) * y0)) * (ix - (1 << 10) * x0)
                 + int(x[b, y1, x1, ch]) * (iy - (1 << 10) * y0) * (ix - (1 << 10) * x0))
            out[b, yy, xx, ch] = cdiv(t + ((1 << 19) if t > 0 else -(1 << 19)), 1 << 20)
    return out


def test_resize_kernel_parity(lib: ctypes.CDLL) -> None:
    """C == reference over random shapes (odd sizes, up and down), every rule; the reference's TFLite bilinear ==
    a loop-by-loop transcription of TFLite's integer algorithm; ONNX-rule bilinear is within 0.5 + 128/1024 steps of
    the float interpolation of the same int8 input (rounding, and weights rounded to 1/1024). (TFLite's own integer
    coordinates drift from its float ones by up to out_size/2048 pixels: that is its specification.)"""
    rng = np.random.default_rng(60)
    worst = 0.0
    for i in range(150):
        n, h, w, c = (int(v) for v in (rng.integers(1, 3), rng.integers(1, 12), rng.integers(1, 12),
                                       rng.integers(1, 7)))
        oh, ow = (int(v) for v in rng.integers(1, 25, 2))
        r = _rand_rule(rng, h, w, oh, ow)
        try:
            p, rows, cols = rresize.prepare_resize((n, h, w, c), (oh, ow), r)
        except ValueError as e:  # TFLite's rounded scale reads past the input for a few extreme ratios
            assert "past the input" in str(e)
            continue
        x = rand_i8(rng, (n, h, w, c))
        ref = rresize.resize_s8(p, rows, cols, x)
        np.testing.assert_array_equal(_run_c(lib, x, p, rows, cols), ref, err_msg=f"case {i}: {r} {x.shape}")
        if r.mode == "linear" and r.rule == "tflite" and i < 60:
            np.testing.assert_array_equal(ref, _brute_tflite_bilinear(x, oh, ow, r.coord == "align_corners",
                                                                      r.coord == "half_pixel"))
        if r.mode == "linear" and r.rule == "onnx":
            f = rresize.resize_float(x.astype(np.float32), r, (oh, ow))
            worst = max(worst, float(np.abs(ref - f).max()))
        elif r.mode == "nearest":
            t = rresize.float_taps(r, 0, oh, h), rresize.float_taps(r, 1, ow, w)
            np.testing.assert_array_equal(ref, x[:, t[0].lo][:, :, t[1].lo])
    assert worst <= 0.5 + 128 / 1024 + 1e-9, worst


def test_resize_large_and_refusals(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(61)
    x = rand_i8(rng, (1, 56, 40, 32))
    for r in (rresize.ResizeRule("linear", "tflite", "half_pixel"),
              rresize.ResizeRule("linear", "onnx", "pytorch_half_pixel", scales=(2.0, 2.0))):
        p, rows, cols = rresize.prepare_resize(x.shape, (112, 80), r)
        np.testing.assert_array_equal(_run_c(lib, x, p, rows, cols), rresize.resize_s8(p, rows, cols, x))
    with pytest.raises(ValueError, match="past the input"):  # TFLite's 10-bit scale for 1 -> 55 rounds up
        rresize.prepare_resize((1, 1, 1, 1), (55, 1), rresize.ResizeRule("linear", "tflite", "asymmetric"))
    with pytest.raises(ValueError, match="unsupported resize rule"):
        rresize.prepare_resize((1, 2, 2, 1), (4, 4), rresize.ResizeRule("cubic", "onnx", "half_pixel"))


# ---- TFLite RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR against TFLite Micro -------------------------------------


def _tflite_resize_graph(rng: np.random.Generator, shape: tuple[int, ...], size: tuple[int, int], mode: str,
                         coord: str) -> Graph:
    g = Graph(layout="NHWC", meta={"quantized": True})
    q = QuantParams([float(np.float32(10 ** rng.uniform(-2, 0)))], [int(rng.integers(-100, 100))])
    g.add_tensor(Tensor("x", shape, "int8", q))
    g.add_tensor(Tensor("y", (shape[0], size[0], size[1], shape[3]), "int8", q))
    g.nodes.append(Node("resize", "resize", ["x"], ["y"], {"size": size, "mode": mode, "rule": "tflite",
                                                           "coord": coord}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g


TFLITE_SIZES = [((1, 5, 7, 3), (10, 14)), ((1, 9, 6, 2), (4, 3)), ((1, 4, 4, 5), (7, 9)), ((1, 7, 5, 1), (7, 5)),
                ((1, 3, 8, 4), (1, 1)), ((1, 1, 1, 3), (3, 2)), ((1, 12, 10, 2), (5, 17))]


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_tflite_resize_equals_tflm(tmp_path: Path, mode: str) -> None:
    """Every size of TFLITE_SIZES with every flag: our reference == TFLM == LiteRT (BUILTIN_REF); the C == ours."""
    from tests.test_tflite import run_litert, run_tflm

    rng = np.random.default_rng(62 if mode == "linear" else 63)
    for i, ((shape, size), coord) in enumerate(itertools.product(TFLITE_SIZES, rresize.TFLITE_COORDS)):
        g = _tflite_resize_graph(rng, shape, size, mode, coord)
        data = export_tflite(g).data
        path = tmp_path / f"r{i}.tflite"
        path.write_bytes(data)
        back = load_tflite(str(path))
        assert [n.op for n in back.nodes] == ["resize"] and back.nodes[0].attrs["coord"] == coord
        feeds = [{"x": rng.integers(-128, 128, shape).astype(np.int8)} for _ in range(3)]
        for f, want, lite in zip(feeds, run_tflm(data, feeds, g), run_litert(data, feeds, g), strict=True):
            got = run_int8(back, {back.inputs[0]: f["x"]})[back.outputs[0]]
            np.testing.assert_array_equal(got, want[0].reshape(got.shape), err_msg=f"{shape} -> {size} {coord}")
            np.testing.assert_array_equal(got, lite[0].reshape(got.shape))  # LiteRT's reference kernels agree
    compiled = compile_model(str(path), CompileOptions(), progress=lambda m: None)  # the generated C == reference
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=3, seed=4,
                         target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res


# ---- ONNX Resize against onnxruntime -----------------------------------------------------------------------------


def _resize_node(out: str, mode: str, coord: str, nearest_mode: str, inputs: list[str], **extra: Any) -> Any:
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": coord, **extra}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    return helper.make_node("Resize", inputs, [out], name=out, **attrs)


ONNX_GEOMETRIES = [  # (input H, W, "scales" or "sizes", the H and W values)
    ((5, 7), "scales", (2.0, 2.0)),
    ((5, 7), "scales", (3.0, 1.5)),
    ((9, 6), "scales", (0.5, 0.75)),
    ((4, 9), "sizes", (7, 5)),
    ((6, 5), "sizes", (13, 11)),
    ((7, 7), "sizes", (3, 7)),
]


@pytest.mark.parametrize("geometry", ONNX_GEOMETRIES,
                         ids=[f"{g[0][0]}x{g[0][1]}-{g[1]}{g[2]}" for g in ONNX_GEOMETRIES])
def test_onnx_resize_float_equals_onnxruntime(tmp_path: Path, geometry: tuple) -> None:
    """Every mode x coordinate_transformation_mode x nearest_mode, with scales and with sizes, up and down."""
    (h, w), kind, hw = geometry
    nodes, outs, inits = [], [], {}
    if kind == "scales":
        inits["scales"] = np.array([1.0, 1.0, *hw], np.float32)
        ins = ["x", "", "scales"]
    else:
        inits["sizes"] = np.array([1, 3, *hw], np.int64)
        ins = ["x", "", "", "sizes"]
    for coord in rresize.ONNX_COORDS:
        for nm in rresize.NEAREST_MODES:
            nodes.append(_resize_node(f"n_{coord}_{nm}", "nearest", coord, nm, ins))
            outs.append(f"n_{coord}_{nm}")
        nodes.append(_resize_node(f"l_{coord}", "linear", coord, "", ins))
        outs.append(f"l_{coord}")
    path = save(make_model(nodes, {"x": (1, 3, h, w)}, outs, inits, opset=13), tmp_path)
    x = np.random.default_rng(h * 10 + w).standard_normal((1, 3, h, w)).astype(np.float32)
    want = ort_run(path, {"x": x})
    got = run_float(load_onnx(path), {"x": x})
    for o in outs:
        assert got[o].shape == want[o].shape, o
        np.testing.assert_allclose(got[o], want[o], atol=1e-5, rtol=0, err_msg=o)


def test_onnx_resize_opset18_axes_and_roi(tmp_path: Path) -> None:
    """Opset 18: scales given for the spatial axes only; a roi input that these modes ignore."""
    nodes = [helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="linear", axes=[2, 3],
                              coordinate_transformation_mode="half_pixel"),
             helper.make_node("Resize", ["x", "", "", "sizes"], ["z"], mode="nearest", axes=[3, 2],
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
    inits = {"roi": np.array([0, 0, 1, 1], np.float32), "scales": np.array([1.5, 2.5], np.float32),
             "sizes": np.array([9, 4], np.int64)}
    path = save(make_model(nodes, {"x": (1, 2, 5, 6)}, ["y", "z"], inits, opset=18), tmp_path)
    x = np.random.default_rng(7).standard_normal((1, 2, 5, 6)).astype(np.float32)
    want, got = ort_run(path, {"x": x}), run_float(load_onnx(path), {"x": x})
    for o in ("y", "z"):
        np.testing.assert_allclose(got[o], want[o], atol=1e-5, rtol=0)


def test_onnx_resize_int8_c_equals_reference(tmp_path: Path) -> None:
    """Nearest and bilinear in one int8 model: the host C equals the reference; against onnxruntime's float on
    the int8 input grid, nearest is exact and bilinear within 0.63 output steps (0.5 rounding + 128/1024 from
    weights rounded to 1/1024)."""
    nodes = [_resize_node("near", "nearest", "asymmetric", "floor", ["x", "", "s2"]),
             _resize_node("near_r", "nearest", "half_pixel", "round_prefer_ceil", ["x", "", "", "sz"]),
             _resize_node("lin_pt", "linear", "pytorch_half_pixel", "", ["x", "", "s2"]),
             _resize_node("lin_ac", "linear", "align_corners", "", ["x", "", "", "sz"]),
             _resize_node("lin_down", "linear", "half_pixel", "", ["x", "", "", "down"])]
    inits = {"s2": np.array([1, 1, 2, 2], np.float32), "sz": np.array([1, 4, 13, 10], np.int64),
             "down": np.array([1, 4, 4, 3], np.int64)}
    outs = ["near", "near_r", "lin_pt", "lin_ac", "lin_down"]
    path = save(make_model(nodes, {"x": (1, 4, 7, 5)}, outs, inits, opset=13), tmp_path)
    rng = np.random.default_rng(64)
    calib = rng.standard_normal((8, 4, 7, 5)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    compiled = compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy")), progress=lambda m: None)
    assert [n.op for n in compiled.graph.nodes].count("resize") == 5
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=4, seed=5,
                         target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res
    worst = dict.fromkeys(outs, 0.0)
    for x in calib[:4]:
        for o, e in int8_error_in_steps(compiled, path, x[None]).items():
            worst[o] = max(worst[o], e)
    assert worst["near"] <= 1e-3 and worst["near_r"] <= 1e-3, worst
    assert max(worst[o] for o in outs[2:]) <= 0.5 + 128 / 1024 + 1e-3, worst


@pytest.mark.parametrize("case,message", [
    ({"mode": "cubic"}, "mode 'cubic'"),
    ({"coordinate_transformation_mode": "tf_crop_and_resize"}, "coordinate_transformation_mode 'tf_crop_and_resize'"),
    ({"coordinate_transformation_mode": "half_pixel_symmetric"}, "'half_pixel_symmetric'"),
    ({"antialias": 1}, "antialias"),
    ({"scales": [1, 2, 2, 2]}, "batch or channel"),
    ({"shape": (3, 5, 7)}, "3-D input"),
    ({"scales": None}, "constant scales or sizes"),
])
def test_onnx_resize_errors_are_one_line(tmp_path: Path, case: dict, message: str) -> None:
    shape = case.pop("shape", (1, 3, 5, 7))
    scales = case.pop("scales", [1, 1, 2, 2][-len(shape):])
    attrs = {"mode": "linear", **case}
    inputs = ["x", "", "scales"] if scales is not None else ["x", "", "dyn"]
    inits = {"scales": np.array(scales, np.float32)} if scales is not None else {}
    nodes = [helper.make_node("Resize", inputs, ["y"], name="rs", **attrs)]
    model_inputs = {"x": shape} if scales is not None else {"x": shape, "dyn": (4,)}
    path = save(make_model(nodes, model_inputs, ["y"], inits, opset=19), tmp_path)
    with pytest.raises(MCUCError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg and "Resize 'rs'" in msg and message in msg, msg
