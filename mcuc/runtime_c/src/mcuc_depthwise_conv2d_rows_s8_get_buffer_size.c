/* mcuc_depthwise_conv2d_rows_s8_get_buffer_size.c: scratch bytes of mcuc_depthwise_conv2d_rows_s8. */
#include "mcuc_conv.h"

int32_t mcuc_depthwise_conv2d_rows_s8_get_buffer_size(const mcuc_depthwise_conv2d_params_t *params)
{
    /* kernel_h widened rows of the width mcuc_depthwise_conv2d_rows_s8 uses, and the taps as int16 pairs */
    const int32_t groups = (params->out_w + 3) & ~3;
    const int32_t width = ((groups + 1) * params->stride_w + params->kernel_w + 2 + 3) & ~3;
    return params->kernel_h * width * 2 + params->kernel_h * ((params->kernel_w + 1) / 2) * 4;
}
