/* mcuc_window.h: copy a spatial window between two int8 NHWC tensors (patch-based inference).
 *
 * Patch-based schedules run the first layers of a network on one spatial patch at a time: each
 * patch crops its input window out of the full image and places its output window into the
 * assembled stage output. Both moves are this one kernel.
 *
 * Copies rows x cols pixels of all channels, for every batch, from src at (src_y, src_x) to dst
 * at (dst_y, dst_x). Ranges: batch, channels, src_h, src_w, dst_h, dst_w, rows, cols >= 1;
 * 0 <= src_y, src_y + rows <= src_h, 0 <= src_x, src_x + cols <= src_w, and likewise for dst.
 * src and dst must not overlap. */
#ifndef MCUC_WINDOW_H
#define MCUC_WINDOW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* MCUC_WINDOW_H */
