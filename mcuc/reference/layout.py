"""Integer-exact int8 data-movement ops (concat, pad, transpose): prepare + numpy reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.reference.elementwise import prepare_requantize, requantize_values


@dataclass(frozen=True)
class ConcatInput:
    """mcuc_concat_input_params_t: an input viewed as [outer, inner], copied or requantized (as
    mcuc_requantize_s8 with in_zp, out_zp, mult, shift)."""

    inner: int
    rescale: bool
    in_zp: int
    out_zp: int
    mult: int
    shift: int


@dataclass(frozen=True)
class ConcatParams:
    """mcuc_concat_params_t."""

    outer: int
    inputs: tuple[ConcatInput, ...]
    out_shape: tuple[int, ...]
    axis: int


def prepare_concat(shapes: list[tuple[int, ...]], axis: int, in_quant: list[tuple[float, int]],
                   out_quant: tuple[float, int]) -> ConcatParams:
    """Concat along ``axis``; inputs whose (scale, zp) differ from the output's are requantized."""
    if not shapes or len(shapes) != len(in_quant):
        raise ValueError("concat needs one (scale, zp) per input")
    rank = len(shapes[0])
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or rank > 4:
        raise ValueError(f"bad concat axis {axis} for rank {rank}")
    for s in shapes:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise ValueError(f"concat shapes {shapes} differ off axis {axis}")
    outer = int(np.prod(shapes[0][:axis], dtype=np.int64))
    s_out, zp_out = out_quant
    inputs = []
    for shape, (s_in, zp_in) in zip(shapes, in_quant, strict=True):
        inner = int(np.prod(shape[axis:], dtype=np.int64))
        if s_in == s_out and zp_in == zp_out:
            inputs.append(ConcatInput(inner, False, zp_in, zp_out, 0, 0))
        else:
            rq = prepare_requantize((inner,), s_in, zp_in, s_out, zp_out)
            inputs.append(ConcatInput(inner, True, rq.in_zp, rq.out_zp, rq.mult, rq.shift))
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    return ConcatParams(outer, tuple(inputs), tuple(out_shape), axis)


def concat_s8(params: ConcatParams, inputs: list[np.ndarray]) -> np.ndarray:
    """mcuc_concat_s8."""
    parts = [requantize_values(x, ci.in_zp, ci.out_zp, ci.mult, ci.shift) if ci.rescale else x.astype(np.int8)
             for x, ci in zip(inputs, params.inputs, strict=True)]
    return np.concatenate(parts, axis=params.axis)


@dataclass(frozen=True)
class PadParams:
    """mcuc_pad_params_t."""

    in_dims: tuple[int, int, int, int]
    out_dims: tuple[int, int, int, int]
    pad_before: tuple[int, int, int, int]
    pad_value: int


def prepare_pad(shape: tuple[int, ...], pads: list[tuple[int, int]], pad_value: int) -> PadParams:
    """Constant pad; ``pads`` has (before, after) >= 0 per axis, ``pad_value`` is the int8 zero point."""
    if len(pads) != len(shape) or len(shape) > 4:
        raise ValueError(f"pad needs one (before, after) per axis of a rank <= 4 shape, got {pads}")
    if any(b < 0 or a < 0 for b, a in pads) or not -128 <= pad_value <= 127:
        raise ValueError(f"bad pads {pads} or pad value {pad_value}")
    lead = 4 - len(shape)
    ind = (1,) * lead + tuple(int(d) for d in shape)
    before = (0,) * lead + tuple(int(b) for b, _ in pads)
    after = (0,) * lead + tuple(int(a) for _, a in pads)
    outd = tuple(ind[k] + before[k] + after[k] for k in range(4))
    return PadParams((ind[0], ind[1], ind[2], ind[3]), (outd[0], outd[1], outd[2], outd[3]),
                     (before[0], before[1], before[2], before[3]), int(pad_value))


def pad_s8(params: PadParams, x: np.ndarray) -> np.ndarray:
    """mcuc_pad_s8 (the result has the input's rank)."""
    p = params
    lead = 4 - x.ndim
    widths = [(b, o - i - b) for b, o, i in zip(p.pad_before, p.out_dims, p.in_dims, strict=True)][lead:]
    return np.pad(x, widths, constant_values=np.int8(p.pad_value))


@dataclass(frozen=True)
class TransposeParams:
    """mcuc_transpose_params_t; perm is kept for the reference."""

    out_dims: tuple[int, int, int, int]
    in_strides: tuple[int, int, int, int]
    perm: tuple[int, ...]


def prepare_transpose(shape: tuple[int, ...], perm: tuple[int, ...]) -> TransposeParams:
    """out[i0..i3] = in[...] with out axis k = input axis perm[k] (numpy semantics)."""
    rank = len(shape)
    if rank > 4 or sorted(perm) != list(range(rank)):
        raise ValueError(f"bad transpose perm {perm} for shape {shape}")
    strides = [0] * rank
    step = 1
    for ax in range(rank - 1, -1, -1):
        strides[ax] = step
        step *= int(shape[ax])
    lead = 4 - rank
    out = (1,) * lead + tuple(int(shape[a]) for a in perm)
    ins = (0,) * lead + tuple(strides[a] for a in perm)
    return TransposeParams((out[0], out[1], out[2], out[3]), (ins[0], ins[1], ins[2], ins[3]), tuple(perm))


def transpose_s8(params: TransposeParams, x: np.ndarray) -> np.ndarray:
    """mcuc_transpose_s8."""
    return np.ascontiguousarray(np.transpose(x, params.perm))
