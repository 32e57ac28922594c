/* mcuc_softmax_simd_s8.c: mcuc_softmax_s8 bit for bit with the row maximum four or sixteen bytes per step, and
 * the division by the row sum as a multiply by its reciprocal, found once per row, and one correction step. */
#include "mcuc_softmax.h"
#include "mcuc_simd.h"

/* floor(n / sum) for n < 2^32 from rcp = floor((2^32 - 1) / sum): q0 = hi32(n * rcp) is floor(n / sum) or one
 * less (n * rcp / 2^32 > n / sum - 1), and the remainder n - q0 * sum tells which. Returns q + zp. */
static inline int32_t div_by_sum(uint32_t n, uint32_t rcp, uint32_t sum, int32_t zp)
{
    const uint32_t q0 = (uint32_t)(((uint64_t)n * rcp) >> 32);
    const uint32_t rem = n - q0 * sum;
#if defined(MCUC_DSP) && defined(__GNUC__)
    /* CMP leaves the carry set exactly when rem >= sum; ADC adds it with zp */
    int32_t q;
    __asm__("cmp %1, %2\n\tadc %0, %3, %4" : "=r"(q) : "r"(rem), "r"(sum), "r"(q0), "r"(zp) : "cc");
    return q;
#else
    return (int32_t)q0 + zp + (rem >= sum);
#endif
}

/* The output byte of exponential e (min(q + zp, 127), and q + zp >= -128). */
static inline int8_t out_byte(uint32_t e, uint32_t levels, uint32_t half, uint32_t rcp, uint32_t sum, int32_t zp)
{
    const int32_t q = div_by_sum(e * levels + half, rcp, sum, zp);
#if defined(MCUC_DSP)
    return (int8_t)__ssat(q, 8);
#else
    return (int8_t)(q > 127 ? 127 : q);
#endif
}

#if defined(MCUC_MVE)
/* Four output values of the differences d = max - x (the lanes' exponentials gathered from the table). */
static inline int32x4_t out_mve(const uint32_t *exp_table, uint32x4_t d, uint32x4_t lv, uint32_t half, uint32x4_t rv,
                                uint32_t sum, int32_t zp)
{
    const uint32x4_t e = vldrwq_gather_shifted_offset_u32(exp_table, d);
    const uint32x4_t num = vmlasq_n_u32(e, lv, half);
    const uint32x4_t q = vmulhq_u32(num, rv);
    const uint32x4_t rem = vmlaq_n_u32(num, q, (uint32_t)0 - sum);
    /* rem >= sum as 0 or 1 without a predicate: rem - (sum - 1) saturated at 0, then at most 1 */
    const uint32x4_t carry = vminq_u32(vqsubq_n_u32(rem, sum - 1u), vdupq_n_u32(1));
    return vaddq_n_s32(vreinterpretq_s32_u32(vaddq_u32(q, carry)), zp);
}
#endif

#if defined(MCUC_DSP) && defined(__GNUC__)
/* m = the byte-wise signed maximum of w and m: SSUB8 sets a GE flag per byte where w >= m, SEL takes those. */
#define MCUC_MAX8(m, w)                                                                                  \
    do {                                                                                                 \
        uint32_t t_;                                                                                     \
        __asm__("ssub8 %1, %2, %0\n\tsel %0, %2, %0" : "+r"(m), "=&r"(t_) : "r"(w));                     \
    } while (0)
#endif

/* The largest value of a row of n int8. */
static int32_t row_max(const int8_t *x, int32_t n)
{
    int32_t mx = -128;
    int32_t i = 0;
#if defined(MCUC_MVE)
    int8_t m8 = -128;
    for (; i + 16 <= n; i += 16) {
        m8 = vmaxvq_s8(m8, vldrbq_s8(x + i));
    }
    if (i < n) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - i));
        m8 = vmaxvq_p_s8(m8, vldrbq_z_s8(x + i, p), p);
        i = n;
    }
    mx = m8;
#elif defined(MCUC_DSP) && defined(__GNUC__)
    /* eight bytes per step in two words of byte-wise maxima */
    if (n >= 4) {
        uint32_t m = mcuc_read_u32(x);
        uint32_t m1 = m;
        for (i = 4; i + 8 <= n; i += 8) {
            const uint32_t w0 = mcuc_read_u32(x + i), w1 = mcuc_read_u32(x + i + 4);
            MCUC_MAX8(m, w0);
            MCUC_MAX8(m1, w1);
        }
        if (i + 4 <= n) {
            const uint32_t w0 = mcuc_read_u32(x + i);
            MCUC_MAX8(m, w0);
            i += 4;
        }
        MCUC_MAX8(m, m1);
        for (int32_t b = 0; b < 32; b += 8) {
            const int32_t v = (int8_t)(m >> b);
            mx = v > mx ? v : mx;
        }
    }
#endif
    for (; i < n; ++i) {
        mx = x[i] > mx ? x[i] : mx;
    }
    return mx;
}

void mcuc_softmax_simd_s8(const mcuc_softmax_params_t *params, const uint32_t *exp_table, const int8_t *input,
                          int8_t *output)
{
    const int32_t n = params->row_size;
    const uint32_t levels = (uint32_t)params->out_levels;
    const int32_t zp = params->out_zp;
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (int32_t)r * n;
        int8_t *y = output + (int32_t)r * n;
        const int32_t mx = row_max(x, n);
        uint32_t sum = 0;
        int32_t i = 0;
#if defined(MCUC_MVE)
        const int32x4_t mxv = vdupq_n_s32(mx);
        for (; i + 4 <= n; i += 4) {
            const uint32x4_t d = vreinterpretq_u32_s32(vsubq_s32(mxv, vldrbq_s32(x + i)));
            sum = vaddvaq_u32(sum, vldrwq_gather_shifted_offset_u32(exp_table, d));
        }
#elif defined(MCUC_DSP)
        /* four differences per word: max - x of each byte is in [0, 255], so USUB8's byte-wise wrap is exact */
        const uint32_t mxw = 0x01010101u * (uint8_t)mx;
        for (; i + 8 <= n; i += 8) {
            const uint32_t d = __usub8(mxw, mcuc_read_u32(x + i));
            const uint32_t d1 = __usub8(mxw, mcuc_read_u32(x + i + 4));
            sum += exp_table[d & 0xFFu] + exp_table[(d >> 8) & 0xFFu] + exp_table[(d >> 16) & 0xFFu] +
                   exp_table[d >> 24] + exp_table[d1 & 0xFFu] + exp_table[(d1 >> 8) & 0xFFu] +
                   exp_table[(d1 >> 16) & 0xFFu] + exp_table[d1 >> 24];
        }
        if (i + 4 <= n) {
            const uint32_t d = __usub8(mxw, mcuc_read_u32(x + i));
            sum += exp_table[d & 0xFFu] + exp_table[(d >> 8) & 0xFFu] + exp_table[(d >> 16) & 0xFFu] +
                   exp_table[d >> 24];
            i += 4;
        }
#endif
        for (; i < n; ++i) {
            sum += exp_table[mx - x[i]];
        }
        const uint32_t half = sum / 2u;
        const uint32_t rcp = 0xFFFFFFFFu / sum;
        i = 0;
#if defined(MCUC_MVE)
        {
            const uint32x4_t lv = vdupq_n_u32(levels);
            const uint32x4_t rv = vdupq_n_u32(rcp);
            const int32x4_t top = vdupq_n_s32(127);
            for (; i + 4 <= n; i += 4) {
                const uint32x4_t d = vreinterpretq_u32_s32(vsubq_s32(mxv, vldrbq_s32(x + i)));
                vstrbq_s32(y + i, vminq_s32(out_mve(exp_table, d, lv, half, rv, sum, zp), top));
            }
            if (i < n) {
                const mve_pred16_t p = vctp32q((uint32_t)(n - i));
                /* inactive lanes read 0 and look up entry max (in [0, 255] for max >= 0, else clamped) */
                const int32x4_t xv = vldrbq_z_s32(x + i, p);
                const uint32x4_t d = vreinterpretq_u32_s32(vminq_s32(vmaxq_s32(vsubq_s32(mxv, xv), vdupq_n_s32(0)),
                                                                     vdupq_n_s32(255)));
                vstrbq_p_s32(y + i, vminq_s32(out_mve(exp_table, d, lv, half, rv, sum, zp), top), p);
            }
            i = n;
        }
#elif defined(MCUC_DSP)
        for (; i + 4 <= n; i += 4) {
            const uint32_t d = __usub8(mxw, mcuc_read_u32(x + i));
            y[i] = out_byte(exp_table[d & 0xFFu], levels, half, rcp, sum, zp);
            y[i + 1] = out_byte(exp_table[(d >> 8) & 0xFFu], levels, half, rcp, sum, zp);
            y[i + 2] = out_byte(exp_table[(d >> 16) & 0xFFu], levels, half, rcp, sum, zp);
            y[i + 3] = out_byte(exp_table[d >> 24], levels, half, rcp, sum, zp);
        }
#endif
        for (; i < n; ++i) {
            y[i] = out_byte(exp_table[mx - x[i]], levels, half, rcp, sum, zp);
        }
    }
}
