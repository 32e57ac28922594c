/* mcuc_softmax_tflite_s8.c: TFLite's reference int8 softmax (gemmlowp fixed point), bit-exact with TFLM. */
#include "mcuc_softmax.h"

#define MCUC_SM_DIFF_INT_BITS 5  /* Q5.26 scaled input differences */
#define MCUC_SM_ACCUM_INT_BITS 12 /* Q12.19 sum of exponentials */

static int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift or rounding right shift. */
static int32_t sat_mul_pot(int32_t x, int32_t exponent)
{
    if (exponent < 0) {
        return mcuc_rounding_divide_by_pot(x, -exponent);
    }
    const int64_t v = (int64_t)x * ((int64_t)1 << exponent);
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668, one_third = 715827883;
    const int32_t x = wrap_add(a, 1 << 28);
    const int32_t x2 = mcuc_sat_rounding_doubling_high_mul(x, x);
    const int32_t x3 = mcuc_sat_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = mcuc_sat_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = sat_mul_pot(x4, -2);
    const int32_t poly = sat_mul_pot(
        wrap_add(mcuc_sat_rounding_doubling_high_mul(wrap_add(x4_over_4, x3), one_third), x2), -1);
    return wrap_add(constant_term, mcuc_sat_rounding_doubling_high_mul(constant_term, wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values for a Q5.26 input <= 0; Q0.31 result. */
static int32_t exp_on_negative_q5(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t frac = 31 - MCUC_SM_DIFF_INT_BITS;
    const int32_t one_quarter = (int32_t)1 << (frac - 2);
    const int32_t a_mod = wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_quarter(sat_mul_pot(a_mod, MCUC_SM_DIFF_INT_BITS));
    const int32_t remainder = wrap_sub(a_mod, a);
    for (int32_t e = -2; e <= 4; ++e) {
        if (remainder & ((int32_t)1 << (frac + e))) {
            result = mcuc_sat_rounding_doubling_high_mul(result, multipliers[e + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in and out (Newton-Raphson in Q2.29). */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = wrap_add(1515870810, mcuc_sat_rounding_doubling_high_mul(half_den, -1010580540));
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = wrap_sub((int32_t)1 << 29, mcuc_sat_rounding_doubling_high_mul(half_den, x));
        x = wrap_add(x, sat_mul_pot(mcuc_sat_rounding_doubling_high_mul(x, one_minus), 2));
    }
    return sat_mul_pot(x, 1);
}

static int32_t count_leading_zeros_u32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

static int32_t scaled_diff(const mcuc_softmax_tflite_params_t *p, int32_t diff)
{
    return mcuc_sat_rounding_doubling_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                               p->input_multiplier);
}

void mcuc_softmax_tflite_s8(const mcuc_softmax_tflite_params_t *params, const int8_t *input, int8_t *output)
{
    const int32_t n = params->row_size;
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (int64_t)r * n;
        int8_t *y = output + (int64_t)r * n;
        int32_t mx = -128;
        for (int32_t i = 0; i < n; ++i) {
            mx = x[i] > mx ? x[i] : mx;
        }
        int32_t sum = 0;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t d = x[i] - mx;
            if (d >= params->diff_min) {
                sum = wrap_add(sum, sat_mul_pot(exp_on_negative_q5(scaled_diff(params, d)), -MCUC_SM_ACCUM_INT_BITS));
            }
        }
        const int32_t headroom_plus_one = count_leading_zeros_u32((uint32_t)sum);
        const int32_t bits_over_unit = MCUC_SM_ACCUM_INT_BITS - headroom_plus_one;
        const int32_t shifted = (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t scale = one_over_one_plus_x(shifted);
        for (int32_t i = 0; i < n; ++i) {
            const int32_t d = x[i] - mx;
            int32_t out = -128;
            if (d >= params->diff_min) {
                const int32_t e = exp_on_negative_q5(scaled_diff(params, d));
                out = mcuc_rounding_divide_by_pot(mcuc_sat_rounding_doubling_high_mul(scale, e),
                                                  bits_over_unit + 31 - 8) - 128;
                out = out > 127 ? 127 : (out < -128 ? -128 : out);
            }
            y[i] = (int8_t)out;
        }
    }
}
