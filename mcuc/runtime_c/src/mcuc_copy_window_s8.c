/* mcuc_copy_window_s8.c: copy a rows x cols spatial window between two int8 NHWC tensors. */
#include <string.h>

#include "mcuc_layout.h"

void mcuc_copy_window_s8(const mcuc_copy_window_params_t *params, const int8_t *restrict src,
                         int8_t *restrict dst)
{
    const int32_t c = params->channels;
    const size_t row_bytes = (size_t)params->cols * (size_t)c;
    for (int32_t b = 0; b < params->batch; ++b) {
        const int8_t *s = src + (((size_t)b * params->src_h + params->src_y) * params->src_w + params->src_x) * c;
        int8_t *d = dst + (((size_t)b * params->dst_h + params->dst_y) * params->dst_w + params->dst_x) * c;
        for (int32_t y = 0; y < params->rows; ++y) {
            memcpy(d, s, row_bytes);
            s += (size_t)params->src_w * c;
            d += (size_t)params->dst_w * c;
        }
    }
}
