/* mcuc_matmul.h: int8 kernel of the matmul family (batched product of two activations).
 * Conventions in mcuc_support.h. */
#ifndef MCUC_MATMUL_H
#define MCUC_MATMUL_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* The same contract and results on DSP (Cortex-M4/M7: SMLAD over halfword pairs) and MVE (Cortex-M55:
 * VMLADAV dot products of 16 int8, VMLA over four widened columns) cores, no scratch; portable C elsewhere. */
void mcuc_batch_matmul_simd_s8(const mcuc_batch_matmul_params_t *params, const int8_t *restrict a,
                               const int8_t *restrict b, int8_t *restrict output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_MATMUL_H */
