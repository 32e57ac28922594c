/* mcuc_layout.h: int8 kernels of the layout family, which move values without arithmetic (concat, which
 * may also requantize, pad, transpose, slice, gather) and copy_window, the crop/place step of patch
 * schedules. Conventions in mcuc_support.h. */
#ifndef MCUC_LAYOUT_H
#define MCUC_LAYOUT_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Concatenation. Every input is viewed as [outer, inner_k] (outer = product of the dims
 * before the axis, inner_k = product of its dims from the axis on); the output is
 * [outer, sum of inner_k] and input k fills columns starting at the sum of the previous
 * inner_j. An input with rescale == 0 is copied; with rescale != 0 it is requantized to the
 * output parameters as mcuc_requantize_s8 does: out = clamp(out_zp + requant(q - in_zp, mult, shift),
 * -128, 127), shift <= 23.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t inner;
    int32_t rescale;
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} mcuc_concat_input_params_t;

typedef struct {
    int32_t outer;
    int32_t n_inputs;
    const mcuc_concat_input_params_t *inputs; /* n_inputs entries */
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
 * Strided slice of a tensor of rank <= 4: output (contiguous, dims out_dims, each >= 1) at
 * (i0, i1, i2, i3) = input[offset + i0*in_strides[0] + ... + i3*in_strides[3]], where
 * in_strides are the input's element strides times the slice steps. Same quantization in
 * and out. Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t out_dims[4];
    int32_t in_strides[4];
    int32_t offset;
} mcuc_slice_params_t;

void mcuc_slice_s8(const mcuc_slice_params_t *params, const int8_t *restrict input,
                   int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Gather on one axis with constant indices: input viewed as [outer, axis_size, inner],
 * output [outer, n_indices, inner] with output[o, j, :] = input[o, indices[j], :];
 * 0 <= indices[j] < axis_size. Same quantization in and out. Buffers must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
    int32_t n_indices;
} mcuc_gather_params_t;

void mcuc_gather_s8(const mcuc_gather_params_t *params, const int32_t *indices,
                    const int8_t *restrict input, int8_t *restrict output);

/* ------------------------------------------------------------------------------------------
 * Copy a spatial window between two int8 NHWC tensors (patch-based inference).
 *
 * Patch-based schedules run the first layers of a network on one spatial patch at a time: each
 * patch crops its input window out of the full image and places its output window into the
 * assembled stage output. Both moves are this one kernel.
 *
 * Copies rows x cols pixels of all channels, for every batch, from src at (src_y, src_x) to dst
 * at (dst_y, dst_x). Ranges: batch, channels, src_h, src_w, dst_h, dst_w, rows, cols >= 1;
 * 0 <= src_y, src_y + rows <= src_h, 0 <= src_x, src_x + cols <= src_w, and likewise for dst.
 * src and dst must not overlap.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    int32_t batch;
    int32_t channels;
    int32_t src_h;
    int32_t src_w;
    int32_t src_y;
    int32_t src_x;
    int32_t dst_h;
    int32_t dst_w;
    int32_t dst_y;
    int32_t dst_x;
    int32_t rows;
    int32_t cols;
} mcuc_copy_window_params_t;

void mcuc_copy_window_s8(const mcuc_copy_window_params_t *params, const int8_t *restrict src,
                         int8_t *restrict dst);

/* ---- Resize -------------------------------------------------------------------------------- */

/* Resize [batches, in_h, in_w, channels] -> [batches, out_h, out_w, channels] (NHWC int8), filled by
 * mcuc/reference/resize.py prepare_resize. Every coordinate rule (ONNX's modes, TFLite's flags) is applied
 * at compile time; the kernel only reads the tables. Dimensions are >= 1 and < 2^15.
 * Input and output share quantization parameters (the values are interpolated, not requantized). */
typedef struct {
    int32_t batches;
    int32_t in_h;
    int32_t in_w;
    int32_t channels;
    int32_t out_h;
    int32_t out_w;
    int32_t bilinear; /* 0: nearest, 1: bilinear */
} mcuc_resize_params_t;

/* rows: int16[out_h * 3], per output row {y0, y1, wy}; cols: int16[out_w * 3], per output column {x0, x1, wx};
 * 0 <= y0, y1 < in_h and 0 <= x0, x1 < in_w; weights in [-512, 1536] (1024 = a whole tap).
 * nearest: output[b, oy, ox, :] = input[b, y0, x0, :] (y1, x1 and the weights are not read).
 * bilinear (TFLite ResizeBilinearInteger): with v_rc = input[b, y_r, x_c, c],
 *   acc = (v00 (1024 - wx) + v01 wx) (1024 - wy) + (v10 (1024 - wx) + v11 wx) wy   (|acc| < 2^29, int32)
 *   output = acc / 2^20 rounded half away from zero, clamped to int8.
 * input and output must not overlap. */
void mcuc_resize_s8(const mcuc_resize_params_t *params, const int16_t *rows, const int16_t *cols,
                    const int8_t *restrict input, int8_t *restrict output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_LAYOUT_H */
