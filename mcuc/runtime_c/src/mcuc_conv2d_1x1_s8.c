/* mcuc_conv2d_1x1_s8.c: pointwise (1x1, unpadded) int8 convolution as a GEMM over pixels (DSP / MVE paths). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

void mcuc_conv2d_1x1_s8(const mcuc_conv2d_params_t *params,
                        const mcuc_per_channel_quant_params_t *quant,
                        const int8_t *restrict input,
                        const int8_t *restrict weights,
                        const int32_t *restrict bias,
                        int8_t *restrict output)
{
    const int32_t in_c = params->in_c;
    const int32_t out_c = params->out_c;
    if (params->stride_h == 1 && params->stride_w == 1) {
        /* every input pixel is read: one GEMM over all of them (in_h == out_h, in_w == out_w) */
        mcuc_gemm_s8(input, in_c, params->batch * params->out_h * params->out_w, weights, in_c, out_c, bias, quant,
                     params->output_zp, params->act_min, params->act_max, output);
        return;
    }
    for (int32_t n = 0; n < params->batch; ++n) {
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int8_t *row = input + (((size_t)n * params->in_h + (size_t)oy * params->stride_h) * params->in_w)
                                            * (size_t)in_c;
            int8_t *out = output + (((size_t)n * params->out_h + (size_t)oy) * params->out_w) * (size_t)out_c;
            mcuc_gemm_s8(row, params->stride_w * in_c, params->out_w, weights, in_c, out_c, bias, quant,
                         params->output_zp, params->act_min, params->act_max, out);
        }
    }
}
