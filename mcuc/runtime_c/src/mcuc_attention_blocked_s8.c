/* mcuc_attention_blocked_s8.c: int8 attention head by head in blocks of query rows, scores in a small scratch. */
#include "mcuc_attention.h"
#include "mcuc_softmax.h"

/* The two products and the softmax run on the SIMD batch matmul and softmax where the core has DSP or MVE
 * (same results). */
#if (defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)) || defined(__ARM_FEATURE_DSP)
#define MCUC_ATTENTION_MATMUL mcuc_batch_matmul_simd_s8
#define MCUC_ATTENTION_SOFTMAX mcuc_softmax_simd_s8
#else
#define MCUC_ATTENTION_MATMUL mcuc_batch_matmul_s8
#define MCUC_ATTENTION_SOFTMAX mcuc_softmax_s8
#endif

void mcuc_attention_blocked_s8(const mcuc_attention_params_t *params, const uint32_t *exp_table,
                               int8_t *restrict scratch, const int8_t *restrict q, const int8_t *restrict k,
                               const int8_t *restrict v, int8_t *restrict output)
{
    const mcuc_batch_matmul_params_t *sp = &params->scores;
    const mcuc_batch_matmul_params_t *op = &params->output;
    const int32_t rows = sp->m;
    const int32_t d = sp->k;
    const int32_t dv = op->n;
    mcuc_batch_matmul_params_t score_block = *sp;
    mcuc_batch_matmul_params_t out_block = *op;
    score_block.batch[0] = score_block.batch[1] = 1;
    out_block.batch[0] = out_block.batch[1] = 1;
    for (int32_t i0 = 0; i0 < sp->batch[0]; ++i0) {
        for (int32_t i1 = 0; i1 < sp->batch[1]; ++i1) {
            const int8_t *q_h = q + (int64_t)i0 * sp->a_batch_strides[0] + (int64_t)i1 * sp->a_batch_strides[1];
            const int8_t *k_h = k + (int64_t)i0 * sp->b_batch_strides[0] + (int64_t)i1 * sp->b_batch_strides[1];
            const int8_t *v_h = v + (int64_t)i0 * op->b_batch_strides[0] + (int64_t)i1 * op->b_batch_strides[1];
            int8_t *out_h = output + ((int64_t)i0 * sp->batch[1] + i1) * rows * dv;
            for (int32_t r0 = 0; r0 < rows; r0 += params->block_rows) {
                const int32_t n_rows = rows - r0 < params->block_rows ? rows - r0 : params->block_rows;
                const mcuc_softmax_params_t softmax = { n_rows, sp->n, params->probs_levels, params->probs_zp };
                score_block.m = n_rows;
                out_block.m = n_rows;
                MCUC_ATTENTION_MATMUL(&score_block, q_h + (int64_t)r0 * d, k_h, scratch);
                MCUC_ATTENTION_SOFTMAX(&softmax, exp_table, scratch, scratch);
                MCUC_ATTENTION_MATMUL(&out_block, scratch, v_h, out_h + (int64_t)r0 * dv);
            }
        }
    }
}
