/* mcuc_attention.h: int8 kernel of the attention family: softmax(q @ k^T) @ v fused, in blocks of
 * query rows, with its scratch in a caller's buffer. Conventions in mcuc_support.h. */
#ifndef MCUC_ATTENTION_H
#define MCUC_ATTENTION_H

#include <stdint.h>

#include "mcuc_matmul.h"
#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    int32_t probs_levels; /* the probabilities' scale is 1/probs_levels (mcuc_softmax_s8's out_levels) */
    int32_t probs_zp;
} mcuc_attention_params_t;

int32_t mcuc_attention_blocked_s8_get_buffer_size(const mcuc_attention_params_t *params);

void mcuc_attention_blocked_s8(const mcuc_attention_params_t *params, const uint32_t *exp_table,
                               int8_t *restrict scratch, const int8_t *restrict q, const int8_t *restrict k,
                               const int8_t *restrict v, int8_t *restrict output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_ATTENTION_H */
