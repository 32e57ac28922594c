"""Calibration data: a user .npy batch, a folder of images, or a synthetic fallback (with a warning)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mcuc.errors import MCUCError
from mcuc.pixels import PixelFormat, load_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm")


def load_calibration(path: str | None, input_shape: tuple[int, ...], *, mean: list[float] | None = None,
                     std: list[float] | None = None, samples: int = 8, seed: int = 0,
                     warn=lambda msg: print(msg, file=sys.stderr), unscaled: list[str] | None = None) -> np.ndarray:
    """Return a float32 batch in the model's source layout (NCHW for ONNX) of shape (N, *input_shape[1:]).

    ``unscaled`` names the activations of a QDQ model without a scale of their own, the only ones synthetic data
    would calibrate (None: a float model, all of them)."""
    sample_shape = tuple(input_shape[1:])
    if path is None:
        n = 0 if unscaled is None else len(unscaled)
        which = "" if unscaled is None else (
            f" the {n} activation{'s' if n != 1 else ''} without a Q/DQ scale in the model (e.g. '{unscaled[0]}')")
        warn(f"warning: no --calib data given; calibrating{which} on synthetic N(0,1) inputs. "
             "int8 accuracy will be poor: pass --calib FILE.npy or an image folder")
        rng = np.random.default_rng(seed)
        return rng.standard_normal((samples, *sample_shape)).astype(np.float32)
    p = Path(path)
    if not p.exists():
        raise MCUCError(f"calibration data '{path}' does not exist: pass an .npy batch or an image folder")
    if p.is_dir():
        return _load_image_folder(p, sample_shape, mean, std)
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise MCUCError(f"cannot read calibration file '{path}' as .npy ({e.__class__.__name__})") from e
    if arr.dtype.kind not in "biuf":
        raise MCUCError(f"calibration file '{path}' holds {arr.dtype} values; it needs real numbers (float32)")
    arr = np.asarray(arr, dtype=np.float32)
    if tuple(arr.shape[1:]) != sample_shape:
        if tuple(arr.shape) == sample_shape:
            arr = arr[None]
        else:
            raise MCUCError(f"calibration batch has shape {arr.shape}; the model wants (N, "
                            f"{', '.join(map(str, sample_shape))})")
    if arr.shape[0] == 0:
        raise MCUCError(f"calibration file '{path}' holds no samples")
    if not np.all(np.isfinite(arr)):
        raise MCUCError(f"calibration file '{path}' holds NaN or infinite values")
    return arr


def _load_image_folder(folder: Path, sample_shape: tuple[int, ...], mean, std) -> np.ndarray:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MCUCError(f"calibration folder '{folder}' has no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(sample_shape) != 3:
        raise MCUCError(f"image calibration needs a model with a C x H x W input, not {sample_shape}")
    c, h, w = sample_shape
    mean_a = np.array(mean if mean else [0.0] * c, dtype=np.float32).reshape(-1, 1, 1)
    std_a = np.array(std if std else [1.0] * c, dtype=np.float32).reshape(-1, 1, 1)
    if mean_a.shape[0] not in (1, c) or std_a.shape[0] not in (1, c):
        raise MCUCError(f"--mean/--std need 1 or {c} values")
    out = []
    for f in files:
        img = Image.open(f).convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float32) / 255.0
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        out.append((a - mean_a) / std_a)
    return np.stack(out).astype(np.float32)


def load_pixel_calibration(path: str | None, fmt: PixelFormat, height: int, width: int, *, samples: int = 8,
                           seed: int = 0, warn=lambda msg: print(msg, file=sys.stderr)) -> np.ndarray:
    """Calibration images of a camera-input model as uint8 (N, H, W, C): a folder of images, one image, or a uint8
    .npy batch in the camera layout (``fmt.layout``); without data, seeded uniform random pixels (with a warning)."""
    c = fmt.channels
    if path is None:
        warn("warning: no --calib images given; calibrating on random pixels. int8 accuracy will be poor: "
             "pass --calib DIR with images like the camera's")
        return np.random.default_rng(seed).integers(0, 256, size=(samples, height, width, c), dtype=np.uint8)
    images = load_images(path, fmt, height, width)  # image files: (N, H, W, C); an .npy batch: camera layout
    planar = Path(path).suffix.lower() == ".npy" and fmt.layout == "chw"
    want = (c, height, width) if planar else (height, width, c)
    if images.ndim == 3 and tuple(images.shape) == want:
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != want or images.shape[0] == 0:
        raise MCUCError(f"calibration pixels have shape {images.shape}; the model wants (N, "
                        f"{', '.join(map(str, want))}) uint8 ({'chw' if planar else 'hwc'})")
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1) if planar else images)
