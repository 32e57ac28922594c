"""Transformer models from PyTorch: frontend and passes against onnxruntime, int8 host build bit-exact."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mcuc.compiler import CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.execute import run_float, run_int8
from mcuc.frontend.onnx import load_onnx
from mcuc.model_io import dequantize_output, quantize_input, to_graph_layout
from mcuc.ops import verify
from mcuc.passes.pipeline import float_pipeline
from mcuc.project import write_project
from mcuc.runner import verify_project

torch = pytest.importorskip("torch")
nn = torch.nn


# ---- models --------------------------------------------------------------------------------


class ManualLayerNorm(nn.Module):
    """LayerNorm written out, as exporters without LayerNormalization spell it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.rand(dim) + 0.5)
        self.b = nn.Parameter(torch.randn(dim) * 0.1)

    def forward(self, x: Any) -> Any:
        mu = x.mean(-1, keepdim=True)
        d = x - mu
        var = d.pow(2).mean(-1, keepdim=True)
        return d / torch.sqrt(var + 1e-5) * self.g + self.b


class Norms(nn.Module):
    def __init__(self, dim: int = 24) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.manual = ManualLayerNorm(dim)
        self.fc = nn.Linear(dim, dim)
        with torch.no_grad():
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.uniform_(-0.2, 0.2)

    def forward(self, x: Any) -> Any:
        return self.manual(self.fc(self.ln(x)))


class GeluMLP(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 3 * dim), nn.GELU(), nn.Linear(3 * dim, dim)

    def forward(self, x: Any) -> Any:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.scale = (dim // heads) ** -0.5

    def forward(self, x: Any) -> Any:
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, t, c))


class SDPA(nn.Module):
    """torch's fused attention: the exporter scales q and k by sqrt(scale) each before the MatMul."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Any) -> Any:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        o = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, t, c))


class TinyViT(nn.Module):
    """Conv patch stem, class token, one pre-norm block (MHSA + GELU MLP), class-token head."""

    def __init__(self, dim: int = 16, heads: int = 2, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.n1, self.attn, self.n2 = nn.LayerNorm(dim), Attention(dim, heads), nn.LayerNorm(dim)
        self.mlp = GeluMLP(dim)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: Any) -> Any:
        t = self.stem(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1)
        t = t + self.attn(self.n1(t))
        t = t + self.mlp(self.n2(t))
        return self.head(self.norm(t)[:, 0])


class CrossAttention(nn.Module):
    """A class token attends to the other tokens (CrossViT fusion); softmax over the token axis (dim 2)."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Any) -> Any:
        b, t, c = x.shape
        h, d = self.heads, c // self.heads
        cls, rest = torch.split(x, [1, t - 1], dim=1)
        q = self.q(cls).reshape(b, 1, h, d).permute(0, 2, 1, 3)                # [b, h, 1, d]
        k = self.k(x[:, 1:]).reshape(b, t - 1, h, d).permute(0, 2, 1, 3)       # [b, h, t-1, d]
        v = self.v(rest).reshape(b, t - 1, h, d).permute(0, 2, 1, 3)
        s = (k @ q.transpose(-2, -1)) / math.sqrt(d)                          # [b, h, t-1, 1]
        a = s.softmax(dim=2).transpose(-2, -1)                                 # [b, h, 1, t-1]
        o = (a @ v).transpose(1, 2).reshape(b, 1, c)
        fused = cls + self.proj(o)
        pooled = self.norm(torch.cat([fused, rest], 1)).mean(1)                # ReduceMean over tokens
        return pooled * 2.0 - x[:, 0] / 4.0


class DAFF(nn.Module):
    """DHVT's feed-forward: Linear -> GELU -> depthwise 3x3 conv over the token grid -> Linear, with the
    class token passed around the conv; a ReduceMean over an image's H, W on the side."""

    def __init__(self, dim: int = 16, grid: int = 4) -> None:
        super().__init__()
        self.grid = grid
        self.stem = nn.Conv2d(3, dim, 2, 2)
        self.fc1, self.act = nn.Linear(dim, 2 * dim), nn.GELU()
        self.dw = nn.Conv2d(2 * dim, 2 * dim, 3, 1, 1, groups=2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, x: Any) -> Any:
        img = self.stem(x)                                               # [b, c, g, g]
        t = img.flatten(2).transpose(1, 2)                               # [b, g*g, c]
        t = torch.cat([img.mean((2, 3)).unsqueeze(1), t], 1)             # class token from the image mean
        h = self.act(self.fc1(t))
        cls, tok = h[:, :1], h[:, 1:]
        b, n, c = tok.shape
        grid = tok.transpose(1, 2).reshape(b, c, self.grid, self.grid)
        tok = self.act(self.dw(grid)).flatten(2).transpose(1, 2)
        return self.fc2(torch.cat([cls, tok], 1))


def export(model: Any, shape: tuple[int, ...], path: Path, opset: int = 17) -> str:
    torch.manual_seed(0)
    model = model.eval()
    x = torch.randn(*shape)
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                      output_names=["output"])
    return str(path)


def _ort(path: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": x})[0])


def check_float(path: str, shape: tuple[int, ...], samples: int = 3) -> tuple[Any, Any]:
    """float_ref equals onnxruntime within 1e-4 on the loaded graph and after the pass pipeline."""
    g = load_onnx(path)
    verify(g)
    p = float_pipeline(g)
    rng = np.random.default_rng(0)
    for _ in range(samples):
        x = rng.standard_normal(shape).astype(np.float32)
        want = _ort(path, x)
        got = run_float(g, {g.inputs[0]: x})[g.outputs[0]]
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
        got_p = run_float(p, {p.inputs[0]: to_graph_layout(p, p.inputs[0], x)})[p.outputs[0]]
        np.testing.assert_allclose(got_p.reshape(want.shape), want, atol=1e-4, rtol=1e-4)
    return g, p


def compile_and_verify(path: str, shape: tuple[int, ...], tmp_path: Path, samples: int = 8) -> Any:
    rng = np.random.default_rng(1)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.standard_normal((16, *shape[1:])).astype(np.float32))
    c = compile_model(path, CompileOptions(calib=str(calib), calib_samples=16), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    res = verify_project(out, c.graph, samples=samples, seed=0, target="host")
    assert res["mismatched"] == 0 and res["elements"] > 0, res
    return c


# ---- tests ---------------------------------------------------------------------------------


def test_layernorm_both_spellings_fuse(tmp_path: Path) -> None:
    path = export(Norms(), (1, 7, 24), tmp_path / "ln.onnx")
    assert "LayerNormalization" in {n.op_type for n in onnx.load(path).graph.node}
    g, p = check_float(path, (1, 7, 24))
    ops = [n.op for n in p.nodes]
    assert ops == ["layernorm", "fully_connected", "layernorm"], ops
    assert {"sqrt", "div", "pow", "mean"} & {n.op for n in g.nodes}  # the decomposed form before fusion
    c = compile_and_verify(path, (1, 7, 24), tmp_path)
    assert [n.op for n in c.graph.nodes] == ["layernorm", "fully_connected", "layernorm"]


def test_gelu_erf_pattern_becomes_one_lut(tmp_path: Path) -> None:
    path = export(GeluMLP(), (1, 5, 16), tmp_path / "gelu.onnx")
    assert "Erf" in {n.op_type for n in onnx.load(path).graph.node}
    _, p = check_float(path, (1, 5, 16))
    assert [n.op for n in p.nodes] == ["fully_connected", "gelu", "fully_connected"]
    c = compile_and_verify(path, (1, 5, 16), tmp_path)
    assert [n.op for n in c.graph.nodes] == ["fully_connected", "lut", "fully_connected"]


def test_gelu_op_opset_20(tmp_path: Path) -> None:
    node = helper.make_node("Gelu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    path = tmp_path / "gelu20.onnx"
    onnx.save(model, str(path))
    g = load_onnx(str(path))
    assert [n.op for n in g.nodes] == ["gelu"]
    x = np.linspace(-4, 4, 8, dtype=np.float32).reshape(1, 8)
    want = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    np.testing.assert_allclose(run_float(g, {"x": x})["y"], want, atol=1e-6)


def test_tiny_vit_attention(tmp_path: Path) -> None:
    shape = (1, 3, 16, 16)
    path = export(TinyViT(), shape, tmp_path / "vit.onnx")
    _, p = check_float(path, shape)
    ops = [n.op for n in p.nodes]
    for op in ("layernorm", "batch_matmul", "softmax", "gelu", "concat", "gather"):
        assert op in ops, op
    assert "mul" not in ops and "add" in ops  # attention scale folded into the matmul, biases into fc
    assert any(n.attrs.get("transpose_b") for n in p.nodes if n.op == "batch_matmul")  # k^T read in place
    sm = next(n for n in p.nodes if n.op == "softmax")
    assert p.tensors[sm.inputs[0]].shape == (1, 2, 17, 17)  # scores keep [B, heads, T, T]
    assert p.tensors[p.inputs[0]].shape == (1, 16, 16, 3)  # the image is NHWC
    c = compile_and_verify(path, shape, tmp_path)
    src = (tmp_path / "proj" / "model.c").read_text()
    for fn in ("mcuc_layernorm_s8(", "mcuc_attention_blocked_s8(", "mcuc_lut_s8(",  # q@k^T, softmax, @v fused
               "mcuc_gather_s8(", "mcuc_concat_s8(", "mcuc_transpose_s8("):
        assert fn in src, fn
    assert c.report.macs > 0


def test_scaled_dot_product_attention(tmp_path: Path) -> None:
    shape = (1, 6, 16)
    path = export(SDPA(), shape, tmp_path / "sdpa.onnx")
    _, p = check_float(path, shape)
    ops = [n.op for n in p.nodes]
    assert ops.count("batch_matmul") == 2 and "mul" not in ops, ops  # both sqrt(scale) factors folded
    compile_and_verify(path, shape, tmp_path)


def test_cross_attention_class_token(tmp_path: Path) -> None:
    shape = (1, 9, 16)
    path = export(CrossAttention(), shape, tmp_path / "cross.onnx")
    types = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Slice", "ReduceMean", "Div", "Softmax", "MatMul"} <= types
    _, p = check_float(path, shape)
    ops = [n.op for n in p.nodes]
    assert {"slice", "mean", "batch_matmul", "layernorm", "gather"} <= set(ops)
    sm = next(n for n in p.nodes if n.op == "softmax")
    assert sm.attrs["axis"] == len(p.tensors[sm.inputs[0]].shape) - 1  # moved last between transposes
    c = compile_and_verify(path, shape, tmp_path)
    src = (tmp_path / "proj" / "model.c").read_text()
    for fn in ("mcuc_slice_s8(", "mcuc_mean_s8(", "mcuc_batch_matmul_s8(", "mcuc_layernorm_s8("):
        assert fn in src, fn
    assert "div" not in {n.op for n in c.graph.nodes}


def test_daff_tokens_to_image_and_back(tmp_path: Path) -> None:
    shape = (1, 3, 8, 8)
    path = export(DAFF(), shape, tmp_path / "daff.onnx")
    _, p = check_float(path, shape)
    ops = [n.op for n in p.nodes]
    assert "transpose" not in ops  # the token <-> image reshuffles collapse to views in NHWC
    mean = next(n for n in p.nodes if n.op == "mean")
    assert mean.attrs["axes"] == (1, 2)  # H, W of the NHWC image
    c = compile_and_verify(path, shape, tmp_path)
    assert {"mean", "slice", "conv2d", "lut"} <= {n.op for n in c.graph.nodes}


def test_int8_fidelity_tiny_vit(tmp_path: Path) -> None:
    """int8 vs float on the evaluation distribution (calibrated on it): cosine > 0.98."""
    shape = (1, 3, 16, 16)
    path = export(TinyViT(), shape, tmp_path / "vit.onnx")
    rng = np.random.default_rng(3)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.standard_normal((32, *shape[1:])).astype(np.float32))
    c = compile_model(path, CompileOptions(calib=str(calib), calib_samples=32), progress=lambda m: None)
    fg, qg = c.float_graph, c.graph
    i, o = fg.inputs[0], fg.outputs[0]
    fs, qs = [], []
    for _ in range(32):
        x = to_graph_layout(fg, i, rng.standard_normal(shape).astype(np.float32))
        fs.append(run_float(fg, {i: x})[o].ravel())
        qs.append(dequantize_output(qg, o, run_int8(qg, {i: quantize_input(qg, i, x)})[o]).ravel())
    f, q = np.concatenate(fs), np.concatenate(qs)
    assert float(f @ q / np.linalg.norm(f) / np.linalg.norm(q)) > 0.98


@pytest.mark.parametrize("opset", [13, 18])
def test_split_becomes_slices(tmp_path: Path, opset: int) -> None:
    inits = []
    if opset == 13:
        inits = [helper.make_tensor("sizes", TensorProto.INT64, [3], [1, 3, 2])]
        split = helper.make_node("Split", ["input", "sizes"], ["a", "b", "c"], axis=1)
    else:
        split = helper.make_node("Split", ["input"], ["a", "b", "c"], axis=1, num_outputs=3)
    nodes = [split, helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 6, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4])], inits)
    path = tmp_path / "split.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    g = load_onnx(str(path))
    assert [n.op for n in g.nodes] == ["slice", "slice", "slice", "concat"]
    x = np.arange(24, dtype=np.float32).reshape(1, 6, 4)
    np.testing.assert_array_equal(run_float(g, {"input": x})["y"], _ort(str(path), x))


class WithCumSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)

    def forward(self, x: Any) -> Any:
        return self.fc(self.norm(x)).cumsum(1)


def test_unsupported_op_in_transformer(tmp_path: Path) -> None:
    path = export(WithCumSum(), (1, 4, 8), tmp_path / "cumsum.onnx")
    with pytest.raises(MCUCError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "unsupported ONNX op 'CumSum'" in msg and "LayerNormalization" in msg and "\n" not in msg


def test_div_by_activation_is_not_quantized(tmp_path: Path) -> None:
    """x / y of two activations runs in float but has no int8 kernel: a clear error at quantization."""

    class DivModel(nn.Module):
        def forward(self, x: Any) -> Any:
            return x / (x * x + 1.0)

    path = export(DivModel(), (1, 6), tmp_path / "div.onnx")
    check_float(path, (1, 6))
    with pytest.raises(MCUCError, match="does not support op 'div'"):
        compile_model(path, CompileOptions(), progress=lambda m: None)
