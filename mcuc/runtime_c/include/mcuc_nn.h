/* mcuc_nn.h: int8 non-convolution kernels (elementwise, pooling, LUT, softmax, layout ops). */
#ifndef MCUC_NN_H
#define MCUC_NN_H

/*
 * Conventions shared by every kernel declared here.
 *
 * - Activations are int8, asymmetric per tensor, row-major; 4-D activations are NHWC.
 * - Tensors of rank < 4 are described as 4-D with leading dimensions of 1.
 * - Parameter structs hold only integers (plus pointers to const tables), so generated
 *   code emits them as `static const` initialisers. They are filled by the Python
 *   `prepare_*` functions in mcuc/reference/, which also define the integer-exact numpy
 *   reference of each kernel.
 * - Fixed-point multipliers (`*_mult`, `*_shift`) come from mcuc.quant.quantize_multiplier:
 *   mult in [2^30, 2^31) or 0, shift in [-31, 30]; they are applied with mcuc_requantize
 *   (TFLite MultiplyByQuantizedMultiplier) from mcuc_fixedpoint.h.
 * - act_min <= act_max, both in [-128, 127].
 * - No kernel allocates memory or needs scratch memory.
 * - Buffers must not overlap unless a kernel's comment says that output may alias an input.
 */

#include <stdint.h>

#include "mcuc_fixedpoint.h"

/* ------------------------------------------------------------------------------------------
 * Broadcast shape for binary elementwise kernels (add, sub, mul).
 * The output is contiguous with dims out_dims[0..3]. Input k's element for output index
 * (i0, i1, i2, i3) is in_k[i0*strides[0] + i1*strides[1] + i2*strides[2] + i3*strides[3]]:
 * strides are the input's contiguous element strides with 0 on broadcast axes.
 * out_dims[i] >= 1; the product of out_dims fits int32.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t out_dims[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
} mcuc_broadcast_t;

/* Add and sub (TFLite int8 ADD/SUB reference semantics).
 * in_offset = -zero_point of the input (in [-127, 128]); out_offset = output zero point.
 * left_shift = 20. in*_mult/in*_shift quantize s_k / (2 * max(s1, s2)) (< 1, shift <= 0);
 * out_mult/out_shift quantize 2 * max(s1, s2) / (2^20 * s_out) (< 1, shift <= 0).
 * Per element: v_k = requant((q_k + in_offset_k) << 20, in_mult_k, in_shift_k);
 * out = clamp(requant(v1 +/- v2, out_mult, out_shift) + out_offset, act_min, act_max). */
typedef struct {
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
} mcuc_add_params_t;

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

/* output may alias in1 (or in2) when that input has the full output shape (its strides
 * are the output's contiguous strides); otherwise buffers must not overlap. */
void mcuc_add_s8(const mcuc_add_params_t *params, const mcuc_broadcast_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = in1 - in2; params as mcuc_add_s8 (same prepare); aliasing as mcuc_add_s8. */
void mcuc_sub_s8(const mcuc_add_params_t *params, const mcuc_broadcast_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = (in1 - in2)^2 (TFLite int8 SQUARED_DIFFERENCE: left_shift 7, the square of the rescaled
 * difference requantized by out_mult/out_shift); params from mcuc.reference.tflite.prepare_squared_difference;
 * aliasing as mcuc_add_s8. */
void mcuc_squared_difference_s8(const mcuc_add_params_t *params, const mcuc_broadcast_t *shape,
                                const int8_t *in1, const int8_t *in2, int8_t *output);

/* output = in1 * in2; aliasing as mcuc_add_s8. */
void mcuc_mul_s8(const mcuc_mul_params_t *params, const mcuc_broadcast_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Pooling over NHWC [batches, in_h, in_w, channels] -> [batches, out_h, out_w, channels].
 * The window of output (y, x) starts at input row y*stride_h - pad_top and column
 * x*stride_w - pad_left; taps outside the input are skipped (bottom/right padding only
 * shows in out_h/out_w). kernel_*, stride_* >= 1; pad_* >= 0; every dim >= 1.
 * Input and output share quantization parameters.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t batches;
    int32_t in_h;
    int32_t in_w;
    int32_t channels;
    int32_t out_h;
    int32_t out_w;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t act_min;
    int32_t act_max;
} mcuc_pool_params_t;

/* Average of the in-bounds taps, rounded half away from zero (TFLite AveragePool):
 * sum > 0 ? (sum + n/2) / n : (sum - n/2) / n with C division, then clamped.
 * A window with no in-bounds tap yields clamp(0). kernel_h * kernel_w <= 2^23. */
void mcuc_avgpool_s8(const mcuc_pool_params_t *params, const int8_t *restrict input,
                     int8_t *restrict output);

/* Maximum of the in-bounds taps (starting from -128), clamped to [act_min, act_max]. */
void mcuc_maxpool_s8(const mcuc_pool_params_t *params, const int8_t *restrict input,
                     int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Look-up table: output[i] = table[input[i] + 128]; table is int8[256] built by
 * mcuc.reference.elementwise.make_lut. size >= 0. output may equal input.
 * ---------------------------------------------------------------------------------------- */
void mcuc_lut_s8(const int8_t *input, int8_t *output, int32_t size, const int8_t *table);

/* ------------------------------------------------------------------------------------------
 * Camera pixels to the model's int8 input: each byte of input is a uint8 pixel value p of channel c,
 * output[i * channels + c] = table[256 * c + p]. Interleaved (planar == 0): p = input[i * channels + c],
 * output may equal input. Planar (planar != 0): p = input[c * pixels + i], output must not overlap input.
 * table is int8[channels * 256] built by mcuc.pixels (the normalisation folded into the int8 input).
 * ---------------------------------------------------------------------------------------- */
void mcuc_pixels_s8(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels, int32_t planar,
                    const int8_t *table);

/* ------------------------------------------------------------------------------------------
 * Softmax over the last axis of [rows, row_size]; output scale 1/256, zero point -128.
 * Integer algorithm (identical in mcuc.reference.softmax):
 *   d = max(row) - x                      in [0, 255]
 *   e = exp_table[d]                      exp_table[d] = round(exp(-d * s_in) * 2^16),
 *                                         built by prepare_softmax (s_in includes beta)
 *   sum = sum of e over the row           uint32, exact for row_size <= 65535
 *   out = min((e * 256 + sum / 2) / sum - 128, 127)   unsigned division
 * rows >= 0, 1 <= row_size <= 65535. output may equal input (each element is read before
 * it is written).
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t rows;
    int32_t row_size;
} mcuc_softmax_params_t;

void mcuc_softmax_s8(const mcuc_softmax_params_t *params, const uint32_t *exp_table,
                     const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * TFLite's reference int8 softmax over the last axis of [rows, row_size] (for .tflite models;
 * identical in mcuc.reference.tflite.softmax_tflite_s8 and bit-exact with TFLite Micro):
 * d = x - max(row) scaled to Q5.26 by input_multiplier/input_left_shift, gemmlowp exp, Q12.19
 * row sum, fixed-point reciprocal; elements with d < diff_min give -128. Output scale 1/256,
 * zero point -128. rows >= 0, 1 <= row_size <= 4096, 0 <= input_left_shift <= 30.
 * output may equal input.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t rows;
    int32_t row_size;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} mcuc_softmax_tflite_params_t;

void mcuc_softmax_tflite_s8(const mcuc_softmax_tflite_params_t *params, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------
 * Requantize int8 -> int8: out = clamp(out_zp + requant(q - in_zp, mult, shift), -128, 127)
 * with mult/shift quantizing s_in / s_out; shift <= 23 so that (q - in_zp) << shift fits
 * int32. output may equal input.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} mcuc_requant_params_t;

void mcuc_requantize_s8(const mcuc_requant_params_t *params, const int8_t *input,
                        int8_t *output, int32_t size);

/* ------------------------------------------------------------------------------------------
 * Concatenation. Every input is viewed as [outer, inner_k] (outer = product of the dims
 * before the axis, inner_k = product of its dims from the axis on); the output is
 * [outer, sum of inner_k] and input k fills columns starting at the sum of the previous
 * inner_j. An input with rescale == 0 is copied; with rescale != 0 it is requantized to the
 * output parameters as mcuc_requantize_s8 does.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t inner;
    int32_t rescale;
    mcuc_requant_params_t requant;
} mcuc_concat_input_t;

typedef struct {
    int32_t outer;
    int32_t n_inputs;
    const mcuc_concat_input_t *inputs; /* n_inputs entries */
} mcuc_concat_params_t;

/* inputs: n_inputs pointers; output must not overlap any input. */
void mcuc_concat_s8(const mcuc_concat_params_t *params, const int8_t *const *inputs,
                    int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Constant pad of a 4-D tensor: output dims out_dims[i] = pad_before[i] + in_dims[i] +
 * pad_after (implied), filled with pad_value (the zero point, in [-128, 127]).
 * in_dims[i] >= 1, pad_before[i] >= 0, out_dims[i] >= pad_before[i] + in_dims[i].
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t in_dims[4];
    int32_t out_dims[4];
    int32_t pad_before[4];
    int32_t pad_value;
} mcuc_pad_params_t;

void mcuc_pad_s8(const mcuc_pad_params_t *params, const int8_t *restrict input,
                 int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Transpose of a 4-D tensor: output index (i0, i1, i2, i3) (contiguous, dims out_dims)
 * reads input[i0*in_strides[0] + ... + i3*in_strides[3]], where in_strides[k] is the input
 * stride of axis perm[k].
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t out_dims[4];
    int32_t in_strides[4];
} mcuc_transpose_params_t;

void mcuc_transpose_s8(const mcuc_transpose_params_t *params, const int8_t *restrict input,
                       int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Internal helpers shared by the kernels above (not part of the kernel API).
 * ---------------------------------------------------------------------------------------- */

/* Element offsets into in1 and in2 of the first element of output row `row`, where rows
 * index out_dims[0] x out_dims[1] x out_dims[2] in order. */
static inline void mcuc_broadcast_row(const mcuc_broadcast_t *shape, int32_t row,
                                      int32_t *off1, int32_t *off2)
{
    const int32_t i2 = row % shape->out_dims[2];
    const int32_t i01 = row / shape->out_dims[2];
    const int32_t i1 = i01 % shape->out_dims[1];
    const int32_t i0 = i01 / shape->out_dims[1];
    *off1 = i0 * shape->in1_strides[0] + i1 * shape->in1_strides[1] + i2 * shape->in1_strides[2];
    *off2 = i0 * shape->in2_strides[0] + i1 * shape->in2_strides[1] + i2 * shape->in2_strides[2];
}

/* Add (sign = 1), sub (sign = -1) or squared difference (sign = 0), the body of mcuc_add_s8, mcuc_sub_s8 and
 * mcuc_squared_difference_s8. */
static inline void mcuc_add_sub_s8_impl(const mcuc_add_params_t *params,
                                        const mcuc_broadcast_t *shape, const int8_t *in1,
                                        const int8_t *in2, int8_t *output, int32_t sign)
{
    const int32_t rows = shape->out_dims[0] * shape->out_dims[1] * shape->out_dims[2];
    const int32_t n = shape->out_dims[3];
    const int32_t st1 = shape->in1_strides[3];
    const int32_t st2 = shape->in2_strides[3];
    const int32_t lshift = params->left_shift;
    for (int32_t r = 0; r < rows; ++r) {
        int32_t off1;
        int32_t off2;
        mcuc_broadcast_row(shape, r, &off1, &off2);
        for (int32_t i = 0; i < n; ++i) {
            const int32_t x1 = (params->in1_offset + in1[off1 + i * st1]) * (1 << lshift);
            const int32_t x2 = (params->in2_offset + in2[off2 + i * st2]) * (1 << lshift);
            const int32_t v1 = mcuc_requantize(x1, params->in1_mult, params->in1_shift);
            const int32_t v2 = mcuc_requantize(x2, params->in2_mult, params->in2_shift);
            const int32_t acc = sign != 0 ? v1 + sign * v2 : (v1 - v2) * (v1 - v2);
            const int32_t raw = mcuc_requantize(acc, params->out_mult, params->out_shift) + params->out_offset;
            output[r * n + i] = mcuc_clamp_s8(raw, params->act_min, params->act_max);
        }
    }
}

/* Average (is_max = 0) or max (is_max = 1) pooling, the body of mcuc_avgpool_s8 and
 * mcuc_maxpool_s8. Taps are clipped to the input, so padding is never read. */
static inline void mcuc_pool_s8_impl(const mcuc_pool_params_t *params, const int8_t *input,
                                     int8_t *output, int32_t is_max)
{
    const int32_t c_n = params->channels;
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *in_b = input + (int64_t)b * params->in_h * params->in_w * c_n;
        for (int32_t oy = 0; oy < params->out_h; ++oy) {
            const int32_t y0 = oy * params->stride_h - params->pad_top;
            const int32_t ky0 = y0 < 0 ? -y0 : 0;
            const int32_t ky1 = params->in_h - y0 < params->kernel_h ? params->in_h - y0 : params->kernel_h;
            for (int32_t ox = 0; ox < params->out_w; ++ox) {
                const int32_t x0 = ox * params->stride_w - params->pad_left;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t kx1 = params->in_w - x0 < params->kernel_w ? params->in_w - x0 : params->kernel_w;
                const int32_t count = (ky1 > ky0 && kx1 > kx0) ? (ky1 - ky0) * (kx1 - kx0) : 0;
                for (int32_t c = 0; c < c_n; ++c) {
                    int32_t acc = is_max ? -128 : 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int8_t *row = in_b + ((y0 + ky) * params->in_w + x0) * c_n + c;
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const int32_t v = row[kx * c_n];
                            acc = is_max ? (v > acc ? v : acc) : acc + v;
                        }
                    }
                    if (!is_max && count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    *output++ = mcuc_clamp_s8(acc, params->act_min, params->act_max);
                }
            }
        }
    }
}

#endif /* MCUC_NN_H */
