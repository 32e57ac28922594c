/* mcuc_softmax_s8.c: integer softmax over the last axis with a 256-entry exp table. */
#include "mcuc_softmax.h"

void mcuc_softmax_s8(const mcuc_softmax_params_t *params, const uint32_t *exp_table,
                     const int8_t *input, int8_t *output)
{
    const int32_t n = params->row_size;
    const uint32_t levels = (uint32_t)params->out_levels;
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (int64_t)r * n;
        int8_t *y = output + (int64_t)r * n;
        int32_t mx = -128;
        for (int32_t i = 0; i < n; ++i) {
            mx = x[i] > mx ? x[i] : mx;
        }
        uint32_t sum = 0;
        for (int32_t i = 0; i < n; ++i) {
            sum += exp_table[mx - x[i]];
        }
        const uint32_t half = sum / 2u;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t q = (int32_t)((exp_table[mx - x[i]] * levels + half) / sum) + params->out_zp;
            y[i] = (int8_t)(q > 127 ? 127 : q);
        }
    }
}
