"""Train DHVT, CrossViT and the MCUNet-style net on Fashion-MNIST (3x32x32) on CPU; ship them to mcuc/zoo/data/.

Each model trains for a wall-clock budget (the learning-rate schedule follows elapsed time, as in
bench/train_demo.py), is evaluated in float on the full 10,000-image test set (PyTorch and onnxruntime), and is
written as `<name>_fmnist.onnx` + `<name>_fmnist.json`. All models share the demo's calibration file: the same
64 training images, held out of training. `--int8` also compiles each file with mcuc and measures int8 accuracy
(see `int8_accuracy`).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.train_demo import FASHION_MNIST_JSON, accuracy, augment, onnx_accuracy
from mcuc.zoo import DATA_DIR, DEMO_CALIB, DEMO_JSON, DEMO_ONNX, build, load_fashion_mnist
from mcuc.zoo.export import export_onnx, op_types


@dataclass(frozen=True)
class Recipe:
    """Zoo model and optimiser settings for one trained file."""

    zoo_name: str
    lr: float
    batch: int
    weight_decay: float
    grad_clip: float | None = 1.0  # max global gradient norm


# Transformers: smaller batches and AdamW with decoupled weight decay 0.05, the usual ViT recipe; with
# under an epoch of CPU time, more updates per image matter more than batch efficiency.
RECIPES: dict[str, Recipe] = {
    "dhvt": Recipe("dhvt", lr=2e-3, batch=64, weight_decay=0.05),
    "crossvit": Recipe("crossvit", lr=2e-3, batch=64, weight_decay=0.05),
    "mcunet": Recipe("mcunet-tiny", lr=6e-3, batch=256, weight_decay=1e-4, grad_clip=None),  # = train_demo.py
}


def trained_paths(name: str, data_dir: Path = DATA_DIR) -> tuple[Path, Path]:
    """(ONNX, JSON) of a shipped trained model, e.g. mcuc/zoo/data/dhvt_fmnist.onnx."""
    return data_dir / f"{name}_fmnist.onnx", data_dir / f"{name}_fmnist.json"


def split_calibration(train_x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration indices, fit indices): the first 64 of a seeded permutation, as bench/train_demo.py does."""
    perm = np.random.default_rng(seed).permutation(len(train_x))
    return perm[:64], perm[64:]


def train(model: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor, recipe: Recipe, budget: float,
          max_epochs: int, seed: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """AdamW with linear warm-up (5 % of the budget) and cosine decay to zero at the end of the budget.

    `xs` holds one grey channel; it is expanded to the model's 3 identical channels per batch.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(xs) // recipe.batch
    start = time.time()
    steps, done = 0, False
    for epoch in range(max_epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(xs), generator=gen)
        total, step = 0.0, 0
        for step in range(steps_per_epoch):
            progress = (time.time() - start) / budget
            if progress >= 1.0:
                done = True
                break
            lr = recipe.lr * (progress / 0.05 if progress < 0.05
                              else 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95)))
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[step * recipe.batch:(step + 1) * recipe.batch]
            xb = augment(xs[idx], gen, 0).expand(-1, 3, -1, -1)
            loss = F.cross_entropy(model(xb), ys[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            opt.step()
            total += float(loss.detach())
            steps += 1
            if steps % 50 == 0:
                log(f"  step {steps} loss {total / (step + 1):.4f} lr {lr:.2e} {time.time() - start:.0f}s")
        log(f"epoch {epoch + 1} loss {total / max(step, 1):.4f} {time.time() - t0:.0f}s, {steps} steps")
        if done:
            break
    model.eval()
    return {"steps": steps, "epochs": round(steps / steps_per_epoch, 3), "batch": recipe.batch,
            "images_seen": steps * recipe.batch, "seconds": round(time.time() - start, 1)}


def int8_accuracy(onnx_path: Path, calib: Path, images: np.ndarray, labels: np.ndarray,
                  backend: str = "host", calib_samples: int = 64) -> dict[str, Any]:
    """Compile `onnx_path` with mcuc (int8, calibrated on `calib`) and measure top-1 on `images`.

    backend "host" builds the generated C for this machine and runs every image through it (bit-exact with the
    reference, which `mcuc verify` checks); "ref" runs mcuc's numpy int8 reference instead (slower). Returns
    the accuracy, the agreement with onnxruntime's float predictions, and the compile time.
    """
    import onnxruntime as ort

    from mcuc.compiler import CompileOptions, compile_model
    from mcuc.model_io import dequantize_output, quantize_input, to_graph_layout

    t0 = time.perf_counter()
    compiled = compile_model(str(onnx_path), CompileOptions(calib=str(calib), calib_samples=calib_samples),
                             progress=lambda m: None)
    compile_s = time.perf_counter() - t0
    g = compiled.graph
    gi, go = g.inputs[0], g.outputs[0]
    q = quantize_input(g, gi, to_graph_layout(g, gi, images))
    if backend == "host":
        from mcuc.project import write_project
        from mcuc.runner import run_samples

        with tempfile.TemporaryDirectory() as td:
            out = write_project(compiled, str(Path(td) / "model"))
            yq = run_samples(Path(out), g, {gi: q}, "host", sanitize=False)[go]
    elif backend == "ref":
        from mcuc.execute import run_int8

        yq = np.stack([run_int8(g, {gi: q[i:i + 1]})[go][0] for i in range(len(q))])
    else:
        raise ValueError(f"unknown int8 backend {backend!r}: use host or ref")
    int8_pred = dequantize_output(g, go, yq).reshape(len(images), -1).argmax(axis=1)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    float_pred = np.array([int(sess.run(None, {name: images[i:i + 1]})[0].argmax()) for i in range(len(images))])
    return {"int8_test_accuracy": round(float(np.mean(int8_pred == labels)), 4),
            "float_test_accuracy": round(float(np.mean(float_pred == labels)), 4),
            "agreement": round(float(np.mean(int8_pred == float_pred)), 4),
            "test_samples": len(images), "backend": backend, "compile_seconds": round(compile_s, 1)}


def metadata(name: str, recipe: Recipe, input_shape: tuple[int, ...], opset: int, params: int, float_acc: float,
             onnx_acc: float, ops: dict[str, int], run: dict[str, Any], args: argparse.Namespace,
             test_samples: int, calib_count: int) -> dict[str, Any]:
    """The shipped JSON, in the layout of demo_fmnist.json plus model size and op histogram."""
    return {
        "model": recipe.zoo_name,
        "onnx": f"{name}_fmnist.onnx",
        "opset": opset,
        "parameters": params,
        "input_name": "input",
        "output_name": "output",
        "input_shape": list(input_shape),
        "layout": "NCHW",
        **FASHION_MNIST_JSON,
        "float_test_accuracy": round(float_acc, 4),
        "onnxruntime_test_accuracy": round(onnx_acc, 4),
        "test_samples": test_samples,
        "onnx_ops": ops,
        "training": {**run, "optimizer": "AdamW, warm-up + cosine over a wall-clock budget",
                     "max_lr": recipe.lr, "weight_decay": recipe.weight_decay, "label_smoothing": 0.05,
                     "grad_clip_norm": recipe.grad_clip, "seed": args.seed, "augmentation": "horizontal flip",
                     "budget_seconds": args.budget, "hardware": f"{args.threads} CPU threads (shared machine)"},
        "calibration": {"file": DEMO_CALIB.name, "count": calib_count,
                        "source": "training-set images held out of training"},
    }


def ship_demo_as_mcunet(onnx_path: Path, json_path: Path) -> None:
    """Copy the demo model and extend its JSON with the fields the other trained files carry."""
    shutil.copyfile(DEMO_ONNX, onnx_path)
    meta = json.loads(DEMO_JSON.read_text())
    model, _ = build(meta["model"])
    meta["onnx"] = onnx_path.name
    meta["parameters"] = sum(p.numel() for p in model.parameters())
    meta["onnx_ops"] = dict(sorted(op_types(onnx_path).items()))
    meta["training"]["script"] = "bench/train_demo.py (shipped by bench/train.py --reuse-demo)"
    json_path.write_text(json.dumps(meta, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=list(RECIPES), choices=list(RECIPES),
                        help="which models to train (default: all)")
    parser.add_argument("--budget", type=float, default=480.0, help="training seconds per model (default 480)")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--reuse-demo", action="store_true",
                        help="mcunet: ship the demo model (bench/train_demo.py: same net, data, optimiser and "
                             "schedule) as mcunet_fmnist.onnx instead of training it again")
    parser.add_argument("--int8", choices=["host", "ref"], help="also measure int8 accuracy with this backend")
    parser.add_argument("--int8-only", action="store_true", help="skip training; evaluate the shipped files")
    parser.add_argument("--int8-samples", type=int, default=10000, help="test images for the int8 evaluation")
    parser.add_argument("--test-samples", type=int, default=10000,
                        help="test images for the float evaluation (fewer only for a quick trial run)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    test_x, test_y = test_x[:args.test_samples], test_y[:args.test_samples]
    calib_idx, fit_idx = split_calibration(train_x, args.seed)
    calib = train_x[calib_idx].astype(np.float32)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    calib_path = out / DEMO_CALIB.name
    if not calib_path.exists() or not np.array_equal(np.load(calib_path), calib):
        np.save(calib_path, calib)
    xs = torch.from_numpy(train_x[fit_idx][:, :1].copy())  # grey; the 3 channels are identical
    ys = torch.from_numpy(train_y[fit_idx])

    for name in args.models:
        onnx_path, json_path = trained_paths(name, out)
        if name == "mcunet" and args.reuse_demo and not args.int8_only:
            ship_demo_as_mcunet(onnx_path, json_path)
            print(f"mcunet: copied {DEMO_ONNX.name} to {onnx_path}", flush=True)
        elif not args.int8_only:
            recipe = RECIPES[name]
            print(f"== {name} ({recipe.zoo_name}), budget {args.budget:.0f}s", flush=True)
            model, input_shape = build(recipe.zoo_name, seed=args.seed)
            params = sum(p.numel() for p in model.parameters())
            run = train(model, xs, ys, recipe, args.budget, args.max_epochs, args.seed,
                        log=lambda m: print(m, flush=True))
            float_acc = accuracy(model, test_x, test_y)
            export_onnx(model, input_shape, onnx_path)
            onnx_acc = onnx_accuracy(onnx_path, test_x, test_y)
            ops = dict(sorted(op_types(onnx_path).items()))
            opset = int(getattr(model, "onnx_opset", 13))
            meta = metadata(name, recipe, input_shape, opset, params, float_acc, onnx_acc, ops, run, args,
                            len(test_x), len(calib))
            json_path.write_text(json.dumps(meta, indent=2) + "\n")
            print(f"{name}: float {float_acc:.4f}, onnxruntime {onnx_acc:.4f}, {run['steps']} steps, "
                  f"{run['seconds']:.0f}s; wrote {onnx_path} ({onnx_path.stat().st_size} bytes)", flush=True)
        if args.int8:
            n = args.int8_samples
            result = int8_accuracy(onnx_path, calib_path, test_x[:n], test_y[:n], backend=args.int8)
            print(f"{name}: int8 {json.dumps(result)}", flush=True)
            if n == len(test_x):
                meta = json.loads(json_path.read_text())
                meta["int8"] = result
                json_path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
