/* mcuc_resize.h: int8 NHWC resize, nearest or bilinear, driven by per-row and per-column tables. */
#ifndef MCUC_RESIZE_H
#define MCUC_RESIZE_H

#include <stdint.h>

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

#endif /* MCUC_RESIZE_H */
