/* mcuc_elementwise.h: int8 kernels of the elementwise family (add, sub, mul, squared difference with
 * broadcasting; look-up table; requantize). Conventions in mcuc_support.h. */
#ifndef MCUC_ELEMENTWISE_H
#define MCUC_ELEMENTWISE_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Broadcast shape for binary elementwise kernels (add, sub, mul, squared difference).
 * The output is contiguous with dims out_dims[0..3]. Input k's element for output index
 * (i0, i1, i2, i3) is in_k[i0*strides[0] + i1*strides[1] + i2*strides[2] + i3*strides[3]]:
 * strides are the input's contiguous element strides with 0 on broadcast axes.
 * out_dims[i] >= 1; the product of out_dims fits int32.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t out_dims[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
} mcuc_broadcast_params_t;

/* Add and sub (TFLite int8 ADD/SUB reference semantics), and squared difference.
 * in_offset = -zero_point of the input (in [-127, 128]); out_offset = output zero point.
 * left_shift = 20. in*_mult/in*_shift quantize s_k / (2 * max(s1, s2)) (< 1, shift <= 0);
 * out_mult/out_shift quantize 2 * max(s1, s2) / (2^20 * s_out) (< 1, shift <= 0).
 * Per element: v_k = requant((q_k + in_offset_k) << 20, in_mult_k, in_shift_k);
 * out = clamp(requant(v1 +/- v2, out_mult, out_shift) + out_offset, act_min, act_max). */
struct mcuc_add_sub_params {
    int32_t in1_offset;
    int32_t in2_offset;
    int32_t out_offset;
    int32_t left_shift;
    int32_t in1_mult;
    int32_t in1_shift;
    int32_t in2_mult;
    int32_t in2_shift;
    int32_t out_mult;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
};

/* add, sub and squared difference share one parameter layout, struct mcuc_add_sub_params; each has its
 * own name for it. */
typedef struct mcuc_add_sub_params mcuc_add_params_t;
typedef struct mcuc_add_sub_params mcuc_sub_params_t;
typedef struct mcuc_add_sub_params mcuc_squared_difference_params_t;

/* Mul (TFLite int8 MUL reference semantics).
 * out = clamp(requant((q1 + in1_offset) * (q2 + in2_offset), out_mult, out_shift)
 *             + out_offset, act_min, act_max); out_mult/out_shift quantize s1 * s2 / s_out,
 * with out_shift <= 15 so that the shifted product fits int32. */
typedef struct {
    int32_t in1_offset;
    int32_t in2_offset;
    int32_t out_offset;
    int32_t out_mult;
    int32_t out_shift;
    int32_t act_min;
    int32_t act_max;
} mcuc_mul_params_t;

/* output = in1 + in2. output may alias in1 (or in2) when that input has the full output shape (its
 * strides are the output's contiguous strides); otherwise buffers must not overlap. */
void mcuc_add_s8(const mcuc_add_params_t *params, const mcuc_broadcast_params_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = in1 + in2 (or in1 - in2) for two inputs of the output's shape, size elements, bit-exact with
 * mcuc_add_s8 (mcuc_sub_s8): an int8 input has 256 values, so the compiler tabulates the rescaled inputs,
 * tables[q + 128] = v1(q) and tables[256 + q + 128] = v2(q) (-v2(q) for sub), and each element costs two
 * look-ups, one addition and the output requantization (params' out_* fields and act bounds; requant is
 * out_mult/out_shift as one entry of mcuc_per_channel_quant_params_t.requant). MVE: four elements per
 * step. output may alias in1 or in2; size >= 0. */
void mcuc_add_simd_s8(const mcuc_add_params_t *params, const int32_t *tables, const int32_t *requant,
                      const int8_t *in1, const int8_t *in2, int8_t *output, int32_t size);

/* output = in1 - in2; params as mcuc_add_s8 (same prepare); aliasing as mcuc_add_s8. */
void mcuc_sub_s8(const mcuc_sub_params_t *params, const mcuc_broadcast_params_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = (in1 - in2)^2 (TFLite int8 SQUARED_DIFFERENCE: left_shift 7, the square of the rescaled
 * difference requantized by out_mult/out_shift); params from mcuc.reference.tflite.prepare_squared_difference;
 * aliasing as mcuc_add_s8. */
void mcuc_squared_difference_s8(const mcuc_squared_difference_params_t *params,
                                const mcuc_broadcast_params_t *shape, const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = in1 * in2; aliasing as mcuc_add_s8. */
void mcuc_mul_s8(const mcuc_mul_params_t *params, const mcuc_broadcast_params_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Look-up table: output[i] = table[input[i] + 128] for i < size; table is int8[256] built by
 * mcuc.reference.elementwise.make_lut (or a TFLite-specific builder in mcuc.reference.tflite).
 * size >= 0. output may equal input.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t size;
} mcuc_lut_params_t;

void mcuc_lut_s8(const mcuc_lut_params_t *params, const int8_t *table, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Requantize int8 -> int8, size >= 0 elements: out = clamp(out_zp + requant(q - in_zp, mult, shift),
 * -128, 127) with mult/shift quantizing s_in / s_out; shift <= 23 so that (q - in_zp) << shift fits
 * int32. output may equal input.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t size;
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} mcuc_requantize_params_t;

void mcuc_requantize_s8(const mcuc_requantize_params_t *params, const int8_t *input, int8_t *output);

/* ---- Camera pixels ---------------------------------------------------------------------- */

/* Camera pixels to the model's int8 input (mcuc/pixels.py): each byte of input is a uint8 pixel value p
 * of channel c; output[i * channels + c] = table[256 * c + p]. Interleaved (planar 0): p = input[i *
 * channels + c], output may equal input. Planar (planar 1): p = input[c * pixels + i], output must not
 * overlap input. table is int8[channels * 256] (the normalisation folded into the int8 input). */
typedef struct {
    int32_t pixels;
    int32_t channels;
    int32_t planar;
} mcuc_pixels_params_t;

void mcuc_pixels_s8(const mcuc_pixels_params_t *params, const int8_t *table, const int8_t *input, int8_t *output);

/* ---- PReLU --------------------------------------------------------------------------------- */

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
void mcuc_prelu_s8(const mcuc_prelu_params_t *params, const mcuc_broadcast_params_t *shape, const int8_t *input,
                   const int8_t *alpha, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_ELEMENTWISE_H */
