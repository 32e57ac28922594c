/* mcuc_prelu.h: int8 PReLU, x >= 0 ? x : alpha * x, with the slope broadcast over 4-D (TFLite int8 PRELU). */
#ifndef MCUC_PRELU_H
#define MCUC_PRELU_H

#include <stdint.h>

#include "mcuc_nn.h" /* mcuc_broadcast_t */

/* Parameters of mcuc_prelu_s8, filled by mcuc/reference/elementwise.py prepare_prelu.
 * in_offset = -input zero point, alpha_offset = -slope zero point (both in [-127, 128]);
 * out_offset = output zero point. pos_mult/pos_shift requantize x - zp_in >= 0 by s_in / s_out
 * (pos_shift <= 23); neg_mult/neg_shift requantize the product (x - zp_in) * (alpha - zp_alpha) by
 * s_in * s_alpha / s_out (neg_shift <= 15, so the product shifted left fits int32). */
typedef struct {
    int32_t in_offset;
    int32_t alpha_offset;
    int32_t out_offset;
    int32_t pos_mult;
    int32_t pos_shift;
    int32_t neg_mult;
    int32_t neg_shift;
} mcuc_prelu_params_t;

/* output[i] = clamp(out_offset + (v >= 0 ? requant(v, pos) : requant(v * (alpha + alpha_offset), neg))), with
 * v = input + in_offset, input as in1 and alpha as in2 of `shape` (numpy broadcasting up to 4-D).
 * output may alias input (or alpha) when that operand has the full output shape. */
void mcuc_prelu_s8(const mcuc_prelu_params_t *params, const mcuc_broadcast_t *shape, const int8_t *input,
                   const int8_t *alpha, int8_t *output);

#endif /* MCUC_PRELU_H */
