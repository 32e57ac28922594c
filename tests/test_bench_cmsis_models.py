"""bench/cmsis_nn_models.py: each op of a compiled model maps to the CMSIS-NN layers that run it (no QEMU)."""
from __future__ import annotations

import contextlib
import io

from bench.cmsis_nn_models import batches, op_layers
from bench.kernels import layers_model
from bench.layer_classes import Layer
from mcuc.compiler import CompileOptions, compile_model

LAYERS = [
    Layer("conv", "conv", 3, 8, 3, 2, 16),
    Layer("pointwise", "conv", 8, 16, 1, 1, 8),
    Layer("depthwise", "conv", 16, 16, 3, 1, 8, groups=16),
    Layer("fc rows", "fc", 16, 12, extra=(5,)),
    Layer("add", "add", 4, 4, hw=6),
    Layer("pool", "avgpool", 16, 16, 4, 1, 4),
    Layer("attention", "attention", extra=(2, 8, 4)),
    Layer("layernorm", "layernorm", extra=(4, 8)),
]


def test_ops_map_to_cmsis_nn_layers(tmp_path):
    with contextlib.redirect_stderr(io.StringIO()):
        compiled = compile_model(str(layers_model(LAYERS, tmp_path / "m.onnx")),
                                 CompileOptions(board="qemu-mps2-an386", kernels="fast"), progress=lambda m: None)
    g = compiled.graph
    found = {n.name: op_layers(g, n) for n in g.nodes}
    assert found["layer0"] == (Layer("conv 3x3 s2 p1 3->8, 16x16", "conv", 3, 8, 3, 2, 16, padding=1),)
    assert found["layer1"] == (Layer("conv 1x1 s1 p0 8->16, 8x8", "conv", 8, 16, 1, 1, 8, padding=0),)
    assert found["layer2"] == (Layer("depthwise 3x3 s1 p1 16 ch, 8x8", "conv", 16, 16, 3, 1, 8, 16, padding=1),)
    fc = [la for name, las in found.items() if name.startswith("layer3") for la in las]
    assert fc == [Layer("fully connected 16->12 x 5 rows", "fc", 16, 12, extra=(5,))]
    assert found["layer4"] == (Layer("add 144", "add", 144, 144),)
    assert found["layer5"] == (Layer("average pool global 4x4x16", "avgpool", 16, 16, 4, 1, 4),)
    attention = [n for n in g.nodes if n.op == "attention"]
    assert len(attention) == 1
    assert [(la.kind, la.extra) for la in found[attention[0].name]] == [
        ("matmul", (2, 8, 4, 8)), ("softmax", (16, 8)), ("matmul", (2, 8, 8, 4))]
    assert found["layer7"] == ()  # LayerNorm: no CMSIS-NN kernel, counted at mcuc's figure
    assert all(found[n.name] == () for n in g.nodes if n.op in ("transpose", "reshape", "layernorm"))


def test_batches_fit_the_budgets():
    big = Layer("fc", "fc", 1280, 1000)
    parts = batches([big, big, Layer("add", "add", 10, 10)])
    assert [len(p) for p in parts] == [1, 2]
