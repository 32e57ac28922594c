/* mcuc_conv2d_s8.c: portable C99 general grouped int8 convolution (NHWC, OHWI weights). */
#include "mcuc_conv.h"
#include "mcuc_internal.h"

#include <stddef.h>

void mcuc_conv2d_s8(const mcuc_conv2d_params_t *params,
                    const mcuc_per_channel_quant_params_t *quant,
                    const int8_t *restrict input,
                    const int8_t *restrict weights,
                    const int32_t *restrict bias,
                    int8_t *restrict output)
{
    const int32_t in_h = params->in_h;
    const int32_t in_w = params->in_w;
    const int32_t in_c = params->in_c;
    const int32_t out_c = params->out_c;
    const int32_t kernel_h = params->kernel_h;
    const int32_t kernel_w = params->kernel_w;
    const int32_t group_in_c = in_c / params->groups;
    const int32_t group_out_c = out_c / params->groups;
    const int32_t input_offset = -params->input_zp;
    const int32_t *restrict multiplier = quant->multiplier;
    const int32_t *restrict shift = quant->shift;

    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *batch_in = input + (size_t)n * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky_first, ky_end;
            mcuc_tap_range(iy0, params->dilation_h, kernel_h, in_h, &ky_first, &ky_end);
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx_first, kx_end;
                mcuc_tap_range(ix0, params->dilation_w, kernel_w, in_w, &kx_first, &kx_end);
                for (int32_t oc = 0; oc < out_c; ++oc) {
                    const int32_t in_c_base = (oc / group_out_c) * group_in_c;
                    const int8_t *oc_weights = weights + (size_t)oc * kernel_h * kernel_w * group_in_c;
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    for (int32_t ky = ky_first; ky < ky_end; ++ky) {
                        const int32_t iy = iy0 + ky * params->dilation_h;
                        for (int32_t kx = kx_first; kx < kx_end; ++kx) {
                            const int32_t ix = ix0 + kx * params->dilation_w;
                            const int8_t *px = batch_in + ((size_t)iy * in_w + ix) * in_c + in_c_base;
                            const int8_t *wp = oc_weights + ((size_t)ky * kernel_w + kx) * group_in_c;
                            for (int32_t ic = 0; ic < group_in_c; ++ic) {
                                acc += ((int32_t)px[ic] + input_offset) * (int32_t)wp[ic];
                            }
                        }
                    }
                    const int32_t y = mcuc_requantize(acc, multiplier[oc], shift[oc]) + params->output_zp;
                    *output++ = mcuc_clamp_s8(y, params->act_min, params->act_max);
                }
            }
        }
    }
}
