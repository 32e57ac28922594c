/* mcuc_fully_connected_wide_s8_get_buffer_size.c: scratch bytes of mcuc_fully_connected_wide_s8. */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

int32_t mcuc_fully_connected_wide_s8_get_buffer_size(const mcuc_fully_connected_params_t *params)
{
    return mcuc_wide_scratch_bytes((params->in_features + 3) & ~3);
}
