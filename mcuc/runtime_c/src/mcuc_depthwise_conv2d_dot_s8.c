/* mcuc_depthwise_conv2d_dot_s8.c: depthwise int8 convolution (depth multiplier 1, no dilation) one channel at a
 * time over int8 rows of the channel's input (the padding as input_zp, the folded bias cancels it): on MVE each
 * output pixel is one VMLADAVA dot product of 16 input bytes and a weight row per kernel row, four pixels per
 * weight load, requantized four pixels per vector; portable C elsewhere (straight from the input). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

#include <stddef.h>

#if defined(MCUC_MVE)
/* What one channel's output needs besides its dot products: bias, requantization and clamp constants. */
typedef struct {
    int32_t bias, mult, left, right, neg, zp, lo, hi;
} mcuc_dw_dot_out_t;

/* The four accumulators as one vector. */
static inline int32x4_t mcuc_dw_dot_lanes(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
    int32x4_t v = vdupq_n_s32(a0);
    v = vsetq_lane_s32(a1, v, 1);
    v = vsetq_lane_s32(a2, v, 2);
    return vsetq_lane_s32(a3, v, 3);
}

/* The dot products of one output row of one channel into sums[ox] for ox < out_w: x points at column 0 of the
 * first of kh consecutive int8 rows `pitch` bytes apart, wb at the channel's weight rows of 16 bytes (zero from
 * kw on); pixel ox reads 16 bytes from x + ox * sw of each row. Four pixels at a time, a last one or two as a
 * pair. Inlined with constant kh and sw for the common kernels. */
static inline __attribute__((always_inline)) void mcuc_dw_dot_sums(const int8_t *x, int32_t pitch,
                                                                   const int8_t *wb, int32_t kh, int32_t sw,
                                                                   int32_t out_w, int32_t *sums)
{
    const int32_t pair = (out_w & 3) != 0 && (out_w & 3) <= 2;
    int32_t groups = pair ? out_w >> 2 : (out_w + 3) >> 2;
    while (groups-- > 0) {
        const int8_t *xr = x;
        const int8_t *wr = wb;
        int8x16_t wv = vldrbq_s8(wr);
        int32_t a0 = vmladavq_s8(vldrbq_s8(xr), wv);
        int32_t a1 = vmladavq_s8(vldrbq_s8(xr + sw), wv);
        int32_t a2 = vmladavq_s8(vldrbq_s8(xr + 2 * sw), wv);
        int32_t a3 = vmladavq_s8(vldrbq_s8(xr + 3 * sw), wv);
#pragma GCC unroll 8
        for (int32_t ky = 1; ky < kh; ++ky) {
            /* one pointer per row, the pixels at immediate offsets (kept from being split per pixel) */
            xr += pitch;
            wr += 16;
            __asm__("" : "+r"(xr), "+r"(wr));
            wv = vldrbq_s8(wr);
            a0 = vmladavaq_s8(a0, vldrbq_s8(xr), wv);
            a1 = vmladavaq_s8(a1, vldrbq_s8(xr + sw), wv);
            a2 = vmladavaq_s8(a2, vldrbq_s8(xr + 2 * sw), wv);
            a3 = vmladavaq_s8(a3, vldrbq_s8(xr + 3 * sw), wv);
        }
        vstrwq_s32(sums, mcuc_dw_dot_lanes(a0, a1, a2, a3));
        sums += 4;
        x += 4 * sw;
    }
    if (pair) {
        const int8_t *xr = x;
        const int8_t *wr = wb;
        int8x16_t wv = vldrbq_s8(wr);
        int32_t a0 = vmladavq_s8(vldrbq_s8(xr), wv);
        int32_t a1 = vmladavq_s8(vldrbq_s8(xr + sw), wv);
#pragma GCC unroll 8
        for (int32_t ky = 1; ky < kh; ++ky) {
            xr += pitch;
            wr += 16;
            __asm__("" : "+r"(xr), "+r"(wr));
            wv = vldrbq_s8(wr);
            a0 = vmladavaq_s8(a0, vldrbq_s8(xr), wv);
            a1 = vmladavaq_s8(a1, vldrbq_s8(xr + sw), wv);
        }
        vstrwq_s32(sums, mcuc_dw_dot_lanes(a0, a1, 0, 0));
    }
}

/* The same for three kernel rows (at x, x1, x2), their weights held in registers across the row, and each input
 * load shared
 * by two pixels: wb holds the weight rows at lanes [0, kw), ws the same rows at lanes [sw, sw + kw) (needs
 * sw + kw <= 16), which meet the next pixel's taps in the same 16 bytes. */
static inline __attribute__((always_inline)) void mcuc_dw_dot_sums3(const int8_t *x, const int8_t *x1,
                                                                    const int8_t *x2, const int8_t *wb,
                                                                    const int8_t *ws, int32_t sw, int32_t groups,
                                                                    int32_t *sums)
{
    const int8x16_t w0 = vldrbq_s8(wb), w1 = vldrbq_s8(wb + 16), w2 = vldrbq_s8(wb + 32);
    const int8x16_t v0 = vldrbq_s8(ws), v1 = vldrbq_s8(ws + 16), v2 = vldrbq_s8(ws + 32);
    while (groups-- > 0) {
        int8x16_t p = vldrbq_s8(x), q = vldrbq_s8(x + 2 * sw);
        int32_t a0 = vmladavq_s8(p, w0);
        int32_t a1 = vmladavq_s8(p, v0);
        int32_t a2 = vmladavq_s8(q, w0);
        int32_t a3 = vmladavq_s8(q, v0);
        p = vldrbq_s8(x1);
        q = vldrbq_s8(x1 + 2 * sw);
        a0 = vmladavaq_s8(a0, p, w1);
        a1 = vmladavaq_s8(a1, p, v1);
        a2 = vmladavaq_s8(a2, q, w1);
        a3 = vmladavaq_s8(a3, q, v1);
        p = vldrbq_s8(x2);
        q = vldrbq_s8(x2 + 2 * sw);
        a0 = vmladavaq_s8(a0, p, w2);
        a1 = vmladavaq_s8(a1, p, v2);
        a2 = vmladavaq_s8(a2, q, w2);
        a3 = vmladavaq_s8(a3, q, v2);
        vstrwq_s32(sums, mcuc_dw_dot_lanes(a0, a1, a2, a3));
        sums += 4;
        x += 4 * sw;
        x1 += 4 * sw;
        x2 += 4 * sw;
    }
}

/* Bias, requantize (mcuc_requantize_mve with the channel's shifts as scalars: neg is -31 for a right shift,
 * -32 otherwise, so that negative lanes move down by one only before a rounding right shift; VQRDMULH never
 * returns INT32_MIN, so the subtraction cannot wrap), add zp, clamp and store the row's out_w pixels (output
 * bytes `channels` apart). */
static inline __attribute__((always_inline)) void mcuc_dw_dot_store_row(const int32_t *sums, int32_t out_w,
                                                                        const mcuc_dw_dot_out_t *o, int8_t *out,
                                                                        int32_t channels)
{
    const uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)channels);
    const int32x4_t lo = vdupq_n_s32(o->lo), hi = vdupq_n_s32(o->hi);
    const int32_t bias = o->bias, left = o->left, mult = o->mult, neg = o->neg, right = o->right, zp = o->zp;
#define MCUC_DW_DOT_OUT(x)                                                                      \
    do {                                                                                        \
        x = vaddq_n_s32(x, bias);                                                               \
        x = vqrdmulhq_n_s32(vshlq_r_s32(x, left), mult);                                        \
        x = vsubq_s32(x, vreinterpretq_s32_u32(vshlq_r_u32(vreinterpretq_u32_s32(x), neg)));    \
        x = vaddq_n_s32(vrshlq_n_s32(x, right), zp);                                            \
        x = vminq_s32(vmaxq_s32(x, lo), hi);                                                    \
    } while (0)
    int32_t groups = out_w >> 2;
    while (groups-- > 0) {
        int32x4_t x = vldrwq_s32(sums);
        MCUC_DW_DOT_OUT(x);
        vstrbq_scatter_offset_s32(out, offsets, x);
        sums += 4;
        out += 4 * channels;
    }
    if (out_w & 3) {
        int32x4_t x = vldrwq_s32(sums);
        MCUC_DW_DOT_OUT(x);
        vstrbq_scatter_offset_p_s32(out, offsets, x, vctp32q((uint32_t)(out_w & 3)));
    }
#undef MCUC_DW_DOT_OUT
}

/* Where the input columns of a ring row go (the same for every row of the layer): `chunks` 8-column gathers
 * and a partial one of `tail` columns, from column `pad` on. The columns around them hold input_zp from the
 * start (mcuc_dw_dot_zero_ring) and are never written again. */
typedef struct {
    int32_t pad, chunks, tail, width;
    size_t step; /* input bytes of one 8-column gather */
} mcuc_dw_dot_fill_t;

static mcuc_dw_dot_fill_t mcuc_dw_dot_fill_plan(const mcuc_depthwise_conv2d_params_t *p, int32_t width)
{
    mcuc_dw_dot_fill_t f;
    const int32_t pad = p->pad_left < width ? p->pad_left : width;
    const int32_t end = p->pad_left + p->in_w < width ? p->in_w : width - pad; /* input columns kept */
    f.pad = pad;
    f.chunks = end >> 3;
    f.tail = end & 7;
    f.width = width;
    f.step = (size_t)8 * p->in_c;
    return f;
}

/* n bytes of value v from dst on, in whole vectors (up to 15 bytes past the end). */
static void mcuc_dw_dot_set(int8_t *dst, int32_t n, int8x16_t v)
{
    for (int32_t j = 0; j < n; j += 16) {
        vstrbq_s8(dst + j, v);
    }
}

/* Input row `src` (its channel's first byte; NULL for a row of padding) into ring row `row` and, with `dup`,
 * its copy at row + copy (a ring that holds each row twice has any kernel_h consecutive rows adjacent; the
 * three-row path takes three row pointers and needs no copy). */
static inline __attribute__((always_inline)) void mcuc_dw_dot_fill(const mcuc_dw_dot_fill_t *f, const int8_t *src,
                                                                   int8_t *row, size_t copy, uint16x8_t gather,
                                                                   int8x16_t zp, int dup)
{
    if (src == NULL) {
        mcuc_dw_dot_set(row, f->width, zp);
        if (dup) {
            mcuc_dw_dot_set(row + copy, f->width, zp);
        }
        return;
    }
    int8_t *d = row + f->pad;
    int8_t *d2 = d + copy;
    const size_t step = f->step;
    int32_t n = f->chunks;
    while (n-- > 0) {
        const int16x8_t v = vldrbq_gather_offset_s16(src, gather);
        vstrbq_s16(d, v);
        if (dup) {
            vstrbq_s16(d2, v);
        }
        src += step;
        d += 8;
        d2 += 8;
    }
    if (f->tail) {
        const mve_pred16_t p = vctp16q((uint32_t)f->tail);
        const int16x8_t v = vldrbq_gather_offset_z_s16(src, gather, p);
        vstrbq_p_s16(d, v, p);
        if (dup) {
            vstrbq_p_s16(d2, v, p);
        }
    }
}

/* What every channel of a layer shares. */
typedef struct {
    mcuc_dw_dot_fill_t fill;
    int8_t *ring;
    int32_t *sums;
    size_t copy, in_row, out_row; /* ring copy offset, bytes of an input row and of an output row */
    int32_t pitch, groups, in_h, out_h, out_w, pad_top, sh, channels;
    int32_t batch; /* output rows whose sums are requantized together (consecutive pixels in sums and output) */
    int32_t pairs; /* three kernel rows and sw + kw <= 16: mcuc_dw_dot_sums3 */
    uint16x8_t gather;
    int8x16_t zp;
} mcuc_dw_dot_layer_t;

/* One channel (in and out point at its first byte): ring rows filled as the output rows reach them, each
 * output row's sums, then the requantization of every `batch` rows at once (a row's sums start where the previous
 * row's pixels end, so the lanes a group computes past out_w are overwritten by the next row). Inlined with
 * constant kh and sw for the common kernels. */
static inline __attribute__((always_inline)) void mcuc_dw_dot_channel(const mcuc_dw_dot_layer_t *k,
                                                                      const int8_t *in, int8_t *out,
                                                                      const int8_t *wb, const mcuc_dw_dot_out_t *o,
                                                                      int32_t kh, int32_t sw, int32_t pairs)
{
    const int three = kh == 3 && pairs; /* mcuc_dw_dot_sums3 on three row pointers, no copies in the ring */
    int32_t filled = -k->pad_top; /* next input row to put in the ring, at ring row `slot` */
    int32_t slot = 0, base = 0;   /* base: the ring row of the current output row's first input row */
    int32_t *sums = k->sums;
    int32_t rows = 0; /* rows in sums not yet requantized */
    for (int32_t oy = 0; oy < k->out_h; ++oy) {
        const int32_t iy0 = oy * k->sh - k->pad_top;
        if (filled < iy0) { /* a stride past the kernel skips rows */
            slot = (slot + iy0 - filled) % kh;
            filled = iy0;
        }
        for (; filled < iy0 + kh; ++filled) {
            const int8_t *src = filled >= 0 && filled < k->in_h ? in + (size_t)filled * k->in_row : NULL;
            mcuc_dw_dot_fill(&k->fill, src, k->ring + (size_t)slot * k->pitch, k->copy, k->gather, k->zp, !three);
            if (++slot == kh) {
                slot = 0;
            }
        }
        const int8_t *x = k->ring + (size_t)base * k->pitch;
        if (three) {
            const int32_t b1 = base == 2 ? 0 : base + 1, b2 = base == 0 ? 2 : base - 1;
            mcuc_dw_dot_sums3(x, k->ring + (size_t)b1 * k->pitch, k->ring + (size_t)b2 * k->pitch, wb, wb + 256, sw,
                              k->groups, sums);
        } else {
            mcuc_dw_dot_sums(x, k->pitch, wb, kh, sw, k->out_w, sums);
        }
        sums += k->out_w;
        if (++rows == k->batch || oy == k->out_h - 1) {
            mcuc_dw_dot_store_row(k->sums, rows * k->out_w, o, out, k->channels);
            out += (size_t)rows * k->out_row;
            sums = k->sums;
            rows = 0;
        }
        for (base += k->sh; base >= kh; base -= kh) {
        }
    }
}

#define MCUC_DW_DOT_CHANNEL(name, KH, SW, PAIRS)                                                               \
    static void name(const mcuc_dw_dot_layer_t *k, const int8_t *in, int8_t *out, const int8_t *wb,            \
                     const mcuc_dw_dot_out_t *o, int32_t kh, int32_t sw)                                       \
    {                                                                                                          \
        (void)kh;                                                                                              \
        (void)sw;                                                                                              \
        mcuc_dw_dot_channel(k, in, out, wb, o, KH, SW, PAIRS);                                                 \
    }
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_3s1, 3, 1, 1)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_3s2, 3, 2, 1)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_5s1, 5, 1, 0)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_5s2, 5, 2, 0)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_7s1, 7, 1, 0)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_7s2, 7, 2, 0)
MCUC_DW_DOT_CHANNEL(mcuc_dw_dot_channel_any, kh, sw, k->pairs)
#undef MCUC_DW_DOT_CHANNEL

typedef void (*mcuc_dw_dot_channel_fn)(const mcuc_dw_dot_layer_t *k, const int8_t *in, int8_t *out,
                                       const int8_t *wb, const mcuc_dw_dot_out_t *o, int32_t kh, int32_t sw);

/* Columns of one ring row: the 16 bytes every pixel of whole four-pixel groups reads, rounded up to 16 (the
 * same formula as mcuc_depthwise_conv2d_dot_s8_get_buffer_size). */
static int32_t mcuc_dw_dot_width(const mcuc_depthwise_conv2d_params_t *p)
{
    return ((((p->out_w + 3) & ~3) - 1) * p->stride_w + 16 + 15) & ~15;
}

/* Output rows requantized together: as many as hold MCUC_DW_DOT_BATCH_PIXELS pixels, at least one (the same
 * formula as mcuc_depthwise_conv2d_dot_s8_get_buffer_size). */
static int32_t mcuc_dw_dot_batch(const mcuc_depthwise_conv2d_params_t *p)
{
    const int32_t rows = MCUC_DW_DOT_BATCH_PIXELS / p->out_w;
    return rows < 1 ? 1 : rows > p->out_h ? p->out_h : rows;
}
#endif

void mcuc_depthwise_conv2d_dot_s8(const mcuc_depthwise_conv2d_params_t *params,
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
    const int32_t zp = params->output_zp;
    const int32_t lo = params->act_min;
    const int32_t hi = params->act_max;
#if defined(MCUC_MVE)
    const int32_t width = mcuc_dw_dot_width(params);
    mcuc_dw_dot_layer_t k;
    k.fill = mcuc_dw_dot_fill_plan(params, width);
    k.pitch = width + 16; /* a ring row and the slack its whole-vector stores may reach */
    k.copy = (size_t)kh * k.pitch;
    k.groups = (out_w + 3) >> 2;
    k.batch = mcuc_dw_dot_batch(params);
    k.sums = (int32_t *)(void *)scratch; /* the dot products of `batch` output rows, then the ring */
    k.ring = scratch + (size_t)16 * ((k.batch * out_w + 6) >> 2);
    k.in_row = (size_t)params->in_w * channels;
    k.out_row = (size_t)out_w * channels;
    k.in_h = params->in_h;
    k.out_h = params->out_h;
    k.out_w = out_w;
    k.pad_top = params->pad_top;
    k.sh = sh;
    k.channels = channels;
    k.gather = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)channels);
    k.zp = vdupq_n_s8((int8_t)params->input_zp);
    mcuc_dw_dot_set(k.ring, (int32_t)(2 * k.copy), k.zp); /* the padding columns of every ring row */
    k.pairs = kh == 3 && sw + kw <= 16;
    const mcuc_dw_dot_channel_fn run = k.pairs && sw == 1   ? mcuc_dw_dot_channel_3s1
                                       : k.pairs && sw == 2 ? mcuc_dw_dot_channel_3s2
                                       : kh == 5 && sw == 1 ? mcuc_dw_dot_channel_5s1
                                       : kh == 5 && sw == 2 ? mcuc_dw_dot_channel_5s2
                                       : kh == 7 && sw == 1 ? mcuc_dw_dot_channel_7s1
                                       : kh == 7 && sw == 2 ? mcuc_dw_dot_channel_7s2
                                                            : mcuc_dw_dot_channel_any;
    int8_t wb[2 * 16 * 16]; /* the channel's weight rows, 16 bytes each, zero from kw on; then (pairs) shifted */
    mcuc_dw_dot_out_t o;
    o.zp = zp;
    o.lo = lo;
    o.hi = hi;
#else
    (void)scratch;
#endif
    for (int32_t n = 0; n < params->batch; ++n) {
        const int8_t *in = input + (size_t)n * params->in_h * params->in_w * channels;
        int8_t *out_b = output + (size_t)n * params->out_h * out_w * channels;
        for (int32_t c = 0; c < channels; ++c) {
            const int8_t *w = weights + (size_t)c * kh * kw;
#if defined(MCUC_MVE)
            const int32_t shift = quant->shift[c];
            o.bias = bias[c];
            o.mult = quant->multiplier[c];
            o.left = shift > 0 ? shift : 0;
            o.right = shift < 0 ? shift : 0;
            o.neg = shift < 0 ? -31 : -32;
            for (int32_t ky = 0; ky < kh; ++ky) {
                const mve_pred16_t pk = vctp8q((uint32_t)kw);
                const int8x16_t row = vldrbq_z_s8(w + ky * kw, pk);
                vstrbq_s8(wb + 16 * ky, row);
                if (k.pairs) {
                    vstrbq_s8(wb + 256 + 16 * ky, vdupq_n_s8(0));
                    vstrbq_p_s8(wb + 256 + 16 * ky + sw, row, pk);
                }
            }
            run(&k, in + c, out_b + c, wb, &o, kh, sw);
#else
            for (int32_t oy = 0; oy < params->out_h; ++oy) {
                const int32_t iy0 = oy * sh - params->pad_top;
                int8_t *out = out_b + (size_t)oy * out_w * channels + c;
                for (int32_t ox = 0; ox < out_w; ++ox) {
                    const int32_t ix0 = ox * sw - params->pad_left;
                    int32_t acc = bias[c];
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + ky;
                        const int inside_y = iy >= 0 && iy < params->in_h;
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ix0 + kx;
                            const int32_t v = inside_y && ix >= 0 && ix < params->in_w
                                                  ? in[((size_t)iy * params->in_w + ix) * channels + c]
                                                  : params->input_zp;
                            acc += v * w[ky * kw + kx];
                        }
                    }
                    out[(size_t)ox * channels] = mcuc_output_s8(acc, quant->multiplier[c], quant->shift[c], zp, lo,
                                                                hi);
                }
            }
#endif
        }
    }
}
