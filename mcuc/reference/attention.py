"""Fused int8 attention computed head by head in blocks of query rows: prepare + integer-exact reference.

The unfused int8 graph computes attention as three kernels over whole tensors,

    scores = batch_matmul(q, k^T)    [B0, B1, Tq, Tk]   (alpha = 1/sqrt(d) folded into its multiplier)
    probs  = softmax(scores)         [B0, B1, Tq, Tk]   (last axis, output scale 1/probs_levels, zero point probs_zp)
    out    = batch_matmul(probs, v)  [B0, B1, Tq, dv]

so the whole score matrix of every head is live at once. Each row of ``out`` depends only on the
same row of ``scores`` and ``probs``, so mcuc_attention_blocked_s8 (mcuc/runtime_c/src/) computes, for
each head (b0, b1) and each block of R query rows, the R x Tk score rows into a scratch buffer of
R * Tk bytes, runs the softmax in place there and multiplies the R probability rows by v into the
output. Every block calls the same batch matmul and softmax kernels, with the same integer
parameters, as the unfused graph, so the result is bit-identical to it for every R; only the
memory differs (R * Tk bytes of scratch instead of two B0 * B1 * Tq * Tk tensors).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.reference.softmax import SoftmaxParams, softmax_s8
from mcuc.reference.transformer import BatchMatmulParams, batch_matmul_s8


@dataclass(frozen=True)
class AttentionParams:
    """mcuc_attention_params_t plus the softmax exp table passed alongside it."""

    scores: BatchMatmulParams  # q @ k^T over every head: batch (B0, B1), m = Tq, k = d, n = Tk
    output: BatchMatmulParams  # probs @ v: m = Tq, k = Tk, n = dv (its a_batch_strides are unused)
    block_rows: int  # R: query rows per block, 1 <= R <= Tq
    exp_table: np.ndarray  # uint32[256]: the softmax table of the scores' scale
    probs_levels: int = 256  # the probabilities' scale is 1/probs_levels (SoftmaxParams.out_levels)
    probs_zp: int = -128


def attention_scratch_bytes(tk: int, block_rows: int) -> int:
    """Bytes of scratch the kernel needs (mcuc_attention_blocked_s8_get_buffer_size): one int8 score row
    of length Tk per query row of a block."""
    return int(tk) * int(block_rows)


def prepare_attention(scores: BatchMatmulParams, softmax: SoftmaxParams, output: BatchMatmulParams,
                      block_rows: int) -> AttentionParams:
    """Check that the three prepared kernels chain into one attention and wrap them with the block size."""
    if scores.batch != output.batch or scores.m != output.m or scores.n != output.k:
        raise ValueError(f"attention: scores [{scores.batch}, {scores.m}, {scores.n}] do not chain into "
                         f"probs @ v [{output.batch}, {output.m}, {output.k}]")
    if softmax.row_size != scores.n:
        raise ValueError(f"attention: softmax row {softmax.row_size} != key count {scores.n}")
    if not 1 <= block_rows <= scores.m:
        raise ValueError(f"attention block of {block_rows} rows outside [1, {scores.m}]")
    return AttentionParams(scores, output, int(block_rows), softmax.exp_table, softmax.out_levels, softmax.out_zp)


def _heads(x: np.ndarray, batch: tuple[int, int]) -> np.ndarray:
    """``x`` [..., r, c] (rank 2..4, batch axes broadcasting) as a [B0, B1, r, c] view."""
    lead = (1,) * (4 - x.ndim) + tuple(x.shape)
    return np.broadcast_to(x.reshape(lead), (batch[0], batch[1], lead[2], lead[3]))


def attention_s8(params: AttentionParams, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """mcuc_attention_blocked_s8: out [B0, B1, Tq, dv], block by block as the C kernel runs."""
    p = params
    sp, op = p.scores, p.output
    qh, kh, vh = _heads(q, sp.batch), _heads(k, sp.batch), _heads(v, op.batch)
    out = np.empty((sp.batch[0], sp.batch[1], sp.m, op.n), np.int8)
    for i0 in range(sp.batch[0]):
        for i1 in range(sp.batch[1]):
            for r0 in range(0, sp.m, p.block_rows):
                r1 = min(r0 + p.block_rows, sp.m)
                scratch = batch_matmul_s8(sp, qh[i0, i1, r0:r1], kh[i0, i1])
                scratch = softmax_s8(SoftmaxParams(r1 - r0, sp.n, p.exp_table, p.probs_levels, p.probs_zp), scratch)
                out[i0, i1, r0:r1] = batch_matmul_s8(op, scratch, vh[i0, i1])
    return out
