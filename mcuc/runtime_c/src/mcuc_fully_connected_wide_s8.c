/* mcuc_fully_connected_wide_s8.c: fully connected int8 layer as rows widened to int16 pairs and a two-row x
 * two-channel SMLAD GEMM (DSP path; portable C elsewhere). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>
#include <string.h>

void mcuc_fully_connected_wide_s8(const mcuc_fully_connected_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  int8_t *restrict scratch,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output)
{
    const int32_t k = params->in_features;
    const int32_t kpad = (k + 3) & ~3;
    const int32_t n = params->out_features;
    int8_t *x0 = scratch;
    int8_t *x1 = scratch + kpad;
    uint32_t *wide = (uint32_t *)(void *)(scratch + 2 * kpad);
    memset(x0 + k, 0, (size_t)(kpad - k));
    memset(x1 + k, 0, (size_t)(kpad - k));
    for (int32_t r = 0; r < params->rows; r += 2) {
        const int two = r + 1 < params->rows;
        memcpy(x0, input + (size_t)r * k, (size_t)k);
        if (two) {
            memcpy(x1, input + (size_t)(r + 1) * k, (size_t)k);
        }
        mcuc_gemm_wide_pair(x0, two ? x1 : x0, kpad, wide, weights, n, bias, quant, params->output_zp,
                            params->act_min, params->act_max, output + (size_t)r * n,
                            two ? output + (size_t)(r + 1) * n : NULL);
    }
}
