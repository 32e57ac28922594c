/* mcuc_norm.h: int8 kernels of the norm family (LayerNorm over the last axis, mean over axes).
 * Conventions in mcuc_support.h. */
#ifndef MCUC_NORM_H
#define MCUC_NORM_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* mcuc_layernorm_s8 bit for bit (DSP: SMLAD row sums, SMMLAR and SMLAL per element; MVE: VMLADAV row sums,
 * four lanes per step; other cores the same steps in C), for folded biases (below) in (-2^62, 2^62). The row's inverse square root is found in 32-bit steps (Newton, then a two-digit division), and
 * N_c = hi32(D'_c * inv + 2^31) with D'_c = D_c << (32 - s) when s <= 32 (rows up to ~1000 values).
 * affine holds the compiler's constants in quads of channels (ceil(row_size / 4) quads, the last zero
 * padded), 12 int32 per quad:
 *   gamma_mult[4c..4c+3], then for each of the four channels the low and the high word of
 *   beta_bias[c] + 2^(out_shift-1) + out_zp * 2^out_shift
 * so out_c = clamp(hi32(N_c * gamma_mult[c] + bias'[c]) >> (out_shift - 32), -128, 127) for out_shift >= 32
 * (the 64-bit sum shifted whole otherwise, and for rows with s > 32).
 * output may equal input. */
void mcuc_layernorm_simd_s8(const mcuc_layernorm_params_t *params, const int32_t *affine, const int8_t *input,
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

#ifdef __cplusplus
}
#endif

#endif /* MCUC_NORM_H */
