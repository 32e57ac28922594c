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
    return (int32_t)q0 + zp + (rem >= sum);
}

/* The largest value of a row of n int8. */
static int32_t row_max(const int8_t *x, int32_t n)
{
    int32_t mx = -128;
    int32_t i = 0;
#if defined(MCUC_MVE)
    int8_t m8 = -128;
    for (; i < n; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - i));
        m8 = vmaxvq_p_s8(m8, vldrbq_z_s8(x + i, p), p);
    }
    mx = m8;
#elif defined(MCUC_DSP)
    /* four bytes per step: SSUB8 sets a GE flag per byte where w >= m, SEL keeps the larger bytes */
    if (n >= 4) {
        uint32_t m = mcuc_read_u32(x);
        for (i = 4; i + 4 <= n; i += 4) {
            const uint32_t w = mcuc_read_u32(x + i);
            __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(m) : "r"(w), "r"(m));
        }
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
        for (; i < n; i += 4) {
            const mve_pred16_t p = vctp32q((uint32_t)(n - i));
            const uint32x4_t d = vreinterpretq_u32_s32(vsubq_s32(mxv, vldrbq_z_s32(x + i, p)));
            sum = vaddvaq_u32(sum, vldrwq_gather_shifted_offset_z_u32(exp_table, d, p));
        }
#else
        for (; i < n; ++i) {
            sum += exp_table[mx - x[i]];
        }
#endif
        const uint32_t half = sum / 2u;
        const uint32_t rcp = 0xFFFFFFFFu / sum;
        i = 0;
#if defined(MCUC_MVE)
        const uint32x4_t lv = vdupq_n_u32(levels);
        const uint32x4_t rv = vdupq_n_u32(rcp);
        for (; i < n; i += 4) {
            const mve_pred16_t p = vctp32q((uint32_t)(n - i));
            const uint32x4_t d = vreinterpretq_u32_s32(vsubq_s32(mxv, vldrbq_z_s32(x + i, p)));
            const uint32x4_t e = vldrwq_gather_shifted_offset_z_u32(exp_table, d, p);
            const uint32x4_t num = vmlasq_n_u32(e, lv, half);
            uint32x4_t q = vmulhq_u32(num, rv);
            const uint32x4_t rem = vmlaq_n_u32(num, q, (uint32_t)0 - sum);
            q = vaddq_m_n_u32(q, q, 1, vcmpcsq_n_u32(rem, sum));
            const int32x4_t o = vminq_s32(vaddq_n_s32(vreinterpretq_s32_u32(q), zp), vdupq_n_s32(127));
            vstrbq_p_s32(y + i, o, p);
        }
#else
        for (; i < n; ++i) {
            const int32_t q = div_by_sum(exp_table[mx - x[i]] * levels + half, rcp, sum, zp);
#if defined(MCUC_DSP)
            y[i] = (int8_t)__ssat(q, 8); /* q >= -128 */
#else
            y[i] = (int8_t)(q > 127 ? 127 : q);
#endif
        }
#endif
    }
}
