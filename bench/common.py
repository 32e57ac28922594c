"""Shared helpers for bench scripts: zoo models exported to ONNX and compiled in-process."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from mcuc.compiler import Compiled, CompileOptions, compile_model

# (zoo name, overrides) of the models every table reports
BENCH_MODELS: list[tuple[str, dict]] = [
    ("mcunet-tiny", {}),
    ("mcunet-vww1", {}),
    ("mobilenetv2-0.35", {}),
    ("mobilenetv2", {"resolution": 224}),
]


def export_zoo(name: str, out_dir: Path, **overrides) -> tuple[Path, tuple[int, ...]]:
    from mcuc import zoo
    from mcuc.zoo.export import export_onnx

    model, shape = zoo.build(name, **overrides)
    path = out_dir / f"{name}.onnx"
    export_onnx(model, shape, path)
    return path, shape


def compile_zoo(name: str, calib: np.ndarray | None = None, planner: str = "best",
                **overrides) -> tuple[Compiled, Path, tuple[int, ...], float]:
    """Export zoo model ``name`` and compile it for the host; returns (compiled, onnx path, input shape,
    seconds spent in compile_model alone)."""
    td = Path(tempfile.mkdtemp(prefix="mcuc-bench-"))
    path, shape = export_zoo(name, td, **overrides)
    calib_path = None
    if calib is not None:
        calib_path = td / "calib.npy"
        np.save(calib_path, calib)
    opts = CompileOptions(board="host", calib=str(calib_path) if calib_path else None, planner=planner)
    t0 = time.perf_counter()
    compiled = compile_model(str(path), opts, progress=lambda m: None)
    return compiled, path, shape, time.perf_counter() - t0
