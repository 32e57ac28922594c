"""Small PyTorch models with ceil-mode pooling, Upsample / interpolate and LeakyReLU / PReLU, end to end: export,
compile, host C bit-exact with the int8 reference, float graph == onnxruntime, int8 output close to it."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcuc.compiler import CompileOptions, compile_model
from mcuc.execute import run_float, run_int8
from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, to_graph_layout
from mcuc.project import write_project
from mcuc.runner import verify_project
from tests.test_frontend_onnx import ort_run

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class CeilPoolNet(nn.Module):
    """SqueezeNet's MaxPool2d(3, 2, ceil_mode=True) and ResNet-D's AvgPool2d(2, 2, ceil_mode=True,
    count_include_pad=False) shortcut, plus a padded average that counts its padding, on odd sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.body = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.short = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), nn.Conv2d(8, 12, 1))
        self.tail = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=True)
        self.fc = nn.Linear(12, 10)

    def forward(self, x: Any) -> Any:
        x = self.pool(self.stem(x))
        x = self.tail(self.body(x) + self.short(x))
        return self.fc(x.mean(dim=(2, 3)))


class ResizeNet(nn.Module):
    """A small decoder: nearest x2 (nn.Upsample), bilinear x2 with and without align_corners, bilinear and nearest
    to odd sizes (F.interpolate)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.c1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.c2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: Any) -> Any:
        x = self.c1(self.up(self.enc(x)))
        a = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        b = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        x = self.c2(a + b)
        x = F.interpolate(x, size=(23, 19), mode="bilinear", align_corners=True)
        return F.interpolate(x, size=(11, 13), mode="nearest")


class LeakyPReluNet(nn.Module):
    """LeakyReLU(0.1), a per-channel PReLU and a shared PReLU between convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1)
        self.c2, self.a2 = nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.PReLU(12)
        self.c3, self.a3 = nn.Conv2d(12, 12, 3, padding=1), nn.PReLU()
        self.fc = nn.Linear(12, 10)
        with torch.no_grad():
            self.a2.weight.uniform_(-0.2, 0.5)

    def forward(self, x: Any) -> Any:
        x = self.a3(self.c3(self.a2(self.c2(self.a1(self.c1(x))))))
        return self.fc(x.mean(dim=(2, 3)))


# (model, input shape, ops the int8 graph must contain, tolerance of the int8 output vs onnxruntime: max |error| as
# a fraction of the output's largest magnitude; measured on these inputs: 1.25 %, 2.4 %, 0.42 %)
CASES = {
    "ceil_pool": (CeilPoolNet, (1, 3, 21, 19), {"maxpool", "avgpool", "pad"}, 0.03),
    "resize": (ResizeNet, (1, 3, 15, 13), {"resize"}, 0.05),
    "leaky_prelu": (LeakyPReluNet, (1, 3, 17, 15), {"prelu", "lut"}, 0.02),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_model_end_to_end(tmp_path: Path, name: str) -> None:
    from mcuc.zoo.export import export_onnx

    make, shape, ops, tol = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    path = str(export_onnx(model, shape, tmp_path / f"{name}.onnx"))
    rng = np.random.default_rng(1)
    calib = rng.standard_normal((16, *shape[1:])).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    compiled = compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy")), progress=lambda m: None)
    assert ops <= {n.op for n in compiled.graph.nodes}, {n.op for n in compiled.graph.nodes}
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=8, seed=2,
                         target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res
    g, fg = compiled.graph, compiled.float_graph
    name_in, name_out = g.inputs[0], g.outputs[0]
    for x in calib[:4]:
        x = x[None]
        want = ort_run(path, {name_in: x})[name_out]
        with torch.no_grad():
            np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), want, atol=1e-4, rtol=1e-4)
        got_f = from_graph_layout(fg, name_out, run_float(fg, {name_in: to_graph_layout(fg, name_in, x)})[name_out])
        scale = float(np.abs(want).max())
        assert float(np.abs(got_f - want).max()) <= 1e-5 * max(scale, 1.0)  # the float graph mcuc quantized
        yq = run_int8(g, {name_in: quantize_input(g, name_in, to_graph_layout(g, name_in, x))})[name_out]
        got8 = from_graph_layout(g, name_out, dequantize_output(g, name_out, yq))
        assert float(np.abs(got8 - want).max()) <= tol * scale, (name, float(np.abs(got8 - want).max()) / scale)


@pytest.mark.parametrize("name,split", [("leaky_prelu", 4), ("ceil_pool", 2)])
def test_patch_schedule_with_prelu_and_ceil_pool(tmp_path: Path, name: str, split: int) -> None:
    """PReLU (a pointwise op with a per-channel slope) and a ceil-mode max pool run inside a patch stage, bit-exact;
    resize has no patch window and ends the stage before it."""
    from mcuc.zoo.export import export_onnx

    make, shape, _, _ = CASES[name]
    torch.manual_seed(0)
    path = str(export_onnx(make().eval(), shape, tmp_path / f"{name}.onnx"))
    opts = CompileOptions(schedule="patch", split=split, patch_grid=(2, 2))
    compiled = compile_model(path, opts, progress=lambda m: None)
    assert compiled.report.schedule["kind"] == "patch"
    assert {"prelu" if name == "leaky_prelu" else "maxpool"} <= {n.op for n in compiled.graph.nodes[:split]}
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=4, seed=3,
                         target="host")
    assert res["elements"] > 0 and res["mismatched"] == 0, res


def test_resize_ends_a_patch_stage(tmp_path: Path) -> None:
    from mcuc.errors import MCUCError
    from mcuc.zoo.export import export_onnx

    make, shape, _, _ = CASES["resize"]
    path = str(export_onnx(make().eval(), shape, tmp_path / "resize.onnx"))
    with pytest.raises(MCUCError, match=r"\(resize\) cannot run on a patch"):
        compile_model(path, CompileOptions(schedule="patch", split=3, patch_grid=(2, 2)), progress=lambda m: None)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_model_bit_exact_under_qemu(tmp_path: Path, name: str) -> None:
    """The same models as firmware for the Cortex-M4 board under QEMU: bit-exact with the int8 reference."""
    from mcuc.zoo.export import export_onnx

    make, shape, _, _ = CASES[name]
    torch.manual_seed(0)
    path = str(export_onnx(make().eval(), shape, tmp_path / f"{name}.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).standard_normal((4, *shape[1:])).astype(np.float32))
    opts = CompileOptions(board="qemu-mps2-an386", calib=str(tmp_path / "calib.npy"))
    compiled = compile_model(path, opts, progress=lambda m: None)
    res = verify_project(write_project(compiled, str(tmp_path / "proj")), compiled.graph, samples=3, seed=4,
                         target="qemu")
    assert res["where"] == "qemu qemu-mps2-an386" and res["elements"] > 0 and res["mismatched"] == 0, res
