/* mcuc_concat_s8.c: int8 concatenation along one axis with per-input requantization. */
#include <string.h>

#include "mcuc_layout.h"

void mcuc_concat_s8(const mcuc_concat_params_t *params, const int8_t *const *inputs,
                    int8_t *restrict output)
{
    int32_t out_inner = 0;
    for (int32_t k = 0; k < params->n_inputs; ++k) {
        out_inner += params->inputs[k].inner;
    }
    int32_t col = 0;
    for (int32_t k = 0; k < params->n_inputs; ++k) {
        const mcuc_concat_input_params_t *in = &params->inputs[k];
        const int32_t inner = in->inner;
        for (int32_t o = 0; o < params->outer; ++o) {
            const int8_t *src = inputs[k] + (int64_t)o * inner;
            int8_t *dst = output + (int64_t)o * out_inner + col;
            if (!in->rescale) {
                memcpy(dst, src, (size_t)inner);
                continue;
            }
            for (int32_t i = 0; i < inner; ++i) {
                const int32_t v = in->out_zp + mcuc_requantize(src[i] - in->in_zp, in->mult, in->shift);
                dst[i] = mcuc_clamp_s8(v, -128, 127);
            }
        }
        col += inner;
    }
}
