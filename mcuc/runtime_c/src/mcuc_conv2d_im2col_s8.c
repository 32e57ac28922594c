/* mcuc_conv2d_im2col_s8.c: int8 convolution (groups 1, any kernel) as im2col rows times quad-laid weights,
 * MCUC_IM2COL_ROWS pixels at a time (MVE VMLADAV path; DSP and portable C elsewhere). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

#if defined(MCUC_MVE)
/* n bytes from s to d, 16 per predicated load and store (no library call for the short runs of a
 * receptive field). */
static inline void mcuc_copy_mve(int8_t *d, const int8_t *s, int32_t n)
{
    for (int32_t i = 0; i < n; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - i));
        vstrbq_p_s8(d + i, vldrbq_z_s8(s + i, p), p);
    }
}

/* n bytes of value v at d. */
static inline void mcuc_fill_mve(int8_t *d, int8x16_t v, int32_t n)
{
    for (int32_t i = 0; i < n; i += 16) {
        vstrbq_p_s8(d + i, v, vctp8q((uint32_t)(n - i)));
    }
}

/* mcuc_im2col_row without the zero columns past kernel_h * kernel_w * in_c (the caller zeroes them once:
 * nothing here writes them). */
static void mcuc_im2col_row_mve(const mcuc_conv2d_params_t *p, const int8_t *in, int32_t oy, int32_t ox,
                                int8_t *dst)
{
    const int32_t in_c = p->in_c;
    const int32_t kw = p->kernel_w;
    const int32_t run = kw * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t span = (kw - 1) * p->dilation_w + 1;
    const int8x16_t zp = vdupq_n_s8((int8_t)p->input_zp);
    const int inside = p->dilation_w == 1 && ix0 >= 0 && ix0 + span <= p->in_w;
    int8_t *d = dst;
    for (int32_t ky = 0; ky < p->kernel_h; ++ky, d += run) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            mcuc_fill_mve(d, zp, run);
            continue;
        }
        const int8_t *row = in + (size_t)iy * (size_t)p->in_w * (size_t)in_c;
        if (inside) {
            mcuc_copy_mve(d, row + (size_t)ix0 * (size_t)in_c, run);
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) {
                mcuc_fill_mve(d + kx * in_c, zp, in_c);
            } else {
                mcuc_copy_mve(d + kx * in_c, row + (size_t)ix * (size_t)in_c, in_c);
            }
        }
    }
}
#endif

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
#if defined(MCUC_MVE)
    /* the zero columns of every row, written once */
    const int32_t taps = params->kernel_h * params->kernel_w * params->in_c;
    for (int32_t i = 0; i < MCUC_IM2COL_ROWS; ++i) {
        memset(scratch + i * k16 + taps, 0, (size_t)(k16 - taps));
    }
#endif
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in = input + (size_t)n * params->in_h * params->in_w * params->in_c;
        int8_t *out = output + (size_t)n * pixels * out_c;
        int32_t oy = 0, ox = 0;
        for (int32_t px = 0; px < pixels; px += MCUC_IM2COL_ROWS) {
            const int32_t rows = pixels - px < MCUC_IM2COL_ROWS ? pixels - px : MCUC_IM2COL_ROWS;
            for (int32_t i = 0; i < rows; ++i) {
#if defined(MCUC_MVE)
                mcuc_im2col_row_mve(params, in, oy, ox, scratch + i * k16);
#else
                mcuc_im2col_row(params, in, oy, ox, k16, scratch + i * k16);
#endif
                if (++ox == out_w) {
                    ox = 0;
                    ++oy;
                }
            }
            mcuc_gemm_s8(scratch, k16, rows, weights, k16, out_c, bias, quant, params->output_zp, params->act_min,
                         params->act_max, out + (size_t)px * out_c);
        }
    }
}
