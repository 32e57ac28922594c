/* mcuc_attention_blocked_s8_get_buffer_size.c: scratch bytes of mcuc_attention_blocked_s8. */
#include "mcuc_attention.h"

int32_t mcuc_attention_blocked_s8_get_buffer_size(const mcuc_attention_params_t *params)
{
    return params->block_rows * params->scores.n;
}
