/* mcuc_layernorm_s8.c: integer LayerNorm over the last axis with a fixed-point inverse square root. */
#include "mcuc_norm.h"

/* floor(sqrt(w)) for w < 2^62, bit by bit (exact). */
static uint64_t mcuc_isqrt_u64(uint64_t w)
{
    uint64_t res = 0;
    uint64_t one = (uint64_t)1 << 62;
    while (one > w) {
        one >>= 2;
    }
    while (one != 0) {
        if (w >= res + one) {
            w -= res + one;
            res = (res >> 1) + one;
        } else {
            res >>= 1;
        }
        one >>= 2;
    }
    return res;
}

void mcuc_layernorm_s8(const mcuc_layernorm_params_t *params, const int32_t *gamma_mult,
                       const int64_t *beta_bias, const int8_t *input, int8_t *output)
{
    const int32_t c_n = params->row_size;
    const int32_t t = params->out_shift;
    const int64_t out_round = (int64_t)1 << (t - 1);
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (int64_t)r * c_n;
        int8_t *y = output + (int64_t)r * c_n;
        int32_t s = 0;
        int32_t q2 = 0;
        for (int32_t c = 0; c < c_n; ++c) {
            s += x[c];
            q2 += (int32_t)x[c] * x[c];
        }
        uint64_t v = (uint64_t)((int64_t)c_n * q2 - (int64_t)s * s + params->eps_v);
        int32_t k = 0;
        while (v < ((uint64_t)1 << 60)) {
            v <<= 2;
            ++k;
        }
        const uint64_t inv = ((uint64_t)1 << 62) / mcuc_isqrt_u64(v);
        const int32_t sh = 62 - k - 16;
        const int64_t n_round = (int64_t)1 << (sh - 1);
        for (int32_t c = 0; c < c_n; ++c) {
            const int64_t d = (int64_t)c_n * x[c] - s;
            const int64_t n = (d * (int64_t)inv + n_round) >> sh;
            const int64_t acc = n * gamma_mult[c] + beta_bias[c];
            const int64_t o = params->out_zp + ((acc + out_round) >> t);
            y[c] = (int8_t)(o < -128 ? -128 : (o > 127 ? 127 : o));
        }
    }
}
