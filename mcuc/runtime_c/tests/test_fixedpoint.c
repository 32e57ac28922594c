/* test_fixedpoint.c: hand-checked values of the TFLite-compatible requantization helpers. */
#include "mcuc_support.h"
#include "mcuc_test.h"

int main(void)
{
    /* 0.5 = 2^30 * 2^(0-31): ties in the doubling high multiply round upward */
    MCUC_CHECK_EQ(mcuc_requantize(3, 1 << 30, 0), 2);
    MCUC_CHECK_EQ(mcuc_requantize(-3, 1 << 30, 0), -1);
    /* 0.25 = 2^30 * 2^(-1-31): the right shift rounds half away from zero */
    MCUC_CHECK_EQ(mcuc_requantize(2, 1 << 30, -1), 1);
    MCUC_CHECK_EQ(mcuc_requantize(-2, 1 << 30, -1), -1);
    MCUC_CHECK_EQ(mcuc_requantize(6, 1 << 30, -1), 2);
    MCUC_CHECK_EQ(mcuc_requantize(-6, 1 << 30, -1), -2);
    /* 3.0 = 1.5 * 2 = (3 * 2^29) * 2^(2-31) */
    MCUC_CHECK_EQ(mcuc_requantize(100, 3 << 29, 2), 300);
    /* saturation of the only overflowing product */
    MCUC_CHECK_EQ(mcuc_sat_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
    MCUC_CHECK_EQ(mcuc_rounding_divide_by_pot(5, 1), 3);
    MCUC_CHECK_EQ(mcuc_rounding_divide_by_pot(-5, 1), -3);
    MCUC_CHECK_EQ(mcuc_clamp_s8(200, -128, 127), 127);
    MCUC_CHECK_EQ(mcuc_clamp_s8(-7, -3, 127), -3);
    MCUC_TEST_DONE("test_fixedpoint");
}
