/* mcuc_lut_s8.c: int8 -> int8 table look-up for unary activations (sigmoid, GELU, ...). */
#include "mcuc_elementwise.h"

void mcuc_lut_s8(const int8_t *input, int8_t *output, int32_t size, const int8_t *table)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = table[input[i] + 128];
    }
}
