/* mcuc_conv2d_wide_s8_get_buffer_size.c: scratch bytes of mcuc_conv2d_wide_s8. */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

int32_t mcuc_conv2d_wide_s8_get_buffer_size(const mcuc_conv2d_params_t *params)
{
    return mcuc_wide_scratch_bytes(mcuc_im2col_kpad(params));
}
