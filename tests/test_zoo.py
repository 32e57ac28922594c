"""Zoo models build, export to ONNX and QDQ ONNX, and agree with onnxruntime; the shipped demo is sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from mcuc.zoo import (  # noqa: E402
    DEMO_CALIB,
    DEMO_ONNX,
    DEMO_SAMPLES,
    FASHION_MNIST_DIR,
    ZOO,
    build,
    demo_metadata,
    load_fashion_mnist,
)
from mcuc.zoo.export import export_onnx, export_qdq, op_types  # noqa: E402

# Small resolutions keep the suite fast; the architecture is resolution independent.
SMALL = {
    "mobilenetv2": {"resolution": 64},
    "mobilenetv2-0.35": {"resolution": 64},
    "mcunet-vww1": {},
    "mcunet-tiny": {},
}
EXPECTED_CLASSES = {"mobilenetv2": 1000, "mobilenetv2-0.35": 1000, "mcunet-vww1": 2, "mcunet-tiny": 10}


def _run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_registry_covers_expected_names() -> None:
    # The transformers (dhvt*, crossvit*) are tested in tests/test_zoo_transformers.py.
    assert set(SMALL) == {name for name in ZOO if not name.startswith(("dhvt", "crossvit"))}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_build_export_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    model, shape = build(name, **SMALL[name])
    assert not model.training
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert expected.shape == (1, EXPECTED_CLASSES[name])
    path = export_onnx(model, shape, tmp_path / f"{name}.onnx")
    ops = op_types(path)
    assert ops["BatchNormalization"] == ops["Conv"]
    assert {"Clip", "GlobalAveragePool", "Gemm"} <= set(ops)
    np.testing.assert_allclose(_run_ort(path, x), expected, atol=1e-4, rtol=0)


def test_build_is_deterministic_and_bn_stats_nontrivial() -> None:
    a, shape = build("mcunet-tiny", seed=3)
    b, _ = build("mcunet-tiny", seed=3)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    bn = next(m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.running_mean.abs().max() > 1e-3
    assert (bn.running_var - 1).abs().max() > 1e-3
    assert (bn.weight - 1).abs().max() > 1e-3


def test_overrides_change_shape() -> None:
    model, shape = build("mobilenetv2", width=0.5, resolution=48, num_classes=7, in_channels=1)
    assert shape == (1, 1, 48, 48)
    with torch.no_grad():
        assert model(torch.zeros(shape)).shape == (1, 7)
    with pytest.raises(KeyError):
        build("no-such-model")


def test_mobilenetv2_224_export(tmp_path: Path) -> None:
    model, shape = build("mobilenetv2")
    assert shape == (1, 3, 224, 224)
    path = export_onnx(model, shape, tmp_path / "mbv2.onnx")
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run_ort(path, x), expected, atol=1e-4, rtol=0)


def test_qdq_export_runs(tmp_path: Path) -> None:
    model, shape = build("mcunet-tiny")
    path = export_onnx(model, shape, tmp_path / "tiny.onnx")
    rng = np.random.default_rng(2)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    qdq = export_qdq(path, tmp_path / "tiny.qdq.onnx", calib)
    ops = op_types(qdq)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    weights_int8 = [t for t in onnx.load(str(qdq)).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights_int8
    out = _run_ort(qdq, calib[0])
    with torch.no_grad():
        ref = model(torch.from_numpy(calib[0])).numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 0.1 * np.abs(ref).max() + 0.05


def test_demo_model_shipped() -> None:
    meta = demo_metadata()
    assert meta["float_test_accuracy"] >= 0.85
    assert DEMO_ONNX.stat().st_size < 300 * 1024
    ops = op_types(DEMO_ONNX)
    assert "BatchNormalization" in ops
    assert onnx.load(str(DEMO_ONNX)).opset_import[0].version == 13
    calib = np.load(DEMO_CALIB)
    assert calib.dtype == np.float32 and calib.shape[1:] == (3, 32, 32)
    samples = np.load(DEMO_SAMPLES)
    images, labels = samples["images"], samples["labels"]
    assert images.shape == (32, 3, 32, 32)
    session = ort.InferenceSession(str(DEMO_ONNX), providers=["CPUExecutionProvider"])
    preds = [int(session.run(None, {"input": images[i:i + 1]})[0].argmax()) for i in range(len(images))]
    assert np.mean(np.asarray(preds) == labels) >= 0.75


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="dataset-fashion-mnist not installed")
def test_load_fashion_mnist() -> None:
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 3, 32, 32) and images.dtype == np.float32
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert -1.0 - 1e-6 <= images.min() and images.max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(images[:, 0], images[:, 2])
