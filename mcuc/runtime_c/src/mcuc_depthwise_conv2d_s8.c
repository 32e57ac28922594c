/* mcuc_depthwise_conv2d_s8.c: portable C99 depthwise int8 convolution with depth multiplier. */
#include "mcuc_conv.h"
#include "mcuc_internal.h"

#include <stddef.h>

void mcuc_depthwise_conv2d_s8(const mcuc_depthwise_conv2d_params_t *params,
                              const mcuc_per_channel_quant_params_t *quant,
                              const int8_t *restrict input,
                              const int8_t *restrict weights,
                              const int32_t *restrict bias,
                              int8_t *restrict output)
{
    const int32_t in_h = params->in_h;
    const int32_t in_w = params->in_w;
    const int32_t in_c = params->in_c;
    const int32_t kernel_h = params->kernel_h;
    const int32_t kernel_w = params->kernel_w;
    const int32_t taps = kernel_h * kernel_w;
    const int32_t depth_multiplier = params->out_c / in_c;
    const int32_t dilation_h = params->dilation_h;
    const int32_t dilation_w = params->dilation_w;
    const int32_t input_offset = -params->input_zp;
    const int32_t *restrict multiplier = quant->multiplier;
    const int32_t *restrict shift = quant->shift;
    /* Distance in int8 elements between vertically / horizontally adjacent taps in the input. */
    const ptrdiff_t row_step = (ptrdiff_t)dilation_h * in_w * in_c;
    const ptrdiff_t col_step = (ptrdiff_t)dilation_w * in_c;

    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *batch_in = input + (size_t)n * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky_first, ky_end;
            mcuc_tap_range(iy0, dilation_h, kernel_h, in_h, &ky_first, &ky_end);
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx_first, kx_end;
                mcuc_tap_range(ix0, dilation_w, kernel_w, in_w, &kx_first, &kx_end);
                /* First in-bounds tap of this output pixel, channel 0 (row/column 0 when the window
                 * lies entirely in the padding, so the pointer stays inside the input). */
                const int32_t iy = ky_first < ky_end ? iy0 + ky_first * dilation_h : 0;
                const int32_t ix = kx_first < kx_end ? ix0 + kx_first * dilation_w : 0;
                const int8_t *window = batch_in + ((ptrdiff_t)iy * in_w + ix) * in_c;
                int32_t oc = 0;
                for (int32_t ic = 0; ic < in_c; ++ic) {
                    for (int32_t m = 0; m < depth_multiplier; ++m, ++oc) {
                        const int8_t *oc_weights = weights + (size_t)oc * taps;
                        int32_t acc = bias != NULL ? bias[oc] : 0;
                        const int8_t *row = window + ic;
                        for (int32_t ky = ky_first; ky < ky_end; ++ky, row += row_step) {
                            const int8_t *wp = oc_weights + ky * kernel_w;
                            const int8_t *px = row;
                            for (int32_t kx = kx_first; kx < kx_end; ++kx, px += col_step) {
                                acc += ((int32_t)*px + input_offset) * (int32_t)wp[kx];
                            }
                        }
                        const int32_t y = mcuc_requantize(acc, multiplier[oc], shift[oc]) + params->output_zp;
                        *output++ = mcuc_clamp_s8(y, params->act_min, params->act_max);
                    }
                }
            }
        }
    }
}
