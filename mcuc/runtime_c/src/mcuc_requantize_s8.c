/* mcuc_requantize_s8.c: int8 -> int8 change of scale and zero point. */
#include "mcuc_elementwise.h"

void mcuc_requantize_s8(const mcuc_requantize_params_t *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->size; ++i) {
        const int32_t v = params->out_zp + mcuc_requantize(input[i] - params->in_zp, params->mult,
                                                           params->shift);
        output[i] = mcuc_clamp_s8(v, -128, 127);
    }
}
