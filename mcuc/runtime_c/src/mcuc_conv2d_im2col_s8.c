/* mcuc_conv2d_im2col_s8.c: int8 convolution (groups 1, any kernel) as im2col rows times quad-laid weights,
 * two pixels at a time (MVE VMLADAV path; DSP and portable C elsewhere). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

void mcuc_conv2d_im2col_s8(const mcuc_conv2d_params_t *params,
                           const mcuc_per_channel_quant_params_t *quant,
                           int8_t *restrict scratch,
                           const int8_t *restrict input,
                           const int8_t *restrict weights,
                           const int32_t *restrict bias,
                           int8_t *restrict output)
{
    const int32_t k16 = mcuc_im2col_k16(params);
    const int32_t out_c = params->out_c;
    const int32_t out_w = params->out_w;
    const int32_t pixels = params->out_h * out_w;
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in = input + (size_t)n * params->in_h * params->in_w * params->in_c;
        int8_t *out = output + (size_t)n * pixels * out_c;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int32_t rows = px + 1 < pixels ? 2 : 1;
            mcuc_im2col_row(params, in, px / out_w, px % out_w, k16, scratch);
            if (rows == 2) {
                mcuc_im2col_row(params, in, (px + 1) / out_w, (px + 1) % out_w, k16, scratch + k16);
            }
            mcuc_gemm_s8(scratch, k16, rows, weights, k16, out_c, bias, quant, params->output_zp, params->act_min,
                         params->act_max, out + (size_t)px * out_c);
        }
    }
}
