"""mcuc compiles ONNX and TFLite networks to int8 C for microcontrollers.

The package carries its own data beside its modules, so an installed wheel compiles as well as a
checkout: runtime_c/ (the C kernels every generated project copies), codegen/templates/ (the jinja2
templates of the generated C) and boards/ (board files, linker scripts, startup code).
"""
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime_c"
