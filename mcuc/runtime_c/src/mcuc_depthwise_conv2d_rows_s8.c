/* mcuc_depthwise_conv2d_rows_s8.c: depthwise int8 convolution (depth multiplier 1, no dilation) one channel at a
 * time over a ring of the channel's input rows, widened to int16 with the padding as input_zp (the folded bias
 * cancels it). DSP cores multiply pairs of taps per SMLAD; MVE cores four output pixels per VMLA with the taps
 * as scalars; portable C elsewhere. */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

/* Columns of one widened row: every tap of four-pixel groups of output columns, plus one column a two-tap
 * read may touch past the last tap (the same formula as mcuc_depthwise_conv2d_rows_s8_get_buffer_size). */
static int32_t mcuc_dw_rows_width(const mcuc_depthwise_conv2d_params_t *p)
{
    const int32_t groups = (p->out_w + 3) & ~3;
    return ((groups + 1) * p->stride_w + p->kernel_w + 2 + 3) & ~3;
}

static void mcuc_fill_s16(int16_t *dst, int32_t n, int16_t v)
{
    int32_t i = 0;
#if defined(MCUC_DSP) && !defined(MCUC_MVE)
    const uint32_t vv = (uint32_t)(uint16_t)v * 0x10001u; /* two columns per store */
    for (; i + 2 <= n; i += 2) {
        memcpy(dst + i, &vv, 4);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = v;
    }
}

#if defined(MCUC_DSP) && !defined(MCUC_MVE)
/* The int16 pair (lo, hi) as one word (PKHBT). */
static inline uint32_t mcuc_dw_rows_pack(int32_t lo, int32_t hi)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

#if defined(__GNUC__)
#define MCUC_DW_ROWS_NOINLINE __attribute__((noinline))
#else
#define MCUC_DW_ROWS_NOINLINE
#endif

/* mcuc_dw_rows_fill of an input row on DSP cores (a function of its own, for the registers): `pad` columns of
 * zp, the n input columns `channels` apart from src widened eight per step and packed two by two, zp up to
 * `width`. */
static MCUC_DW_ROWS_NOINLINE void mcuc_dw_rows_fill_dsp(const int8_t *src, int32_t channels, int16_t *row,
                                                        int32_t pad, int32_t n, int32_t width, int16_t zp)
{
    const size_t c1 = (size_t)channels, c2 = 2 * c1, c3 = 3 * c1;
    mcuc_fill_s16(row, pad, zp);
    int16_t *dst = row + pad;
    const int16_t *const end8 = dst + (n & ~7);
    const int8_t *src4 = src + 4 * c1; /* the second four columns of a step */
    for (; dst != end8; dst += 8, src += 8 * c1, src4 += 8 * c1) {
        const uint32_t v0 = mcuc_dw_rows_pack(src[0], src[c1]);
        const uint32_t v1 = mcuc_dw_rows_pack(src[c2], src[c3]);
        const uint32_t v2 = mcuc_dw_rows_pack(src4[0], src4[c1]);
        const uint32_t v3 = mcuc_dw_rows_pack(src4[c2], src4[c3]);
        memcpy(dst, &v0, 4);
        memcpy(dst + 2, &v1, 4);
        memcpy(dst + 4, &v2, 4);
        memcpy(dst + 6, &v3, 4);
    }
    const int16_t *const end2 = dst + (n & 6);
    for (; dst != end2; dst += 2, src += c2) {
        const uint32_t v = mcuc_dw_rows_pack(src[0], src[c1]);
        memcpy(dst, &v, 4);
    }
    if (n & 1) {
        *dst++ = src[0];
    }
    mcuc_fill_s16(dst, width - pad - n, zp);
}
#endif

/* Input row iy of channel c of image `in` into ring row `row` (int16, `width` columns, padding input_zp). With
 * `split` (MVE, stride 2), even columns go to the first half of the row and odd ones to the second, so that
 * the columns a stride-2 group of output pixels reads are contiguous. */
static void mcuc_dw_rows_fill(const mcuc_depthwise_conv2d_params_t *p, const int8_t *in, int32_t c, int32_t iy,
                              int16_t *row, int32_t width, int split)
{
    const int16_t zp = (int16_t)p->input_zp;
    if (iy < 0 || iy >= p->in_h) {
        mcuc_fill_s16(row, width, zp);
        return;
    }
    const int32_t channels = p->in_c;
    const int8_t *src = in + (size_t)iy * p->in_w * channels + c;
    const int32_t pad = p->pad_left < width ? p->pad_left : width;
    const int32_t end = p->pad_left + p->in_w < width ? p->in_w : width - pad; /* input columns kept */
    if (split) {
        const int32_t half = width >> 1;
        for (int32_t j = 0; j < width; ++j) {
            const int32_t x = j - p->pad_left;
            row[(j & 1) * half + (j >> 1)] = x >= 0 && x < end ? (int16_t)src[(size_t)x * channels] : zp;
        }
        return;
    }
#if defined(MCUC_DSP) && !defined(MCUC_MVE)
    mcuc_dw_rows_fill_dsp(src, channels, row, pad, end, width, zp);
    return;
#endif
    mcuc_fill_s16(row, pad, zp);
    int16_t *dst = row + pad;
    int32_t x = 0;
#if defined(MCUC_MVE)
    const uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)channels);
    for (; x + 4 <= end; x += 4) {
        vstrhq_s32(dst + x, vldrbq_gather_offset_s32(src + (size_t)x * channels, offsets));
    }
#endif
    for (; x + 4 <= end; x += 4) {
        const int8_t *s = src + (size_t)x * channels;
        dst[x] = s[0];
        dst[x + 1] = s[channels];
        dst[x + 2] = s[2 * channels];
        dst[x + 3] = s[3 * channels];
    }
    for (; x < end; ++x) {
        dst[x] = src[(size_t)x * channels];
    }
    mcuc_fill_s16(dst + end, width - pad - end, zp);
}

#if defined(MCUC_DSP) && !defined(MCUC_MVE)
/* What a DSP output row needs besides its input rows: the channel's bias, requantization (table form) and
 * clamp. */
typedef struct {
    int32_t bias, zp, lo, hi, mult, e1, shift;
    int64_t round;
    int64_t round_zp; /* e1 in [0, 22]: round + zp * 2^(32 + e1) (see mcuc_dw_rows_store_dsp) */
    int64_t k_zp;     /* e1 < 0: 2^30 + zp * 2^31 */
} mcuc_dw_rows_out_t;

/* Output pixels of a row whose accumulators the tap loops collect before one loop requantizes them: the tap
 * loops then keep no requantization constants in registers, the requantization loop no taps. */
#define MCUC_DW_ROWS_CHUNK 32

/* Requantize (Y), clamp (CLAMP) and store acc[0, n) `step` apart from out, two pixels per step. */
#define MCUC_DW_ROWS_STORE(Y, CLAMP)                                                              \
    do {                                                                                          \
        const int32_t *const pair_end_ = acc + (n & ~1);                                          \
        for (; acc != pair_end_; acc += 2, out += 2 * step) {                                     \
            *out = CLAMP(Y(acc[0]));                                                              \
            out[step] = CLAMP(Y(acc[1]));                                                         \
        }                                                                                         \
        if (n & 1) {                                                                              \
            *out = CLAMP(Y(acc[0]));                                                              \
        }                                                                                         \
    } while (0)
#define MCUC_DW_ROWS_RIGHT(x) mcuc_requantize_right((x), mult, round_zp, e1)
#define MCUC_DW_ROWS_LEFT(x) \
    (int32_t)(((int64_t)(int32_t)((uint32_t)(x) << left) * mult + k_zp) >> 31)
#define MCUC_DW_ROWS_SSAT(y) (int8_t)__ssat((y), 8)
#define MCUC_DW_ROWS_CLAMP(y) mcuc_clamp_s8((y), lo, hi)

/* The n accumulators acc[] requantized, clamped and stored `step` apart from out. The output zero point rides
 * in the rounding constants (zp * 2^(32 + e1) added before both shifts adds zp after them; the 64-bit sums stay
 * below 2^63 for e1 <= 22 and for the left shifts); SSAT alone clamps without a fused activation. */
static MCUC_DW_ROWS_NOINLINE void mcuc_dw_rows_store_dsp(const int32_t *acc, int32_t n, const mcuc_dw_rows_out_t *o,
                                                         int8_t *out, size_t step)
{
    const int32_t zp = o->zp, lo = o->lo, hi = o->hi, mult = o->mult, e1 = o->e1;
    const int full = lo == -128 && hi == 127;
    if (MCUC_LIKELY(e1 >= 0 && e1 <= 22)) {
        const int64_t round_zp = o->round_zp;
        if (full) {
            MCUC_DW_ROWS_STORE(MCUC_DW_ROWS_RIGHT, MCUC_DW_ROWS_SSAT);
        } else {
            MCUC_DW_ROWS_STORE(MCUC_DW_ROWS_RIGHT, MCUC_DW_ROWS_CLAMP);
        }
    } else if (e1 < 0) {
        /* shift >= 0: mcuc_requantize_exact's (x << shift) * mult + 2^30, >> 31 */
        const uint32_t left = (uint32_t)o->shift;
        const int64_t k_zp = o->k_zp;
        if (full) {
            MCUC_DW_ROWS_STORE(MCUC_DW_ROWS_LEFT, MCUC_DW_ROWS_SSAT);
        } else {
            MCUC_DW_ROWS_STORE(MCUC_DW_ROWS_LEFT, MCUC_DW_ROWS_CLAMP);
        }
    } else {
        const int32_t *const end = acc + n;
        for (; acc != end; ++acc, out += step) {
            *out = mcuc_clamp_s8(mcuc_requantize_exact(*acc, mult, o->shift) + zp, lo, hi);
        }
    }
}

#define MCUC_PAIR(r, j, wj, acc) acc = mcuc_smlad((int32_t)mcuc_read_u32((r) + 2 * (j)), (int32_t)(wj), acc)

/* 3x3, stride 1, into acc[0, n): two output pixels per step share their loads: with x01 = (x0, x1), x12, x23
 * the input pairs of a row, pixel 0 takes x01 . (w0, w1) + x2 * w2 and pixel 1 takes x12 . (w0, w1) + x3 * w2. */
static void mcuc_dw_rows_3x3s1_dsp(const int16_t *r0, const int16_t *r1, const int16_t *r2, const uint32_t *pairs,
                                   int32_t n, int32_t bias, int32_t *acc)
{
    int32_t *const pair_end = acc + (n & ~1);
    for (; acc != pair_end; acc += 2, r0 += 2, r1 += 2, r2 += 2) {
        int32_t a = bias, b = bias;
        const int16_t *r[3] = {r0, r1, r2};
        for (int32_t ky = 0; ky < 3; ++ky) {
            const int32_t x01 = (int32_t)mcuc_read_u32(r[ky]);
            const int32_t x12 = (int32_t)mcuc_read_u32(r[ky] + 1);
            const int32_t x23 = (int32_t)mcuc_read_u32(r[ky] + 2);
            const int32_t w01 = (int32_t)pairs[2 * ky], w2 = (int32_t)pairs[2 * ky + 1];
            a = mcuc_smlad(x01, w01, a);
            a = __smlabb(x23, w2, a);
            b = mcuc_smlad(x12, w01, b);
            b = __smlatb(x23, w2, b);
        }
        acc[0] = a;
        acc[1] = b;
    }
    if (n & 1) {
        int32_t a = bias;
        MCUC_PAIR(r0, 0, pairs[0], a);
        MCUC_PAIR(r0, 1, pairs[1], a);
        MCUC_PAIR(r1, 0, pairs[2], a);
        MCUC_PAIR(r1, 1, pairs[3], a);
        MCUC_PAIR(r2, 0, pairs[4], a);
        MCUC_PAIR(r2, 1, pairs[5], a);
        acc[0] = a;
    }
}

/* 3x3, stride 2, into acc[0, n): pixel ox reads the pairs (x[2ox], x[2ox+1]) and (x[2ox+2], x[2ox+3]) of each
 * row, and the second is the first of pixel ox + 1: two pixels per step load three words a row and take one
 * SMLAD with (w0, w1) and one SMLABB with w2 each. The w2 of rows 0 and 1 share a word (SMLABB / SMLABT). */
/* Row r of two pixels of it: (w0, w1) by SMLAD, w2 by W2MAC (SMLABB or SMLABT of the word holding it). */
#define MCUC_DW_3X3S2_ROW(r, w01, w2, W2MAC, a, b)                                                \
    do {                                                                                          \
        const int32_t x0_ = (int32_t)mcuc_read_u32(r), x1_ = (int32_t)mcuc_read_u32((r) + 2);     \
        const int32_t x2_ = (int32_t)mcuc_read_u32((r) + 4);                                      \
        a = mcuc_smlad(x0_, w01, a);                                                              \
        b = mcuc_smlad(x1_, w01, b);                                                              \
        a = W2MAC(x1_, w2, a);                                                                    \
        b = W2MAC(x2_, w2, b);                                                                    \
    } while (0)

static void mcuc_dw_rows_3x3s2_dsp(const int16_t *r0, const int16_t *r1, const int16_t *r2, const uint32_t *pairs,
                                   int32_t n, int32_t bias, int32_t *acc)
{
    const int32_t w0 = (int32_t)pairs[0], w1 = (int32_t)pairs[2], w2 = (int32_t)pairs[4];
    const int32_t t01 = (int32_t)((pairs[1] & 0xFFFFu) | (pairs[3] << 16)), t2 = (int32_t)pairs[5];
    int32_t *const pair_end = acc + (n & ~1);
    for (; acc != pair_end; acc += 2, r0 += 4, r1 += 4, r2 += 4) {
        int32_t a = bias, b = bias;
        MCUC_DW_3X3S2_ROW(r0, w0, t01, __smlabb, a, b);
        MCUC_DW_3X3S2_ROW(r1, w1, t01, __smlabt, a, b);
        MCUC_DW_3X3S2_ROW(r2, w2, t2, __smlabb, a, b);
        acc[0] = a;
        acc[1] = b;
    }
    if (n & 1) {
        int32_t a = mcuc_smlad((int32_t)mcuc_read_u32(r0), w0, bias);
        a = __smlabb((int32_t)mcuc_read_u32(r0 + 2), t01, a);
        a = mcuc_smlad((int32_t)mcuc_read_u32(r1), w1, a);
        a = __smlabt((int32_t)mcuc_read_u32(r1 + 2), t01, a);
        a = mcuc_smlad((int32_t)mcuc_read_u32(r2), w2, a);
        acc[0] = __smlabb((int32_t)mcuc_read_u32(r2 + 2), t2, a);
    }
}

/* Any kernel into acc[0, n): rows of KW2 tap pairs (kernel widths 3 to 8) at stride SW, two pixels per step
 * sharing each tap pair's load (and at stride 2 their common input pairs), then a last pixel alone. */
#define MCUC_DW_ROWS_TAP2(r, j, wp, SW, a, b)                                                     \
    do {                                                                                          \
        const int32_t wj_ = (int32_t)(wp)[j];                                                     \
        a = mcuc_smlad((int32_t)mcuc_read_u32((r) + 2 * (j)), wj_, a);                            \
        b = mcuc_smlad((int32_t)mcuc_read_u32((r) + (SW) + 2 * (j)), wj_, b);                     \
    } while (0)
#define MCUC_DW_ROWS_LOOP(KW2, SW)                                                                \
    do {                                                                                          \
        int32_t i = 0;                                                                            \
        for (; i + 2 <= n; i += 2) {                                                              \
            int32_t a = bias, b = bias;                                                           \
            const uint32_t *wp = pairs;                                                           \
            for (int32_t ky = 0; ky < kh; ++ky, wp += (KW2)) {                                    \
                const int16_t *r = rows[ky] + i * (SW);                                           \
                MCUC_DW_ROWS_TAP2(r, 0, wp, SW, a, b);                                            \
                if ((KW2) > 1) MCUC_DW_ROWS_TAP2(r, 1 % (KW2), wp, SW, a, b);                     \
                if ((KW2) > 2) MCUC_DW_ROWS_TAP2(r, 2 % (KW2), wp, SW, a, b);                     \
                if ((KW2) > 3) MCUC_DW_ROWS_TAP2(r, 3 % (KW2), wp, SW, a, b);                     \
            }                                                                                     \
            acc[i] = a;                                                                           \
            acc[i + 1] = b;                                                                       \
        }                                                                                         \
        if (i < n) {                                                                              \
            int32_t a = bias;                                                                     \
            const uint32_t *wp = pairs;                                                           \
            for (int32_t ky = 0; ky < kh; ++ky, wp += (KW2)) {                                    \
                const int16_t *r = rows[ky] + i * (SW);                                           \
                MCUC_PAIR(r, 0, wp[0], a);                                                        \
                if ((KW2) > 1) MCUC_PAIR(r, 1, wp[1 % (KW2)], a);                                 \
                if ((KW2) > 2) MCUC_PAIR(r, 2, wp[2 % (KW2)], a);                                 \
                if ((KW2) > 3) MCUC_PAIR(r, 3, wp[3 % (KW2)], a);                                 \
            }                                                                                     \
            acc[i] = a;                                                                           \
        }                                                                                         \
    } while (0)

static void mcuc_dw_rows_any_dsp(const int16_t *const *rows, const uint32_t *pairs, int32_t kh, int32_t kw2,
                                 int32_t sw, int32_t n, int32_t bias, int32_t *acc)
{
    if (kw2 == 2 && sw == 1) {
        MCUC_DW_ROWS_LOOP(2, 1);
    } else if (kw2 == 2) {
        MCUC_DW_ROWS_LOOP(2, 2);
    } else if (kw2 == 3 && sw == 1) {
        MCUC_DW_ROWS_LOOP(3, 1);
    } else if (kw2 == 3) {
        MCUC_DW_ROWS_LOOP(3, 2);
    } else if (kw2 == 4 && sw == 1) {
        MCUC_DW_ROWS_LOOP(4, 1);
    } else if (kw2 == 4) {
        MCUC_DW_ROWS_LOOP(4, 2);
    } else {
        for (int32_t i = 0; i < n; ++i) {
            int32_t a = bias;
            const uint32_t *wp = pairs;
            for (int32_t ky = 0; ky < kh; ++ky, wp += kw2) {
                const int16_t *r = rows[ky] + i * sw;
                for (int32_t j = 0; j < kw2; ++j) {
                    MCUC_PAIR(r, j, wp[j], a);
                }
            }
            acc[i] = a;
        }
    }
}

/* One output row of a channel: the accumulators of up to MCUC_DW_ROWS_CHUNK pixels at a time, then their
 * requantization. */
static MCUC_DW_ROWS_NOINLINE void mcuc_dw_rows_row_dsp(const int16_t *const *rows, const uint32_t *pairs,
                                                       int32_t kh, int32_t kw, int32_t sw, int32_t out_w,
                                                       const mcuc_dw_rows_out_t *o, int8_t *out, size_t step)
{
    int32_t acc[MCUC_DW_ROWS_CHUNK];
    const int16_t *chunk[16];
    for (int32_t ox = 0; ox < out_w; ox += MCUC_DW_ROWS_CHUNK) {
        const int32_t n = out_w - ox < MCUC_DW_ROWS_CHUNK ? out_w - ox : MCUC_DW_ROWS_CHUNK;
        for (int32_t ky = 0; ky < kh; ++ky) {
            chunk[ky] = rows[ky] + ox * sw;
        }
        if (kh == 3 && kw == 3 && sw == 1) {
            mcuc_dw_rows_3x3s1_dsp(chunk[0], chunk[1], chunk[2], pairs, n, o->bias, acc);
        } else if (kh == 3 && kw == 3) {
            mcuc_dw_rows_3x3s2_dsp(chunk[0], chunk[1], chunk[2], pairs, n, o->bias, acc);
        } else {
            mcuc_dw_rows_any_dsp(chunk, pairs, kh, (kw + 1) >> 1, sw, n, o->bias, acc);
        }
        mcuc_dw_rows_store_dsp(acc, n, o, out + (size_t)ox * step, step);
    }
}

static void mcuc_dw_rows_fill(const mcuc_depthwise_conv2d_params_t *p, const int8_t *in, int32_t c, int32_t iy,
                              int16_t *row, int32_t width, int split);

/* Channel c of image `in` into `out` (its first output): the ring of kernel_h widened rows walked by slot, each
 * input row widened once. */
static MCUC_DW_ROWS_NOINLINE void mcuc_dw_rows_channel_dsp(const mcuc_depthwise_conv2d_params_t *p,
                                                           const int8_t *in, int32_t c, const uint32_t *pairs,
                                                           const mcuc_dw_rows_out_t *o, int16_t *ring,
                                                           int32_t width, int8_t *out)
{
    const int32_t kh = p->kernel_h;
    const size_t row_step = (size_t)p->out_w * p->in_c;
    int32_t filled = -p->pad_top; /* next input row to widen, into ring slot `slot` */
    int32_t slot = 0;
    const int16_t *rows[16];
    for (int32_t oy = 0; oy < p->out_h; ++oy, out += row_step) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (; filled < iy0 + kh; ++filled) {
            mcuc_dw_rows_fill(p, in, c, filled, ring + (size_t)slot * width, width, 0);
            slot = slot + 1 == kh ? 0 : slot + 1;
        }
        /* filled == iy0 + kh, so row iy0 sits in slot `slot` */
        for (int32_t ky = 0, s = slot; ky < kh; ++ky, s = s + 1 == kh ? 0 : s + 1) {
            rows[ky] = ring + (size_t)s * width;
        }
        mcuc_dw_rows_row_dsp(rows, pairs, kh, p->kernel_w, p->stride_w, p->out_w, o, out, (size_t)p->in_c);
    }
}
#endif

#if defined(MCUC_MVE)
/* acc + one row of kw taps for four output pixels: x the row's first tap for pixel 0 (pixels 1 to 3 follow,
 * their next taps are `next` columns on), w the row's weights. kw is a constant where unrolled. */
#define MCUC_DW_MVE_TAP(acc, x, w) acc = vmlaq_n_s32(acc, vldrhq_s32(x), (w))
#endif

void mcuc_depthwise_conv2d_rows_s8(const mcuc_depthwise_conv2d_params_t *params,
                                   const mcuc_per_channel_quant_params_t *quant,
                                   int8_t *restrict scratch,
                                   const int8_t *restrict input,
                                   const int8_t *restrict weights,
                                   const int32_t *restrict bias,
                                   int8_t *restrict output)
{
    const int32_t channels = params->in_c;
    const int32_t kh = params->kernel_h;
    const int32_t kw = params->kernel_w;
    const int32_t sh = params->stride_h;
    const int32_t sw = params->stride_w;
    const int32_t out_w = params->out_w;
    const int32_t width = mcuc_dw_rows_width(params);
    const int32_t zp = params->output_zp;
    const int32_t lo = params->act_min;
    const int32_t hi = params->act_max;
    int16_t *ring = (int16_t *)(void *)scratch;
#if defined(MCUC_MVE)
    const int split = sw == 2;
#else
    const int split = 0;
#endif
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in = input + (size_t)n * params->in_h * params->in_w * channels;
        int8_t *out_b = output + (size_t)n * params->out_h * out_w * channels;
        for (int32_t c = 0; c < channels; ++c) {
            const int8_t *w = weights + (size_t)c * kh * kw;
            int32_t filled = -params->pad_top; /* next input row to widen into the ring */
#if defined(MCUC_DSP) && !defined(MCUC_MVE)
            /* the channel's taps as int16 pairs along each row (an odd row ends with a zero) */
            uint32_t *pairs = (uint32_t *)(void *)(scratch + (size_t)kh * width * sizeof(int16_t));
            const int32_t kw2 = (kw + 1) >> 1;
            for (int32_t ky = 0; ky < kh; ++ky) {
                for (int32_t j = 0; j < kw2; ++j) {
                    const int32_t a = w[ky * kw + 2 * j];
                    const int32_t b = 2 * j + 1 < kw ? w[ky * kw + 2 * j + 1] : 0;
                    pairs[ky * kw2 + j] = (uint32_t)(a & 0xFFFF) | ((uint32_t)b << 16);
                }
            }
            const int32_t *rq = quant->requant + 4 * c;
            mcuc_dw_rows_out_t o;
            o.bias = bias[c];
            o.zp = zp;
            o.lo = lo;
            o.hi = hi;
            o.mult = rq[0];
            o.e1 = rq[3];
            o.shift = quant->shift[c];
            o.round = (int64_t)(((uint64_t)(uint32_t)rq[2] << 32) | (uint32_t)rq[1]);
            o.round_zp = o.e1 >= 0 && o.e1 <= 22 ? o.round + (int64_t)zp * ((int64_t)1 << (32 + o.e1)) : 0;
            o.k_zp = ((int64_t)1 << 30) + (int64_t)zp * ((int64_t)1 << 31);
            mcuc_dw_rows_channel_dsp(params, in, c, pairs, &o, ring, width, out_b + c);
            continue;
#elif defined(MCUC_MVE)
            const int32_t shift = quant->shift[c];
            const int32x4_t multv = vdupq_n_s32(quant->multiplier[c]);
            const int32x4_t leftv = vdupq_n_s32(shift > 0 ? shift : 0);
            const int32x4_t rightv = vdupq_n_s32(shift < 0 ? shift : 0);
            const uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)channels);
            const int32x4_t lov = vdupq_n_s32(lo);
            const int32x4_t hiv = vdupq_n_s32(hi);
            const int32_t half = width >> 1;
#endif
            for (int32_t oy = 0; oy < params->out_h; ++oy) {
                const int32_t iy0 = oy * sh - params->pad_top;
                for (; filled < iy0 + kh; ++filled) {
                    mcuc_dw_rows_fill(params, in, c, filled, ring + (size_t)((filled + params->pad_top) % kh) * width,
                                      width, split);
                }
                const int16_t *rows[16];
                for (int32_t ky = 0; ky < kh; ++ky) {
                    rows[ky] = ring + (size_t)((iy0 + ky + params->pad_top) % kh) * width;
                }
                int8_t *out = out_b + (size_t)oy * out_w * channels + c;
#if defined(MCUC_MVE)
                for (int32_t ox = 0; ox < out_w; ox += 4) {
                    int32x4_t acc = vdupq_n_s32(bias[c]);
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int8_t *wr = w + ky * kw;
                        if (split) {
                            const int16_t *even = rows[ky] + ox;
                            const int16_t *odd = even + half;
                            int32_t kx = 0;
                            for (; kx + 2 <= kw; kx += 2) {
                                MCUC_DW_MVE_TAP(acc, even + (kx >> 1), wr[kx]);
                                MCUC_DW_MVE_TAP(acc, odd + (kx >> 1), wr[kx + 1]);
                            }
                            if (kx < kw) {
                                MCUC_DW_MVE_TAP(acc, even + (kx >> 1), wr[kx]);
                            }
                        } else {
                            const int16_t *x = rows[ky] + ox * sw;
                            if (kw == 3) {
                                MCUC_DW_MVE_TAP(acc, x, wr[0]);
                                MCUC_DW_MVE_TAP(acc, x + 1, wr[1]);
                                MCUC_DW_MVE_TAP(acc, x + 2, wr[2]);
                            } else {
                                for (int32_t kx = 0; kx < kw; ++kx) {
                                    MCUC_DW_MVE_TAP(acc, x + kx, wr[kx]);
                                }
                            }
                        }
                    }
                    acc = vaddq_n_s32(mcuc_requantize_mve(acc, multv, leftv, rightv), zp);
                    acc = vminq_s32(vmaxq_s32(acc, lov), hiv);
                    vstrbq_scatter_offset_p_s32(out + (size_t)ox * channels, offsets, acc,
                                                vctp32q((uint32_t)(out_w - ox)));
                }
#else
                for (int32_t ox = 0; ox < out_w; ++ox) {
                    int32_t acc = bias[c];
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int16_t *r = rows[ky] + ox * sw;
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            acc += r[kx] * w[ky * kw + kx];
                        }
                    }
                    out[(size_t)ox * channels] = mcuc_output_s8(acc, quant->multiplier[c], quant->shift[c], zp, lo, hi);
                }
#endif
            }
        }
    }
}
