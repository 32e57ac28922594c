"""Float passes (fold_bn, fuse, to_nhwc, float_pipeline) and the float reference's speed."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from mcuc.execute import run_float
from mcuc.frontend.onnx import load_onnx
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.model_io import from_graph_layout, to_graph_layout
from mcuc.ops import infer_shapes, verify
from mcuc.passes.fold_bn import fold_bn
from mcuc.passes.fuse import fuse
from mcuc.passes.layout import to_nhwc
from mcuc.passes.pipeline import float_pipeline
from tests.test_frontend_onnx import check_against_ort, make_model, save

RNG = np.random.default_rng(1)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def bn_inits(c: int, prefix: str = "bn") -> dict[str, np.ndarray]:
    return {f"{prefix}_s": RNG.uniform(0.5, 1.5, c).astype(np.float32), f"{prefix}_b": rand(c),
            f"{prefix}_m": rand(c), f"{prefix}_v": RNG.uniform(0.5, 2.0, c).astype(np.float32)}


def bn_node(x: str, y: str, prefix: str = "bn") -> object:
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}_{k}" for k in "sbmv"], [y])


def same_outputs(a: Graph, b: Graph, feeds: dict[str, np.ndarray]) -> None:
    """Graphs ``a`` and ``b`` (either layout) compute the same outputs from source-layout feeds."""
    ya = run_float(a, {k: to_graph_layout(a, k, v) for k, v in feeds.items()})
    yb = run_float(b, {k: to_graph_layout(b, k, v) for k, v in feeds.items()})
    for oa, ob in zip(a.outputs, b.outputs, strict=True):
        va, vb = from_graph_layout(a, oa, ya[oa]), from_graph_layout(b, ob, yb[ob])
        np.testing.assert_allclose(vb, va, rtol=1e-4, atol=1e-4 * float(np.abs(va).max()))


# ---- fold_bn -------------------------------------------------------------------------------


def test_fold_bn_into_conv_and_fc(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), bn_node("c", "y"),
             helper.make_node("Flatten", ["y"], ["f"]), helper.make_node("Gemm", ["f", "fw", "fb"], ["h"]),
             bn_node("h", "out", "bn2")]
    inits = {"w": rand(4, 3, 3, 3), "fw": rand(4 * 5 * 5, 6), "fb": rand(6), **bn_inits(4),
             **bn_inits(6, "bn2")}
    g = load_onnx(save(make_model(nodes, {"x": (1, 3, 5, 5)}, ["out"], inits), tmp_path))
    before = copy.deepcopy(g)
    f = fold_bn(g)
    verify(f)
    assert [n.op for n in f.nodes] == ["conv2d", "reshape", "fully_connected"]
    assert [n.op for n in g.nodes] == [n.op for n in before.nodes]  # the pass did not touch its input
    same_outputs(g, f, {"x": rand(1, 3, 5, 5)})


def test_fold_bn_standalone_when_conv_output_is_shared(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), bn_node("c", "y"),
             helper.make_node("Add", ["y", "c"], ["out"])]
    inits = {"w": rand(4, 3, 1, 1), **bn_inits(4)}
    g, p = check_against_ort(save(make_model(nodes, {"x": (1, 3, 4, 4)}, ["out"], inits), tmp_path))
    f = fold_bn(g)
    assert [n.op for n in f.nodes] == ["conv2d", "mul", "add", "add"]
    assert f.tensors[f.nodes[1].inputs[1]].shape == (4, 1, 1)


# ---- fuse ----------------------------------------------------------------------------------


def test_fuse_relu_clip_and_limits(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"]),
        helper.make_node("Add", ["r2", "r1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r3"]),
        helper.make_node("Conv", ["r3", "w2"], ["c3"]),  # c3 also read by the Mul: not fused
        helper.make_node("Relu", ["c3"], ["r4"]),
        helper.make_node("Mul", ["r4", "c3"], ["out"]),
    ]
    inits = {"w": rand(4, 3, 1, 1), "w2": rand(4, 4, 1, 1), "zero": np.array(0, np.float32),
             "six": np.array(6, np.float32)}
    g, p = check_against_ort(save(make_model(nodes, {"x": (1, 3, 4, 4)}, ["out"], inits), tmp_path))
    f = fuse(g)
    verify(f)
    assert [n.op for n in f.nodes] == ["conv2d", "conv2d", "add", "conv2d", "relu", "mul"]
    assert f.nodes[0].attrs["act"] == "relu" and f.nodes[0].outputs == ["r1"]
    clip = f.nodes[1].attrs
    assert (clip["act"], clip["act_lo"], clip["act_hi"]) == ("clip", 0.0, 6.0)
    assert f.nodes[2].attrs["act"] == "relu" and f.nodes[3].attrs["act"] is None


def test_fuse_keeps_graph_output_and_moves_quant() -> None:
    g = Graph()
    g.add_tensor(Tensor("x", (1, 4)))
    w = g.const("w", rand(3, 4))
    b = g.const("b", rand(3))
    for name in ("h", "y", "z"):
        g.add_tensor(Tensor(name, (1, 3)))
    g.tensors["y"].quant = QuantParams(np.array([0.05]), np.array([-128]))
    g.inputs, g.outputs = ["x"], ["y", "z"]
    g.nodes = [Node("fully_connected", "fc", ["x", w, b], ["h"], {"act": None}),
               Node("relu", "relu", ["h"], ["y"]), Node("relu", "relu2", ["y"], ["z"])]
    f = fuse(g)
    assert [n.op for n in f.nodes] == ["fully_connected", "relu"]
    yq = f.tensors["y"].quant
    assert f.nodes[0].outputs == ["y"] and yq is not None and yq.zp == -128
    g.outputs = ["h", "z"]  # the producer's output is needed itself: nothing to fuse
    assert [n.op for n in fuse(g).nodes] == ["fully_connected", "relu", "relu"]


def test_fold_pads() -> None:
    g = Graph()
    g.add_tensor(Tensor("x", (1, 2, 5, 5)))
    w = g.const("w", rand(3, 2, 3, 3))
    g.inputs, g.outputs = ["x"], []
    zero4 = (0, 0, 0, 0)
    cases: dict[str, tuple[list[tuple[int, int]], float, str]] = {  # name -> (pads, value, reader op)
        "zero_spatial": ([(0, 0), (0, 0), (1, 2), (0, 1)], 0.0, "conv2d"),
        "nonzero_value": ([(0, 0), (0, 0), (1, 1), (1, 1)], 1.0, "conv2d"),
        "channel_pad": ([(0, 0), (1, 0), (1, 1), (1, 1)], 0.0, "conv2d"),
        "before_maxpool": ([(0, 0), (0, 0), (1, 1), (1, 1)], 0.0, "maxpool"),
    }
    for key, (pads, value, op) in cases.items():
        pout = g.unique_name("p_" + key)
        g.add_tensor(Tensor(pout, tuple(d + a + b for d, (a, b) in zip((1, 2, 5, 5), pads, strict=True))))
        g.nodes.append(Node("pad", "pad_" + key, ["x"], [pout], {"pads": pads, "value": value}))
        y = g.unique_name("y_" + key)
        if op == "conv2d":
            win = w if pads[1] == (0, 0) else g.const("w3", rand(3, 3, 3, 3))
            node = Node("conv2d", "conv_" + key, [pout, win], [y],
                        {"strides": (1, 1), "pads": zero4, "dilations": (1, 1), "groups": 1, "act": None})
        else:
            node = Node("maxpool", "mp_" + key, [pout], [y],
                        {"kernel": (3, 3), "strides": (1, 1), "pads": zero4})
        g.nodes.append(node)
        g.add_tensor(Tensor(y, infer_shapes(node, g)[0]))
        g.outputs.append(y)
    verify(g)
    f = fuse(g)
    verify(f)
    pads_left = {n.name for n in f.nodes if n.op == "pad"}
    assert pads_left == {"pad_nonzero_value", "pad_channel_pad", "pad_before_maxpool"}
    conv = next(n for n in f.nodes if n.name == "conv_zero_spatial")
    assert conv.inputs[0] == "x" and conv.attrs["pads"] == (1, 0, 2, 1)
    same_outputs(g, f, {"x": rand(1, 2, 5, 5)})


def test_identity_removal_at_output(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["y"]),
             helper.make_node("Identity", ["x"], ["z"])]
    g = load_onnx(save(make_model(nodes, {"x": (1, 3)}, ["y", "z"]), tmp_path))
    f = fuse(g)
    verify(f)
    assert [n.op for n in f.nodes] == ["relu", "identity"] and f.outputs == ["y", "z"]
    assert f.nodes[0].outputs == ["y"]


# ---- layout --------------------------------------------------------------------------------


def test_layout_reshape_transposes(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Flatten", ["c"], ["flat"]),                      # 3x3 spatial: needs NCHW order
        helper.make_node("Reshape", ["flat", "shape4"], ["back"]),         # 2-D -> 4-D: transpose to NHWC
        helper.make_node("Concat", ["back", "c"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["gflat"]),                    # 1x1 spatial: no transpose
        helper.make_node("Mul", ["cat", "cconst"], ["m"]),
        helper.make_node("Pad", ["m", "pads"], ["pm"]),
        helper.make_node("Softmax", ["pm"], ["sm"], axis=1),
        helper.make_node("Transpose", ["sm"], ["tr"], perm=[0, 3, 1, 2]),
    ]
    inits = {"w": rand(4, 3, 3, 3), "shape4": np.array([1, 4, 3, 3], np.int64), "cconst": rand(8, 1, 1),
             "pads": np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)}
    g, p = check_against_ort(save(make_model(nodes, {"x": (1, 3, 5, 5)}, ["gflat", "tr"], inits), tmp_path))
    ops = [n.op for n in p.nodes]
    assert ops.count("transpose") == 3  # before flatten, after the 2-D -> 4-D reshape, the model's own
    assert p.tensors["x"].shape == (1, 5, 5, 3) and p.meta["input_layouts"] == {"x": "NCHW"}
    assert p.tensors[p.nodes[0].inputs[1]].shape == (4, 3, 3, 3)
    cat = next(n for n in p.nodes if n.op == "concat")
    assert cat.attrs["axis"] == 3
    pad = next(n for n in p.nodes if n.op == "pad")
    assert [tuple(x) for x in pad.attrs["pads"]] == [(0, 0), (1, 0), (0, 2), (0, 0)]
    mul = next(n for n in p.nodes if n.op == "mul")
    assert p.tensors[mul.inputs[1]].shape == (1, 1, 1, 8)


def test_layout_remaps_weight_quant_axis() -> None:
    g = Graph()
    g.add_tensor(Tensor("x", (1, 2, 4, 4)))
    wq = QuantParams(np.ones(3), np.zeros(3), axis=0)
    w = g.const("w", rand(3, 2, 3, 3), wq)
    g.add_tensor(Tensor("y", (1, 3, 2, 2)))
    g.inputs, g.outputs = ["x"], ["y"]
    g.nodes = [Node("conv2d", "conv", ["x", w], ["y"],
                    {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "groups": 1, "act": None})]
    verify(g)
    p = to_nhwc(g)
    verify(p)
    pq = p.tensors["w"].quant
    assert p.layout == "NHWC" and p.tensors["w"].shape == (3, 3, 3, 2) and pq is not None and pq.axis == 0
    assert p.tensors["y"].shape == (1, 2, 2, 3) and p.meta["output_layouts"] == {"y": "NCHW"}
    assert g.layout == "NCHW" and g.tensors["w"].shape == (3, 2, 3, 3)


def test_layout_conv_weight_shared_with_add(tmp_path: Path) -> None:
    """A constant read as conv weight and as an operand keeps NCHW meaning for both."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Add", ["x", "w"], ["a"])]
    model = make_model(nodes, {"x": (1, 2, 2, 2)}, ["c", "a"], {"w": rand(1, 2, 2, 2)})
    check_against_ort(save(model, tmp_path))


def test_layout_rejects_fc_on_4d(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    g = load_onnx(save(make_model(nodes, {"x": (1, 2, 3, 4)}, ["y"], {"w": rand(4, 5)}), tmp_path))
    from mcuc.errors import MCUCError

    with pytest.raises(MCUCError, match="NHWC"):
        to_nhwc(g)


# ---- float reference speed -------------------------------------------------------------------


def mobilenetv2_graph(layout: str = "NHWC", width: float = 1.0, res: int = 224) -> Graph:
    """MobileNetV2-1.0 built directly in the IR (random weights, fused ReLU6) for timing."""
    g = Graph(layout=layout)
    g.add_tensor(Tensor("input", (1, res, res, 3) if layout == "NHWC" else (1, 3, res, res)))
    g.inputs = ["input"]

    def conv(x: str, cout: int, k: int, s: int, groups: int = 1, act: bool = True) -> str:
        cin = g.tensors[x].shape[3 if layout == "NHWC" else 1]
        wshape = (cout, k, k, cin // groups) if layout == "NHWC" else (cout, cin // groups, k, k)
        w = g.const("w", (rand(*wshape) * np.float32(np.sqrt(2.0 / (k * k * cin / groups)))))
        b = g.const("b", np.zeros(cout, np.float32))
        attrs = {"strides": (s, s), "pads": (k // 2,) * 4, "dilations": (1, 1), "groups": groups,
                 "act": "clip" if act else None, "act_lo": 0.0, "act_hi": 6.0}
        y = g.unique_name("t")
        node = Node("conv2d", y, [x, w, b], [y], attrs)
        g.add_tensor(Tensor(y, infer_shapes(node, g)[0]))
        g.nodes.append(node)
        return y

    x = conv("input", 32, 3, 2)
    cin = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            h = conv(x, cin * t, 1, 1) if t != 1 else x
            h = conv(h, cin * t, 3, s if i == 0 else 1, groups=cin * t)
            h = conv(h, c, 1, 1, act=False)
            if i > 0 and cin == c:
                y = g.unique_name("t")
                g.add_tensor(Tensor(y, g.tensors[h].shape))
                g.nodes.append(Node("add", y, [x, h], [y], {"act": None}))
                h = y
            x, cin = h, c
    x = conv(x, 1280, 1, 1)
    g.outputs = [x]
    verify(g)
    return g


def test_float_reference_mobilenetv2_224() -> None:
    g = mobilenetv2_graph()
    out = run_float(g, {"input": rand(1, 224, 224, 3)})
    y = out[g.outputs[0]]
    assert y.shape == (1, 7, 7, 1280) and np.isfinite(y).all()


def test_float_reference_layouts_agree() -> None:
    """The same network in NCHW and NHWC gives the same numbers (weights permuted between them)."""
    g = mobilenetv2_graph("NCHW", res=32)
    p = float_pipeline(g)
    x = rand(1, 3, 32, 32)
    same_outputs(g, p, {"input": x})
