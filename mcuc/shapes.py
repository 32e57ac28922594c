"""Shape arithmetic shared by the op rules and the kernel references: windows, broadcasting, 4-D layouts."""
from __future__ import annotations

import numpy as np

from mcuc.errors import MCUCError

TO_NHWC = (0, 2, 3, 1)  # NHWC axis i holds NCHW axis TO_NHWC[i]
TO_NCHW = (0, 3, 1, 2)
NCHW_AXIS_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}


def conv_out_dim(size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dil: int = 1) -> int:
    """Output length of a window of ``k`` taps (dilation ``dil``) sliding by ``stride`` over a padded axis."""
    if min(k, stride, dil) < 1 or min(pad_lo, pad_hi) < 0:
        raise MCUCError(f"bad window: kernel {k}, stride {stride}, dilation {dil}, pads {pad_lo},{pad_hi}")
    eff = dil * (k - 1) + 1
    out = (size + pad_lo + pad_hi - eff) // stride + 1
    if out <= 0:
        raise MCUCError(f"window {k} (dilation {dil}) does not fit input {size} with pads {pad_lo},{pad_hi}")
    return out


def spatial_axes(layout: str) -> tuple[int, int, int]:
    """(channel axis, H axis, W axis) of a 4-D activation."""
    return (1, 2, 3) if layout == "NCHW" else (3, 1, 2)


def make_4d(layout: str, n: int, c: int, h: int, w: int) -> tuple[int, ...]:
    return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(a, b))
    except ValueError as e:
        raise MCUCError(f"shapes {a} and {b} do not broadcast") from e
