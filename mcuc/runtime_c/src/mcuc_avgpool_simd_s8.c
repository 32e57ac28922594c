/* mcuc_avgpool_simd_s8.c: int8 NHWC average pooling with the channels as SIMD lanes (MVE: four int32
 * lanes; DSP: four channels per word in int16 pairs) and the division by a reciprocal multiply. */
#include "mcuc_pool.h"
#include "mcuc_internal.h"
#include "mcuc_simd.h"

/* The rounded average of mcuc_avgpool_s8 for acc with |acc| <= 128 * count: n = |acc| + count / 2, then
 * floor(n / count) = floor(n * m / 2^32) with m = ceil(2^32 / count), exact because n * (m * count - 2^32)
 * < 129 * count^2 <= 2^32 for count <= 5,700 (count 1: m = 0, the sum itself). */
static inline int32_t avg_of(int32_t acc, int32_t count, uint32_t m)
{
    const uint32_t n = (uint32_t)(acc < 0 ? -acc : acc) + (uint32_t)(count / 2);
    const int32_t q = count == 1 ? (int32_t)n : (int32_t)(((uint64_t)n * m) >> 32);
    return acc < 0 ? -q : q;
}

void mcuc_avgpool_simd_s8(const mcuc_avgpool_params_t *params, const int8_t *restrict input,
                          int8_t *restrict output)
{
    const int32_t c_n = params->channels;
    const int32_t lo = params->act_min;
    const int32_t hi = params->act_max;
    const ptrdiff_t row_step = (ptrdiff_t)params->in_w * c_n;
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * params->in_h * params->in_w * c_n;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const mcuc_pool_window_t w = mcuc_pool_window(params, oy, ox);
                const int32_t count = w.count;
                const uint32_t m = count > 1 ? 0xFFFFFFFFu / (uint32_t)count + 1u : 0u;
                const int8_t *win = in_b + w.offset;
                int32_t c = 0;
#if defined(MCUC_MVE)
                const int32x4_t half = vdupq_n_s32(count / 2);
                const uint32x4_t mv = vdupq_n_u32(m);
                for (; c < c_n; c += 4) {
                    const mve_pred16_t p = vctp32q((uint32_t)(c_n - c));
                    int32x4_t acc = vdupq_n_s32(0);
                    for (int32_t ky = 0; ky < w.rows; ++ky) {
                        const int8_t *row = win + ky * row_step + c;
                        for (int32_t kx = 0; kx < w.cols; ++kx) {
                            acc = vaddq_s32(acc, vldrbq_z_s32(row + kx * c_n, p));
                        }
                    }
                    const int32x4_t n = vaddq_s32(vabsq_s32(acc), half);
                    int32x4_t q = count == 1 ? n : vreinterpretq_s32_u32(vmulhq_u32(vreinterpretq_u32_s32(n), mv));
                    q = vpselq_s32(vnegq_s32(q), q, vcmpltq_n_s32(acc, 0));
                    q = vminq_s32(vmaxq_s32(q, vdupq_n_s32(lo)), vdupq_n_s32(hi));
                    vstrbq_p_s32(output + c, q, p);
                }
#elif defined(MCUC_DSP)
                /* Four channels per word; at most 256 taps, so the int16 pair sums cannot overflow. */
                for (; c + 4 <= c_n; c += 4) {
                    uint32_t even = 0;
                    uint32_t odd = 0;
                    for (int32_t ky = 0; ky < w.rows; ++ky) {
                        const int8_t *row = win + ky * row_step + c;
                        for (int32_t kx = 0; kx < w.cols; ++kx) {
                            const uint32_t w = mcuc_read_u32(row + kx * c_n);
                            even = __sadd16(even, (uint32_t)mcuc_sxtb16(w));
                            odd = __sadd16(odd, (uint32_t)mcuc_sxtb16_ror8(w));
                        }
                    }
                    output[c] = mcuc_clamp_s8(avg_of((int16_t)(even & 0xFFFFu), count, m), lo, hi);
                    output[c + 1] = mcuc_clamp_s8(avg_of((int16_t)(odd & 0xFFFFu), count, m), lo, hi);
                    output[c + 2] = mcuc_clamp_s8(avg_of((int16_t)(even >> 16), count, m), lo, hi);
                    output[c + 3] = mcuc_clamp_s8(avg_of((int16_t)(odd >> 16), count, m), lo, hi);
                }
#endif
                for (; c < c_n; ++c) {
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < w.rows; ++ky) {
                        const int8_t *row = win + ky * row_step + c;
                        for (int32_t kx = 0; kx < w.cols; ++kx) {
                            acc += row[kx * c_n];
                        }
                    }
                    output[c] = mcuc_clamp_s8(avg_of(acc, count, m), lo, hi);
                }
                output += c_n;
            }
        }
    }
}
