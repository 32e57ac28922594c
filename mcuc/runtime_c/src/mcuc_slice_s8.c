/* mcuc_slice_s8.c: strided slice of an int8 tensor of rank <= 4. */
#include "mcuc_layout.h"

void mcuc_slice_s8(const mcuc_slice_params_t *params, const int8_t *restrict input,
                   int8_t *restrict output)
{
    const int32_t *d = params->out_dims;
    const int32_t *s = params->in_strides;
    const int8_t *base = input + params->offset;
    for (int32_t i0 = 0; i0 < d[0]; ++i0) {
        for (int32_t i1 = 0; i1 < d[1]; ++i1) {
            for (int32_t i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *src = base + (int64_t)i0 * s[0] + (int64_t)i1 * s[1] + (int64_t)i2 * s[2];
                for (int32_t i3 = 0; i3 < d[3]; ++i3) {
                    *output++ = src[(int64_t)i3 * s[3]];
                }
            }
        }
    }
}
