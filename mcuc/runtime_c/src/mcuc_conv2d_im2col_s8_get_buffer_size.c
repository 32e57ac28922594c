/* mcuc_conv2d_im2col_s8_get_buffer_size.c: scratch bytes of mcuc_conv2d_im2col_s8. */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

int32_t mcuc_conv2d_im2col_s8_get_buffer_size(const mcuc_conv2d_params_t *params)
{
    return MCUC_IM2COL_ROWS * mcuc_im2col_k16(params);
}
