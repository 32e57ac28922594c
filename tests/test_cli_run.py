"""compile -> run -> outputs equal the int8 reference; calibration sources; boards listing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcuc.cli import main
from mcuc.execute import run_int8
from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, to_graph_layout
from mcuc.project import load_project
from tests.onnx_models import conv_model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    model = conv_model(str(d / "m.onnx"), cin=3, cout=6, size=10)
    calib = np.random.default_rng(0).standard_normal((6, 3, 10, 10)).astype(np.float32)
    np.save(d / "calib.npy", calib)
    out = d / "proj"
    assert main(["compile", model, "--calib", str(d / "calib.npy"), "-o", str(out)]) == 0
    return d, out


def test_report_has_contract_keys(project):
    _, out = project
    rep = json.loads((out / "report.json").read_text())
    for key in ("arena_bytes", "peak_sram_bytes", "weights_bytes", "macs", "schedule", "board", "sram_budget_bytes",
                "ops"):
        assert key in rep
    assert rep["schedule"] == {"kind": "layer", "kernels": "fast"}  # the kernel choice (--kernels auto: fast fits)
    assert rep["peak_sram_bytes"] >= rep["arena_bytes"] >= rep["arena_lower_bound_bytes"] > 0
    assert all({"name", "op", "output_shape", "macs", "live_bytes"} <= set(op) for op in rep["ops"])
    # Conv 3->6, 3x3, 10x10 output: MACs are exact.
    assert rep["ops"][0]["macs"] == 10 * 10 * 6 * 3 * 3 * 3


def test_run_float_and_raw_match_reference(project, capsys):
    d, out = project
    g, _ = load_project(str(out))
    x = np.random.default_rng(1).standard_normal((5, 3, 10, 10)).astype(np.float32)
    np.save(d / "x.npy", x)
    assert main(["run", str(out), "--input", str(d / "x.npy"), "--output", str(d / "y.npy")]) == 0
    y = np.load(d / "y.npy")
    name, oname = g.inputs[0], g.outputs[0]
    q = quantize_input(g, name, to_graph_layout(g, name, x))
    for i in range(5):
        ref = run_int8(g, {name: q[i:i + 1]})[oname]
        np.testing.assert_array_equal(y[i:i + 1], dequantize_output(g, oname, from_graph_layout(g, oname, ref)))
    # --raw: int8 in, int8 out, same numbers
    np.save(d / "xq.npy", q.transpose(0, 3, 1, 2))
    assert main(["run", str(out), "--raw", "--input", str(d / "xq.npy"), "--output", str(d / "yq.npy")]) == 0
    yq = np.load(d / "yq.npy")
    assert yq.dtype == np.int8
    np.testing.assert_array_equal(dequantize_output(g, oname, yq), y)


def test_run_rejects_wrong_shape(project, capsys):
    d, out = project
    np.save(d / "bad.npy", np.zeros((1, 3, 9, 10), dtype=np.float32))
    assert main(["run", str(out), "--input", str(d / "bad.npy"), "--output", str(d / "o.npy")]) == 1
    assert "the model wants (N, 3, 10, 10)" in capsys.readouterr().err


def test_image_folder_calibration_and_percentile(tmp_path):
    from PIL import Image

    model = conv_model(str(tmp_path / "m.onnx"), cin=3, cout=4, size=12)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "p"
    assert main(["compile", model, "--calib", str(folder), "--mean", "0.5", "--std", "0.25",
                 "--calib-method", "percentile", "-o", str(out)]) == 0
    g, _ = load_project(str(out))
    q = g.tensors[g.inputs[0]].quant
    # images normalised to [-2, 2]: the percentile range stays inside it
    assert q.s * 255 <= 4.0 + 1e-6


def test_boards_lists_all(capsys):
    assert main(["boards"]) == 0
    text = capsys.readouterr().out
    for name in ("host", "stm32h7", "stm32f746", "stm32f411", "nrf52840", "qemu-mps2-an386", "qemu-mps2-an500",
                 "qemu-mps3-an547"):
        assert name in text


def test_sram_above_board_is_refused(tmp_path, capsys):
    model = conv_model(str(tmp_path / "m.onnx"))
    assert main(["compile", model, "--board", "stm32f411", "--sram", "1M", "-o", str(tmp_path / "o")]) == 1
    assert "exceeds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("make,message", [
    (lambda: np.zeros((0, 3, 10, 10), np.float32), "no samples"),
    (lambda: np.full((1, 3, 10, 10), "a", dtype="<U1"), "<U1"),
    (lambda: np.ones((1, 3, 10, 10), np.complex64), "complex64"),
    (lambda: np.full((1, 3, 10, 10), np.nan, np.float32), "NaN"),
])
def test_run_rejects_unusable_input(project, capsys, make, message):
    """An empty batch, text, complex numbers (their imaginary part was silently dropped) and NaN are refused."""
    d, out = project
    np.save(d / "bad.npy", make())
    assert main(["run", str(out), "--input", str(d / "bad.npy"), "--output", str(d / "o.npy")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (d / "o.npy").exists()


def test_run_writes_exactly_the_output_path(project, capsys):
    d, out = project
    np.save(d / "x1.npy", np.zeros((1, 3, 10, 10), np.float32))
    assert main(["run", str(out), "--input", str(d / "x1.npy"), "--output", str(d / "y.bin")]) == 0
    assert (d / "y.bin").exists() and not (d / "y.bin.npy").exists()
    assert np.load(d / "y.bin").shape == (1, 6)


def test_run_several_outputs_needs_npz(tmp_path, capsys):
    model = Path(__file__).parent / "data" / "tflite" / "detection_heads.tflite"
    out = tmp_path / "proj"
    assert main(["compile", str(model), "-o", str(out)]) == 0
    g, _ = load_project(str(out))
    assert len(g.outputs) > 1
    x = np.zeros((2, *g.tensors[g.inputs[0]].shape[1:]), np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 1
    err = capsys.readouterr().err
    assert "y.npz" in err and f"{len(g.outputs)} outputs" in err
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "y.npy.npz").exists()
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz")]) == 0
    assert f"wrote {tmp_path / 'y.npz'}" in capsys.readouterr().err
    with np.load(tmp_path / "y.npz") as z:
        assert list(z.files) == list(g.outputs) and all(z[k].shape[0] == 2 for k in z.files)


def test_fully_qdq_model_is_not_called_uncalibrated(tmp_path, capsys):
    """Every activation of a QDQ model has the model's own scale: no synthetic calibration, no warning."""
    from tests.fuzz_harness import qdq_model

    model = qdq_model(tmp_path / "qdq.onnx")
    assert main(["compile", str(model), "-o", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "calibrating" not in err, err


def test_partly_qdq_model_warns_for_the_unscaled_tensors_only(tmp_path, capsys):
    import onnx

    from tests.fuzz_harness import qdq_model

    m = onnx.load(str(qdq_model(tmp_path / "qdq.onnx")))
    keep = [n for n in m.graph.node if n.name not in ("q_y", "dq_y")]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    next(n for n in m.graph.node if n.name == "fc0").output[0] = "y"
    onnx.save(m, str(tmp_path / "partly.onnx"))
    assert main(["compile", str(tmp_path / "partly.onnx"), "-o", str(tmp_path / "p")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "'y'" in warnings[0]
    assert "calibrating the 1 activation without a Q/DQ scale" in warnings[0]


def test_float_model_without_calibration_data_warns(tmp_path, capsys):
    assert main(["compile", conv_model(str(tmp_path / "m.onnx")), "-o", str(tmp_path / "p")]) == 0
    assert "warning: no --calib data given; calibrating on synthetic" in capsys.readouterr().err
