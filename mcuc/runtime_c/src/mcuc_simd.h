/* mcuc_simd.h: helpers of the kernel variants (not part of the API): the ACLE headers of the core's SIMD
 * extension, unaligned word access, requantization that is exact and short on 32-bit cores, and the int8
 * GEMM core of the pointwise conv, fully connected and im2col kernels.
 *
 * Code paths: __ARM_FEATURE_MVE (Helium, Cortex-M55) uses arm_mve.h intrinsics; __ARM_FEATURE_DSP
 * (Armv7E-M, Cortex-M4/M7) uses arm_acle.h's __sxtb16/__smlad; otherwise portable C99. All paths give the
 * reference's integers bit for bit. */
#ifndef MCUC_SIMD_H
#define MCUC_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcuc_conv.h"
#include "mcuc_support.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define MCUC_MVE 1
#endif
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define MCUC_DSP 1
#endif

#if defined(MCUC_DSP)
/* The two sign-extended even bytes of x as halfwords (SXTB16), and the two odd ones (SXTB16 with ROR #8). */
static inline int32_t mcuc_sxtb16(uint32_t x)
{
    return (int32_t)__sxtb16(x);
}

static inline int32_t mcuc_sxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* Keeps the compiler from hoisting the loads of later unrolled steps above this point, which would only
 * raise register pressure (and spill) on a core without out-of-order execution. */
#define MCUC_STEP_BARRIER() __asm__ volatile("" ::: "memory")

/* acc + the dot product of the halfword pairs of a and b (SMLAD). */
static inline int32_t mcuc_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}
#endif

#if defined(__GNUC__)
#define MCUC_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define MCUC_LIKELY(c) (c)
#endif

/* Four bytes from any address as one word (one LDR on cores with unaligned access). */
static inline uint32_t mcuc_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* mcuc_requantize(x, mult, shift) for shift <= -1, with round = 2^30 + 2^(30 - shift) and e1 = -shift - 1
 * (per-channel constants a caller may hoist out of its pixel loop). SaturatingRoundingDoublingHighMul
 * followed by RoundingDivideByPOT(e) is floor((x*mult + 2^30 + c*2^31) / 2^(31+e)) with
 * c = 2^(e-1) - [h < 0] (nested floors of integer divisions merge), and h < 0 exactly when x*mult < -2^30,
 * which for mult in [2^30, 2^31) or 0 may be tested as x < 0 (the two differ only where both roundings give
 * 0). So the result is the high word of one 64-bit multiply-accumulate (SMLAL) shifted right by e - 1. */
static inline int32_t mcuc_requantize_right(int32_t x, int32_t mult, int64_t round, int32_t e1)
{
    const int64_t k = round - (x < 0 ? ((int64_t)1 << 31) : 0);
    return (int32_t)((k + (int64_t)x * mult) >> 32) >> e1;
}

/* The 64-bit rounding constant of mcuc_requantize_right for shift <= -1: 2^30 + 2^(30+e) with e = -shift,
 * built from u = 2^(e-1) as high word u / 2 and low word (u << 31) | 2^30, without a 64-bit shift. */
static inline int64_t mcuc_requantize_round(int32_t shift)
{
    const uint32_t u = 1u << (uint32_t)(-shift - 1);
    return (int64_t)(((uint64_t)(u >> 1) << 32) | (uint64_t)((u << 31) | 0x40000000u));
}

/* mcuc_requantize(x, mult, shift) for any shift in [-31, 30] (see mcuc_requantize_right). */
static inline int32_t mcuc_requantize_exact(int32_t x, int32_t mult, int32_t shift)
{
    if (shift < 0) {
        return mcuc_requantize_right(x, mult, mcuc_requantize_round(shift), -shift - 1);
    }
    const int32_t xs = (int32_t)((uint32_t)x << shift);
    return (int32_t)(((int64_t)xs * mult + ((int64_t)1 << 30)) >> 31);
}

/* mcuc_requantize(x, multiplier[c], shift[c]) from channel c's entry rq = requant + 4 * c of the compiler's
 * table (mcuc_per_channel_quant_params_t.requant). */
static inline int32_t mcuc_requantize_table(int32_t x, const int32_t *rq)
{
    const int32_t e1 = rq[3];
    if (MCUC_LIKELY(e1 >= 0)) {
        const int64_t round = (int64_t)(((uint64_t)(uint32_t)rq[2] << 32) | (uint32_t)rq[1]);
        return mcuc_requantize_right(x, rq[0], round, e1);
    }
    const int32_t xs = (int32_t)((uint32_t)x << (uint32_t)(-e1 - 1));
    return (int32_t)(((int64_t)xs * rq[0] + ((int64_t)1 << 30)) >> 31);
}

/* Requantize, add the output zero point, clamp: one output value of a conv-family kernel. */
static inline int8_t mcuc_output_s8(int32_t acc, int32_t mult, int32_t shift, int32_t zp, int32_t lo, int32_t hi)
{
    return mcuc_clamp_s8(mcuc_requantize_exact(acc, mult, shift) + zp, lo, hi);
}

/* The same from the compiler's requant table entry of the channel (see mcuc_requantize_table). */
static inline int8_t mcuc_output_table_s8(int32_t acc, const int32_t *rq, int32_t zp, int32_t lo, int32_t hi)
{
    return mcuc_clamp_s8(mcuc_requantize_table(acc, rq) + zp, lo, hi);
}

#if defined(MCUC_MVE)
/* mcuc_requantize on four lanes: left = max(shift, 0), right = min(shift, 0) per lane. VQRDMULH is
 * SaturatingRoundingDoublingHighMul; VRSHL by a negative amount rounds half up, so negative lanes are
 * first moved down by one (only when right < 0), which makes it round half away from zero as
 * RoundingDivideByPOT does. */
static inline int32x4_t mcuc_requantize_mve(int32x4_t x, int32x4_t mult, int32x4_t left, int32x4_t right)
{
    x = vqrdmulhq_s32(vshlq_s32(x, left), mult);
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    return vrshlq_s32(x, right);
}

/* Requantize four accumulators of channels [c, c + 4), add zp, clamp, store the low bytes of the lanes
 * that p enables. */
static inline void mcuc_store_mve(int32x4_t acc, const mcuc_per_channel_quant_params_t *quant, int32_t c,
                                  int32_t zp, int32_t lo, int32_t hi, int8_t *out, mve_pred16_t p)
{
    const int32x4_t shift = vldrwq_z_s32(quant->shift + c, p);
    const int32x4_t zero = vdupq_n_s32(0);
    int32x4_t y = mcuc_requantize_mve(acc, vldrwq_z_s32(quant->multiplier + c, p), vmaxq_s32(shift, zero),
                                      vminq_s32(shift, zero));
    y = vaddq_n_s32(y, zp);
    y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(lo)), vdupq_n_s32(hi));
    vstrbq_p_s32(out, y, p);
}
#endif

/* ---- the GEMM of the pointwise, fully connected and im2col kernels -------------------------------
 * out[r][c] = clamp(requantize(bias[c] + sum_j a[r][j] * w[c][j]) + zp) for r < rows, c < n, j < k. Row r
 * of a starts at a + r * a_stride. bias holds the per-channel terms the compiler folded in (the layer's bias
 * plus input_offset * sum_j w[c][j]), so the inner loops multiply raw int8 values. The compiler re-lays w
 * in quads of output channels and 16-column chunks:
 *   quads[c / 4][j / 16][c % 4][j % 16]   (k16 = k rounded up to 16 columns, zero padded; missing channels
 *                                          of the last quad are zero rows)
 * so one pointer walks the four weight rows of a quad in the order the kernel reads them: MVE loads 16
 * columns of each row per VMLADAVA, DSP cores read the four rows at fixed offsets. */

/* The weight of output channel c at column j in the quad layout. */
static inline int32_t mcuc_quad_weight(const int8_t *quads, int32_t k16, int32_t c, int32_t j)
{
    return quads[(c >> 2) * 4 * k16 + (j >> 4) * 64 + (c & 3) * 16 + (j & 15)];
}

#if defined(MCUC_DSP)
/* Four columns of one row (the word at xp + off) times the same columns of a quad's four weight rows (words
 * at wp + off + 0, 16, 32, 48) into the quad's accumulators. */
#define MCUC_QUAD_STEP(xp, wp, off, s0, s1, s2, s3)                                                 \
    do {                                                                                            \
        const uint32_t x_ = mcuc_read_u32((xp) + (off));                                            \
        const int32_t x_e_ = mcuc_sxtb16(x_), x_o_ = mcuc_sxtb16_ror8(x_);                          \
        uint32_t v_ = mcuc_read_u32((wp) + (off));                                                  \
        s0 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s0);                                                 \
        s0 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s0);                                            \
        v_ = mcuc_read_u32((wp) + (off) + 16);                                                      \
        s1 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s1);                                                 \
        s1 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s1);                                            \
        v_ = mcuc_read_u32((wp) + (off) + 32);                                                      \
        s2 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s2);                                                 \
        s2 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s2);                                            \
        v_ = mcuc_read_u32((wp) + (off) + 48);                                                      \
        s3 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s3);                                                 \
        s3 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s3);                                            \
        MCUC_STEP_BARRIER();                                                                        \
    } while (0)

/* The same for the first two weight rows of a quad only (words at wp + off + 0, 16). */
#define MCUC_PAIR_STEP(xp, wp, off, s0, s1)                                                         \
    do {                                                                                            \
        const uint32_t x_ = mcuc_read_u32((xp) + (off));                                            \
        const int32_t x_e_ = mcuc_sxtb16(x_), x_o_ = mcuc_sxtb16_ror8(x_);                          \
        uint32_t v_ = mcuc_read_u32((wp) + (off));                                                  \
        s0 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s0);                                                 \
        s0 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s0);                                            \
        v_ = mcuc_read_u32((wp) + (off) + 16);                                                      \
        s1 = mcuc_smlad(x_e_, mcuc_sxtb16(v_), s1);                                                 \
        s1 = mcuc_smlad(x_o_, mcuc_sxtb16_ror8(v_), s1);                                            \
    } while (0)

/* The same for one weight row (the word at wp + off). */
#define MCUC_ONE_STEP(xp, wp, off, s0)                                                              \
    do {                                                                                            \
        const uint32_t x_ = mcuc_read_u32((xp) + (off));                                            \
        const uint32_t v_ = mcuc_read_u32((wp) + (off));                                            \
        s0 = mcuc_smlad(mcuc_sxtb16(x_), mcuc_sxtb16(v_), s0);                                      \
        s0 = mcuc_smlad(mcuc_sxtb16_ror8(x_), mcuc_sxtb16_ror8(v_), s0);                            \
    } while (0)
#endif

#if defined(MCUC_MVE)
#if defined(__GNUC__)
#define MCUC_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MCUC_ALWAYS_INLINE inline
#endif

/* The per-quad constants of the GEMM's output stage: requantization (left shift only where some lane
 * shifts left), zero point and clamp. */
typedef struct {
    int32x4_t mult;
    int32x4_t left;
    int32x4_t right;
    int32x4_t lo;
    int32x4_t hi;
    int32_t zp;
} mcuc_gemm_out_mve_t;

/* Four accumulators (bias included) of one row and a channel quad to four int8 at out: requantize (see
 * mcuc_requantize_mve), add zp, clamp, one narrowing store (predicated by p when the quad is partial). */
static MCUC_ALWAYS_INLINE void mcuc_gemm_store_mve(int32x4_t x, const mcuc_gemm_out_mve_t *o, int shift_left,
                                                  int partial, mve_pred16_t p, int8_t *out)
{
    if (shift_left) {
        x = vshlq_s32(x, o->left);
    }
    x = vqrdmulhq_s32(x, o->mult);
    x = vaddq_s32(x, vshrq_n_s32(vandq_s32(x, o->right), 31));
    x = vaddq_n_s32(vrshlq_s32(x, o->right), o->zp);
    x = vminq_s32(vmaxq_s32(x, o->lo), o->hi);
    if (partial) {
        vstrbq_p_s32(out, x, p);
    } else {
        vstrbq_s32(out, x);
    }
}

/* The operands of mcuc_gemm_pair_mve, in memory so that its assembly needs one register for them (offsets
 * fixed: 0 sums, 32 bias, 48 a0, 52 a1, 56 w, 60 chunks). */
typedef struct {
    int32_t sums[8];  /* out: the two rows' four sums */
    int32_t bias[4];  /* the quad's biases, the sums' start */
    const int8_t *a0; /* the two rows, each read for 16 * chunks bytes */
    const int8_t *a1;
    const int8_t *w;  /* the quad's weights */
    int32_t chunks;   /* >= 1 */
} mcuc_gemm_pair_mve_t;

typedef char mcuc_gemm_pair_mve_layout[(offsetof(mcuc_gemm_pair_mve_t, bias) == 32 &&
                                        offsetof(mcuc_gemm_pair_mve_t, a0) == 48 &&
                                        offsetof(mcuc_gemm_pair_mve_t, chunks) == 60) ? 1 : -1];

/* Rows pb->a0 and pb->a1 times one channel quad as two vectors of four accumulators, *v0 and *v1. Inline
 * assembly: VMLADAV accumulates only into even registers, and eight accumulators fill all of them (r0-r12
 * and lr), which the compiler's own allocation does not manage without spilling; the pointers and the count
 * take r1, r3, r5 and r9, leaving r7 and r11 (one may hold a frame pointer) for pb, and the loop counts down
 * with SUBS/BNE. The eight sums leave by one STM of the even registers (lane order) and two
 * vector loads. Unoptimised builds (every value in memory, a frame pointer) cannot spare even that one
 * register: there, intrinsics. */
static MCUC_ALWAYS_INLINE void mcuc_gemm_pair_mve(mcuc_gemm_pair_mve_t *pb, int32x4_t *v0, int32x4_t *v1)
{
#if defined(__GNUC__) && defined(__OPTIMIZE__)
    int32x4_t x0, x1, t;
    __asm__ volatile("ldrd r1, r3, [%[b], #48]\n\t"
                     "ldrd r5, r9, [%[b], #56]\n\t"
                     "ldrd r0, r2, [%[b], #32]\n\t"
                     "ldrd r4, r6, [%[b], #40]\n\t"
                     "ldrd r8, r10, [%[b], #32]\n\t"
                     "ldrd r12, lr, [%[b], #40]\n"
                     "1:\n\t"
                     "vldrb.8 %q[x0], [r1], #16\n\t"
                     "vldrb.8 %q[t], [r5], #64\n\t"
                     "vmladava.s8 r0, %q[x0], %q[t]\n\t"
                     "vldrb.8 %q[x1], [r3], #16\n\t"
                     "vmladava.s8 r8, %q[x1], %q[t]\n\t"
                     "vldrb.8 %q[t], [r5, #-48]\n\t"
                     "vmladava.s8 r2, %q[x0], %q[t]\n\t"
                     "vmladava.s8 r10, %q[x1], %q[t]\n\t"
                     "vldrb.8 %q[t], [r5, #-32]\n\t"
                     "vmladava.s8 r4, %q[x0], %q[t]\n\t"
                     "vmladava.s8 r12, %q[x1], %q[t]\n\t"
                     "vldrb.8 %q[t], [r5, #-16]\n\t"
                     "vmladava.s8 r6, %q[x0], %q[t]\n\t"
                     "vmladava.s8 lr, %q[x1], %q[t]\n\t"
                     "subs r9, r9, #1\n\t"
                     "bne 1b\n\t"
                     "stm %[b], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
                     "vldrw.32 %q[x0], [%[b]]\n\t"
                     "vldrw.32 %q[x1], [%[b], #16]"
                     : [x0] "=&w"(x0), [x1] "=&w"(x1), [t] "=&w"(t)
                     : [b] "r"(pb)
                     : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r12", "lr", "cc", "memory");
#else
    const int8_t *a0 = pb->a0, *a1 = pb->a1, *wp = pb->w;
    int32_t s00 = pb->bias[0], s01 = pb->bias[1], s02 = pb->bias[2], s03 = pb->bias[3];
    int32_t s10 = s00, s11 = s01, s12 = s02, s13 = s03;
    for (int32_t j = 0; j < pb->chunks; ++j, a0 += 16, a1 += 16, wp += 64) {
        const int8x16_t x0 = vldrbq_s8(a0), x1 = vldrbq_s8(a1);
        s00 = vmladavaq_s8(s00, x0, vldrbq_s8(wp));
        s10 = vmladavaq_s8(s10, x1, vldrbq_s8(wp));
        s01 = vmladavaq_s8(s01, x0, vldrbq_s8(wp + 16));
        s11 = vmladavaq_s8(s11, x1, vldrbq_s8(wp + 16));
        s02 = vmladavaq_s8(s02, x0, vldrbq_s8(wp + 32));
        s12 = vmladavaq_s8(s12, x1, vldrbq_s8(wp + 32));
        s03 = vmladavaq_s8(s03, x0, vldrbq_s8(wp + 48));
        s13 = vmladavaq_s8(s13, x1, vldrbq_s8(wp + 48));
    }
    const int32x4_t x0 = vsetq_lane_s32(s03, vsetq_lane_s32(s02, vsetq_lane_s32(s01, vdupq_n_s32(s00), 1), 2), 3);
    const int32x4_t x1 = vsetq_lane_s32(s13, vsetq_lane_s32(s12, vsetq_lane_s32(s11, vdupq_n_s32(s10), 1), 2), 3);
#endif
    *v0 = x0;
    *v1 = x1;
}

/* Rows [0, rows) of a against one channel quad (weights pb->w, k16 columns; biases pb->bias): two rows per block (eight VMLADAV accumulators, each 16-byte slice of the two rows
 * meeting the four weight slices) over the first full_rows rows, then single rows. The first full_rows rows
 * are those that can be read up to k16 without leaving a (the bytes past k belong to later rows and meet zero
 * weights); the single rows read their partial slice with a zeroing predicated load. */
static MCUC_ALWAYS_INLINE void mcuc_gemm_quad_mve(const int8_t *a, int32_t a_stride, int32_t rows,
                                                 int32_t full_rows, int32_t k, int32_t k16,
                                                 mcuc_gemm_pair_mve_t *pb,
                                                 const mcuc_gemm_out_mve_t *o, int shift_left, int partial,
                                                 mve_pred16_t p, int8_t *out, int32_t n)
{
    const int32_t pairs = full_rows >> 1;
    const int8_t *a0 = a;
    int8_t *o0 = out;
    pb->chunks = k16 >> 4;
    for (int32_t i = 0; i < pairs; ++i) {
        int32x4_t v0, v1;
        pb->a0 = a0;
        pb->a1 = a0 + a_stride;
        mcuc_gemm_pair_mve(pb, &v0, &v1);
        mcuc_gemm_store_mve(v0, o, shift_left, partial, p, o0);
        mcuc_gemm_store_mve(v1, o, shift_left, partial, p, o0 + n);
        a0 += 2 * a_stride;
        o0 += 2 * n;
    }
    int32_t r = 2 * pairs;
    for (; r < rows; ++r) {
        const int8_t *a0 = a + r * a_stride;
        const int8_t *wp = pb->w;
        int32_t s0 = pb->bias[0], s1 = pb->bias[1], s2 = pb->bias[2], s3 = pb->bias[3];
        for (int32_t j = 16; j <= k; j += 16) {
            const int8x16_t x0 = vldrbq_s8(a0);
            s0 = vmladavaq_s8(s0, x0, vldrbq_s8(wp));
            s1 = vmladavaq_s8(s1, x0, vldrbq_s8(wp + 16));
            s2 = vmladavaq_s8(s2, x0, vldrbq_s8(wp + 32));
            s3 = vmladavaq_s8(s3, x0, vldrbq_s8(wp + 48));
            a0 += 16;
            wp += 64;
        }
        if (k & 15) {
            const int8x16_t x0 = vldrbq_z_s8(a0, vctp8q((uint32_t)(k & 15)));
            s0 = vmladavaq_s8(s0, x0, vldrbq_s8(wp));
            s1 = vmladavaq_s8(s1, x0, vldrbq_s8(wp + 16));
            s2 = vmladavaq_s8(s2, x0, vldrbq_s8(wp + 32));
            s3 = vmladavaq_s8(s3, x0, vldrbq_s8(wp + 48));
        }
        pb->sums[0] = s0;
        pb->sums[1] = s1;
        pb->sums[2] = s2;
        pb->sums[3] = s3;
        mcuc_gemm_store_mve(vldrwq_s32(pb->sums), o, shift_left, partial, p, out + r * n);
    }
}
#endif

static inline void mcuc_gemm_s8(const int8_t *a, int32_t a_stride, int32_t rows, const int8_t *w, int32_t k,
                                int32_t n, const int32_t *bias, const mcuc_per_channel_quant_params_t *quant,
                                int32_t zp, int32_t lo, int32_t hi, int8_t *out)
{
    const int32_t k16 = (k + 15) & ~15;
#if defined(MCUC_MVE)
    /* Channel quads outermost, so a quad's requantization constants and biases stay in registers while the
     * rows stream past; a partial last quad loads and stores with a predicate. */
    mcuc_gemm_pair_mve_t pb;
    /* rows r with r * a_stride + k16 <= (rows - 1) * a_stride + k */
    int32_t full_rows = rows;
    if (k != k16) {
        full_rows -= (k16 - k + a_stride - 1) / a_stride;
        full_rows = full_rows > 0 ? full_rows : 0;
    }
    const int32x4_t zero = vdupq_n_s32(0);
    mcuc_gemm_out_mve_t o;
    o.lo = vdupq_n_s32(lo);
    o.hi = vdupq_n_s32(hi);
    o.zp = zp;
    const mve_pred16_t all = vctp32q(4);
    const int32_t nfull = n & ~3;
    pb.w = w;
    for (int32_t c = 0; c < nfull; c += 4, pb.w += 4 * k16) {
        const int32x4_t shift = vldrwq_s32(quant->shift + c);
        vstrwq_s32(pb.bias, vldrwq_s32(bias + c));
        o.mult = vldrwq_s32(quant->multiplier + c);
        o.right = vminq_s32(shift, zero);
        if (vmaxvq_s32(0, shift) > 0) {
            o.left = vmaxq_s32(shift, zero);
            mcuc_gemm_quad_mve(a, a_stride, rows, full_rows, k, k16, &pb, &o, 1, 0, all, out + c, n);
        } else {
            mcuc_gemm_quad_mve(a, a_stride, rows, full_rows, k, k16, &pb, &o, 0, 0, all, out + c, n);
        }
    }
    if (nfull < n) {
        /* a partial last quad: its missing channels load as zeros and are not stored */
        const mve_pred16_t p = vctp32q((uint32_t)(n - nfull));
        const int32x4_t shift = vldrwq_z_s32(quant->shift + nfull, p);
        vstrwq_s32(pb.bias, vldrwq_z_s32(bias + nfull, p));
        o.mult = vldrwq_z_s32(quant->multiplier + nfull, p);
        o.left = vmaxq_s32(shift, zero);
        o.right = vminq_s32(shift, zero);
        mcuc_gemm_quad_mve(a, a_stride, rows, full_rows, k, k16, &pb, &o, vmaxvq_s32(0, shift) > 0, 1, p,
                           out + nfull, n);
    }
#elif defined(MCUC_DSP)
    /* One row x four output channels per block: four int8 of each operand per word, split by SXTB16 into
     * even and odd halfword pairs and multiplied pairwise by SMLAD (the same split on both sides keeps the
     * pairs matched); the quad's four weight words sit 16 bytes apart. */
    const int32_t *rq = quant->requant;
    const int32_t k4 = k & ~3;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *a0 = a + (int32_t)r * a_stride;
        int8_t *o0 = out + (int32_t)r * n;
        const int8_t *xend = a0 + (k & ~15);
        int32_t c = 0;
        for (; c + 4 <= n; c += 4) {
            const int8_t *wq = w + (c >> 2) * 4 * k16;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            const int8_t *wp = wq;
            const int8_t *xp = a0;
            for (; xp != xend; xp += 16, wp += 64) {
                MCUC_QUAD_STEP(xp, wp, 0, s0, s1, s2, s3);
                MCUC_QUAD_STEP(xp, wp, 4, s0, s1, s2, s3);
                MCUC_QUAD_STEP(xp, wp, 8, s0, s1, s2, s3);
                MCUC_QUAD_STEP(xp, wp, 12, s0, s1, s2, s3);
            }
            int32_t j = k & ~15;
            for (; j < k4; j += 4) {
                MCUC_QUAD_STEP(xend, wp, (j & 15), s0, s1, s2, s3);
            }
            for (; j < k; ++j) {
                const int8_t *wj = wp + (j & 15);
                s0 += a0[j] * wj[0];
                s1 += a0[j] * wj[16];
                s2 += a0[j] * wj[32];
                s3 += a0[j] * wj[48];
            }
            o0[c] = mcuc_output_table_s8(s0 + bias[c], rq + 4 * c, zp, lo, hi);
            o0[c + 1] = mcuc_output_table_s8(s1 + bias[c + 1], rq + 4 * c + 4, zp, lo, hi);
            o0[c + 2] = mcuc_output_table_s8(s2 + bias[c + 2], rq + 4 * c + 8, zp, lo, hi);
            o0[c + 3] = mcuc_output_table_s8(s3 + bias[c + 3], rq + 4 * c + 12, zp, lo, hi);
        }
        /* a last, partial quad: its first two rows as a pair, then a third one alone (the zero rows are not
         * computed); c is a multiple of 4 here, so the rows sit at offsets 0, 16 and 32 of the quad */
        if (c + 2 <= n) {
            const int8_t *wp = w + (c >> 2) * 4 * k16;
            int32_t s0 = 0, s1 = 0;
            const int8_t *xp = a0;
            for (; xp != xend; xp += 16, wp += 64) {
                MCUC_PAIR_STEP(xp, wp, 0, s0, s1);
                MCUC_PAIR_STEP(xp, wp, 4, s0, s1);
                MCUC_PAIR_STEP(xp, wp, 8, s0, s1);
                MCUC_PAIR_STEP(xp, wp, 12, s0, s1);
            }
            int32_t j = k & ~15;
            for (; j < k4; j += 4) {
                MCUC_PAIR_STEP(xend, wp, (j & 15), s0, s1);
            }
            for (; j < k; ++j) {
                s0 += a0[j] * wp[j & 15];
                s1 += a0[j] * wp[16 + (j & 15)];
            }
            o0[c] = mcuc_output_table_s8(s0 + bias[c], rq + 4 * c, zp, lo, hi);
            o0[c + 1] = mcuc_output_table_s8(s1 + bias[c + 1], rq + 4 * c + 4, zp, lo, hi);
            c += 2;
        }
        if (c < n) {
            const int8_t *wp = w + (c >> 2) * 4 * k16 + (c & 3) * 16;
            int32_t s0 = 0;
            const int8_t *xp = a0;
            for (; xp != xend; xp += 16, wp += 64) {
                MCUC_ONE_STEP(xp, wp, 0, s0);
                MCUC_ONE_STEP(xp, wp, 4, s0);
                MCUC_ONE_STEP(xp, wp, 8, s0);
                MCUC_ONE_STEP(xp, wp, 12, s0);
            }
            int32_t j = k & ~15;
            for (; j < k4; j += 4) {
                MCUC_ONE_STEP(xend, wp, (j & 15), s0);
            }
            for (; j < k; ++j) {
                s0 += a0[j] * wp[j & 15];
            }
            o0[c] = mcuc_output_table_s8(s0 + bias[c], rq + 4 * c, zp, lo, hi);
        }
    }
#else
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *a0 = a + (int32_t)r * a_stride;
        for (int32_t c = 0; c < n; ++c) {
            int32_t s = bias[c];
            for (int32_t j = 0; j < k; ++j) {
                s += a0[j] * mcuc_quad_weight(w, k16, c, j);
            }
            out[(int32_t)r * n + c] = mcuc_output_s8(s, mult[c], shift[c], zp, lo, hi);
        }
    }
#endif
}

/* ---- the widened GEMM of the _wide kernels -------------------------------------------------------
 * Operand rows come in pairs from a scratch "column" buffer: k int8 values per row, padded with zeros to
 * kpad (a multiple of 4). Weights are re-laid by the compiler in pairs of output channels:
 *   pairs[c / 2][j / 4][c % 2][j % 4]   (kpad columns, zero padded; an odd last channel pairs with zeros)
 * so one LDRD fetches four weights of both channels. On DSP cores the two rows are widened once into
 * int16 halfword pairs in the SXTB16 order (even bytes, odd bytes) and every weight word meets them with
 * four SMLADs. */

/* Bytes of the scratch of a widened GEMM over rows of kpad values: two int8 rows, and their int16
 * widening on DSP cores (kept in every build so the planned size does not depend on the core). */
static inline int32_t mcuc_wide_scratch_bytes(int32_t kpad)
{
    return 2 * kpad + 4 * kpad;
}

/* The weight of output channel c at column j in the pair layout. */
static inline int32_t mcuc_wide_weight(const int8_t *pairs, int32_t kpad, int32_t c, int32_t j)
{
    return pairs[((c >> 1) * (kpad >> 2) + (j >> 2)) * 8 + (c & 1) * 4 + (j & 3)];
}

#if defined(MCUC_DSP)
/* One group of four columns: the two widened rows (four words at xp) times the four weights of two channels
 * (two words at wp) into the four accumulators. */
#define MCUC_WIDE_STEP(xp, wp, s00, s01, s10, s11)                                                  \
    do {                                                                                            \
        const int32_t xa_e_ = (int32_t)(xp)[0], xa_o_ = (int32_t)(xp)[1];                           \
        const int32_t xb_e_ = (int32_t)(xp)[2], xb_o_ = (int32_t)(xp)[3];                           \
        const uint32_t v0_ = (wp)[0], v1_ = (wp)[1];                                                \
        int32_t v_e_ = mcuc_sxtb16(v0_), v_o_ = mcuc_sxtb16_ror8(v0_);                              \
        (xp) += 4;                                                                                  \
        (wp) += 2;                                                                                  \
        s00 = mcuc_smlad(xa_e_, v_e_, s00);                                                         \
        s00 = mcuc_smlad(xa_o_, v_o_, s00);                                                         \
        s10 = mcuc_smlad(xb_e_, v_e_, s10);                                                         \
        s10 = mcuc_smlad(xb_o_, v_o_, s10);                                                         \
        v_e_ = mcuc_sxtb16(v1_);                                                                    \
        v_o_ = mcuc_sxtb16_ror8(v1_);                                                               \
        s01 = mcuc_smlad(xa_e_, v_e_, s01);                                                         \
        s01 = mcuc_smlad(xa_o_, v_o_, s01);                                                         \
        s11 = mcuc_smlad(xb_e_, v_e_, s11);                                                         \
        s11 = mcuc_smlad(xb_o_, v_o_, s11);                                                         \
    } while (0)
#endif

/* Output channels [0, n) of two operand rows x0, x1 (kpad int8 each; x1 may be x0) into o0[c], o1[c]
 * (o1 NULL: one row). wide is scratch of 4 * kpad bytes, word aligned. */
static inline void mcuc_gemm_wide_pair(const int8_t *x0, const int8_t *x1, int32_t kpad, uint32_t *wide,
                                       const int8_t *pairs, int32_t n, const int32_t *bias,
                                       const mcuc_per_channel_quant_params_t *quant, int32_t zp, int32_t lo,
                                       int32_t hi, int8_t *o0, int8_t *o1)
{
    const int32_t groups = kpad >> 2;
#if defined(MCUC_DSP)
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t a = mcuc_read_u32(x0 + 4 * g);
        const uint32_t b = mcuc_read_u32(x1 + 4 * g);
        wide[4 * g] = (uint32_t)mcuc_sxtb16(a);
        wide[4 * g + 1] = (uint32_t)mcuc_sxtb16_ror8(a);
        wide[4 * g + 2] = (uint32_t)mcuc_sxtb16(b);
        wide[4 * g + 3] = (uint32_t)mcuc_sxtb16_ror8(b);
    }
    const uint32_t *xend = wide + 4 * groups;
    for (int32_t c = 0; c < n; c += 2) {
        const uint32_t *wp = (const uint32_t *)(const void *)(pairs + (c >> 1) * groups * 8);
        const uint32_t *xp = wide;
        const int second = c + 1 < n;
        int32_t s00 = bias[c], s01 = second ? bias[c + 1] : 0;
        int32_t s10 = s00, s11 = s01;
        if (groups & 1) {
            MCUC_WIDE_STEP(xp, wp, s00, s01, s10, s11);
        }
        while (xp != xend) {
            MCUC_WIDE_STEP(xp, wp, s00, s01, s10, s11);
            MCUC_WIDE_STEP(xp, wp, s00, s01, s10, s11);
        }
        const int32_t *rq = quant->requant + 4 * c;
        o0[c] = mcuc_output_table_s8(s00, rq, zp, lo, hi);
        if (o1 != NULL) {
            o1[c] = mcuc_output_table_s8(s10, rq, zp, lo, hi);
        }
        if (second) {
            o0[c + 1] = mcuc_output_table_s8(s01, rq + 4, zp, lo, hi);
            if (o1 != NULL) {
                o1[c + 1] = mcuc_output_table_s8(s11, rq + 4, zp, lo, hi);
            }
        }
    }
#else
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    (void)wide;
    for (int32_t c = 0; c < n; ++c) {
        int32_t s0 = bias[c], s1 = bias[c];
        for (int32_t j = 0; j < kpad; ++j) {
            const int32_t v = mcuc_wide_weight(pairs, kpad, c, j);
            s0 += x0[j] * v;
            s1 += x1[j] * v;
        }
        o0[c] = mcuc_output_s8(s0, mult[c], shift[c], zp, lo, hi);
        if (o1 != NULL) {
            o1[c] = mcuc_output_s8(s1, mult[c], shift[c], zp, lo, hi);
        }
    }
    (void)groups;
#endif
}

/* ---- im2col --------------------------------------------------------------------------------------- */

/* Columns of one output pixel's receptive field for a groups == 1 convolution:
 * kernel_h * kernel_w * in_c, rounded up to a multiple of 4. */
static inline int32_t mcuc_im2col_kpad(const mcuc_conv2d_params_t *p)
{
    return (p->kernel_h * p->kernel_w * p->in_c + 3) & ~3;
}

/* Output pixels of one GEMM call of mcuc_conv2d_im2col_s8 (im2col rows in its scratch): enough for the
 * GEMM's per-channel-quad set-up to spread over two row pairs. */
#define MCUC_IM2COL_ROWS 4

/* The same rounded up to a multiple of 16 (rows of the quad-layout GEMM). */
static inline int32_t mcuc_im2col_k16(const mcuc_conv2d_params_t *p)
{
    return (p->kernel_h * p->kernel_w * p->in_c + 15) & ~15;
}

/* The receptive field of output pixel (oy, ox) of image `in` as one row of kpad int8, taps in OHWI order
 * (ky, kx, channel): input_zp where a tap lies in the padding (with a folded bias it then contributes
 * nothing), 0 in the columns past kernel_h * kernel_w * in_c. */
static inline void mcuc_im2col_row(const mcuc_conv2d_params_t *p, const int8_t *in, int32_t oy, int32_t ox,
                                   int32_t kpad, int8_t *dst)
{
    const int32_t in_c = p->in_c;
    const int32_t kw = p->kernel_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t span = (kw - 1) * p->dilation_w + 1;
    const int zp = p->input_zp;
    int8_t *d = dst;
    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(d, zp, (size_t)(kw * in_c));
            d += kw * in_c;
            continue;
        }
        const int8_t *row = in + (size_t)iy * (size_t)p->in_w * (size_t)in_c;
        if (p->dilation_w == 1 && ix0 >= 0 && ix0 + span <= p->in_w) {
            memcpy(d, row + (size_t)ix0 * (size_t)in_c, (size_t)(kw * in_c));
            d += kw * in_c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) {
                memset(d, zp, (size_t)in_c);
            } else {
                memcpy(d, row + (size_t)ix * (size_t)in_c, (size_t)in_c);
            }
            d += in_c;
        }
    }
    memset(d, 0, (size_t)(kpad - (int32_t)(d - dst)));
}

#endif /* MCUC_SIMD_H */
