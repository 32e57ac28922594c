/* mcuc_transformer.h: int8 kernels for transformer models (layernorm, batch matmul, attention, mean, slice, gather). */
#ifndef MCUC_TRANSFORMER_H
#define MCUC_TRANSFORMER_H

/*
 * Conventions as in mcuc_nn.h: int8 activations, asymmetric per tensor, row-major; parameter
 * structs hold integers only and are filled by the prepare_* functions of
 * mcuc/reference/transformer.py, which also define each kernel's integer-exact numpy reference.
 * No kernel allocates memory; the attention kernel takes a scratch buffer from the caller, sized by its
 * _get_buffer_size companion and planned in the arena. `>>` on negative int64 values is an
 * arithmetic (flooring) shift, as on every compiler mcuc targets (GCC, Clang, Arm Compiler).
 */

#include <stdint.h>

#include "mcuc_fixedpoint.h"
#include "mcuc_nn.h"

/* ------------------------------------------------------------------------------------------
 * LayerNorm over the last axis of [rows, row_size], 1 <= row_size <= 65535, rows >= 0.
 * Integer algorithm, per row (identical in mcuc.reference.transformer.layernorm_s8):
 *   S = sum q, Q = sum q^2                                  int32
 *   V = row_size * Q - S^2 + eps_v                          int64, eps_v in [1, 2^60]
 *   k = smallest k >= 0 with V << 2k >= 2^60; R = isqrt(V << 2k)   R in [2^30, 2^31)
 *   inv = 2^62 / R                                          unsigned division
 *   N_c = (D_c * inv + 2^(s-1)) >> s,  D_c = row_size * q_c - S,  s = 62 - k - 16
 *   out_c = clamp(out_zp + ((N_c * gamma_mult[c] + beta_bias[c] + 2^(T-1)) >> T), -128, 127)
 * with T = out_shift in [1, 62]; |gamma_mult| < 2^31, |beta_bias| <= 2^60 (prepare_layernorm).
 * The input zero point cancels and is not needed. output may equal input (a row is read in
 * full before any of it is written).
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t rows;
    int32_t row_size;
    int64_t eps_v;
    int32_t out_shift;
    int32_t out_zp;
} mcuc_layernorm_params_t;

void mcuc_layernorm_s8(const mcuc_layernorm_params_t *params, const int32_t *gamma_mult,
                       const int64_t *beta_bias, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Batch matmul (TFLite BATCH_MATMUL int8): out[b0, b1] = a[b0, b1] @ b[b0, b1] with
 * a [M, K], b [K, N], out [M, N] per batch, out contiguous [batch[0], batch[1], M, N].
 * Operand batch (i0, i1) starts at element i0 * x_batch_strides[0] + i1 * x_batch_strides[1]
 * (stride 0 on a broadcast batch axis). Element (k, n) of a b matrix is at
 * k * b_k_stride + n * b_n_stride: (N, 1) for b stored [K, N], (1, K) for b stored [N, K]
 * (adj_y, as attention's q @ k^T reads k). acc = sum_k (a + a_offset)(b + b_offset) in int32,
 * out = clamp(requant(acc, out_mult, out_shift) + out_zp, act_min, act_max).
 * 1 <= K <= 32768 so |acc| < 2^31; offsets in [-127, 128]; out_shift <= 0 or small enough that
 * acc << out_shift fits int32 (prepare_batch_matmul checks). Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t batch[2];
    int32_t m;
    int32_t k;
    int32_t n;
    int32_t a_batch_strides[2];
    int32_t b_batch_strides[2];
    int32_t b_k_stride;
    int32_t b_n_stride;
    int32_t a_offset;
    int32_t b_offset;
    int32_t out_zp;
    int32_t out_mult;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
} mcuc_batch_matmul_params_t;

void mcuc_batch_matmul_s8(const mcuc_batch_matmul_params_t *params, const int8_t *restrict a,
                          const int8_t *restrict b, int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Attention, head by head in blocks of query rows (mcuc.reference.attention.attention_s8):
 *   scores = batch_matmul(q, k)       with `scores` params: batch [B0, B1], m = Tq, k = d, n = Tk
 *   probs  = softmax(scores)          last axis, exp_table of the scores' scale (times beta)
 *   out    = batch_matmul(probs, v)   with `output` params: batch [B0, B1], m = Tq, k = Tk, n = dv
 * For each head (i0, i1) and each block of block_rows query rows (the last block may be shorter),
 * the block's score rows are computed into scratch, the softmax runs there in place and the
 * probability rows are multiplied by v into the output rows, so only block_rows x Tk scores
 * exist at a time. Each block calls mcuc_batch_matmul_s8 and mcuc_softmax_s8 with the given
 * parameters, so the result equals the three unfused kernels bit for bit for every block size.
 * q, k and v are addressed through the batch strides and the b strides of their params (k may
 * be stored [Tk, d] or [d, Tk]); output is contiguous [B0, B1, Tq, dv]. output.a_batch_strides
 * is unused (the probabilities live in scratch). 1 <= block_rows <= Tq; scratch holds at least
 * mcuc_attention_blocked_s8_get_buffer_size(params) = block_rows * Tk bytes and overlaps no
 * other buffer; output overlaps none of q, k, v.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    mcuc_batch_matmul_params_t scores;
    mcuc_batch_matmul_params_t output;
    int32_t block_rows;
} mcuc_attention_params_t;

int32_t mcuc_attention_blocked_s8_get_buffer_size(const mcuc_attention_params_t *params);

void mcuc_attention_blocked_s8(const mcuc_attention_params_t *params, const uint32_t *exp_table,
                               const int8_t *q, const int8_t *k, const int8_t *v, int8_t *scratch,
                               int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Mean over the middle axis of [outer, reduce, inner] -> [outer, inner]:
 * acc = sum (q - in_zp) (int32), out = clamp(out_zp + requant(acc, mult, shift), -128, 127)
 * with mult/shift quantizing s_in / (s_out * reduce). 1 <= reduce <= 2^23; acc << shift fits
 * int32 (prepare_mean checks). Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t outer;
    int32_t reduce;
    int32_t inner;
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} mcuc_mean_params_t;

void mcuc_mean_s8(const mcuc_mean_params_t *params, const int8_t *restrict input,
                  int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Strided slice of a tensor of rank <= 4: output (contiguous, dims out_dims, each >= 1) at
 * (i0, i1, i2, i3) = input[offset + i0*in_strides[0] + ... + i3*in_strides[3]], where
 * in_strides are the input's element strides times the slice steps. Same quantization in
 * and out. Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t out_dims[4];
    int32_t in_strides[4];
    int32_t offset;
} mcuc_slice_params_t;

void mcuc_slice_s8(const mcuc_slice_params_t *params, const int8_t *restrict input,
                   int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Gather on one axis with constant indices: input viewed as [outer, axis_size, inner],
 * output [outer, n_indices, inner] with output[o, j, :] = input[o, indices[j], :];
 * 0 <= indices[j] < axis_size. Same quantization in and out. Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t n_indices;
} mcuc_gather_params_t;

void mcuc_gather_s8(const mcuc_gather_params_t *params, const int32_t *indices,
                    const int8_t *restrict input, int8_t *restrict output);

#endif /* MCUC_TRANSFORMER_H */
