/* mcuc_pool.h: int8 kernels of the pool family (average and max pooling over NHWC windows).
 * Conventions in mcuc_support.h. */
#ifndef MCUC_POOL_H
#define MCUC_POOL_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Pooling over NHWC [batches, in_h, in_w, channels] -> [batches, out_h, out_w, channels].
 * The window of output (y, x) starts at input row y*stride_h - pad_top and column
 * x*stride_w - pad_left; taps outside the input are skipped (bottom/right padding only
 * shows in out_h/out_w). kernel_*, stride_* >= 1; pad_* >= 0; every dim >= 1.
 * Input and output share quantization parameters. Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
struct mcuc_pool_params {
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
};

/* The two kernels share one parameter layout, struct mcuc_pool_params; each has its own name for it. */
typedef struct mcuc_pool_params mcuc_avgpool_params_t;
typedef struct mcuc_pool_params mcuc_maxpool_params_t;

/* Average of the in-bounds taps, rounded half away from zero (TFLite AveragePool):
 * sum > 0 ? (sum + n/2) / n : (sum - n/2) / n with C division, then clamped.
 * A window with no in-bounds tap yields clamp(0). kernel_h * kernel_w <= 2^23. */
void mcuc_avgpool_s8(const mcuc_avgpool_params_t *params, const int8_t *restrict input,
                     int8_t *restrict output);

/* mcuc_avgpool_s8 bit for bit, for windows of at most 256 taps, with the channels as SIMD lanes (MVE: four
 * per step; DSP: four per word, summed as int16 pairs) and the rounded division as a multiply by a
 * reciprocal; the remaining channels and other cores run the same loop in C. */
void mcuc_avgpool_simd_s8(const mcuc_avgpool_params_t *params, const int8_t *restrict input,
                          int8_t *restrict output);

/* Maximum of the in-bounds taps (starting from -128), clamped to [act_min, act_max]. */
void mcuc_maxpool_s8(const mcuc_maxpool_params_t *params, const int8_t *restrict input,
                     int8_t *restrict output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_POOL_H */
