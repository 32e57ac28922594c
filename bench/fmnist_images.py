"""Write Fashion-MNIST pictures as a camera would deliver them: 32x32 RGB PNGs (grey repeated), for the README's
camera-input example. OUT/calib/ holds training images (for --calib), OUT/test/ test images with their labels
in OUT/test-labels.npy (files sorted by name follow the label order)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from mcuc.zoo import FASHION_MNIST_DIR, read_idx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--calib", type=int, default=64, help="training images for calibration")
    ap.add_argument("--test", type=int, default=1000, help="test images")
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    for split, prefix, count in (("calib", "train", args.calib), ("test", "t10k", args.test)):
        images = read_idx(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")
        # calibration pictures from the training split, test pictures from the test split
        idx = range(len(images) - count, len(images)) if split == "calib" else range(count)
        d = args.out / split
        d.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(idx):
            img = Image.fromarray(images[i]).resize((args.size, args.size), Image.Resampling.BILINEAR)
            img.convert("RGB").save(d / f"{k:05d}.png")
        if split == "test":
            np.save(args.out / "test-labels.npy", labels[list(idx)].astype(np.int64))
        print(f"wrote {count} {args.size}x{args.size} RGB PNGs to {d}")


if __name__ == "__main__":
    main()
