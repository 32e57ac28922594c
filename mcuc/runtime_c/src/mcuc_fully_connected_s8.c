/* mcuc_fully_connected_s8.c: portable C99 int8 fully connected layer, per-channel requantization. */
#include "mcuc_conv.h"

#include <stddef.h>

void mcuc_fully_connected_s8(const mcuc_fully_connected_params_t *params,
                             const mcuc_per_channel_quant_params_t *quant,
                             const int8_t *restrict input,
                             const int8_t *restrict weights,
                             const int32_t *restrict bias,
                             int8_t *restrict output)
{
    const int32_t in_features = params->in_features;
    const int32_t out_features = params->out_features;
    const int32_t input_offset = -params->input_zp;
    const int32_t *restrict multiplier = quant->multiplier;
    const int32_t *restrict shift = quant->shift;

    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (size_t)r * in_features;
        for (int32_t o = 0; o < out_features; ++o) {
            const int8_t *w = weights + (size_t)o * in_features;
            int32_t acc = bias != NULL ? bias[o] : 0;
            for (int32_t k = 0; k < in_features; ++k) {
                acc += ((int32_t)x[k] + input_offset) * (int32_t)w[k];
            }
            const int32_t y = mcuc_requantize(acc, multiplier[o], shift[o]) + params->output_zp;
            *output++ = mcuc_clamp_s8(y, params->act_min, params->act_max);
        }
    }
}
