/* test_kernels.c: small hand-computed cases for conv, depthwise, fully connected, pooling, LUT and attention's
 * scratch size. */
#include <string.h>

#include "mcuc.h"
#include "mcuc_test.h"

static const int32_t unit_mult[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}; /* 0.5 * 2^(shift+1) */
static const int32_t shift_one[4] = {1, 1, 1, 1};                          /* multiplier = 1.0 */

static void test_conv_3x3_padded(void)
{
    /* 3x3 input of ones (zero point -1 so x - zp = 2), 3x3 kernel of ones, pad 1:
     * corner sums 4 taps, edges 6, centre 9; times 2, plus bias 1. */
    int8_t input[9], weights[9], output[9];
    memset(input, 1, sizeof input);
    memset(weights, 1, sizeof weights);
    const int32_t bias[1] = {1};
    const mcuc_conv2d_params_t p = {.batch = 1, .in_h = 3, .in_w = 3, .in_c = 1, .out_h = 3, .out_w = 3,
                                    .out_c = 1, .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                                    .dilation_h = 1, .dilation_w = 1, .pad_top = 1, .pad_left = 1, .groups = 1,
                                    .input_zp = -1, .output_zp = 0, .act_min = -128, .act_max = 127};
    const mcuc_per_channel_quant_params_t q = {unit_mult, shift_one, NULL};
    const int8_t want[9] = {9, 13, 9, 13, 19, 13, 9, 13, 9};
    mcuc_conv2d_s8(&p, &q, input, weights, bias, output);
    for (int i = 0; i < 9; ++i) {
        MCUC_CHECK_EQ(output[i], want[i]);
    }
    mcuc_depthwise_conv2d_s8(&p, &q, input, weights, bias, output);
    for (int i = 0; i < 9; ++i) {
        MCUC_CHECK_EQ(output[i], want[i]);
    }
    mcuc_depthwise_conv2d_3x3_s8(&p, &q, input, weights, bias, output);
    for (int i = 0; i < 9; ++i) {
        MCUC_CHECK_EQ(output[i], want[i]);
    }
}

static void test_fully_connected_relu(void)
{
    const int8_t input[3] = {1, 2, 3};
    const int8_t weights[6] = {1, 1, 1, -1, -1, -1};
    const int32_t bias[2] = {0, 0};
    int8_t output[2];
    const mcuc_fully_connected_params_t p = {.rows = 1, .in_features = 3, .out_features = 2, .input_zp = 0,
                                             .output_zp = 5, .act_min = 5, .act_max = 127};
    const mcuc_per_channel_quant_params_t q = {unit_mult, shift_one, NULL};
    mcuc_fully_connected_s8(&p, &q, input, weights, bias, output);
    MCUC_CHECK_EQ(output[0], 11); /* 6 + zp 5 */
    MCUC_CHECK_EQ(output[1], 5);  /* -6 + 5 = -1, clamped by the fused ReLU at the zero point */
}

static void test_avgpool_rounds_half_away(void)
{
    const int8_t input[4] = {1, 2, -1, -2};
    int8_t output[2];
    /* two 1x2 windows over a 1x4 row: (1+2)/2 = 1.5 -> 2, (-1-2)/2 = -1.5 -> -2 */
    const mcuc_avgpool_params_t p = {.batches = 1, .in_h = 1, .in_w = 4, .channels = 1, .out_h = 1, .out_w = 2,
                                  .kernel_h = 1, .kernel_w = 2, .stride_h = 1, .stride_w = 2, .pad_top = 0,
                                  .pad_left = 0, .act_min = -128, .act_max = 127};
    mcuc_avgpool_s8(&p, input, output);
    MCUC_CHECK_EQ(output[0], 2);
    MCUC_CHECK_EQ(output[1], -2);
    mcuc_maxpool_s8(&p, input, output);
    MCUC_CHECK_EQ(output[0], 2);
    MCUC_CHECK_EQ(output[1], -1);
}

static void test_lut_in_place(void)
{
    int8_t table[256];
    for (int i = 0; i < 256; ++i) {
        table[i] = (int8_t)(i < 128 ? 0 : i - 128); /* ReLU with zero point 0 */
    }
    int8_t data[4] = {-128, -1, 0, 127};
    const mcuc_lut_params_t p = {.size = 4};
    mcuc_lut_s8(&p, table, data, data);
    MCUC_CHECK_EQ(data[0], 0);
    MCUC_CHECK_EQ(data[1], 0);
    MCUC_CHECK_EQ(data[2], 0);
    MCUC_CHECK_EQ(data[3], 127);
}

static void test_attention_buffer_size(void)
{
    /* one int8 score row of Tk = scores.n bytes per query row of a block */
    mcuc_attention_params_t p;
    memset(&p, 0, sizeof p);
    p.scores.n = 7;
    p.block_rows = 3;
    MCUC_CHECK_EQ(mcuc_attention_blocked_s8_get_buffer_size(&p), 21);
}

int main(void)
{
    test_conv_3x3_padded();
    test_fully_connected_relu();
    test_avgpool_rounds_half_away();
    test_lut_in_place();
    test_attention_buffer_size();
    MCUC_TEST_DONE("test_kernels");
}
