/* mcuc_internal.h: implementation helpers shared by several kernels in src/ (not part of the API; not
 * in include/). */
#ifndef MCUC_INTERNAL_H
#define MCUC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mcuc_elementwise.h"
#include "mcuc_pool.h"
#include "mcuc_support.h"

/* Kernel taps [*first, *end) of one spatial axis that land inside an input of `size` elements, for a
 * window starting at input coordinate origin (negative when padded) with taps `dilation` apart. Shared
 * by the conv and pool kernels so bounds are computed once per output pixel instead of tested per tap. */
static inline void mcuc_tap_range(int32_t origin, int32_t dilation, int32_t kernel, int32_t size,
                                  int32_t *first, int32_t *end)
{
    const int32_t last_offset = size - 1 - origin;
    int32_t e = last_offset < 0 ? 0 : last_offset / dilation + 1;
    *first = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    *end = e < kernel ? e : kernel;
}

/* Element offsets into in1 and in2 of the first element of output row `row`, where rows
 * index out_dims[0] x out_dims[1] x out_dims[2] in order. */
static inline void mcuc_broadcast_row(const mcuc_broadcast_params_t *shape, int32_t row,
                                      int32_t *off1, int32_t *off2)
{
    const int32_t i2 = row % shape->out_dims[2];
    const int32_t i01 = row / shape->out_dims[2];
    const int32_t i1 = i01 % shape->out_dims[1];
    const int32_t i0 = i01 / shape->out_dims[1];
    *off1 = i0 * shape->in1_strides[0] + i1 * shape->in1_strides[1] + i2 * shape->in1_strides[2];
    *off2 = i0 * shape->in2_strides[0] + i1 * shape->in2_strides[1] + i2 * shape->in2_strides[2];
}

/* Add (sign = 1), sub (sign = -1) or squared difference (sign = 0), the body of mcuc_add_s8, mcuc_sub_s8 and
 * mcuc_squared_difference_s8. */
static inline void mcuc_add_sub_s8_impl(const struct mcuc_add_sub_params *params,
                                        const mcuc_broadcast_params_t *shape, const int8_t *in1,
                                        const int8_t *in2, int8_t *output, int32_t sign)
{
    const int32_t rows = shape->out_dims[0] * shape->out_dims[1] * shape->out_dims[2];
    const int32_t n = shape->out_dims[3];
    const int32_t st1 = shape->in1_strides[3];
    const int32_t st2 = shape->in2_strides[3];
    const int32_t lshift = params->left_shift;
    for (int32_t r = 0; r < rows; ++r) {
        int32_t off1;
        int32_t off2;
        mcuc_broadcast_row(shape, r, &off1, &off2);
        for (int32_t i = 0; i < n; ++i) {
            const int32_t x1 = (params->in1_offset + in1[off1 + i * st1]) * (1 << lshift);
            const int32_t x2 = (params->in2_offset + in2[off2 + i * st2]) * (1 << lshift);
            const int32_t v1 = mcuc_requantize(x1, params->in1_mult, params->in1_shift);
            const int32_t v2 = mcuc_requantize(x2, params->in2_mult, params->in2_shift);
            const int32_t acc = sign != 0 ? v1 + sign * v2 : (v1 - v2) * (v1 - v2);
            const int32_t raw = mcuc_requantize(acc, params->out_mult, params->out_shift) + params->out_offset;
            output[r * n + i] = mcuc_clamp_s8(raw, params->act_min, params->act_max);
        }
    }
}

/* The in-bounds part of one pooling window: `rows` x `cols` taps starting `offset` elements into the batch's
 * input (its first in-bounds tap), `count` = rows * cols. A window with no in-bounds tap has rows = cols =
 * count = offset = 0, so no pointer outside the input is ever formed from it. Shared by mcuc_pool_s8_impl
 * and mcuc_avgpool_simd_s8. */
typedef struct {
    ptrdiff_t offset;
    int32_t rows;
    int32_t cols;
    int32_t count;
} mcuc_pool_window_t;

static inline mcuc_pool_window_t mcuc_pool_window(const struct mcuc_pool_params *params, int32_t oy, int32_t ox)
{
    const int32_t y0 = oy * params->stride_h - params->pad_top;
    const int32_t x0 = ox * params->stride_w - params->pad_left;
    int32_t ky0, ky1, kx0, kx1;
    mcuc_tap_range(y0, 1, params->kernel_h, params->in_h, &ky0, &ky1);
    mcuc_tap_range(x0, 1, params->kernel_w, params->in_w, &kx0, &kx1);
    mcuc_pool_window_t w = {0, 0, 0, 0};
    if (ky1 > ky0 && kx1 > kx0) {
        w.offset = ((ptrdiff_t)(y0 + ky0) * params->in_w + x0 + kx0) * params->channels;
        w.rows = ky1 - ky0;
        w.cols = kx1 - kx0;
        w.count = w.rows * w.cols;
    }
    return w;
}

/* Average (is_max = 0) or max (is_max = 1) pooling, the body of mcuc_avgpool_s8 and mcuc_maxpool_s8. Taps are
 * clipped to the input (mcuc_pool_window), so padding is never read. */
static inline void mcuc_pool_s8_impl(const struct mcuc_pool_params *params, const int8_t *input,
                                     int8_t *output, int32_t is_max)
{
    const int32_t c_n = params->channels;
    const ptrdiff_t row_step = (ptrdiff_t)params->in_w * c_n;
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * params->in_h * params->in_w * c_n;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const mcuc_pool_window_t w = mcuc_pool_window(params, oy, ox);
                for (int32_t c = 0; c < c_n; ++c) {
                    int32_t acc = is_max ? -128 : 0;
                    for (int32_t ky = 0; ky < w.rows; ++ky) {
                        const int8_t *row = in_b + w.offset + ky * row_step + c;
                        for (int32_t kx = 0; kx < w.cols; ++kx) {
                            const int32_t v = row[kx * c_n];
                            acc = is_max ? (v > acc ? v : acc) : acc + v;
                        }
                    }
                    if (!is_max && w.count > 0) {
                        acc = acc > 0 ? (acc + w.count / 2) / w.count : (acc - w.count / 2) / w.count;
                    }
                    *output++ = mcuc_clamp_s8(acc, params->act_min, params->act_max);
                }
            }
        }
    }
}

#endif /* MCUC_INTERNAL_H */
