/* mcuc_batch_matmul_s8.c: int8 batched matrix product with batch broadcasting and requantization. */
#include "mcuc_matmul.h"

void mcuc_batch_matmul_s8(const mcuc_batch_matmul_params_t *params, const int8_t *restrict a,
                          const int8_t *restrict b, int8_t *restrict output)
{
    const int32_t m_n = params->m;
    const int32_t k_n = params->k;
    const int32_t n_n = params->n;
    for (int32_t i0 = 0; i0 < params->batch[0]; ++i0) {
        for (int32_t i1 = 0; i1 < params->batch[1]; ++i1) {
            const int8_t *a_b = a + (int64_t)i0 * params->a_batch_strides[0] + (int64_t)i1 * params->a_batch_strides[1];
            const int8_t *b_b = b + (int64_t)i0 * params->b_batch_strides[0] + (int64_t)i1 * params->b_batch_strides[1];
            for (int32_t m = 0; m < m_n; ++m) {
                const int8_t *a_row = a_b + (int64_t)m * k_n;
                for (int32_t n = 0; n < n_n; ++n) {
                    const int8_t *b_col = b_b + (int64_t)n * params->b_n_stride;
                    int32_t acc = 0;
                    for (int32_t k = 0; k < k_n; ++k) {
                        acc += ((int32_t)a_row[k] + params->a_offset)
                               * ((int32_t)b_col[(int64_t)k * params->b_k_stride] + params->b_offset);
                    }
                    const int32_t y = mcuc_requantize(acc, params->out_mult, params->out_shift) + params->out_zp;
                    *output++ = mcuc_clamp_s8(y, params->act_min, params->act_max);
                }
            }
        }
    }
}
