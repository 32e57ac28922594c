"""Train the Fashion-MNIST demo model (mcunet-tiny, 3x32x32) on CPU and ship it to mcuc/zoo/data/."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from mcuc.zoo import (
    DEMO_CALIB,
    DEMO_JSON,
    DEMO_ONNX,
    DEMO_SAMPLES,
    FASHION_MNIST_CLASSES,
    build,
    load_fashion_mnist,
)
from mcuc.zoo.export import export_onnx, op_types

# What every shipped Fashion-MNIST model's JSON says about its data and input preprocessing.
FASHION_MNIST_JSON = {
    "dataset": "Fashion-MNIST (Debian package dataset-fashion-mnist)",
    "preprocessing": {
        "source": "uint8 28x28 greyscale",
        "scale": "x / 255",
        "resize": {"size": [32, 32], "mode": "bilinear", "align_corners": False,
                   "implementation": "torch.nn.functional.interpolate"},
        "channels": "grey repeated to 3 identical channels",
        "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "function": "mcuc.zoo.preprocess_fashion_mnist",
    },
    "classes": list(FASHION_MNIST_CLASSES),
}

def augment(x: torch.Tensor, gen: torch.Generator, shift: int) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to `shift` pixels (replicate padding)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift == 0:
        return x
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=gen))
    return padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(torch.from_numpy(images[i:i + batch]))
        correct += int((logits.argmax(1).numpy() == labels[i:i + batch]).sum())
    return correct / len(images)


def onnx_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    preds = [int(session.run(None, {name: images[i:i + 1]})[0].argmax()) for i in range(len(images))]
    return float(np.mean(np.asarray(preds) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=540.0,
                        help="training seconds; the learning-rate schedule follows elapsed time")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--shift", type=int, default=0, help="random-shift augmentation in pixels")
    parser.add_argument("--lr", type=float, default=6e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=DEMO_ONNX.parent)
    args = parser.parse_args()

    torch.set_num_threads(2)
    start = time.time()
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    rng = np.random.default_rng(args.seed)
    # Calibration images come from the training set and are held out of training.
    perm = rng.permutation(len(train_x))
    calib_idx, fit_idx = perm[:64], perm[64:]
    calib = train_x[calib_idx]
    xs = torch.from_numpy(train_x[fit_idx][:, :1].copy())  # grey; the 3 channels are identical
    ys = torch.from_numpy(train_y[fit_idx])

    model, input_shape = build("mcunet-tiny", seed=args.seed)
    model.train()
    steps_per_epoch = len(xs) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(args.seed)
    # The CPU may be shared, so the schedule is a function of elapsed time rather than of the step count:
    # linear warm-up over the first 5 % of the budget, then cosine decay to zero at the end of it.
    train_start = time.time()
    steps = 0
    done = False
    for epoch in range(args.max_epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(xs), generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            progress = (time.time() - train_start) / args.budget
            if progress >= 1.0:
                done = True
                break
            lr = args.lr * (progress / 0.05 if progress < 0.05
                            else 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95)))
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[step * args.batch:(step + 1) * args.batch]
            xb = augment(xs[idx], gen, args.shift).expand(-1, 3, -1, -1)
            loss = F.cross_entropy(model(xb), ys[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        print(f"epoch {epoch + 1} loss {total / max(step, 1):.4f} {time.time() - t0:.0f}s, {steps} steps",
              flush=True)
        if done:
            break
    train_seconds = time.time() - start
    model.eval()
    float_acc = accuracy(model, test_x, test_y)
    print(f"float test accuracy {float_acc:.4f} after {train_seconds:.0f}s")

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, input_shape, out / DEMO_ONNX.name)
    onnx_acc = onnx_accuracy(onnx_path, test_x, test_y)
    print(f"onnxruntime test accuracy {onnx_acc:.4f}; ops {op_types(onnx_path)}")
    np.save(out / DEMO_CALIB.name, calib.astype(np.float32))
    sample_idx = np.random.default_rng(args.seed + 1).choice(len(test_x), 32, replace=False)
    np.savez(out / DEMO_SAMPLES.name, images=test_x[sample_idx], labels=test_y[sample_idx])
    meta = {
        "model": "mcunet-tiny",
        "onnx": DEMO_ONNX.name,
        "opset": 13,
        "input_name": "input",
        "output_name": "output",
        "input_shape": list(input_shape),
        "layout": "NCHW",
        **FASHION_MNIST_JSON,
        "float_test_accuracy": round(float_acc, 4),
        "onnxruntime_test_accuracy": round(onnx_acc, 4),
        "test_samples": len(test_x),
        "training": {"steps": steps, "epochs": round(steps / steps_per_epoch, 2), "batch": args.batch,
                     "optimizer": "AdamW, warm-up + cosine over a wall-clock budget",
                     "max_lr": args.lr, "label_smoothing": 0.05, "seed": args.seed,
                     "augmentation": f"horizontal flip, shift up to {args.shift} px",
                     "train_images": len(xs), "seconds": round(train_seconds, 1),
                     "hardware": "2 CPU threads"},
        "calibration": {"file": DEMO_CALIB.name, "count": len(calib),
                        "source": "training-set images held out of training"},
        "samples": {"file": DEMO_SAMPLES.name, "count": 32, "source": "test set"},
    }
    (out / DEMO_JSON.name).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and metadata")


if __name__ == "__main__":
    main()
