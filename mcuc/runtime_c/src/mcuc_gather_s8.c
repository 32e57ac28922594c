/* mcuc_gather_s8.c: gather of whole slices along one axis with constant indices. */
#include "mcuc_layout.h"

#include <string.h>

void mcuc_gather_s8(const mcuc_gather_params_t *params, const int32_t *indices,
                    const int8_t *restrict input, int8_t *restrict output)
{
    const int32_t inner = params->inner;
    for (int32_t o = 0; o < params->outer; ++o) {
        const int8_t *x = input + (int64_t)o * params->axis_size * inner;
        for (int32_t j = 0; j < params->n_indices; ++j) {
            memcpy(output, x + (int64_t)indices[j] * inner, (size_t)inner);
            output += inner;
        }
    }
}
