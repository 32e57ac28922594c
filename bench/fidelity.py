"""Float vs int8 fidelity of every zoo model: cosine similarity and top-1 agreement.

The float result is onnxruntime on the exported ONNX; the int8 result is mcuc's integer
reference (bit-identical to the generated C), dequantized. Calibration and evaluation use
disjoint seeded N(0,1) batches (zoo weights are random, so there is no dataset to prefer).
"""
from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort

from bench.common import BENCH_MODELS, compile_zoo
from mcuc.execute import run_int8
from mcuc.model_io import dequantize_output, from_graph_layout, quantize_input, to_graph_layout


def fidelity(name: str, overrides: dict, n_calib: int, n_eval: int) -> dict:
    rng = np.random.default_rng(0)
    from mcuc import zoo

    _, shape = zoo.build(name, **overrides)
    calib = rng.standard_normal((n_calib, *shape[1:])).astype(np.float32)
    compiled, path, shape, _ = compile_zoo(name, calib=calib, **overrides)
    g = compiled.graph
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    cos, agree = [], 0
    for _ in range(n_eval):
        x = rng.standard_normal(shape).astype(np.float32)
        ref = sess.run(None, {in_name: x})[0].reshape(-1)
        gi = g.inputs[0]
        q = quantize_input(g, gi, to_graph_layout(g, gi, x))
        env = run_int8(g, {gi: q})
        out = g.outputs[0]
        y = dequantize_output(g, out, from_graph_layout(g, out, env[out])).reshape(-1)
        cos.append(float(np.dot(ref, y) / (np.linalg.norm(ref) * np.linalg.norm(y) + 1e-12)))
        agree += int(ref.argmax() == y.argmax())
    return {"model": name, "cos_mean": float(np.mean(cos)), "cos_min": float(np.min(cos)),
            "top1_agree": agree / n_eval}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--eval", type=int, default=32)
    ap.add_argument("--models", nargs="*", help="zoo names (default: all bench models)")
    args = ap.parse_args()
    print(f"| model | cosine mean | cosine min | top-1 agreement ({args.eval} inputs) |")
    print("|---|---|---|---|")
    for name, ov in BENCH_MODELS:
        if args.models and name not in args.models:
            continue
        r = fidelity(name, ov, args.calib, args.eval)
        print(f"| {name} | {r['cos_mean']:.4f} | {r['cos_min']:.4f} | {100 * r['top1_agree']:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
