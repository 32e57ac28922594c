/* mcuc_prelu_s8.c: int8 PReLU with 4-D broadcasting of the slope (TFLite PRELU reference semantics). */
#include "mcuc_elementwise.h"
#include "mcuc_internal.h"

void mcuc_prelu_s8(const mcuc_prelu_params_t *params, const mcuc_broadcast_params_t *shape, const int8_t *input,
                   const int8_t *alpha, int8_t *output)
{
    const int32_t rows = shape->out_dims[0] * shape->out_dims[1] * shape->out_dims[2];
    const int32_t n = shape->out_dims[3];
    const int32_t st_x = shape->in1_strides[3];
    const int32_t st_a = shape->in2_strides[3];
    for (int32_t r = 0; r < rows; ++r) {
        int32_t off_x;
        int32_t off_a;
        mcuc_broadcast_row(shape, r, &off_x, &off_a);
        for (int32_t i = 0; i < n; ++i) {
            const int32_t v = params->in_offset + input[off_x + i * st_x];
            int32_t raw;
            if (v >= 0) {
                raw = mcuc_requantize(v, params->pos_mult, params->pos_shift);
            } else {
                const int32_t a = params->alpha_offset + alpha[off_a + i * st_a];
                raw = mcuc_requantize(v * a, params->neg_mult, params->neg_shift);
            }
            output[r * n + i] = mcuc_clamp_s8(raw + params->out_offset, -128, 127);
        }
    }
}
