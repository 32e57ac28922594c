/* mcuc_lut_s8.c: int8 -> int8 table look-up for unary activations (sigmoid, GELU, ...). */
#include "mcuc_elementwise.h"

void mcuc_lut_s8(const mcuc_lut_params_t *params, const int8_t *table, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->size; ++i) {
        output[i] = table[input[i] + 128];
    }
}
