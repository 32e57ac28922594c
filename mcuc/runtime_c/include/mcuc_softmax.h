/* mcuc_softmax.h: int8 kernels of the softmax family, over the last axis: mcuc's exp-table algorithm
 * and TFLite's fixed-point one (for .tflite models). Conventions in mcuc_support.h. */
#ifndef MCUC_SOFTMAX_H
#define MCUC_SOFTMAX_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Softmax over the last axis of [rows, row_size]; output scale 1/out_levels, zero point out_zp
 * (TFLite's 1/256 and -128 unless a QDQ model asks for another, e.g. onnxruntime's 1/255 and -128).
 * Integer algorithm (identical in mcuc.reference.softmax):
 *   d = max(row) - x                      in [0, 255]
 *   e = exp_table[d]                      exp_table[d] = round(exp(-d * s_in) * 2^B),
 *                                         built by prepare_softmax (s_in includes beta; B <= 22,
 *                                         the most bits for which row_size * 2^B < 2^32)
 *   sum = sum of e over the row           uint32, exact for row_size <= 65535
 *   out = min((e * out_levels + sum / 2) / sum + out_zp, 127)   unsigned division
 * rows >= 0, 1 <= row_size <= 65535, 1 <= out_levels <= 256, -128 <= out_zp <= 127. output may equal input (each element is read before
 * it is written).
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t rows;
    int32_t row_size;
    int32_t out_levels;
    int32_t out_zp;
} mcuc_softmax_params_t;

void mcuc_softmax_s8(const mcuc_softmax_params_t *params, const uint32_t *exp_table,
                     const int8_t *input, int8_t *output);

/* mcuc_softmax_s8 bit for bit, same arguments and ranges: the row maximum four (DSP: SSUB8/SEL) or sixteen
 * (MVE: VMAXV) bytes per step, MVE table look-ups as gathers over four lanes, and the division by the row
 * sum as a multiply by floor((2^32 - 1) / sum), found once per row, with one remainder correction.
 * output may equal input. */
void mcuc_softmax_simd_s8(const mcuc_softmax_params_t *params, const uint32_t *exp_table,
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

#ifdef __cplusplus
}
#endif

#endif /* MCUC_SOFTMAX_H */
