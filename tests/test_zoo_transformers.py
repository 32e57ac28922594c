"""Zoo transformers (DHVT, CrossViT): sizes, shapes, plain opset-17 ONNX that onnxruntime agrees with, trained files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from mcuc.zoo import DEMO_CALIB, DEMO_SAMPLES, ZOO, build  # noqa: E402
from mcuc.zoo.export import export_onnx, op_types  # noqa: E402

# Parameter-count ranges: the defaults are the issue's ~0.36 M (DHVT) and ~0.5 M (CrossViT) models.
PARAMS = {
    "dhvt": (340_000, 380_000),
    "dhvt-small": (120_000, 170_000),
    "crossvit": (420_000, 520_000),
    "crossvit-small": (130_000, 190_000),
}
# Everything the exports may contain: no Shape/Expand/Gelu/Einsum or other dynamic or newer-opset ops.
ALLOWED_OPS = {
    "Add", "BatchNormalization", "Concat", "Conv", "Div", "Erf", "Gather", "Gemm", "GlobalAveragePool",
    "LayerNormalization", "MatMul", "Mul", "ReduceMean", "Reshape", "Slice", "Softmax", "Split", "Transpose",
}
DATA = Path(__file__).resolve().parents[1] / "mcuc" / "zoo" / "data"
# (file stem, float test-accuracy floor, opset)
TRAINED = [("dhvt", 0.85, 17), ("crossvit", 0.84, 17), ("mcunet", 0.85, 13)]


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_registered() -> None:
    assert set(PARAMS) <= set(ZOO)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_build_size_and_batch_independence(name: str) -> None:
    model, shape = build(name)
    assert shape == (1, 3, 32, 32) and not model.training
    low, high = PARAMS[name]
    assert low <= sum(p.numel() for p in model.parameters()) <= high
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, *shape[1:])).astype(np.float32))
    with torch.no_grad():
        both = model(x)
        one = torch.cat([model(x[:1]), model(x[1:])])
    assert both.shape == (2, 10)
    torch.testing.assert_close(both, one, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_export_is_plain_opset17_and_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    model, shape = build(name)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    path = export_onnx(model, shape, tmp_path / f"{name}.onnx")
    assert onnx.load(str(path)).opset_import[0].version == 17
    ops = op_types(path)
    assert set(ops) <= ALLOWED_OPS, set(ops) - ALLOWED_OPS
    assert {"LayerNormalization", "Softmax", "MatMul", "Erf"} <= set(ops)
    np.testing.assert_allclose(_ort(path, x), expected, atol=1e-4, rtol=0)


def test_overrides_and_errors() -> None:
    model, shape = build("dhvt-small", resolution=16, num_classes=4)
    assert shape == (1, 3, 16, 16)
    with torch.no_grad():
        assert model(torch.zeros(shape)).shape == (1, 4)
    model, shape = build("crossvit-small", resolution=16, num_classes=3)
    with torch.no_grad():
        assert model(torch.zeros(shape)).shape == (1, 3)
    with pytest.raises(ValueError, match="power of two"):
        build("dhvt", patch=3, resolution=30)
    with pytest.raises(ValueError, match="divisible"):
        build("crossvit", heads=(5, 3))


def test_cnn_export_keeps_opset13(tmp_path: Path) -> None:
    model, shape = build("mcunet-tiny")
    assert onnx.load(str(export_onnx(model, shape, tmp_path / "t.onnx"))).opset_import[0].version == 13


@pytest.mark.parametrize(("stem", "floor", "opset"), TRAINED)
def test_trained_file_shipped(stem: str, floor: float, opset: int) -> None:
    path, meta_path = DATA / f"{stem}_fmnist.onnx", DATA / f"{stem}_fmnist.json"
    assert path.stat().st_size < 2 * 1000 * 1000
    meta = json.loads(meta_path.read_text())
    assert meta["onnx"] == path.name and meta["test_samples"] == 10000
    assert meta["float_test_accuracy"] >= floor
    assert abs(meta["onnxruntime_test_accuracy"] - meta["float_test_accuracy"]) <= 0.002
    assert meta["calibration"]["file"] == DEMO_CALIB.name and DEMO_CALIB.exists()
    assert onnx.load(str(path)).opset_import[0].version == opset
    samples = np.load(DEMO_SAMPLES)
    images, labels = samples["images"], samples["labels"]
    preds = np.array([int(_ort(path, images[i:i + 1]).argmax()) for i in range(len(images))])
    assert np.mean(preds == labels) >= floor - 0.15
