"""Float vs int8 accuracy of the shipped demo model on the full Fashion-MNIST test set (10,000 images).

Float: onnxruntime on demo_fmnist.onnx. int8: the generated C, built for the host, run on every
test image (it is bit-exact with mcuc's int8 reference, which `mcuc verify` checks).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mcuc.compiler import CompileOptions, compile_model
from mcuc.model_io import dequantize_output, quantize_input, to_graph_layout
from mcuc.project import write_project
from mcuc.runner import run_samples
from mcuc.zoo import DEMO_CALIB, DEMO_ONNX, load_fashion_mnist


def main() -> None:
    x, y = load_fashion_mnist("test")
    sess = ort.InferenceSession(str(DEMO_ONNX), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    float_pred = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0].argmax(axis=1) for i in range(len(x))])
    t0 = time.perf_counter()
    compiled = compile_model(str(DEMO_ONNX), CompileOptions(calib=str(DEMO_CALIB)), progress=lambda m: None)
    compile_s = time.perf_counter() - t0
    g = compiled.graph
    with tempfile.TemporaryDirectory() as td:
        out = write_project(compiled, str(Path(td) / "demo"))
        gi, go = g.inputs[0], g.outputs[0]
        q = quantize_input(g, gi, to_graph_layout(g, gi, x))
        yq = run_samples(out, g, {gi: q}, "host", sanitize=False)[go]
    int8_pred = dequantize_output(g, go, yq).reshape(len(x), -1).argmax(axis=1)
    print("| model | test images | float top-1 | int8 top-1 (generated C) | agreement | compile (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| demo (mcunet-tiny, 3x32x32) | {len(x)} | {100 * np.mean(float_pred == y):.2f} % | "
          f"{100 * np.mean(int8_pred == y):.2f} % | {100 * np.mean(float_pred == int8_pred):.2f} % | {compile_s:.1f} |")


if __name__ == "__main__":
    main()
