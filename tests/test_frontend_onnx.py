"""ONNX frontend: every supported op against onnxruntime, torch-exported and QDQ models, error messages."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcuc.errors import MCUCError
from mcuc.execute import run_float
from mcuc.frontend.onnx import load_onnx
from mcuc.ir import Graph
from mcuc.model_io import from_graph_layout, to_graph_layout
from mcuc.ops import verify
from mcuc.passes.pipeline import float_pipeline

RNG = np.random.default_rng(0)


def make_model(nodes: list[Any], inputs: dict[str, tuple[int, ...]], outputs: list[str],
               inits: dict[str, np.ndarray] | None = None, opset: int = 13) -> onnx.ModelProto:
    """A single-graph model; outputs get no declared shape so onnxruntime infers them."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "m.onnx") -> str:
    p = tmp_path / name
    onnx.save(model, str(p))
    return str(p)


def ort_run(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got.astype(np.float64) - want).max()) / scale
    assert err < 1e-4, f"{what}: max relative error {err:.2e}"


def check_against_ort(path: str, feeds: dict[str, np.ndarray] | None = None) -> tuple[Graph, Graph]:
    """load_onnx and float_pipeline both reproduce onnxruntime's outputs; returns both graphs."""
    g = load_onnx(path)
    verify(g)
    if feeds is None:
        feeds = {n: RNG.standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    want = ort_run(path, feeds)
    got = run_float(g, feeds)
    for o in g.outputs:
        assert_close(got[o], want[o], f"load_onnx output {o}")
    p = float_pipeline(g)
    assert p.layout == "NHWC"
    got2 = run_float(p, {n: to_graph_layout(p, n, v) for n, v in feeds.items()})
    for o in p.outputs:
        assert_close(from_graph_layout(p, o, got2[o]), want[o], f"pipeline output {o}")
    return g, p


def conv_model(w_shape: tuple[int, ...], x_shape: tuple[int, ...], **attrs: Any) -> onnx.ModelProto:
    w = RNG.standard_normal(w_shape).astype(np.float32)
    b = RNG.standard_normal(w_shape[0]).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", **attrs)
    return make_model([node], {"x": x_shape}, ["y"], {"w": w, "b": b})


@pytest.mark.parametrize("attrs,w_shape", [
    ({}, (8, 3, 3, 3)),
    ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, (8, 3, 3, 3)),
    ({"pads": [0, 1, 2, 1], "dilations": [2, 1]}, (4, 3, 3, 3)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (8, 3, 4, 4)),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, (8, 3, 4, 4)),
    ({"auto_pad": "VALID"}, (8, 3, 1, 1)),
    ({"group": 3, "pads": [1, 1, 1, 1]}, (3, 1, 3, 3)),           # depthwise
    ({"group": 3, "pads": [2, 2, 2, 2], "strides": [2, 2]}, (6, 1, 5, 5)),  # depthwise, multiplier 2
    ({"group": 3}, (6, 1, 1, 1)),
])
def test_conv(tmp_path: Path, attrs: dict[str, Any], w_shape: tuple[int, ...]) -> None:
    check_against_ort(save(conv_model(w_shape, (1, 3, 9, 11), **attrs), tmp_path))


def test_grouped_conv_without_bias(tmp_path: Path) -> None:
    w = RNG.standard_normal((8, 2, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=2, pads=[1, 1, 1, 1])
    check_against_ort(save(make_model([node], {"x": (1, 4, 6, 6)}, ["y"], {"w": w}), tmp_path))


@pytest.mark.parametrize("trans_b,alpha,beta", [(0, 1.0, 1.0), (1, 0.5, 2.0)])
def test_gemm(tmp_path: Path, trans_b: int, alpha: float, beta: float) -> None:
    w = RNG.standard_normal((10, 6) if trans_b else (6, 10)).astype(np.float32)
    c = RNG.standard_normal(10).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b, alpha=alpha, beta=beta)
    check_against_ort(save(make_model([node], {"x": (1, 6)}, ["y"], {"w": w, "c": c}), tmp_path))


def test_matmul_and_softmax(tmp_path: Path) -> None:
    w = RNG.standard_normal((6, 5)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Softmax", ["h"], ["y"])]
    check_against_ort(save(make_model(nodes, {"x": (1, 6)}, ["y"], {"w": w}), tmp_path))


def test_elementwise_and_activations(tmp_path: Path) -> None:
    c = RNG.standard_normal((4, 1, 1)).astype(np.float32)
    row = RNG.standard_normal((5,)).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["x", "c"], ["a"]),
        helper.make_node("Mul", ["a", "row"], ["m"]),
        helper.make_node("Sub", ["m", "x"], ["s"]),
        helper.make_node("HardSwish", ["s"], ["hs"]),
        helper.make_node("HardSigmoid", ["hs"], ["hg"], alpha=0.25, beta=0.4),
        helper.make_node("Sigmoid", ["s"], ["sg"]),
        helper.make_node("Clip", ["s", "lo", "hi"], ["cl"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Concat", ["hg", "sg", "cl", "r"], ["y"], axis=1),
        helper.make_node("Softmax", ["y"], ["sm"], axis=1),
    ]
    inits: dict[str, np.ndarray] = {"c": c, "row": row, "lo": np.array(-0.5, np.float32),
                                    "hi": np.array(0.7, np.float32)}
    check_against_ort(save(make_model(nodes, {"x": (1, 4, 3, 5)}, ["y", "sm"], inits, opset=14), tmp_path))


def test_pooling_flatten_reshape(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], pads=[1, 0, 1, 0]),
        helper.make_node("AveragePool", ["mp"], ["ap2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["ap"], ["gp"]),
        helper.make_node("Flatten", ["ap2"], ["fl"]),
        helper.make_node("Reshape", ["ap", "shape"], ["rs"]),
        helper.make_node("Flatten", ["gp"], ["y"]),
    ]
    inits = {"shape": np.array([0, -1, 2], dtype=np.int64)}
    model = make_model(nodes, {"x": (1, 3, 10, 12)}, ["y", "rs", "fl"], inits)
    g, p = check_against_ort(save(model, tmp_path))
    assert p.tensors["rs"].shape == (1, 45, 2)


def test_pad_transpose_identity_dropout(tmp_path: Path) -> None:
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Pad", ["i", "pads"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w"], ["c"]),
        helper.make_node("Dropout", ["c"], ["d"]),
        helper.make_node("Pad", ["d", "pads2", "val"], ["p2"]),
        helper.make_node("Transpose", ["p2"], ["y"], perm=[0, 2, 3, 1]),
    ]
    inits: dict[str, np.ndarray] = {"w": w, "pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64),
                                    "pads2": np.array([0, 1, 0, 0, 0, 1, 0, 0], np.int64),
                                    "val": np.array(0.5, np.float32)}
    g, p = check_against_ort(save(make_model(nodes, {"x": (1, 3, 6, 7)}, ["y"], inits), tmp_path))
    assert [n.op for n in p.nodes].count("pad") == 1  # the zero spatial pad folded into the conv


def test_batchnorm_standalone_and_symbolic_batch(tmp_path: Path) -> None:
    c = 5
    inits = {"s": RNG.uniform(0.5, 1.5, c).astype(np.float32), "b": RNG.standard_normal(c).astype(np.float32),
             "m": RNG.standard_normal(c).astype(np.float32), "v": RNG.uniform(0.5, 2, c).astype(np.float32)}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)]
    model = make_model(nodes, {"x": ("N", c, 4, 4)}, ["y"], inits)  # type: ignore[dict-item]
    x = RNG.standard_normal((1, c, 4, 4)).astype(np.float32)
    g, p = check_against_ort(save(model, tmp_path), {"x": x})
    assert g.tensors["x"].shape == (1, c, 4, 4)
    assert "batchnorm" not in {n.op for n in p.nodes}


def test_constant_folding_shape_chain(tmp_path: Path) -> None:
    """The legacy exporter's Flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Constant", [], ["minus1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64)}
    g, _ = check_against_ort(save(make_model(nodes, {"x": (1, 2, 3, 4)}, ["y"], inits), tmp_path))
    assert [n.op for n in g.nodes] == ["reshape"]


# ---- torch-exported model ----------------------------------------------------------------------


def _torch_model() -> Any:
    import torch
    from torch import nn

    def cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU6())

    class SE(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1)

        def forward(self, x: Any) -> Any:
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.expand, self.dw = cbr(c, 2 * c, 1), cbr(2 * c, 2 * c, 3, groups=2 * c)
            self.se = SE(2 * c)
            self.project = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x: Any) -> Any:
            return x + self.project(self.se(self.dw(self.expand(x))))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = cbr(3, 8, 3, 2)
            self.block = Block(8)
            self.branch_a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Hardswish())
            self.branch_b = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Sigmoid())
            self.pool = nn.MaxPool2d(2)
            self.avg = nn.AvgPool2d(2)
            self.fc = nn.Linear(16 * 2 * 2, 10)
            self.drop = nn.Dropout(0.1)

        def forward(self, x: Any) -> Any:
            x = self.block(self.stem(x))
            x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
            x = self.avg(self.pool(x))
            return torch.softmax(self.fc(self.drop(torch.flatten(x, 1))), dim=1)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


def export_torch(net: Any, path: Path, shape: tuple[int, ...] = (1, 3, 16, 16), **kw: Any) -> str:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(shape),), str(path), dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["output"], **kw)
    return str(path)


@pytest.mark.parametrize("preserve_bn", [False, True])
def test_torch_mobilenet_like(tmp_path: Path, preserve_bn: bool) -> None:
    import torch

    kw: dict[str, Any] = {"dynamic_axes": {"input": {0: "batch"}}}
    if preserve_bn:
        kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    path = export_torch(_torch_model(), tmp_path / "net.onnx", **kw)
    g, p = check_against_ort(path)
    ops = {n.op for n in p.nodes}
    assert "batchnorm" not in ops and "relu" not in ops and "clip" not in ops
    assert any(n.attrs.get("act") == "clip" and n.attrs.get("act_hi") == 6.0 for n in p.nodes)
    assert p.meta["input_layouts"] == {"input": "NCHW"}
    assert p.outputs == ["output"]


# ---- QDQ model -------------------------------------------------------------------------------


def _qdq_model(tmp_path: Path, uint8_activations: bool = False) -> tuple[str, str]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    float_path = export_torch(_torch_model(), tmp_path / "float.onnx")
    qdq_path = str(tmp_path / "qdq.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            batches = [RNG.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
            self.data = iter([{"input": b} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.data, None)

    quantize_static(float_path, qdq_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8 if uint8_activations else QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    return float_path, qdq_path


@pytest.mark.parametrize("uint8_activations", [False, True])
def test_qdq_model(tmp_path: Path, uint8_activations: bool) -> None:
    """uint8 activations are kept as their int8 equivalent: same scale, zero point - 128."""
    float_path, qdq_path = _qdq_model(tmp_path, uint8_activations)
    zp_shift = 128 if uint8_activations else 0
    model = onnx.load(qdq_path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    g = load_onnx(qdq_path)
    verify(g)
    assert g.meta["qdq"] is True and g.outputs == ["output"]
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op for n in g.nodes}
    # every activation Q in the model: its scale/zero point is on the tensor it quantizes
    checked = 0
    for n in model.graph.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits:
            continue
        name = n.input[0]
        if name not in g.tensors:
            continue  # tensor renamed to a model output name
        q = g.tensors[name].quant
        assert q is not None and q.axis is None, name
        assert np.isclose(q.s, float(inits[n.input[1]]))
        assert q.zp == int(inits[n.input[2]]) - zp_shift
        checked += 1
    assert checked >= 5
    assert g.tensors["input"].quant is not None
    # conv weights: dequantized float data with per-channel parameters along the output axis
    convs = [n for n in g.nodes if n.op == "conv2d"]
    w = g.tensors[convs[0].inputs[1]]
    assert w.dtype == "float32" and w.quant is not None and w.quant.axis == 0
    assert w.quant.scale.size == w.shape[0] and np.all(w.quant.zero_point == 0)
    assert w.data is not None
    scale = w.quant.scale.reshape(-1, 1, 1, 1)
    q_int = np.rint(w.data / scale)
    assert np.abs(q_int).max() <= 128 and np.allclose(q_int * scale, w.data, atol=1e-6)
    assert g.tensors[convs[0].inputs[2]].quant is None  # bias scale is recomputed by the quantizer
    # the float graph (dequantized weights, activations unquantized) stays close to the float model:
    # the ReLU6 that onnxruntime's quantizer removed is back as a clamp to the int8 range
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)
    got = run_float(g, {"input": x})["output"]
    want = ort_run(float_path, {"input": x})["output"]
    assert float(np.abs(got - want).max()) < 0.02 * float(np.abs(want).max())
    assert g.nodes[0].attrs["act"] == "clip" and g.nodes[0].attrs["act_lo"] == 0.0
    p = float_pipeline(g)
    fc = next(n for n in p.nodes if n.op == "fully_connected")
    fc_quant = p.tensors[fc.inputs[1]].quant
    assert fc_quant is not None and fc_quant.axis == 0
    conv_w = next(p.tensors[n.inputs[1]] for n in p.nodes if n.op == "conv2d")
    assert conv_w.quant is not None and conv_w.quant.axis == 0 and conv_w.shape[1:3] == (3, 3)
    assert p.tensors[p.outputs[0]].quant is not None


# ---- errors ----------------------------------------------------------------------------------


def _one_line(e: pytest.ExceptionInfo[MCUCError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_opset_19_and_constant_shape(tmp_path: Path) -> None:
    nodes = [helper.make_node("Shape", ["c"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"]),
             helper.make_node("Relu", ["y"], ["z"])]
    model = make_model(nodes, {"x": (1, 6)}, ["z"], {"c": np.zeros((2, 3), np.float32)}, opset=19)
    g, _ = check_against_ort(save(model, tmp_path))
    assert g.tensors["z"].shape == (2, 3)


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MCUCError) as e:
        load_onnx(str(tmp_path / "nope.onnx"))
    assert "does not exist" in _one_line(e)


def test_error_truncated_file(tmp_path: Path) -> None:
    path = save(conv_model((4, 3, 3, 3), (1, 3, 8, 8)), tmp_path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises(MCUCError) as e:
        load_onnx(path)
    assert "not a valid ONNX model" in _one_line(e)


@pytest.mark.parametrize("op", ["Einsum", "LSTM"])
def test_error_unsupported_op(tmp_path: Path, op: str) -> None:
    if op == "Einsum":
        node = helper.make_node("Einsum", ["x", "x"], ["y"], name="my_einsum", equation="ij,ij->ij")
        shape: tuple[int, ...] = (2, 3)
    else:
        node = helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="my_lstm", hidden_size=4)
        shape = (2, 1, 3)
    inits: dict[str, np.ndarray] = {}
    if op == "LSTM":
        inits = {"w": np.zeros((1, 16, 3), np.float32), "r": np.zeros((1, 16, 4), np.float32)}
    with pytest.raises(MCUCError) as e:
        load_onnx(save(make_model([node], {"x": shape}, ["y"], inits), tmp_path))
    msg = _one_line(e)
    assert f"'{op}'" in msg and f"'my_{op.lower()}'" in msg and "Conv" in msg and "supported" in msg


@pytest.mark.parametrize("opset", [11, 22])
def test_error_bad_opset(tmp_path: Path, opset: int) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (1, 4)}, ["y"], opset=opset)
    with pytest.raises(MCUCError) as e:
        load_onnx(save(model, tmp_path))
    assert f"opset {opset}" in _one_line(e)


def test_error_dynamic_dims_and_dtype(tmp_path: Path) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (1, 3, "H", 8)}, ["y"])  # type: ignore[dict-item]
    with pytest.raises(MCUCError) as e:
        load_onnx(save(model, tmp_path))
    assert "dynamic dimension 2" in _one_line(e)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4])],
                              [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(MCUCError) as e:
        load_onnx(save(model, tmp_path, "int8.onnx"))
    assert "int8" in _one_line(e) and "float32" in _one_line(e)


def test_error_matmul(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm")
    model = make_model([node], {"x": (2, 2), "x2": (2, 2)}, ["y"])
    with pytest.raises(MCUCError, match="constant 2-D second input"):
        load_onnx(save(model, tmp_path, "mm.onnx"))
