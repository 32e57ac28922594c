"""`mcuc search` plans the int8 graph that `mcuc compile` plans: a .tflite model as it is (never re-quantized),
an ONNX transformer with its attention fused."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mcuc.cli
from mcuc.cli import main
from mcuc.compiler import CompileOptions, compile_model
from mcuc.ir import Graph
from mcuc.passes.attention import attention_nodes

TFLITE = Path(__file__).parent / "data" / "tflite"


def _search(path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[Graph, int, str]:
    """Run `mcuc search PATH --all`; return the graph it searched, its layer-based arena (planner best) and
    standard output."""
    searched: list[Graph] = []
    real = mcuc.cli.search_candidates

    def spy(g: Graph, **kw: Any) -> Any:
        searched.append(g)
        return real(g, **kw)

    monkeypatch.setattr(mcuc.cli, "search_candidates", spy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["search", path, "--all"]) == 0
    assert [str(w.message) for w in caught] == []
    out, err = capsys.readouterr()
    assert "Warning" not in err and "warning" not in err.replace("warning: no --calib", "")
    m = re.search(r"^[ *] layer +best +arena +([\d,]+) B", out, re.M)
    assert m, out
    return searched[0], int(m.group(1).replace(",", "")), out


def _same_graph(a: Graph, b: Graph) -> None:
    assert [(n.op, n.name, n.inputs, n.outputs) for n in a.nodes] == [(n.op, n.name, n.inputs, n.outputs)
                                                                      for n in b.nodes]
    assert a.tensors.keys() == b.tensors.keys()
    for name, t in a.tensors.items():
        u = b.tensors[name]
        assert (t.shape, t.dtype) == (u.shape, u.dtype), name
        assert (t.quant is None) == (u.quant is None), name
        if t.quant is not None and u.quant is not None:
            assert np.array_equal(t.quant.scale, u.quant.scale) and np.array_equal(t.quant.zero_point,
                                                                                   u.quant.zero_point), name
        assert (t.data is None and u.data is None) or np.array_equal(t.data, u.data), name


@pytest.mark.parametrize("name", ["tiny_cnn", "attention", "mobilenet_v3_block", "detection_heads"])
def test_search_tflite_plans_the_compiled_graph(name: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ai_edge_litert")
    path = str(TFLITE / f"{name}.tflite")
    searched, arena, _ = _search(path, monkeypatch, capsys)
    compiled = compile_model(path, CompileOptions(), progress=lambda m: None)
    _same_graph(searched, compiled.graph)
    assert arena == compiled.report.arena_bytes


def test_search_onnx_transformer_fuses_attention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from mcuc.zoo import build
    from mcuc.zoo.export import export_onnx

    model, shape = build("dhvt-small")
    path = str(export_onnx(model, shape, tmp_path / "dhvt-small.onnx", opset=17))
    searched, arena, out = _search(path, monkeypatch, capsys)
    assert attention_nodes(searched) and "softmax" not in {n.op for n in searched.nodes}
    assert "(softmax)" not in out  # no unfused score matrix is anyone's bottleneck
    compiled = compile_model(path, CompileOptions(), progress=lambda m: None)
    _same_graph(searched, compiled.graph)
    assert arena == compiled.report.arena_bytes
    whole = compile_model(path, CompileOptions(attention_block="whole"), progress=lambda m: None)
    assert arena < whole.report.arena_bytes
