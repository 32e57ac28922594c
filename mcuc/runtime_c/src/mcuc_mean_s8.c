/* mcuc_mean_s8.c: int8 mean over the middle axis of [outer, reduce, inner]. */
#include "mcuc_norm.h"

void mcuc_mean_s8(const mcuc_mean_params_t *params, const int8_t *restrict input,
                  int8_t *restrict output)
{
    const int32_t red = params->reduce;
    const int32_t inner = params->inner;
    for (int32_t o = 0; o < params->outer; ++o) {
        const int8_t *x = input + (int64_t)o * red * inner;
        for (int32_t i = 0; i < inner; ++i) {
            int32_t acc = 0;
            for (int32_t r = 0; r < red; ++r) {
                acc += (int32_t)x[(int64_t)r * inner + i] - params->in_zp;
            }
            const int32_t y = mcuc_requantize(acc, params->mult, params->shift) + params->out_zp;
            *output++ = mcuc_clamp_s8(y, -128, 127);
        }
    }
}
