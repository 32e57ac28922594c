"""Model-file readers: each turns a source format into a Graph in the source layout."""
from __future__ import annotations

from pathlib import Path

from mcuc.errors import MCUCError


def model_file(path: str) -> Path:
    """``path`` as an existing regular file; MCUCError naming what is wrong otherwise."""
    p = Path(path)
    if not p.exists():
        raise MCUCError(f"model file '{path}' does not exist")
    if p.is_dir():
        raise MCUCError(f"'{path}' is a directory, not a model file (.onnx or .tflite)")
    return p
