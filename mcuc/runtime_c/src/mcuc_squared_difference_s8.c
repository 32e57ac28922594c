/* mcuc_squared_difference_s8.c: int8 (in1 - in2)^2 with 4-D broadcasting (TFLite SQUARED_DIFFERENCE semantics). */
#include "mcuc_elementwise.h"
#include "mcuc_internal.h"

void mcuc_squared_difference_s8(const mcuc_squared_difference_params_t *params,
                                const mcuc_broadcast_params_t *shape, const int8_t *in1, const int8_t *in2,
                                int8_t *output)
{
    mcuc_add_sub_s8_impl(params, shape, in1, in2, output, 0);
}
