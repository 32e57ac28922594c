/* mcuc_mul_s8.c: int8 elementwise multiplication with 4-D broadcasting (TFLite MUL reference semantics). */
#include "mcuc_elementwise.h"
#include "mcuc_internal.h"

void mcuc_mul_s8(const mcuc_mul_params_t *params, const mcuc_broadcast_params_t *shape,
                 const int8_t *in1, const int8_t *in2, int8_t *output)
{
    const int32_t rows = shape->out_dims[0] * shape->out_dims[1] * shape->out_dims[2];
    const int32_t n = shape->out_dims[3];
    for (int32_t r = 0; r < rows; ++r) {
        int32_t off1;
        int32_t off2;
        mcuc_broadcast_row(shape, r, &off1, &off2);
        const int8_t *a = in1 + off1;
        const int8_t *b = in2 + off2;
        int8_t *y = output + r * n;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t prod = (params->in1_offset + a[i * shape->in1_strides[3]])
                                 * (params->in2_offset + b[i * shape->in2_strides[3]]);
            const int32_t raw = mcuc_requantize(prod, params->out_mult, params->out_shift) + params->out_offset;
            y[i] = mcuc_clamp_s8(raw, params->act_min, params->act_max);
        }
    }
}
