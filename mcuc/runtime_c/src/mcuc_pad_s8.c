/* mcuc_pad_s8.c: constant padding of a 4-D int8 tensor. */
#include <string.h>

#include "mcuc_layout.h"

void mcuc_pad_s8(const mcuc_pad_params_t *params, const int8_t *restrict input,
                 int8_t *restrict output)
{
    const int32_t *id = params->in_dims;
    const int32_t *od = params->out_dims;
    const int32_t *pb = params->pad_before;
    const int value = (int)(int8_t)params->pad_value;
    const size_t after3 = (size_t)(od[3] - pb[3] - id[3]);
    for (int32_t i0 = 0; i0 < od[0]; ++i0) {
        const int32_t j0 = i0 - pb[0];
        const int in0 = j0 >= 0 && j0 < id[0];
        for (int32_t i1 = 0; i1 < od[1]; ++i1) {
            const int32_t j1 = i1 - pb[1];
            const int in1 = in0 && j1 >= 0 && j1 < id[1];
            for (int32_t i2 = 0; i2 < od[2]; ++i2) {
                const int32_t j2 = i2 - pb[2];
                if (!(in1 && j2 >= 0 && j2 < id[2])) {
                    memset(output, value, (size_t)od[3]);
                    output += od[3];
                    continue;
                }
                const int8_t *src = input + (((int64_t)j0 * id[1] + j1) * id[2] + j2) * id[3];
                memset(output, value, (size_t)pb[3]);
                output += pb[3];
                memcpy(output, src, (size_t)id[3]);
                output += id[3];
                memset(output, value, after3);
                output += after3;
            }
        }
    }
}
