"""ONNX MaxPool / AveragePool with ceil_mode=1: output sizes and values as onnxruntime (float), int8 C == reference."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from mcuc.compiler import Compiled, CompileOptions, compile_model
from mcuc.execute import run_float, run_int8
from mcuc.frontend.onnx import load_onnx
from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, to_graph_layout
from mcuc.project import write_project
from mcuc.runner import verify_project
from tests.test_frontend_onnx import check_against_ort, make_model, ort_run, save

# (H, W, kernel, stride, pads top/left/bottom/right): odd sizes, strides 2 and 3, kernels 2 and 3, with and
# without pads, including windows whose ceil start would fall past the input (dropped, as onnxruntime does)
CASES = [
    (7, 9, 2, 2, (0, 0, 0, 0)),
    (7, 9, 3, 2, (0, 0, 0, 0)),
    (9, 7, 3, 2, (1, 1, 1, 1)),
    (11, 5, 2, 3, (0, 0, 0, 0)),
    (11, 13, 3, 3, (1, 0, 0, 1)),
    (5, 5, 3, 3, (1, 1, 1, 1)),
    (4, 6, 2, 2, (0, 0, 1, 1)),  # ceil would start a window at the input's end: onnxruntime drops it
    (13, 11, 3, 2, (0, 1, 2, 0)),
    (6, 8, 2, 3, (1, 1, 1, 1)),
]


def _pool_node(op: str, out: str, k: int, s: int, pads: tuple[int, ...], cip: int) -> object:
    attrs: dict[str, object] = {"kernel_shape": [k, k], "strides": [s, s], "pads": list(pads), "ceil_mode": 1}
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    return helper.make_node(op, ["x"], [out], name=out, **attrs)


def _variants() -> list[tuple[str, int]]:
    return [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}k{c[2]}s{c[3]}p{''.join(map(str, c[4]))}"
                                             for c in CASES])
def test_ceil_mode_float_equals_onnxruntime(tmp_path: Path, case: tuple) -> None:
    h, w, k, s, pads = case
    nodes = [_pool_node(op, f"{op}_{cip}", k, s, pads, cip) for op, cip in _variants()]
    outs = [f"{op}_{cip}" for op, cip in _variants()]
    path = save(make_model(nodes, {"x": (1, 3, h, w)}, outs, opset=17), tmp_path)
    g = load_onnx(path)
    x = np.random.default_rng(h * 100 + w).standard_normal((1, 3, h, w)).astype(np.float32)
    want = ort_run(path, {"x": x})
    got = run_float(g, {"x": x})
    for o in outs:
        assert got[o].shape == want[o].shape, (o, got[o].shape, want[o].shape)
        np.testing.assert_allclose(got[o], want[o], atol=1e-5, rtol=0, err_msg=o)
    check_against_ort(path, {"x": x})  # and after the NHWC pipeline


def test_ceil_mode_random_geometries_match_onnxruntime(tmp_path: Path) -> None:
    """Output shapes over a grid of sizes, kernels, strides and pads (every window rule onnxruntime applies)."""
    rng = np.random.default_rng(3)
    for i, (n, k, s) in enumerate(itertools.product((3, 4, 5, 6, 7, 8, 9), (2, 3), (2, 3))):
        lo, hi = (int(v) for v in rng.integers(0, k, 2))
        nodes = [_pool_node(op, f"{op}_{cip}", k, s, (lo, hi, hi, lo), cip) for op, cip in _variants()]
        outs = [f"{op}_{cip}" for op, cip in _variants()]
        path = save(make_model(nodes, {"x": (1, 2, n, n + 2)}, outs, opset=13), tmp_path, f"m{i}.onnx")
        x = rng.standard_normal((1, 2, n, n + 2)).astype(np.float32)
        want = ort_run(path, {"x": x})
        got = run_float(load_onnx(path), {"x": x})
        for o in outs:
            assert got[o].shape == want[o].shape, (n, k, s, lo, hi, o)
            np.testing.assert_allclose(got[o], want[o], atol=1e-5, rtol=0)


def test_ceil_mode_int8_c_equals_reference(tmp_path: Path) -> None:
    """Every variant of CASES in one model (one output per pool): the host C build equals the int8 reference, and
    the int8 result is within one output step of onnxruntime's float result."""
    nodes, outs = [], []
    for j, (_, _, k, s, pads) in enumerate(CASES[:5]):
        for op, cip in _variants():
            name = f"{op}_{cip}_{j}"
            attrs: dict[str, object] = {"kernel_shape": [k, k], "strides": [s, s], "pads": list(pads), "ceil_mode": 1}
            if op == "AveragePool":
                attrs["count_include_pad"] = cip
            nodes.append(helper.make_node(op, ["x"], [name], name=name, **attrs))
            outs.append(name)
    path = save(make_model(nodes, {"x": (1, 4, 11, 9)}, outs, opset=13), tmp_path)
    rng = np.random.default_rng(5)
    calib = rng.standard_normal((8, 4, 11, 9)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    compiled = compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy")), progress=lambda m: None)
    out = write_project(compiled, str(tmp_path / "proj"))
    res = verify_project(out, compiled.graph, samples=4, seed=1, target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res
    # on inputs of the int8 grid: max pooling is exact, an average is the float mean rounded (half an output step)
    for x in calib[:3]:
        err = int8_error_in_steps(compiled, path, x[None])
        for o in outs:
            assert err[o] <= (1e-3 if o.startswith("MaxPool") else 0.5 + 1e-3), (o, err[o])


def int8_error_in_steps(compiled: Compiled, path: str, x: np.ndarray, on_grid: bool = True) -> dict[str, float]:
    """Per output: max |int8 result - onnxruntime's float result| in output quantization steps, for input ``x``
    (first snapped to the input's int8 grid when ``on_grid``, so that only the op's own rounding shows; the float
    result is clamped to the output's int8 range, which calibration sets and the int8 op cannot leave)."""
    g = compiled.graph
    name = g.inputs[0]
    xq = quantize_input(g, name, to_graph_layout(g, name, x))
    if on_grid:
        q = g.tensors[name].quant
        assert q is not None
        grid = ((xq.astype(np.float64) - q.zp) * q.s).astype(np.float32)
        x = grid.transpose(0, 3, 1, 2) if g.meta["input_layouts"][name] == "NCHW" else grid
    want = ort_run(path, {name: x})
    got = run_int8(g, {name: xq})
    out = {}
    for o in g.outputs:
        q = g.tensors[o].quant
        assert q is not None
        y = from_graph_layout(g, o, dequantize_output(g, o, got[o]))
        ref = np.clip(want[o].astype(np.float64), (-128 - q.zp) * q.s, (127 - q.zp) * q.s)
        out[o] = float(np.abs(y.astype(np.float64) - ref).max() / q.s)
    return out
