/* mcuc_depthwise_conv2d_dot_s8_get_buffer_size.c: scratch bytes of mcuc_depthwise_conv2d_dot_s8. */
#include "mcuc_conv.h"

int32_t mcuc_depthwise_conv2d_dot_s8_get_buffer_size(const mcuc_depthwise_conv2d_params_t *params)
{
    /* the int32 dot products of `batch` output rows (up to MCUC_DW_DOT_BATCH_PIXELS pixels, at least one row),
     * the last row's four-pixel groups reaching 3 past them, in whole vectors; then a ring of kernel_h int8 rows,
     * each held twice, of the width mcuc_depthwise_conv2d_dot_s8 uses (the 16 bytes every pixel of whole groups
     * reads, rounded up to 16) plus 16 bytes of slack */
    const int32_t groups4 = (params->out_w + 3) & ~3;
    const int32_t width = ((groups4 - 1) * params->stride_w + 16 + 15) & ~15;
    const int32_t fit = MCUC_DW_DOT_BATCH_PIXELS / params->out_w;
    const int32_t batch = fit < 1 ? 1 : fit > params->out_h ? params->out_h : fit;
    return 16 * ((batch * params->out_w + 6) >> 2) + 2 * params->kernel_h * (width + 16);
}
