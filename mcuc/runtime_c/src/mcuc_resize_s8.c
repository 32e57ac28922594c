/* mcuc_resize_s8.c: int8 NHWC nearest / bilinear resize from compile-time row and column tables. */
#include "mcuc_layout.h"

#define MCUC_RESIZE_ONE 1024
#define MCUC_RESIZE_HALF (1 << 19)

void mcuc_resize_s8(const mcuc_resize_params_t *params, const int16_t *rows, const int16_t *cols,
                    const int8_t *restrict input, int8_t *restrict output)
{
    const int32_t c_n = params->channels;
    const int32_t row_stride = params->in_w * c_n;
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * params->in_h * row_stride;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int16_t *ry = rows + 3 * oy;
            const int8_t *row0 = in_b + ry[0] * row_stride;
            const int8_t *row1 = in_b + ry[1] * row_stride;
            const int32_t wy1 = ry[2];
            const int32_t wy0 = MCUC_RESIZE_ONE - wy1;
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const int16_t *cx = cols + 3 * ox;
                const int32_t x0 = cx[0] * c_n;
                if (!params->bilinear) {
                    for (int32_t c = 0; c < c_n; ++c) {
                        *output++ = row0[x0 + c];
                    }
                    continue;
                }
                const int32_t x1 = cx[1] * c_n;
                const int32_t wx1 = cx[2];
                const int32_t wx0 = MCUC_RESIZE_ONE - wx1;
                for (int32_t c = 0; c < c_n; ++c) {
                    const int32_t top = row0[x0 + c] * wx0 + row0[x1 + c] * wx1;
                    const int32_t bottom = row1[x0 + c] * wx0 + row1[x1 + c] * wx1;
                    const int32_t acc = top * wy0 + bottom * wy1;
                    const int32_t v = (acc + (acc > 0 ? MCUC_RESIZE_HALF : -MCUC_RESIZE_HALF)) / (1 << 20);
                    *output++ = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
                }
            }
        }
    }
}
