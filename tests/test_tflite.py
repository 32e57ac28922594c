"""TFLite interop: .tflite frontend and exporter, bit-exact against TFLite Micro and LiteRT's reference kernels.

The models in tests/data/tflite/ were made once by bench/make_tflite_models.py with the TensorFlow converter
(full-integer int8); these tests need only tflite-micro and ai-edge-litert, not TensorFlow.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcuc.cli import main
from mcuc.errors import MCUCError
from mcuc.execute import run_int8
from mcuc.frontend.tflite import load_tflite
from mcuc.ir import Graph
from mcuc.ops import lower

tflm = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
litert = pytest.importorskip("ai_edge_litert.interpreter")

DATA = Path(__file__).parent / "data" / "tflite"
# attention.tflite has GELU, which the tflite-micro package does not register: LiteRT only.
TFLM_MODELS = ["dw_residual_cnn", "mobilenet_v3_block", "attention_relu", "layernorm_mlp", "detection_heads",
               "tiny_cnn", "leaky_relu"]
ALL_MODELS = [*TFLM_MODELS, "attention"]
# Models without FULLY_CONNECTED: LiteRT's reference kernels agree with TFLM and with us on every output. Its
# reference FULLY_CONNECTED rounds once where TFLM rounds twice (test_litert_fully_connected_rounds_once).
LITERT_EXACT = ["detection_heads", "leaky_relu"]
FC_MODELS = ["dw_residual_cnn", "mobilenet_v3_block", "attention", "attention_relu", "layernorm_mlp", "tiny_cnn"]
SAMPLES = 16


def _path(name: str) -> str:
    return str(DATA / f"{name}.tflite")


def _feeds(g: Graph, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{i: rng.integers(-128, 128, g.tensors[i].shape).astype(np.int8) for i in g.inputs} for _ in range(n)]


def run_tflm(data: bytes, feeds: list[dict[str, np.ndarray]], g: Graph) -> list[list[np.ndarray]]:
    it = tflm.Interpreter.from_bytes(data)
    outs = []
    for f in feeds:
        for k, name in enumerate(g.inputs):
            it.set_input(f[name], k)
        it.invoke()
        outs.append([np.array(it.get_output(k)) for k in range(len(g.outputs))])
    return outs


def litert_ref(data: bytes | None = None, path: str | None = None, preserve: bool = False):
    it = litert.Interpreter(model_content=data, model_path=path,
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
                            experimental_preserve_all_tensors=preserve)
    it.allocate_tensors()
    return it


def run_litert(data: bytes, feeds: list[dict[str, np.ndarray]], g: Graph) -> list[list[np.ndarray]]:
    it = litert_ref(data)
    outs = []
    for f in feeds:
        for k, name in enumerate(g.inputs):
            it.set_tensor(it.get_input_details()[k]["index"], f[name])
        it.invoke()
        outs.append([np.array(it.get_tensor(d["index"])) for d in it.get_output_details()])
    return outs


def run_ours(g: Graph, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    return [[run_int8(g, f)[o] for o in g.outputs] for f in feeds]


def count_diff(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> tuple[int, int, int]:
    """(differing elements, elements, max |diff|) over samples and outputs."""
    bad = total = worst = 0
    for xs, ys in zip(a, b, strict=True):
        for x, y in zip(xs, ys, strict=True):
            d = np.abs(x.astype(np.int64) - y.reshape(x.shape).astype(np.int64))
            bad, total, worst = bad + int((d > 0).sum()), total + d.size, max(worst, int(d.max()))
    return bad, total, worst


@pytest.mark.parametrize("name", TFLM_MODELS)
def test_reference_equals_tflm(name):
    g = load_tflite(_path(name))
    feeds = _feeds(g, SAMPLES)
    bad, total, _ = count_diff(run_ours(g, feeds), run_tflm(Path(_path(name)).read_bytes(), feeds, g))
    assert total > 0 and bad == 0


@pytest.mark.parametrize("name", LITERT_EXACT)
def test_reference_equals_litert_builtin_ref(name):
    g = load_tflite(_path(name))
    feeds = _feeds(g, SAMPLES, seed=1)
    assert count_diff(run_ours(g, feeds), run_litert(Path(_path(name)).read_bytes(), feeds, g))[0] == 0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_op_by_op_equals_litert_except_fully_connected(name):
    """Each op fed LiteRT's own inputs gives LiteRT's output exactly, except FULLY_CONNECTED, where LiteRT's
    reference kernel requantizes with one rounding (1 LSB apart at most); TFLM rounds twice like every other
    int8 kernel and we follow TFLM (test_reference_equals_tflm)."""
    g = load_tflite(_path(name))
    idx = g.meta["tflite_tensors"]
    it = litert_ref(path=_path(name), preserve=True)
    checked: dict[str, list[int]] = {}
    for f in _feeds(g, 4, seed=2):
        for k in g.inputs:
            it.set_tensor(idx[k], f[k])
        it.invoke()
        for n in g.nodes:
            if n.outputs[0] not in idx or not all(i in idx or g.tensors[i].is_const for i in n.inputs):
                continue
            env = {i: (g.tensors[i].data if g.tensors[i].is_const else it.get_tensor(idx[i])) for i in n.inputs}
            ours = np.asarray(lower(g, n).ref(env)).reshape(g.tensors[n.outputs[0]].shape)  # type: ignore[misc]
            d = np.abs(ours.astype(np.int64) - it.get_tensor(idx[n.outputs[0]]).astype(np.int64))
            key = n.op
            c = checked.setdefault(key, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + d.size, c[1] + int((d > 0).sum()), max(c[2], int(d.max()))
    for op, (_, bad, worst) in checked.items():
        if op == "fully_connected":
            assert worst <= 1
        else:
            assert bad == 0, f"{op}: {bad} elements differ from LiteRT"
    assert sum(c[0] for c in checked.values()) > 0


@pytest.mark.parametrize("name", FC_MODELS)
def test_litert_fully_connected_rounds_once(name):
    """Documents where the two references disagree: LiteRT's reference FULLY_CONNECTED (2-D and 3-D inputs) is
    exactly single rounding (acc * multiplier + 2^(30 - shift)) >> (31 - shift); TFLM and mcuc requantize with
    MultiplyByQuantizedMultiplier's two roundings (high multiply, then rounding shift)."""
    g = load_tflite(_path(name))
    idx = g.meta["tflite_tensors"]
    it = litert_ref(path=_path(name), preserve=True)
    differ = 0
    for f in _feeds(g, 8, seed=3):
        it.set_tensor(idx[g.inputs[0]], f[g.inputs[0]])
        it.invoke()
        differ += _fc_single_rounding(g, idx, it)
    if name in ("attention", "attention_relu", "layernorm_mlp"):  # enough FC outputs to show the difference
        assert differ > 0


def _fc_single_rounding(g: Graph, idx: dict[str, int], it) -> int:
    """Check every FC output of LiteRT's run against single rounding; return how many differ from ours (TFLM's)."""
    from mcuc.quant import quantize_multipliers

    differ = 0
    for n in g.nodes:
        x_name = n.inputs[0]
        if n.op != "fully_connected" or x_name not in idx or n.outputs[0] not in idx:
            continue
        x = it.get_tensor(idx[x_name]).astype(np.int64)
        w, b = g.tensors[n.inputs[1]].data, g.tensors[n.inputs[2]].data
        xq, wq, yq = g.tensors[x_name].quant, g.tensors[n.inputs[1]].quant, g.tensors[n.outputs[0]].quant
        assert w is not None and b is not None and xq is not None and wq is not None and yq is not None
        acc = (x.reshape(-1, x.shape[-1]) - xq.zp) @ w.astype(np.int64).T + b
        m, sh = quantize_multipliers(np.broadcast_to(xq.s * wq.scale / yq.s, (w.shape[0],)))
        total_shift = 31 - sh.astype(np.int64)
        once = ((acc * m.astype(np.int64) + (np.int64(1) << (total_shift - 1))) >> total_shift) + yq.zp
        once = np.clip(once, n.attrs["act_min"], n.attrs["act_max"])
        got = it.get_tensor(idx[n.outputs[0]]).reshape(once.shape)
        np.testing.assert_array_equal(got, once)
        twice = np.asarray(lower(g, n).ref({x_name: x.astype(np.int8)})).reshape(once.shape)  # type: ignore[misc]
        differ += int((twice != got).sum())
    return differ


@pytest.mark.parametrize("name", [*TFLM_MODELS, "attention"])
def test_export_roundtrip_runs_in_tflm_and_litert(name):
    """tflite -> mcuc IR -> tflite: the written model runs in TFLM (and LiteRT) and equals our reference."""
    from mcuc.tflite_export import export_tflite

    g = load_tflite(_path(name))
    res = export_tflite(g)
    assert res.data[4:8] == b"TFL3" and res.notes == []
    feeds = _feeds(g, 4, seed=3)
    ours = run_ours(g, feeds)
    if name in TFLM_MODELS:
        assert count_diff(ours, run_tflm(res.data, feeds, g))[0] == 0
    if name in LITERT_EXACT:
        assert count_diff(ours, run_litert(res.data, feeds, g))[0] == 0
    else:  # LiteRT's single-rounding FULLY_CONNECTED: 1 LSB there, a few LSB after it at most
        assert count_diff(ours, run_litert(res.data, feeds, g))[2] <= 4
    # and reads back into the same graph structure
    back = tmp_load(res.data)
    assert [n.op for n in back.nodes] == [n.op for n in g.nodes]


def tmp_load(data: bytes) -> Graph:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(data)
        f.flush()
        return load_tflite(f.name)


def test_zoo_model_exported_equals_reference_in_tflm():
    """The bundled demo (mcunet-tiny trained on Fashion-MNIST), compiled from ONNX and exported: TFLM == us."""
    from mcuc.compiler import CompileOptions, compile_model
    from mcuc.tflite_export import export_tflite

    zoo = Path(__file__).resolve().parents[1] / "mcuc" / "zoo" / "data"
    c = compile_model(str(zoo / "demo_fmnist.onnx"), CompileOptions(calib=str(zoo / "demo_calib.npy")),
                      progress=lambda m: None)
    res = export_tflite(c.graph)
    feeds = _feeds(c.graph, 8, seed=4)
    ours = run_ours(c.graph, feeds)
    assert count_diff(ours, run_tflm(res.data, feeds, c.graph))[0] == 0
    assert count_diff(ours, run_litert(res.data, feeds, c.graph))[2] <= 1  # its FULLY_CONNECTED rounds once


def test_unary_tables_equal_tflm_on_every_input():
    """LOGISTIC / TANH / HARD_SWISH / LEAKY_RELU tables over all 256 inputs, for many scales (and alphas, negative
    and above 1 included), against TFLM single-op models."""
    from mcuc.ir import Node, QuantParams, Tensor
    from mcuc.reference import tflite as rtfl
    from mcuc.tflite_export import export_tflite

    rng = np.random.default_rng(5)
    alphas = [0.1, 0.01, 0.3, 0.0, 1.5, -0.2, float(np.float32(rng.uniform(0, 1)))]
    for fn, out_q in (("sigmoid", (1 / 256, -128)), ("tanh", (1 / 128, 0)), ("hardswish", None),
                      ("leaky_relu", None)):
        for i in range(6 if fn != "leaky_relu" else len(alphas)):
            s_in, zp_in = float(np.float32(10 ** rng.uniform(-3, 0))), int(rng.integers(-100, 100))
            s_out, zp_out = out_q or (float(np.float32(s_in * rng.uniform(0.05, 2.0))), int(rng.integers(-60, 60)))
            attrs: dict[str, object] = {"function": fn}
            if fn == "sigmoid":
                table = rtfl.logistic_table(s_in, zp_in)
            elif fn == "tanh":
                table = rtfl.tanh_table(s_in, zp_in)
            elif fn == "hardswish":
                table = rtfl.hard_swish_table(s_in, zp_in, s_out, zp_out)
            else:
                table = rtfl.leaky_relu_table(s_in, zp_in, s_out, zp_out, alphas[i])
                attrs["alpha"] = alphas[i]
            g = Graph(layout="NHWC", meta={"quantized": True})
            g.add_tensor(Tensor("x", (1, 256), "int8", QuantParams([s_in], [zp_in])))
            g.add_tensor(Tensor("y", (1, 256), "int8", QuantParams([s_out], [zp_out])))
            g.const("table", table)
            g.nodes.append(Node("lut", "f", ["x", "table"], ["y"], attrs))
            g.inputs, g.outputs = ["x"], ["y"]
            res = export_tflite(g)
            x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
            got = run_tflm(res.data, [{"x": x}], g)[0][0]
            np.testing.assert_array_equal(got.reshape(-1), table, err_msg=f"{fn} s={s_in} zp={zp_in}")


def test_softmax_tflite_kernel_equals_tflm_and_c():
    """TFLite's softmax: our numpy reference == TFLM on random rows and scales; the C kernel == the reference."""
    import ctypes

    from mcuc.ir import Node, QuantParams, Tensor
    from mcuc.reference import tflite as rtfl
    from mcuc.tflite_export import export_tflite
    from tests.cbuild import build_shared

    lib = build_shared(["mcuc_softmax_tflite_s8"])
    rng = np.random.default_rng(6)
    for _ in range(8):
        rows, n = int(rng.integers(1, 6)), int(rng.integers(1, 300))
        s_in = float(np.float32(10 ** rng.uniform(-3, 0.5)))
        g = Graph(layout="NHWC", meta={"quantized": True})
        g.add_tensor(Tensor("x", (rows, n), "int8", QuantParams([s_in], [int(rng.integers(-128, 128))])))
        g.add_tensor(Tensor("y", (rows, n), "int8", QuantParams([1 / 256], [-128])))
        g.nodes.append(Node("softmax", "sm", ["x"], ["y"], {"axis": 1, "beta": 1.0, "algorithm": "tflite"}))
        g.inputs, g.outputs = ["x"], ["y"]
        x = rng.integers(-128, 128, (rows, n)).astype(np.int8)
        p = rtfl.prepare_softmax_tflite((rows, n), s_in)
        ref = rtfl.softmax_tflite_s8(p, x)
        np.testing.assert_array_equal(run_tflm(export_tflite(g).data, [{"x": x}], g)[0][0], ref)
        params = (ctypes.c_int32 * 5)(p.rows, p.row_size, p.input_multiplier, p.input_left_shift, p.diff_min)
        out = np.zeros_like(x)
        lib.mcuc_softmax_tflite_s8(params, x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("name,schedule", [("dw_residual_cnn", "layer"), ("dw_residual_cnn", "patch"),
                                           ("attention_relu", "layer"), ("layernorm_mlp", "layer"),
                                           ("detection_heads", "layer"), ("leaky_relu", "layer")])
def test_generated_c_equals_tflm(name, schedule, tmp_path):
    """mcuc compile model.tflite + mcuc run --raw (int8 in and out, NHWC as the model): the C build == TFLM, with
    the layer-based and the patch-based schedule."""
    out = tmp_path / "proj"
    assert main(["compile", _path(name), "--schedule", schedule, "-o", str(out)]) == 0
    g = load_tflite(_path(name))
    feeds = _feeds(g, 6, seed=7)
    x = np.concatenate([f[g.inputs[0]] for f in feeds])
    np.save(tmp_path / "x.npy", x)
    y_path = tmp_path / ("y.npz" if len(g.outputs) > 1 else "y.npy")
    assert main(["run", str(out), "--raw", "--input", str(tmp_path / "x.npy"), "--output", str(y_path)]) == 0
    expect = run_tflm(Path(_path(name)).read_bytes(), feeds, g)
    if len(g.outputs) > 1:
        arch = np.load(y_path)
        got = [arch[k] for k in arch.files]
    else:
        got = [np.load(y_path)]
    for k in range(len(g.outputs)):
        assert got[k].dtype == np.int8
        np.testing.assert_array_equal(got[k], np.concatenate([e[k] for e in expect]).reshape(got[k].shape))


def test_compile_tflite_report_and_float_run(tmp_path):
    """compile writes the contract report; run with float input quantizes with the model's own parameters."""
    import json

    out = tmp_path / "p"
    assert main(["compile", _path("tiny_cnn"), "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["arena_bytes"] > 0 and rep["schedule"] == {"kind": "layer", "kernels": "fast"}
    g = load_tflite(_path("tiny_cnn"))
    q = g.tensors[g.inputs[0]].quant
    assert q is not None
    xq = np.random.default_rng(8).integers(-128, 128, (3, 28, 28, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", ((xq.astype(np.float32) - q.zp) * q.s).astype(np.float32))
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    yq_ = g.tensors[g.outputs[0]].quant
    assert yq_ is not None
    expect = run_tflm(Path(_path("tiny_cnn")).read_bytes(), [{g.inputs[0]: xq[i:i + 1]} for i in range(3)], g)
    ref = np.concatenate([e[0] for e in expect]).astype(np.float32)
    np.testing.assert_allclose(y, (ref - yq_.zp) * yq_.s, rtol=1e-6)


def test_pad_folds_into_conv_and_kept_quantization():
    g = load_tflite(_path("dw_residual_cnn"))
    assert "pad" not in [n.op for n in g.nodes]
    first = g.nodes[0]
    assert first.op == "conv2d" and first.attrs["pads"] == (1, 1, 1, 1)
    dw = [n for n in g.nodes if n.op == "conv2d" and n.attrs["groups"] > 1]
    assert dw and g.tensors[dw[-1].inputs[1]].shape[3] == 1  # depthwise weights [O, kh, kw, 1]
    assert any(g.tensors[n.inputs[1]].shape[0] == 2 * n.attrs["groups"] for n in dw)  # depth multiplier 2


@pytest.mark.parametrize("case,message", [
    ("random", "no TFL3 flatbuffer identifier"),
    ("truncated", "corrupt or truncated"),
    ("unsupported", "unsupported TFLite op ELU (operator 1)"),
    ("float", "float (non-quantized)"),
])
def test_errors_are_one_line(case, message, tmp_path, capsys):
    if case == "random":
        p = tmp_path / "r.tflite"
        p.write_bytes(np.random.default_rng(0).integers(0, 255, 300).astype(np.uint8).tobytes())
    elif case == "truncated":
        p = tmp_path / "t.tflite"
        p.write_bytes(Path(_path("tiny_cnn")).read_bytes()[:3000])
    elif case == "unsupported":
        p = tmp_path / "elu.tflite"
        p.write_bytes(_with_opcode(Path(_path("leaky_relu")).read_bytes(), "LEAKY_RELU", "ELU"))
    else:
        p = DATA / "float_tiny_cnn.tflite"
    with pytest.raises(MCUCError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_tflite(str(p))
    out = tmp_path / "never"
    assert main(["compile", str(p), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists()
    if case == "unsupported":
        assert "CONV_2D" in err[0] and "GELU" in err[0]


def _with_opcode(data: bytes, old: str, new: str) -> bytes:
    """The model with every ``old`` builtin operator code replaced by ``new`` (an op mcuc does not read)."""
    import flatbuffers

    from mcuc.frontend.tflite import schema

    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    for oc in m.operatorCodes:
        if max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0)) == getattr(s.BuiltinOperator, old):
            oc.builtinCode = oc.deprecatedBuiltinCode = getattr(s.BuiltinOperator, new)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_float_io_model_runs_int8_inside():
    """A model converted with float32 input/output (QUANTIZE ... DEQUANTIZE): the boundary ops become the
    graph's int8 input/output parameters, and float in / float out equals TFLM's float run."""
    from mcuc.model_io import dequantize_output, quantize_input

    path = _path("float_io_tiny_cnn")
    g = load_tflite(path)
    assert [n.op for n in g.nodes][0] == "conv2d" and g.tensors[g.inputs[0]].dtype == "int8"
    it = tflm.Interpreter.from_bytes(Path(path).read_bytes())
    rng = np.random.default_rng(9)
    for _ in range(8):
        x = rng.normal(0.0, 1.0, (1, 28, 28, 1)).astype(np.float32)
        it.set_input(x, 0)
        it.invoke()
        ours = run_int8(g, {g.inputs[0]: quantize_input(g, g.inputs[0], x)})[g.outputs[0]]
        np.testing.assert_array_equal(dequantize_output(g, g.outputs[0], ours), it.get_output(0))


def test_squared_difference_kernel_c_equals_reference():
    """mcuc_squared_difference_s8 (the add kernel's loop with TFLite's squared difference) == its numpy reference
    over random broadcast shapes and parameters."""
    import ctypes
    from dataclasses import astuple

    from mcuc.reference import elementwise as relem
    from mcuc.reference import tflite as rtfl
    from tests.cbuild import build_shared

    lib = build_shared(["mcuc_squared_difference_s8"])
    rng = np.random.default_rng(10)
    for _ in range(40):
        out = tuple(int(d) for d in rng.integers(1, 6, 4))
        shape_b = tuple(d if rng.random() < 0.5 else 1 for d in out)
        s1, s2 = (float(np.float32(10 ** rng.uniform(-2.5, -0.5))) for _ in range(2))
        s_out = float(np.float32(max(s1, s2) ** 2 * 255 * rng.uniform(0.1, 1.0)))
        p = rtfl.prepare_squared_difference(s1, int(rng.integers(-128, 128)), s2, int(rng.integers(-128, 128)),
                                            s_out, int(rng.integers(-128, 0)))
        a = rng.integers(-128, 128, out).astype(np.int8)
        b = rng.integers(-128, 128, shape_b).astype(np.int8)
        ref = rtfl.squared_difference_s8(p, a, b)
        bc = relem.prepare_broadcast(out, shape_b)
        params = (ctypes.c_int32 * 12)(*astuple(p))
        shape = (ctypes.c_int32 * 12)(*bc.out_dims, *bc.in1_strides, *bc.in2_strides)
        y = np.zeros(out, np.int8)
        lib.mcuc_squared_difference_s8(params, shape, a.ctypes.data_as(ctypes.c_void_p),
                                       b.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p))
        np.testing.assert_array_equal(y, ref)
