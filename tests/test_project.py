"""The compiled project directory: the graph is stored as data (JSON + .npz, never pickle) and reloads exactly; a
crafted pickle is never loaded; OUTDIR is replaced only after the whole compile (firmware build included)
succeeded."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from mcuc.cli import main
from mcuc.compiler import CompileOptions, compile_model
from mcuc.errors import MCUCError
from mcuc.ir import Graph
from mcuc.project import ARRAYS_FILE, GRAPH_FILE, OLD_GRAPH_FILE, load_project, write_project
from tests.onnx_models import conv_model

TFLITE = Path(__file__).parent / "data" / "tflite"


def same_graph(a: Graph, b: Graph) -> None:
    assert (a.inputs, a.outputs, a.layout) == (b.inputs, b.outputs, b.layout)
    assert a.meta == b.meta
    assert list(a.tensors) == list(b.tensors)
    for name, t in a.tensors.items():
        u = b.tensors[name]
        assert (t.shape, t.dtype) == (u.shape, u.dtype), name
        assert (t.data is None) == (u.data is None), name
        if t.data is not None:
            assert t.data.dtype == u.data.dtype and np.array_equal(t.data, u.data), name
        assert (t.quant is None) == (u.quant is None), name
        if t.quant is not None:
            assert np.array_equal(t.quant.scale, u.quant.scale) and np.array_equal(t.quant.zero_point,
                                                                                   u.quant.zero_point)
            assert t.quant.axis == u.quant.axis
    assert [(n.op, n.name, n.inputs, n.outputs) for n in a.nodes] == [(n.op, n.name, n.inputs, n.outputs)
                                                                      for n in b.nodes]
    for n, m in zip(a.nodes, b.nodes, strict=True):
        assert repr(n.attrs) == repr(m.attrs), n.name


@pytest.mark.parametrize("model", ["attention.tflite", "detection_heads.tflite", "onnx"])
def test_graph_round_trips_exactly(tmp_path, model):
    path = conv_model(str(tmp_path / "m.onnx")) if model == "onnx" else str(TFLITE / model)
    c = compile_model(path, CompileOptions(), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    assert (out / GRAPH_FILE).exists() and (out / ARRAYS_FILE).exists() and not (out / OLD_GRAPH_FILE).exists()
    g, report = load_project(str(out))
    same_graph(c.graph, g)
    assert report["arena_bytes"] == c.report.arena_bytes


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))

    def __init__(self, marker: str) -> None:
        self.marker = marker


def test_crafted_pickle_is_never_loaded(tmp_path, capsys):
    """A project directory someone sends you: a mcuc_graph.pkl that runs code when unpickled must stay unread."""
    c = compile_model(conv_model(str(tmp_path / "m.onnx")), CompileOptions(), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    marker = tmp_path / "payload-ran"
    (out / GRAPH_FILE).unlink()
    (out / ARRAYS_FILE).unlink()
    (out / OLD_GRAPH_FILE).write_bytes(pickle.dumps(_Payload(str(marker))))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    for argv in (["run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")],
                 ["verify", str(out)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "older mcuc" in err and "compile the model again" in err
    assert not marker.exists()


def test_arrays_are_read_without_pickle(tmp_path):
    """An object array planted in the .npz needs pickle to load: it is refused, not unpickled."""
    c = compile_model(conv_model(str(tmp_path / "m.onnx")), CompileOptions(), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    marker = tmp_path / "payload-ran"
    with np.load(out / ARRAYS_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["a0"] = np.array([_Payload(str(marker))], dtype=object)
    np.savez(out / ARRAYS_FILE, **arrays)
    with pytest.raises(MCUCError, match="not a graph this mcuc wrote"):
        load_project(str(out))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "version", "node"])
def test_damaged_graph_file_is_one_clean_error(tmp_path, damage):
    c = compile_model(conv_model(str(tmp_path / "m.onnx")), CompileOptions(), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    text = (out / GRAPH_FILE).read_text()
    if damage == "truncate":
        text = text[: len(text) // 2]
    else:
        doc = json.loads(text)
        if damage == "version":
            doc["version"] = 99
        else:
            doc["nodes"][0]["inputs"] = ["nowhere"]
        text = json.dumps(doc)
    (out / GRAPH_FILE).write_text(text)
    with pytest.raises(MCUCError):
        load_project(str(out))


def test_failed_finish_keeps_the_previous_outdir(tmp_path):
    c = compile_model(conv_model(str(tmp_path / "m.onnx")), CompileOptions(), progress=lambda m: None)
    out = write_project(c, str(tmp_path / "proj"))
    (out / "mine.txt").write_text("previous build")
    before = sorted(p.name for p in out.iterdir())

    def failing_build(d: Path) -> None:
        assert (d / "model.c").exists() and d == out
        raise MCUCError("firmware does not fit")

    with pytest.raises(MCUCError, match="does not fit"):
        write_project(c, str(out), finish=failing_build)
    assert sorted(p.name for p in out.iterdir()) == before and (out / "mine.txt").read_text() == "previous build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "proj"]
    write_project(c, str(out), finish=lambda d: None)
    assert not (out / "mine.txt").exists()


def test_failed_firmware_build_keeps_the_previous_outdir(tmp_path, capsys, monkeypatch):
    """`mcuc compile --board <firmware board>` builds the firmware in the new OUTDIR before the previous one goes:
    a failed build leaves the previous good OUTDIR as it was."""
    model = conv_model(str(tmp_path / "m.onnx"))
    out = tmp_path / "proj"
    assert main(["compile", model, "--board", "stm32f411", "--no-build", "-o", str(out)]) == 0
    report = (out / "report.json").read_text()

    def failing_build(outdir, compiled, progress=None):
        raise MCUCError("flash image 2,000,000 B exceeds the 524,288 B of flash")

    monkeypatch.setattr("mcuc.cli.build_and_measure", failing_build)
    capsys.readouterr()
    assert main(["compile", model, "--board", "stm32f411", "--sram", "64k", "-o", str(out)]) == 1
    assert "exceeds" in capsys.readouterr().err
    assert (out / "report.json").read_text() == report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "proj"]
