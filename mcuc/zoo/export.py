"""Export zoo models to float ONNX (BatchNormalization kept as separate nodes) and to int8 QDQ ONNX."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, opset: int | None = None) -> Path:
    """Export with the TorchScript exporter; the model stays in eval mode and BN nodes are not folded.

    The default opset is the model's `onnx_opset` attribute if it has one (17 for the transformers, whose
    LayerNormalization needs it), else 13. Models with `onnx_fold_constants` set (the transformers) are exported
    with constant folding, so Linear weights on 3-D inputs arrive pre-transposed instead of behind Transpose nodes.

    TrainingMode.PRESERVE with an eval-mode model skips the exporter's Conv+BN fusion, so the graph keeps
    BatchNormalization nodes (with their running statistics) for mcuc's own folding pass.
    """
    path = Path(path)
    if opset is None:
        opset = int(getattr(model, "onnx_opset", 13))
    model = model.eval()
    dummy = torch.zeros(input_shape, dtype=torch.float32)
    with warnings.catch_warnings():
        # The exporter warns about folding with PRESERVE in case the model is training; it is in eval mode.
        warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
        torch.onnx.export(
            model, (dummy,), str(path), opset_version=opset, dynamo=False,
            input_names=["input"], output_names=["output"],
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=bool(getattr(model, "onnx_fold_constants", False)),
        )
    graph = _constants_to_initializers(onnx.load(str(path)))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    return path


def _constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn tensor-valued Constant nodes (Clip bounds; constant folding is off) into initializers."""
    keep = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and set(attrs) == {"value"}:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs["value"].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


class _ArrayReader:
    """CalibrationDataReader over in-memory batches (one feed per array, batch axis kept)."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._input = input_name
        self._batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
        self._iter: Iterator[np.ndarray] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        return None if batch is None else {self._input: batch}

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def export_qdq(onnx_path: str | Path, out_path: str | Path, calib_batches: Iterable[np.ndarray]) -> Path:
    """Static int8 quantisation in QDQ format: per-channel symmetric int8 weights, int8 activations.

    Each calibration array is fed as is, so its shape must match the model input (batch 1 models take
    (1, C, H, W) arrays; split a larger calibration set with np.split first).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    model = onnx.load(str(onnx_path))
    input_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out_path), _ArrayReader(input_name, calib_batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return out_path


def op_types(path: str | Path) -> dict[str, int]:
    """Histogram of node op types in an ONNX file."""
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
