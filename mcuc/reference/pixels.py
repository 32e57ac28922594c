"""Integer reference of mcuc_pixels_s8: uint8 camera pixels through a per-channel table to the int8 input."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelsParams:
    """mcuc_pixels_params_t: pixels per channel, channels, and whether the image is planar (CHW)."""

    pixels: int
    channels: int
    planar: int


def pixels_s8(params: PixelsParams, table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` holds uint8 pixel values (as uint8, or int8 carrying the same bytes), (1, H, W, C) or, ``planar``,
    (1, C, H, W); returns int8 (1, H, W, C) with out[..., c] = table[256 c + p]."""
    channels = params.channels
    if table.dtype != np.int8 or table.size != 256 * channels:
        raise ValueError(f"pixel table must be int8[{256 * channels}]")
    p = np.asarray(x).astype(np.uint8).astype(np.int64)
    if params.planar:
        p = p.transpose(0, 2, 3, 1)
    return table.reshape(channels, 256)[np.arange(channels), p]
