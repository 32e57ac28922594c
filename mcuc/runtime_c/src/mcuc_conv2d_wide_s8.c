/* mcuc_conv2d_wide_s8.c: int8 convolution (groups 1, any kernel) as im2col rows widened to int16 pairs and a
 * two-pixel x two-channel SMLAD GEMM (DSP path; portable C elsewhere). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

void mcuc_conv2d_wide_s8(const mcuc_conv2d_params_t *params,
                         const mcuc_per_channel_quant_params_t *quant,
                         int8_t *restrict scratch,
                         const int8_t *restrict input,
                         const int8_t *restrict weights,
                         const int32_t *restrict bias,
                         int8_t *restrict output)
{
    const int32_t kpad = mcuc_im2col_kpad(params);
    const int32_t out_c = params->out_c;
    const int32_t out_w = params->out_w;
    const int32_t pixels = params->out_h * out_w;
    int8_t *x0 = scratch;
    int8_t *x1 = scratch + kpad;
    uint32_t *wide = (uint32_t *)(void *)(scratch + 2 * kpad);
    /* A pointwise conv whose pixels are whole words of columns reads them in place instead of copying them. */
    const int direct = params->kernel_h == 1 && params->kernel_w == 1 && params->pad_top == 0 &&
                       params->pad_left == 0 && (params->in_c & 3) == 0;
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in = input + (size_t)n * params->in_h * params->in_w * params->in_c;
        int8_t *out = output + (size_t)n * pixels * out_c;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            const int8_t *r0 = x0;
            const int8_t *r1 = x1;
            if (direct) {
                const int32_t q = two ? px + 1 : px;
                r0 = in + ((size_t)(px / out_w) * params->stride_h * params->in_w
                           + (size_t)(px % out_w) * params->stride_w) * params->in_c;
                r1 = in + ((size_t)(q / out_w) * params->stride_h * params->in_w
                           + (size_t)(q % out_w) * params->stride_w) * params->in_c;
            } else {
                mcuc_im2col_row(params, in, px / out_w, px % out_w, kpad, x0);
                if (two) {
                    mcuc_im2col_row(params, in, (px + 1) / out_w, (px + 1) % out_w, kpad, x1);
                } else {
                    r1 = x0;
                }
            }
            mcuc_gemm_wide_pair(r0, r1, kpad, wide, weights, out_c, bias, quant, params->output_zp,
                                params->act_min, params->act_max, out + (size_t)px * out_c,
                                two ? out + (size_t)(px + 1) * out_c : NULL);
        }
    }
}
