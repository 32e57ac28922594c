/* mcuc_batch_matmul_simd_s8.c: int8 batched matrix product on DSP / MVE cores, bit-exact with mcuc_batch_matmul_s8. */
#include "mcuc_matmul.h"
#include "mcuc_simd.h"

/* Both operands are activations, so nothing is re-laid at compile time and no scratch is used. With
 * sa = sum_k (a[k] + a_offset) over a row, acc = sum_k (a[k] + a_offset) * b[k] + b_offset * sa is the
 * reference's sum_k (a[k] + a_offset) * (b[k] + b_offset) (each partial term below 2^31 since K * 255 * 255
 * does). b stored [N, K] (transpose_b, b_k_stride == 1) is read as dot products of contiguous rows; b
 * stored [K, N] as rows of N columns scaled by one a value each. */

#if defined(MCUC_MVE)
/* Requantize four lanes, add zp, clamp. */
static inline int32x4_t mm_output_mve(int32x4_t acc, const mcuc_batch_matmul_params_t *p)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t shift = vdupq_n_s32(p->out_shift);
    int32x4_t y = mcuc_requantize_mve(acc, vdupq_n_s32(p->out_mult), vmaxq_s32(shift, zero), vminq_s32(shift, zero));
    y = vaddq_n_s32(y, p->out_zp);
    return vminq_s32(vmaxq_s32(y, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
}

/* sum_k (a[k] + a_offset) of one row of k values. */
static inline int32_t mm_row_sum_mve(const int8_t *a, int32_t k, int32_t a_offset)
{
    int32_t s = 0;
    for (int32_t j = 0; j < k; j += 16) {
        s = vaddvaq_s8(s, vldrbq_z_s8(a + j, vctp8q((uint32_t)(k - j))));
    }
    return s + k * a_offset;
}

/* b stored [N, K]: blocks of two rows x two columns, four VMLADAV dot products per 16-byte slice, the
 * columns' raw sums (VADDVA) for the a_offset term; the four results requantized as one vector and
 * scattered to (r, c), (r, c + 1), (r + 1, c), (r + 1, c + 1). */
static void mm_rows_by_rows_mve(const mcuc_batch_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    const int32_t m_n = p->m, k_n = p->k, n_n = p->n;
    const int32_t ao = p->a_offset, bo = p->b_offset;
    const int32_t kfull = k_n & ~15;
    const uint32x4_t offsets = vsetq_lane_u32((uint32_t)n_n + 1u, vsetq_lane_u32((uint32_t)n_n,
                                              vsetq_lane_u32(1u, vdupq_n_u32(0), 1), 2), 3);
    for (int32_t r = 0; r < m_n; r += 2) {
        const int two = r + 1 < m_n;
        const int8_t *a0 = a + (int32_t)r * k_n;
        const int8_t *a1 = two ? a0 + k_n : a0;
        const int32_t rc0 = bo * mm_row_sum_mve(a0, k_n, ao);
        const int32_t rc1 = bo * mm_row_sum_mve(a1, k_n, ao);
        for (int32_t c = 0; c < n_n; c += 2) {
            const int second = c + 1 < n_n;
            const int8_t *b0 = b + (int32_t)c * k_n;
            const int8_t *b1 = second ? b0 + k_n : b0;
            int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0, t0 = 0, t1 = 0;
            int32_t j = 0;
            for (; j < kfull; j += 16) {
                const int8x16_t x0 = vldrbq_s8(a0 + j);
                const int8x16_t x1 = vldrbq_s8(a1 + j);
                const int8x16_t v0 = vldrbq_s8(b0 + j);
                const int8x16_t v1 = vldrbq_s8(b1 + j);
                s00 = vmladavaq_s8(s00, x0, v0);
                s10 = vmladavaq_s8(s10, x1, v0);
                t0 = vaddvaq_s8(t0, v0);
                s01 = vmladavaq_s8(s01, x0, v1);
                s11 = vmladavaq_s8(s11, x1, v1);
                t1 = vaddvaq_s8(t1, v1);
            }
            if (j < k_n) {
                const mve_pred16_t pk = vctp8q((uint32_t)(k_n - j));
                const int8x16_t x0 = vldrbq_z_s8(a0 + j, pk);
                const int8x16_t x1 = vldrbq_z_s8(a1 + j, pk);
                const int8x16_t v0 = vldrbq_z_s8(b0 + j, pk);
                const int8x16_t v1 = vldrbq_z_s8(b1 + j, pk);
                s00 = vmladavaq_s8(s00, x0, v0);
                s10 = vmladavaq_s8(s10, x1, v0);
                t0 = vaddvaq_s8(t0, v0);
                s01 = vmladavaq_s8(s01, x0, v1);
                s11 = vmladavaq_s8(s11, x1, v1);
                t1 = vaddvaq_s8(t1, v1);
            }
            t0 *= ao;
            t1 *= ao;
            int32x4_t acc = vdupq_n_s32(s00 + t0 + rc0);
            acc = vsetq_lane_s32(s01 + t1 + rc0, acc, 1);
            acc = vsetq_lane_s32(s10 + t0 + rc1, acc, 2);
            acc = vsetq_lane_s32(s11 + t1 + rc1, acc, 3);
            const mve_pred16_t lanes = (mve_pred16_t)((second ? 0x00ffu : 0x000fu) | (two ? (second ? 0xff00u : 0x0f00u) : 0u));
            vstrbq_scatter_offset_p_s32(out + (int32_t)r * n_n + c, offsets, mm_output_mve(acc, p), lanes);
        }
    }
}

/* b stored [K, N]: one row of a against 16 columns at a time, four int32 accumulators; each b row slice is
 * widened by its load (VLDRB.S32) and scaled by a[k] + a_offset (VMLA). Full slices load unpredicated; the
 * last, partial one predicates off the columns past N. */
static void mm_rows_by_columns_mve(const mcuc_batch_matmul_params_t *p, const int8_t *a, const int8_t *b,
                                   int8_t *out)
{
    const int32_t m_n = p->m, k_n = p->k, n_n = p->n;
    const int32_t ao = p->a_offset, bo = p->b_offset;
    const int32_t n16 = n_n & ~15;
    for (int32_t r = 0; r < m_n; ++r) {
        const int8_t *a0 = a + (int32_t)r * k_n;
        const int32_t rc = bo * mm_row_sum_mve(a0, k_n, ao);
        int8_t *o0 = out + (int32_t)r * n_n;
        int32_t c = 0;
        for (; c < n16; c += 16) {
            int32x4_t q0 = vdupq_n_s32(rc), q1 = q0, q2 = q0, q3 = q0;
            const int8_t *bp = b + c;
            for (int32_t j = 0; j < k_n; ++j, bp += n_n) {
                const int32_t x = a0[j] + ao;
                q0 = vmlaq_n_s32(q0, vldrbq_s32(bp), x);
                q1 = vmlaq_n_s32(q1, vldrbq_s32(bp + 4), x);
                q2 = vmlaq_n_s32(q2, vldrbq_s32(bp + 8), x);
                q3 = vmlaq_n_s32(q3, vldrbq_s32(bp + 12), x);
            }
            vstrbq_s32(o0 + c, mm_output_mve(q0, p));
            vstrbq_s32(o0 + c + 4, mm_output_mve(q1, p));
            vstrbq_s32(o0 + c + 8, mm_output_mve(q2, p));
            vstrbq_s32(o0 + c + 12, mm_output_mve(q3, p));
        }
        if (c < n_n) {
            const int32_t left = n_n - c;
            const mve_pred16_t p0 = vctp32q((uint32_t)left);
            const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
            const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
            const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
            int32x4_t q0 = vdupq_n_s32(rc), q1 = q0, q2 = q0, q3 = q0;
            const int8_t *bp = b + c;
            for (int32_t j = 0; j < k_n; ++j, bp += n_n) {
                const int32_t x = a0[j] + ao;
                q0 = vmlaq_n_s32(q0, vldrbq_z_s32(bp, p0), x);
                q1 = vmlaq_n_s32(q1, vldrbq_z_s32(bp + 4, p1), x);
                q2 = vmlaq_n_s32(q2, vldrbq_z_s32(bp + 8, p2), x);
                q3 = vmlaq_n_s32(q3, vldrbq_z_s32(bp + 12, p3), x);
            }
            vstrbq_p_s32(o0 + c, mm_output_mve(q0, p), p0);
            vstrbq_p_s32(o0 + c + 4, mm_output_mve(q1, p), p1);
            vstrbq_p_s32(o0 + c + 8, mm_output_mve(q2, p), p2);
            vstrbq_p_s32(o0 + c + 12, mm_output_mve(q3, p), p3);
        }
    }
}
#elif defined(MCUC_DSP)
/* Output value of per-tensor requantization constants (shift < 0: the hoisted rounding term). */
static inline int8_t mm_output_dsp(int32_t acc, const mcuc_batch_matmul_params_t *p, int64_t round)
{
    const int32_t y = p->out_shift < 0 ? mcuc_requantize_right(acc, p->out_mult, round, -p->out_shift - 1)
                                       : mcuc_requantize_exact(acc, p->out_mult, p->out_shift);
    return mcuc_clamp_s8(y + p->out_zp, p->act_min, p->act_max);
}

/* The rounding term mm_output_dsp hoists out of its loops (0 for a left shift). */
static inline int64_t mm_rounding(const mcuc_batch_matmul_params_t *p)
{
    return p->out_shift < 0 ? mcuc_requantize_round(p->out_shift) : 0;
}

/* sum_k (a[k] + a_offset) of one row of k values. */
static inline int32_t mm_row_sum(const int8_t *a, int32_t k, int32_t a_offset)
{
    int32_t s = k * a_offset;
    for (int32_t j = 0; j < k; ++j) {
        s += a[j];
    }
    return s;
}

/* v in both halfwords of a word: the offset SADD16 adds to each halfword pair. */
static inline uint32_t mm_halfword_pair(int32_t v)
{
    return ((uint32_t)v & 0xffffu) | ((uint32_t)v << 16);
}

/* One output (r, c) the plain way: rc + sum_k (a[k] + a_offset) * b_col[k * b_step], requantized. The
 * columns past the last full quad of every DSP block below. */
static int8_t mm_single_output_dsp(const mcuc_batch_matmul_params_t *p, const int8_t *a0, const int8_t *b_col,
                                   int32_t b_step, int32_t rc, int64_t round)
{
    int32_t s = rc;
    for (int32_t j = 0; j < p->k; ++j) {
        s += (a0[j] + p->a_offset) * b_col[(int32_t)j * b_step];
    }
    return mm_output_dsp(s, p, round);
}

/* b stored [N, K]: one row x four columns per block; four a values per word split by SXTB16 into halfword
 * pairs with a_offset added (SADD16, |a + a_offset| <= 255), each column's word split the same way, SMLAD. */
static void mm_rows_by_rows_dsp(const mcuc_batch_matmul_params_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    const int32_t m_n = p->m, k_n = p->k, n_n = p->n;
    const int32_t k4 = k_n & ~3;
    const int32_t ao = p->a_offset;
    const int32_t ao2 = (int32_t)mm_halfword_pair(ao);
    const int64_t round = mm_rounding(p);
    for (int32_t r = 0; r < m_n; ++r) {
        const int8_t *a0 = a + (int32_t)r * k_n;
        const int32_t rc = p->b_offset * mm_row_sum(a0, k_n, ao);
        int8_t *o0 = out + (int32_t)r * n_n;
        int32_t c = 0;
        for (; c + 4 <= n_n; c += 4) {
            const int8_t *b0 = b + (int32_t)c * k_n;
            const int8_t *b1 = b0 + k_n, *b2 = b1 + k_n, *b3 = b2 + k_n;
            int32_t s0 = rc, s1 = rc, s2 = rc, s3 = rc;
            int32_t j = 0;
            for (; j < k4; j += 4) {
                const uint32_t x = mcuc_read_u32(a0 + j);
                const int32_t xe = (int32_t)__sadd16(mcuc_sxtb16(x), ao2);
                const int32_t xo = (int32_t)__sadd16(mcuc_sxtb16_ror8(x), ao2);
                uint32_t v = mcuc_read_u32(b0 + j);
                s0 = mcuc_smlad(xo, mcuc_sxtb16_ror8(v), mcuc_smlad(xe, mcuc_sxtb16(v), s0));
                v = mcuc_read_u32(b1 + j);
                s1 = mcuc_smlad(xo, mcuc_sxtb16_ror8(v), mcuc_smlad(xe, mcuc_sxtb16(v), s1));
                v = mcuc_read_u32(b2 + j);
                s2 = mcuc_smlad(xo, mcuc_sxtb16_ror8(v), mcuc_smlad(xe, mcuc_sxtb16(v), s2));
                v = mcuc_read_u32(b3 + j);
                s3 = mcuc_smlad(xo, mcuc_sxtb16_ror8(v), mcuc_smlad(xe, mcuc_sxtb16(v), s3));
            }
            for (; j < k_n; ++j) {
                const int32_t x = a0[j] + ao;
                s0 += x * b0[j];
                s1 += x * b1[j];
                s2 += x * b2[j];
                s3 += x * b3[j];
            }
            o0[c] = mm_output_dsp(s0, p, round);
            o0[c + 1] = mm_output_dsp(s1, p, round);
            o0[c + 2] = mm_output_dsp(s2, p, round);
            o0[c + 3] = mm_output_dsp(s3, p, round);
        }
        for (; c < n_n; ++c) {
            o0[c] = mm_single_output_dsp(p, a0, b + (int32_t)c * k_n, 1, rc, round);
        }
    }
}

/* The low halfword of lo with the low halfword of hi above it (PKHBT lo, hi, LSL #16). */
static inline int32_t mm_pkhbt(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

/* The high halfword of hi with the high halfword of lo below it (PKHTB hi, lo, ASR #16). */
static inline int32_t mm_pkhtb(int32_t hi, int32_t lo)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

/* The pair (a[k], a[k+1]) of halfwords xa times rows k and k+1 of b (words w0, w1 at columns c..c+3): SXTB16
 * splits each word into columns (c, c+2) and (c+1, c+3), PKHBT/PKHTB re-pair them as (b[k][c'], b[k+1][c']). */
#define MM_PAIR_STEP(xa, w0, w1, s0, s1, s2, s3)                                                    \
    do {                                                                                            \
        const int32_t e0_ = mcuc_sxtb16(w0), e1_ = mcuc_sxtb16(w1);                                 \
        const int32_t d0_ = mcuc_sxtb16_ror8(w0), d1_ = mcuc_sxtb16_ror8(w1);                       \
        s0 = mcuc_smlad(xa, mm_pkhbt(e0_, e1_), s0);                                                \
        s2 = mcuc_smlad(xa, mm_pkhtb(e1_, e0_), s2);                                                \
        s1 = mcuc_smlad(xa, mm_pkhbt(d0_, d1_), s1);                                                \
        s3 = mcuc_smlad(xa, mm_pkhtb(d1_, d0_), s3);                                                \
    } while (0)

/* Columns of b (stored [K, N]) re-paired once per quad of columns for K up to this, on the stack (512 B). */
#define MM_PAIRED_K 64

/* The four a values of the word at xp as halfword pairs (a[0], a[1]) and (a[2], a[3]) plus a_offset. */
#define MM_A_PAIRS(xp, ao2, x01, x23)                                                               \
    do {                                                                                            \
        const uint32_t xw_ = mcuc_read_u32(xp);                                                     \
        const int32_t xe_ = mcuc_sxtb16(xw_), xo_ = mcuc_sxtb16_ror8(xw_);                          \
        x01 = (int32_t)__sadd16(mm_pkhbt(xe_, xo_), ao2);                                           \
        x23 = (int32_t)__sadd16(mm_pkhtb(xo_, xe_), ao2);                                           \
    } while (0)

/* b stored [K, N] with K <= MM_PAIRED_K: per quad of columns, the halfword pairs (b[k][c'] + b_offset,
 * b[k+1][c'] + b_offset) of the four columns are built once (|b + b_offset| <= 255, so no row sums are
 * needed) and every row of a meets them with SMLAD, four pairs of a per word of a; the k past K rounded
 * down to 4 are added one by one. */
static void mm_rows_by_paired_columns_dsp(const mcuc_batch_matmul_params_t *p, const int8_t *a, const int8_t *b,
                                          int8_t *out)
{
    const int32_t m_n = p->m, k_n = p->k, n_n = p->n;
    const int32_t k4 = k_n & ~3;
    const int32_t ao = p->a_offset;
    const int32_t bo = p->b_offset;
    const int32_t ao2 = (int32_t)mm_halfword_pair(ao);
    const uint32_t bo2 = mm_halfword_pair(bo);
    const int64_t round = mm_rounding(p);
    uint32_t pairs[MM_PAIRED_K / 2][4];
    int32_t c = 0;
    for (; c + 4 <= n_n; c += 4) {
        const int8_t *bp = b + c;
        for (int32_t j = 0; j < k4; j += 2, bp += 2 * n_n) {
            const uint32_t w0 = mcuc_read_u32(bp), w1 = mcuc_read_u32(bp + n_n);
            const int32_t e0 = mcuc_sxtb16(w0), e1 = mcuc_sxtb16(w1);
            const int32_t d0 = mcuc_sxtb16_ror8(w0), d1 = mcuc_sxtb16_ror8(w1);
            uint32_t *q = pairs[j >> 1];
            q[0] = __sadd16((uint32_t)mm_pkhbt(e0, e1), bo2);
            q[1] = __sadd16((uint32_t)mm_pkhbt(d0, d1), bo2);
            q[2] = __sadd16((uint32_t)mm_pkhtb(e1, e0), bo2);
            q[3] = __sadd16((uint32_t)mm_pkhtb(d1, d0), bo2);
        }
        for (int32_t r = 0; r < m_n; ++r) {
            const int8_t *a0 = a + (int32_t)r * k_n;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            const uint32_t *q = pairs[0];
            for (int32_t j = 0; j < k4; j += 4, q += 8) {
                int32_t x01, x23;
                MM_A_PAIRS(a0 + j, ao2, x01, x23);
                s0 = mcuc_smlad(x01, (int32_t)q[0], s0);
                s1 = mcuc_smlad(x01, (int32_t)q[1], s1);
                s2 = mcuc_smlad(x01, (int32_t)q[2], s2);
                s3 = mcuc_smlad(x01, (int32_t)q[3], s3);
                MCUC_STEP_BARRIER();
                s0 = mcuc_smlad(x23, (int32_t)q[4], s0);
                s1 = mcuc_smlad(x23, (int32_t)q[5], s1);
                s2 = mcuc_smlad(x23, (int32_t)q[6], s2);
                s3 = mcuc_smlad(x23, (int32_t)q[7], s3);
            }
            for (int32_t j = k4; j < k_n; ++j) {
                const int32_t x = a0[j] + ao;
                const int8_t *bj = b + (int32_t)j * n_n + c;
                s0 += x * (bj[0] + bo);
                s1 += x * (bj[1] + bo);
                s2 += x * (bj[2] + bo);
                s3 += x * (bj[3] + bo);
            }
            int8_t *o0 = out + (int32_t)r * n_n + c;
            o0[0] = mm_output_dsp(s0, p, round);
            o0[1] = mm_output_dsp(s1, p, round);
            o0[2] = mm_output_dsp(s2, p, round);
            o0[3] = mm_output_dsp(s3, p, round);
        }
    }
    for (; c < n_n; ++c) {
        for (int32_t r = 0; r < m_n; ++r) {
            const int8_t *a0 = a + (int32_t)r * k_n;
            out[(int32_t)r * n_n + c] = mm_single_output_dsp(p, a0, b + c, n_n, bo * mm_row_sum(a0, k_n, ao), round);
        }
    }
}

/* b stored [K, N]: one row x four columns per block over pairs of k; four a values per word become the
 * halfword pairs (a[k], a[k+1]) and (a[k+2], a[k+3]) plus a_offset (SXTB16, PKHBT/PKHTB, SADD16). */
static void mm_rows_by_columns_dsp(const mcuc_batch_matmul_params_t *p, const int8_t *a, const int8_t *b,
                                   int8_t *out)
{
    const int32_t m_n = p->m, k_n = p->k, n_n = p->n;
    const int32_t k4 = k_n & ~3;
    const int32_t ao = p->a_offset;
    const int32_t ao2 = (int32_t)mm_halfword_pair(ao);
    const int64_t round = mm_rounding(p);
    for (int32_t r = 0; r < m_n; ++r) {
        const int8_t *a0 = a + (int32_t)r * k_n;
        const int32_t rc = p->b_offset * mm_row_sum(a0, k_n, ao);
        int8_t *o0 = out + (int32_t)r * n_n;
        int32_t c = 0;
        for (; c + 4 <= n_n; c += 4) {
            int32_t s0 = rc, s1 = rc, s2 = rc, s3 = rc;
            const int8_t *bp = b + c;
            const int8_t *xp = a0;
            const int8_t *xend = a0 + k4;
            for (; xp != xend; xp += 4) {
                const uint32_t xw = mcuc_read_u32(xp);
                const int32_t xe = mcuc_sxtb16(xw), xo = mcuc_sxtb16_ror8(xw);
                const int32_t x01 = (int32_t)__sadd16(mm_pkhbt(xe, xo), ao2);
                const int32_t x23 = (int32_t)__sadd16(mm_pkhtb(xo, xe), ao2);
                uint32_t w0 = mcuc_read_u32(bp), w1 = mcuc_read_u32(bp + n_n);
                bp += 2 * n_n;
                MM_PAIR_STEP(x01, w0, w1, s0, s1, s2, s3);
                w0 = mcuc_read_u32(bp);
                w1 = mcuc_read_u32(bp + n_n);
                bp += 2 * n_n;
                MM_PAIR_STEP(x23, w0, w1, s0, s1, s2, s3);
            }
            for (int32_t j = k4; j < k_n; ++j, bp += n_n) {
                const int32_t x = a0[j] + ao;
                s0 += x * bp[0];
                s1 += x * bp[1];
                s2 += x * bp[2];
                s3 += x * bp[3];
            }
            o0[c] = mm_output_dsp(s0, p, round);
            o0[c + 1] = mm_output_dsp(s1, p, round);
            o0[c + 2] = mm_output_dsp(s2, p, round);
            o0[c + 3] = mm_output_dsp(s3, p, round);
        }
        for (; c < n_n; ++c) {
            o0[c] = mm_single_output_dsp(p, a0, b + c, n_n, rc, round);
        }
    }
}
#endif

void mcuc_batch_matmul_simd_s8(const mcuc_batch_matmul_params_t *params, const int8_t *restrict a,
                               const int8_t *restrict b, int8_t *restrict output)
{
#if defined(MCUC_MVE) || defined(MCUC_DSP)
    const int32_t out_mat = params->m * params->n;
    for (int32_t i0 = 0; i0 < params->batch[0]; ++i0) {
        for (int32_t i1 = 0; i1 < params->batch[1]; ++i1) {
            const int8_t *a_b = a + i0 * params->a_batch_strides[0] + i1 * params->a_batch_strides[1];
            const int8_t *b_b = b + i0 * params->b_batch_strides[0] + i1 * params->b_batch_strides[1];
            int8_t *o_b = output + (i0 * params->batch[1] + i1) * out_mat;
#if defined(MCUC_MVE)
            if (params->b_k_stride == 1) {
                mm_rows_by_rows_mve(params, a_b, b_b, o_b);
            } else {
                mm_rows_by_columns_mve(params, a_b, b_b, o_b);
            }
#else
            if (params->b_k_stride == 1) {
                mm_rows_by_rows_dsp(params, a_b, b_b, o_b);
            } else if (params->k <= MM_PAIRED_K) {
                mm_rows_by_paired_columns_dsp(params, a_b, b_b, o_b);
            } else {
                mm_rows_by_columns_dsp(params, a_b, b_b, o_b);
            }
#endif
        }
    }
#else
    mcuc_batch_matmul_s8(params, a, b, output);
#endif
}
