"""Camera input: a compiled model that takes the raw uint8 image, its normalisation folded into the int8 graph.

The float model was trained on ``x_c = (p / 255 - mean_c) / std_c`` of uint8 pixels ``p``. With
``--input-format uint8-rgb|uint8-gray`` that normalisation never runs in float on the MCU. It is folded, in
the first of these ways that is exact:

- ``quantization``: one mean and one std for every channel, with ``255 * mean`` a whole number (0, 128/255,
  ...). The int8 input's own parameters carry the normalisation: scale ``1 / (255 std)``, zero point
  ``255 mean - 128``, so ``q = p - 128`` represents x exactly and no pixel level is lost.
- ``first-layer``: every consumer of the input is a dense convolution, and either none of them pads or all
  channels share one mean on the 1/255 grid (so the padded zeros of x stay zeros). The per-channel scale
  ``1 / std_c`` (and, without padding, the shift) is folded into those convolutions' float weights and biases,
  which is exact in float, before quantization; the input is ``q = p - 128`` at scale 1/255.
- ``table``: otherwise. ``q = quantize(normalise(p))`` with the int8 parameters covering every normalised
  value, per channel: exactly what normalising in float and then quantizing gives.

In every mode the model's first op, ``pixels``, reads the image and writes the int8 input through a table of
``channels x 256`` entries (``p - 128`` in the first two modes), in place when the image is interleaved
(HWC); a planar (CHW) image is reordered to the graph's NHWC on the way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mcuc.errors import MCUCError
from mcuc.ir import Graph, Node, QuantParams, Tensor
from mcuc.quant import choose_qparams, quantize_array

INPUT_FORMATS = ("float", "uint8-rgb", "uint8-gray")
INPUT_LAYOUTS = ("hwc", "chw")
PIXEL_OPS = ("pixels", "pixels_planar")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm")
_GRID_TOL = 1e-6  # how close 255 * mean must be to a whole number to count as on the grid


@dataclass(frozen=True)
class PixelFormat:
    """What the camera delivers: uint8 RGB or grey pixels, interleaved (hwc) or planar (chw), and the
    per-channel normalisation the model was trained with."""

    kind: str  # "uint8-rgb" | "uint8-gray"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "hwc"

    @property
    def channels(self) -> int:
        return 3 if self.kind == "uint8-rgb" else 1

    @property
    def channel_names(self) -> str:
        return "R, G, B" if self.kind == "uint8-rgb" else "grey"


def pixel_format(kind: str, mean: list[float] | None, std: list[float] | None,
                 layout: str | None) -> PixelFormat | None:
    """The checked camera format of the compile options (None for ``--input-format float``)."""
    if kind not in INPUT_FORMATS:
        raise MCUCError(f"unknown input format '{kind}': use {', '.join(INPUT_FORMATS)}")
    if kind == "float":
        if layout is not None:
            raise MCUCError("--input-layout describes a camera image: use it with --input-format uint8-rgb or "
                            "uint8-gray")
        return None
    if layout is not None and layout not in INPUT_LAYOUTS:
        raise MCUCError(f"unknown input layout '{layout}': use hwc (interleaved) or chw (planar)")
    c = 3 if kind == "uint8-rgb" else 1
    values = {}
    for name, given, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        v = list(given) if given else [default]
        if len(v) == 1:
            v = v * c
        if len(v) != c:
            raise MCUCError(f"--{name} needs 1 or {c} values for {kind}, got {len(v)}")
        values[name] = tuple(float(a) for a in v)
    if any(s <= 0 for s in values["std"]):
        raise MCUCError(f"--std must be positive, got {', '.join(map(str, values['std']))}")
    return PixelFormat(kind, values["mean"], values["std"], layout or "hwc")


@dataclass
class PixelPlan:
    """How the normalisation is folded: the (possibly rewritten) float graph, the int8 parameters of its input,
    and ``values[c, p]``, the float the graph's input takes for pixel value ``p`` on channel ``c``."""

    fmt: PixelFormat
    mode: str  # "quantization" | "first-layer" | "table"
    graph: Graph  # float NHWC graph whose input takes ``values``
    input_name: str
    quant: QuantParams
    values: np.ndarray  # (channels, 256) float64

    def table(self) -> np.ndarray:
        """The pixel op's int8 table, (channels, 256): quantize(values) with the input's parameters."""
        return quantize_array(self.values, self.quant.s, self.quant.zp)

    def float_input(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W, C) -> the float graph's input values (N, H, W, C)."""
        p = np.asarray(pixels, dtype=np.uint8)
        return np.stack([self.values[c][p[..., c]] for c in range(p.shape[-1])], axis=-1).astype(np.float32)

    def describe(self) -> str:
        s, zp = self.quant.s, self.quant.zp
        return {"quantization": f"folded into the input quantization (scale {s:.9g}, zero point {zp}): "
                                "the int8 input is p - 128, exact",
                "first-layer": "folded into the first layer's weights and bias (exact in float), the int8 input is "
                               f"p - 128 (scale {s:.9g}, zero point {zp})",
                "table": f"one integer table per channel: q = quantize((p/255 - mean)/std) with scale {s:.9g}, "
                         f"zero point {zp}, exactly as normalising in float and then quantizing"}[self.mode]

    def meta(self) -> dict:
        return {"format": self.fmt.kind, "layout": self.fmt.layout, "channels": self.fmt.channel_names,
                "mean": list(self.fmt.mean), "std": list(self.fmt.std), "mode": self.mode,
                "input": self.input_name, "scale": self.quant.s, "zero_point": self.quant.zp,
                "description": self.describe()}


def _normalised(fmt: PixelFormat) -> np.ndarray:
    p = np.arange(256, dtype=np.float64)
    return np.stack([(p / 255.0 - m) / s for m, s in zip(fmt.mean, fmt.std, strict=True)])


def _on_grid(v: float) -> bool:
    return abs(v - round(v)) < _GRID_TOL


def plan_pixels(fg: Graph, fmt: PixelFormat) -> PixelPlan:
    """Choose how ``fmt``'s normalisation folds into float NHWC graph ``fg`` (see the module docstring)."""
    if len(fg.inputs) != 1:
        raise MCUCError("--input-format uint8-* needs a model with one input; this one has "
                        f"{len(fg.inputs)}")
    name = fg.inputs[0]
    t = fg.tensors[name]
    if len(t.shape) != 4 or fg.layout != "NHWC" or fg.meta.get("input_layouts", {}).get(name) != "NCHW":
        raise MCUCError(f"--input-format uint8-* needs an image model (float ONNX, N x C x H x W input); input "
                        f"'{name}' has shape {t.shape}")
    if t.shape[3] != fmt.channels:
        other = "uint8-rgb" if t.shape[3] == 3 else "uint8-gray" if t.shape[3] == 1 else None
        raise MCUCError(f"--input-format {fmt.kind} gives {fmt.channels} channel(s) but the model's input has "
                        f"{t.shape[3]}" + (f": use --input-format {other}" if other else ""))
    x = _normalised(fmt)
    m, s = fmt.mean, fmt.std
    if t.quant is not None:  # a QDQ model quantizes its input itself: the table follows its parameters
        return PixelPlan(fmt, "table", fg, name, t.quant, x)
    if len(set(m)) == 1 and len(set(s)) == 1 and _on_grid(255 * m[0]):
        zp = int(round(255 * m[0])) - 128
        if -128 <= zp <= 127:
            q = QuantParams(np.array([1.0 / (255.0 * s[0])]), np.array([zp]))
            return PixelPlan(fmt, "quantization", fg, name, q, x)
    folded = _fold_first_layer(fg, name, fmt)
    if folded is not None:
        return folded
    return PixelPlan(fmt, "table", fg, name, _table_quant(x), x)


def _table_quant(x: np.ndarray) -> QuantParams:
    """int8 parameters for normalised values ``x`` (channels, 256) that keep the most distinct pixel levels.

    The calibrated choice (range / 255) can land every value on a rounding tie: mean 0.5 puts each pixel
    exactly between two int8 steps and round-half-to-even would merge them pairwise (7 bits left). Scales a
    fraction of a step around it are tried and the one keeping the most levels, then clipping the fewest,
    wins; the zero point stays a whole number, so the padding's zeros stay exact.
    """
    lo, hi = float(x.min()), float(x.max())
    best: tuple[tuple[int, int, float], float, int] | None = None
    for k in range(-8, 9):
        d = 255.0 + k / 8.0
        scale, zp = choose_qparams(lo, hi)
        scale *= 255.0 / d
        zp = int(np.clip(round(-128 - min(lo, 0.0) / scale), -128, 127))
        raw = np.rint(x / scale) + zp
        q = np.clip(raw, -128, 127)
        levels = sum(len(np.unique(row)) for row in q)
        clipped = int(np.count_nonzero(raw != q))
        key = (-levels, clipped, abs(k))
        if best is None or key < best[0]:
            best = (key, scale, zp)
    assert best is not None
    return QuantParams(np.array([best[1]]), np.array([best[2]]))


def _fold_first_layer(fg: Graph, name: str, fmt: PixelFormat) -> PixelPlan | None:
    """The plan that folds the per-channel affine into the input's convolutions, when that is exact in float."""
    users = [n for n in fg.nodes if name in n.inputs]
    for n in users:
        if (n.op != "conv2d" or n.inputs[0] != name or name in n.inputs[1:] or int(n.attrs.get("groups", 1)) != 1
                or fg.tensors[n.inputs[1]].data is None
                or (len(n.inputs) > 2 and n.inputs[2] and fg.tensors[n.inputs[2]].data is None)):
            return None
    if not users:
        return None
    m = np.array(fmt.mean)
    s = np.array(fmt.std)
    padded = any(any(int(v) for v in n.attrs.get("pads", (0, 0, 0, 0))) for n in users)
    p = np.arange(256, dtype=np.float64)
    if len(set(fmt.mean)) == 1 and _on_grid(255 * m[0]) and -128 <= round(255 * m[0]) - 128 <= 127:
        # y = p/255 - mean (zero point 255 mean - 128: the padded zeros of x are y = 0); x_c = y / std_c
        zp = int(round(255 * m[0])) - 128
        scale, shift = 1.0 / s, np.zeros_like(s)
        values = np.stack([p / 255.0 - m[0]] * len(s))
    elif not padded:
        # y = (p - 128)/255 (zero point 0); x_c = y / std_c + (128/255 - mean_c) / std_c
        zp = 0
        scale, shift = 1.0 / s, (128.0 / 255.0 - m) / s
        values = np.stack([(p - 128.0) / 255.0] * len(s))
    else:
        return None
    g = copy.deepcopy(fg)
    for n in users:
        w = g.tensors[n.inputs[1]]
        assert w.data is not None
        w64 = w.data.astype(np.float64)  # OHWI after the layout pass: input channels last
        bias = np.einsum("ohwi,i->o", w64, shift)
        w.data = (w64 * scale).astype(w.data.dtype)
        if len(n.inputs) > 2 and n.inputs[2]:
            b = g.tensors[n.inputs[2]]
            assert b.data is not None
            b.data = (b.data.astype(np.float64) + bias).astype(b.data.dtype)
        elif np.any(bias):
            n.inputs = [*n.inputs[:2], g.const(n.name + "_pixel_bias", bias.astype(np.float32))]
    q = QuantParams(np.array([1.0 / 255.0]), np.array([zp]))
    return PixelPlan(fmt, "first-layer", g, name, q, values)


def add_pixel_input(qg: Graph, plan: PixelPlan) -> Graph:
    """Int8 graph ``qg`` with a uint8 image input and the pixel op in front of its old input."""
    x = plan.input_name
    _, h, w, c = qg.tensors[x].shape
    planar = plan.fmt.layout == "chw"
    out = copy.copy(qg)
    out.tensors = dict(qg.tensors)
    out.meta = dict(qg.meta)
    name = out.unique_name("pixels")
    out.add_tensor(Tensor(name, (1, c, h, w) if planar else (1, h, w, c), "uint8"))
    table = out.const(name + "_table", plan.table().reshape(-1))
    node = Node("pixels_planar" if planar else "pixels", name, [name, table], [x], {"channels": int(c)})
    out.nodes = [node, *qg.nodes]
    out.inputs = [name if i == x else i for i in qg.inputs]
    out.meta["input_layouts"] = {**qg.meta.get("input_layouts", {}), name: plan.fmt.layout.upper()}
    out.meta["pixel_input"] = plan.meta()
    return out


def load_images(path: str, fmt: PixelFormat, height: int, width: int) -> np.ndarray:
    """An image file, a folder of images or an .npy uint8 batch as uint8 (N, H, W, C), resized bilinearly
    to height x width when they differ (the camera's own images need no resizing)."""
    p = Path(path)
    if not p.exists():
        raise MCUCError(f"'{path}' does not exist: pass an image, a folder of images or a uint8 .npy batch")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:
            raise MCUCError(f"cannot read '{path}' as .npy ({e.__class__.__name__})") from e
        if arr.dtype != np.uint8:
            raise MCUCError(f"'{path}' holds {arr.dtype} values; a model compiled with --input-format {fmt.kind} "
                            "takes uint8 pixels (0..255)")
        return arr
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    if not files or files[0].suffix.lower() not in IMAGE_SUFFIXES:
        raise MCUCError(f"'{path}' has no images ({', '.join(IMAGE_SUFFIXES)}) and is not an .npy batch")
    out = []
    for f in files:
        try:
            img = Image.open(f).convert("RGB" if fmt.channels == 3 else "L")
        except Exception as e:
            raise MCUCError(f"cannot read image '{f}' ({e.__class__.__name__})") from e
        if img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
        out.append(a[..., None] if a.ndim == 2 else a)
    return np.stack(out)


def to_camera_layout(images_hwc: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """uint8 (N, H, W, C) images in the layout the compiled model's input takes (N, H, W, C) or (N, C, H, W)."""
    return np.ascontiguousarray(images_hwc.transpose(0, 3, 1, 2) if fmt.layout == "chw" else images_hwc)
