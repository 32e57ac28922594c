/* mcuc_depthwise_conv2d_3x3_s8.c: depthwise 3x3 int8 convolution, depth multiplier 1, dilation 1. */
#include "mcuc_conv.h"
#include "mcuc_internal.h"

#include <stddef.h>

/* Accumulator of one channel at one output pixel over taps [ky_first, ky_end) x [kx_first, kx_end).
 * base points at the channel in input row 0, column 0; origin is the element offset of the 3x3
 * window's top-left tap, which may lie in the padding, so only in-bounds taps form pointers. */
static int32_t mcuc_dw3x3_partial(const int8_t *base, ptrdiff_t origin, const int8_t *w,
                                  ptrdiff_t row_step, ptrdiff_t col_step,
                                  int32_t ky_first, int32_t ky_end, int32_t kx_first, int32_t kx_end,
                                  int32_t input_offset)
{
    int32_t acc = 0;
    for (int32_t ky = ky_first; ky < ky_end; ++ky) {
        for (int32_t kx = kx_first; kx < kx_end; ++kx) {
            const int32_t x = base[origin + ky * row_step + kx * col_step];
            acc += (x + input_offset) * (int32_t)w[ky * 3 + kx];
        }
    }
    return acc;
}

void mcuc_depthwise_conv2d_3x3_s8(const mcuc_depthwise_conv2d_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output)
{
    const int32_t in_h = params->in_h;
    const int32_t in_w = params->in_w;
    const int32_t channels = params->in_c;
    const int32_t input_offset = -params->input_zp;
    const int32_t *restrict multiplier = quant->multiplier;
    const int32_t *restrict shift = quant->shift;
    const ptrdiff_t row_step = (ptrdiff_t)in_w * channels;
    const ptrdiff_t col_step = channels;

    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *batch_in = input + (size_t)n * in_h * in_w * channels;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            int32_t ky_first, ky_end;
            mcuc_tap_range(iy0, 1, 3, in_h, &ky_first, &ky_end);
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const int32_t ix0 = ox * params->stride_w - params->pad_left;
                int32_t kx_first, kx_end;
                mcuc_tap_range(ix0, 1, 3, in_w, &kx_first, &kx_end);
                const int interior = ky_first == 0 && ky_end == 3 && kx_first == 0 && kx_end == 3;
                /* Window origin as an offset, formed into a pointer only for in-bounds taps. */
                const ptrdiff_t origin = (ptrdiff_t)iy0 * row_step + (ptrdiff_t)ix0 * col_step;
                for (int32_t c = 0; c < channels; ++c) {
                    const int8_t *w = weights + (size_t)c * 9;
                    int32_t acc = bias != NULL ? bias[c] : 0;
                    if (interior) {
                        const int8_t *r0 = batch_in + origin + c;
                        const int8_t *r1 = r0 + row_step;
                        const int8_t *r2 = r1 + row_step;
                        acc += ((int32_t)r0[0] + input_offset) * w[0]
                             + ((int32_t)r0[col_step] + input_offset) * w[1]
                             + ((int32_t)r0[2 * col_step] + input_offset) * w[2]
                             + ((int32_t)r1[0] + input_offset) * w[3]
                             + ((int32_t)r1[col_step] + input_offset) * w[4]
                             + ((int32_t)r1[2 * col_step] + input_offset) * w[5]
                             + ((int32_t)r2[0] + input_offset) * w[6]
                             + ((int32_t)r2[col_step] + input_offset) * w[7]
                             + ((int32_t)r2[2 * col_step] + input_offset) * w[8];
                    } else {
                        acc += mcuc_dw3x3_partial(batch_in + c, origin, w, row_step, col_step,
                                                  ky_first, ky_end, kx_first, kx_end, input_offset);
                    }
                    const int32_t y = mcuc_requantize(acc, multiplier[c], shift[c]) + params->output_zp;
                    *output++ = mcuc_clamp_s8(y, params->act_min, params->act_max);
                }
            }
        }
    }
}
