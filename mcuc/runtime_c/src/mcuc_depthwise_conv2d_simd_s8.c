/* mcuc_depthwise_conv2d_simd_s8.c: depthwise int8 convolution (depth multiplier 1) over groups of four
 * channels: MVE multiplies a group per VMUL (eight channels per VMULLB/VMULLT pair for windows inside the
 * image), DSP splits it by SXTB16 into SMLABB/SMLATT pairs; portable C elsewhere. Weights in channel quads
 * [channels / 4][kernel_h * kernel_w][4], bias folded. */
#include "mcuc_conv.h"
#include "mcuc_internal.h"
#include "mcuc_simd.h"

#include <stddef.h>

/* One output pixel's window: `win` is the first in-bounds tap (channel 0 of the group), taps [ky0, ky1) x
 * [kx0, kx1) are in bounds, row_step / col_step the input distance of one tap down / right. */
typedef struct {
    const int8_t *win;
    ptrdiff_t row_step;
    ptrdiff_t col_step;
    int32_t ky0, ky1, kx0, kx1;
} mcuc_dw_window_t;

#if defined(MCUC_MVE)
/* acc + one tap of a group of four channels: input x, weights w. */
#define MCUC_DW_TAP_MVE(acc, x, w) acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(x), vldrbq_s32(w)))

/* acc + the taps of one row of a group: x the first tap's input (the next ones `step` apart), w its weights
 * (the group's next taps follow every 4 bytes). */
#define MCUC_DW_ROW3_MVE(acc, x, w, step)                                                       \
    do {                                                                                        \
        MCUC_DW_TAP_MVE(acc, (x), (w));                                                         \
        MCUC_DW_TAP_MVE(acc, (x) + (step), (w) + 4);                                            \
        MCUC_DW_TAP_MVE(acc, (x) + 2 * (step), (w) + 8);                                        \
    } while (0)
#define MCUC_DW_ROW5_MVE(acc, x, w, step)                                                       \
    do {                                                                                        \
        MCUC_DW_ROW3_MVE(acc, x, w, step);                                                      \
        MCUC_DW_TAP_MVE(acc, (x) + 3 * (step), (w) + 12);                                       \
        MCUC_DW_TAP_MVE(acc, (x) + 4 * (step), (w) + 16);                                       \
    } while (0)
#define MCUC_DW_ROW7_MVE(acc, x, w, step)                                                       \
    do {                                                                                        \
        MCUC_DW_ROW5_MVE(acc, x, w, step);                                                      \
        MCUC_DW_TAP_MVE(acc, (x) + 5 * (step), (w) + 20);                                       \
        MCUC_DW_TAP_MVE(acc, (x) + 6 * (step), (w) + 24);                                       \
    } while (0)

/* A whole window inside the image: kh rows of kw taps (3, 5 and 7 unrolled). */
static int32x4_t mcuc_dw_full_mve(int32x4_t acc, const int8_t *x, const int8_t *w, ptrdiff_t row_step,
                                  ptrdiff_t col_step, int32_t kh, int32_t kw)
{
    if (kw == 3) {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step, w += 12) {
            MCUC_DW_ROW3_MVE(acc, x, w, col_step);
        }
    } else if (kw == 5) {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step, w += 20) {
            MCUC_DW_ROW5_MVE(acc, x, w, col_step);
        }
    } else if (kw == 7) {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step, w += 28) {
            MCUC_DW_ROW7_MVE(acc, x, w, col_step);
        }
    } else {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step) {
            const int8_t *xr = x;
            for (int32_t kx = 0; kx < kw; ++kx, xr += col_step, w += 4) {
                MCUC_DW_TAP_MVE(acc, xr, w);
            }
        }
    }
    return acc;
}

/* Any window (padding included) of a group whose lanes p enables: in-bounds taps read the input, the others
 * count as input_zp (the folded bias cancelled them, this puts them back). */
static int32x4_t mcuc_dw_window_mve(int32x4_t acc, const mcuc_dw_window_t *wd, const int8_t *w, int32_t kh,
                                    int32_t kw, int32_t input_zp, mve_pred16_t p)
{
    for (int32_t ky = 0; ky < kh; ++ky) {
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32x4_t wv = vldrbq_z_s32(w + 4 * (ky * kw + kx), p);
            if (ky < wd->ky0 || ky >= wd->ky1 || kx < wd->kx0 || kx >= wd->kx1) {
                acc = vmlaq_n_s32(acc, wv, input_zp);
            } else {
                const int8_t *x = wd->win + (ky - wd->ky0) * wd->row_step + (kx - wd->kx0) * wd->col_step;
                acc = vaddq_s32(acc, vmulq_s32(vldrbq_z_s32(x, p), wv));
            }
        }
    }
    return acc;
}

/* Channel octets on MVE for windows inside the image: eight channels per int16 vector (VLDRB.S16), the even
 * and odd lanes' products widened into two int32 accumulators (VMULLB / VMULLT), weights copied per octet into
 * [taps][8] bytes on the stack (taps <= MCUC_DW_OCTET_TAPS). Accumulator lanes hold channels (0, 2, 4, 6) and
 * (1, 3, 5, 7); their requantization constants are gathered in that order and VMOVNB / VMOVNT interleave the
 * results back for one 8-byte store. */
#define MCUC_DW_OCTET_TAPS 64

static inline void mcuc_dw_octet_mve(int32x4_t *even, int32x4_t *odd, const int8_t *x, const int8_t *w,
                                     ptrdiff_t row_step, ptrdiff_t col_step, int32_t kh, int32_t kw)
{
    int32x4_t ae = *even, ao = *odd;
#define MCUC_DW_OCTET_TAP(xp, wp)                                                               \
    do {                                                                                        \
        const int16x8_t xv_ = vldrbq_s16(xp);                                                   \
        const int16x8_t wv_ = vldrbq_s16(wp);                                                   \
        ae = vaddq_s32(ae, vmullbq_int_s16(xv_, wv_));                                          \
        ao = vaddq_s32(ao, vmulltq_int_s16(xv_, wv_));                                          \
    } while (0)
    if (kw == 3) {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step, w += 24) {
            MCUC_DW_OCTET_TAP(x, w);
            __asm__ volatile("" ::: "memory"); /* keeps the next taps' loads after this one's (no spills) */
            MCUC_DW_OCTET_TAP(x + col_step, w + 8);
            __asm__ volatile("" ::: "memory");
            MCUC_DW_OCTET_TAP(x + 2 * col_step, w + 16);
        }
    } else {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step) {
            const int8_t *xr = x;
            for (int32_t kx = 0; kx < kw; ++kx, xr += col_step, w += 8) {
                MCUC_DW_OCTET_TAP(xr, w);
            }
        }
    }
#undef MCUC_DW_OCTET_TAP
    *even = ae;
    *odd = ao;
}
#endif

#if defined(MCUC_DSP) && !defined(MCUC_MVE)
/* The DSP forms of the above: four accumulators (channels 0, 1, 2, 3 of the group). */
#define MCUC_DW_TAP_DSP(x, w, a0, a1, a2, a3)                                                   \
    do {                                                                                        \
        const uint32_t xv_ = mcuc_read_u32(x);                                                  \
        const uint32_t wv_ = mcuc_read_u32(w);                                                  \
        const int32_t xe_ = mcuc_sxtb16(xv_), xo_ = mcuc_sxtb16_ror8(xv_);                      \
        const int32_t we_ = mcuc_sxtb16(wv_), wo_ = mcuc_sxtb16_ror8(wv_);                      \
        a0 = __smlabb(xe_, we_, a0);                                                            \
        a2 = __smlatt(xe_, we_, a2);                                                            \
        a1 = __smlabb(xo_, wo_, a1);                                                            \
        a3 = __smlatt(xo_, wo_, a3);                                                            \
    } while (0)

static void mcuc_dw_full_dsp(int32_t acc[4], const int8_t *x, const int8_t *w, ptrdiff_t row_step,
                             ptrdiff_t col_step, int32_t kh, int32_t kw)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    if (kw == 3) {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step, w += 12) {
            MCUC_DW_TAP_DSP(x, w, a0, a1, a2, a3);
            MCUC_DW_TAP_DSP(x + col_step, w + 4, a0, a1, a2, a3);
            MCUC_DW_TAP_DSP(x + 2 * col_step, w + 8, a0, a1, a2, a3);
            MCUC_STEP_BARRIER();
        }
    } else {
        for (int32_t ky = 0; ky < kh; ++ky, x += row_step) {
            const int8_t *xr = x;
            for (int32_t kx = 0; kx < kw; ++kx, xr += col_step, w += 4) {
                MCUC_DW_TAP_DSP(xr, w, a0, a1, a2, a3);
            }
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* Portable and border form for one channel (lane l of its group): acc + the whole window. */
static int32_t mcuc_dw_window_one(int32_t acc, const mcuc_dw_window_t *wd, const int8_t *w, int32_t kh, int32_t kw,
                                  int32_t input_zp)
{
    for (int32_t ky = 0; ky < kh; ++ky) {
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t wt = w[4 * (ky * kw + kx)];
            if (ky < wd->ky0 || ky >= wd->ky1 || kx < wd->kx0 || kx >= wd->kx1) {
                acc += input_zp * wt;
            } else {
                acc += wd->win[(ky - wd->ky0) * wd->row_step + (kx - wd->kx0) * wd->col_step] * wt;
            }
        }
    }
    return acc;
}

/* The output columns [*first, *end) of a row whose windows lie inside the input columns. */
static void mcuc_dw_inside_cols(const mcuc_depthwise_conv2d_params_t *p, int32_t *first, int32_t *end)
{
    const int32_t span = (p->kernel_w - 1) * p->dilation_w + 1;
    const int32_t last = p->in_w - span + p->pad_left;  /* ox * stride_w <= last */
    *first = (p->pad_left + p->stride_w - 1) / p->stride_w;
    *end = last < 0 ? 0 : last / p->stride_w + 1;
    if (*end > p->out_w) {
        *end = p->out_w;
    }
    if (*first > *end) {
        *first = *end;
    }
}

void mcuc_depthwise_conv2d_simd_s8(const mcuc_depthwise_conv2d_params_t *params,
                                   const mcuc_per_channel_quant_params_t *quant,
                                   const int8_t *restrict input,
                                   const int8_t *restrict weights,
                                   const int32_t *restrict bias,
                                   int8_t *restrict output)
{
    const int32_t in_h = params->in_h;
    const int32_t in_w = params->in_w;
    const int32_t channels = params->in_c;
    const int32_t kh = params->kernel_h;
    const int32_t kw = params->kernel_w;
    const int32_t taps = kh * kw;
    const int32_t dh = params->dilation_h;
    const int32_t dw = params->dilation_w;
    const int32_t sw = params->stride_w;
    const int32_t out_w = params->out_w;
    const int32_t zp = params->output_zp;
    const int32_t lo = params->act_min;
    const int32_t hi = params->act_max;
    const int32_t input_zp = params->input_zp;
    const ptrdiff_t row_step = (ptrdiff_t)dh * in_w * channels;
    const ptrdiff_t col_step = (ptrdiff_t)dw * channels;
    int32_t inside0, inside1;
    mcuc_dw_inside_cols(params, &inside0, &inside1);
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in_b = input + (size_t)n * in_h * in_w * channels;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            mcuc_dw_window_t wd;
            wd.row_step = row_step;
            wd.col_step = col_step;
            const int32_t iy0 = oy * params->stride_h - params->pad_top;
            mcuc_tap_range(iy0, dh, kh, in_h, &wd.ky0, &wd.ky1);
            /* output columns whose whole window is inside the input: none on a row that reaches the padding */
            const int rows_inside = wd.ky0 == 0 && wd.ky1 == kh;
            const int32_t ox0 = rows_inside ? inside0 : 0;
            const int32_t ox1 = rows_inside ? inside1 : 0;
            const int8_t *in_row = in_b + (ptrdiff_t)iy0 * in_w * channels;  /* used only for inside windows */
            int8_t *out_row = output + ((size_t)n * params->out_h + oy) * out_w * channels;
            int32_t c = 0;
#if defined(MCUC_MVE)
            const int32x4_t zero = vdupq_n_s32(0);
            for (; c < channels; c += 4) {
                const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
                const int whole = c + 4 <= channels;
                const int octet = c + 8 <= channels && ox1 > ox0 && taps <= MCUC_DW_OCTET_TAPS;
                const int8_t *w = weights + (size_t)(c >> 2) * taps * 4;
                int8_t wo[8 * MCUC_DW_OCTET_TAPS];
                int32x4_t b_e = zero, b_o = zero, mult_e = zero, mult_o = zero;
                int32x4_t left_e = zero, left_o = zero, right_e = zero, right_o = zero;
                if (octet) {
                    for (int32_t t = 0; t < taps; ++t) {
                        memcpy(wo + 8 * t, w + 4 * t, 4);
                        memcpy(wo + 8 * t + 4, w + 4 * taps + 4 * t, 4);
                    }
                    const uint32x4_t lanes_e = vidupq_n_u32(0, 2);
                    const uint32x4_t lanes_o = vaddq_n_u32(lanes_e, 1);
                    b_e = vldrwq_gather_shifted_offset_s32(bias + c, lanes_e);
                    b_o = vldrwq_gather_shifted_offset_s32(bias + c, lanes_o);
                    mult_e = vldrwq_gather_shifted_offset_s32(quant->multiplier + c, lanes_e);
                    mult_o = vldrwq_gather_shifted_offset_s32(quant->multiplier + c, lanes_o);
                    const int32x4_t shift_e = vldrwq_gather_shifted_offset_s32(quant->shift + c, lanes_e);
                    const int32x4_t shift_o = vldrwq_gather_shifted_offset_s32(quant->shift + c, lanes_o);
                    left_e = vmaxq_s32(shift_e, zero);
                    right_e = vminq_s32(shift_e, zero);
                    left_o = vmaxq_s32(shift_o, zero);
                    right_o = vminq_s32(shift_o, zero);
                }
                /* the quads c and (octet) c + 4 one by one where a window is not inside the image */
                for (int32_t half = 0; half < (octet ? 2 : 1); ++half) {
                    const int32_t cq = c + 4 * half;
                    const mve_pred16_t pq = half ? vctp32q(4u) : p;
                    const int8_t *wq = w + (size_t)half * taps * 4;
                    const int32x4_t b = vldrwq_z_s32(bias + cq, pq);
                    const int32x4_t mult = vldrwq_z_s32(quant->multiplier + cq, pq);
                    const int32x4_t shift = vldrwq_z_s32(quant->shift + cq, pq);
                    const int32x4_t left = vmaxq_s32(shift, zero);
                    const int32x4_t right = vminq_s32(shift, zero);
                    for (int32_t ox = 0; ox < out_w; ++ox) {
                        const int32_t ix0 = ox * sw - params->pad_left;
                        const int inside = whole && ox >= ox0 && ox < ox1;
                        if (octet && inside) {
                            continue;
                        }
                        int32x4_t acc;
                        if (inside) {
                            acc = mcuc_dw_full_mve(b, in_row + (ptrdiff_t)ix0 * channels + cq, wq, row_step, col_step,
                                                   kh, kw);
                        } else {
                            mcuc_tap_range(ix0, dw, kw, in_w, &wd.kx0, &wd.kx1);
                            wd.win = wd.ky0 < wd.ky1 && wd.kx0 < wd.kx1
                                         ? in_b + ((ptrdiff_t)(iy0 + wd.ky0 * dh) * in_w + (ix0 + wd.kx0 * dw)) * channels
                                               + cq
                                         : in_b;
                            acc = mcuc_dw_window_mve(b, &wd, wq, kh, kw, input_zp, pq);
                        }
                        int32x4_t y = vaddq_n_s32(mcuc_requantize_mve(acc, mult, left, right), zp);
                        y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(lo)), vdupq_n_s32(hi));
                        vstrbq_p_s32(out_row + (size_t)ox * channels + cq, y, pq);
                    }
                }
                if (octet) {
                    for (int32_t ox = ox0; ox < ox1; ++ox) {
                        int32x4_t ae = b_e, ao = b_o;
                        mcuc_dw_octet_mve(&ae, &ao, in_row + (ptrdiff_t)(ox * sw - params->pad_left) * channels + c, wo,
                                          row_step, col_step, kh, kw);
                        ae = vaddq_n_s32(mcuc_requantize_mve(ae, mult_e, left_e, right_e), zp);
                        ae = vminq_s32(vmaxq_s32(ae, vdupq_n_s32(lo)), vdupq_n_s32(hi));
                        ao = vaddq_n_s32(mcuc_requantize_mve(ao, mult_o, left_o, right_o), zp);
                        ao = vminq_s32(vmaxq_s32(ao, vdupq_n_s32(lo)), vdupq_n_s32(hi));
                        int16x8_t y = vmovnbq_s32(vdupq_n_s16(0), ae);
                        y = vmovntq_s32(y, ao);
                        vstrbq_s16(out_row + (size_t)ox * channels + c, y);
                    }
                    c += 4;
                }
            }
#elif defined(MCUC_DSP)
            for (; c + 4 <= channels; c += 4) {
                const int8_t *w = weights + (size_t)(c >> 2) * taps * 4;
                const int32_t *rq = quant->requant + 4 * c;
                for (int32_t ox = 0; ox < out_w; ++ox) {
                    const int32_t ix0 = ox * sw - params->pad_left;
                    int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
                    if (ox >= ox0 && ox < ox1) {
                        mcuc_dw_full_dsp(acc, in_row + (ptrdiff_t)ix0 * channels + c, w, row_step, col_step, kh, kw);
                    } else {
                        mcuc_tap_range(ix0, dw, kw, in_w, &wd.kx0, &wd.kx1);
                        const int8_t *win = wd.ky0 < wd.ky1 && wd.kx0 < wd.kx1
                                                ? in_b + ((ptrdiff_t)(iy0 + wd.ky0 * dh) * in_w + (ix0 + wd.kx0 * dw))
                                                             * channels + c
                                                : in_b;
                        for (int32_t l = 0; l < 4; ++l) {
                            wd.win = win + l;
                            acc[l] = mcuc_dw_window_one(acc[l], &wd, w + l, kh, kw, input_zp);
                        }
                    }
                    int8_t *out = out_row + (size_t)ox * channels + c;
                    out[0] = mcuc_output_table_s8(acc[0], rq, zp, lo, hi);
                    out[1] = mcuc_output_table_s8(acc[1], rq + 4, zp, lo, hi);
                    out[2] = mcuc_output_table_s8(acc[2], rq + 8, zp, lo, hi);
                    out[3] = mcuc_output_table_s8(acc[3], rq + 12, zp, lo, hi);
                }
            }
#endif
            for (; c < channels; ++c) {
                const int8_t *w = weights + (size_t)(c >> 2) * taps * 4 + (c & 3);
                for (int32_t ox = 0; ox < out_w; ++ox) {
                    const int32_t ix0 = ox * sw - params->pad_left;
                    mcuc_tap_range(ix0, dw, kw, in_w, &wd.kx0, &wd.kx1);
                    wd.win = wd.ky0 < wd.ky1 && wd.kx0 < wd.kx1
                                 ? in_b + ((ptrdiff_t)(iy0 + wd.ky0 * dh) * in_w + (ix0 + wd.kx0 * dw)) * channels + c
                                 : in_b;
                    const int32_t acc = mcuc_dw_window_one(bias[c], &wd, w, kh, kw, input_zp);
                    out_row[(size_t)ox * channels + c] =
                        mcuc_output_s8(acc, quant->multiplier[c], quant->shift[c], zp, lo, hi);
                }
            }
            (void)in_row;
            (void)ox0;
            (void)ox1;
        }
    }
}
