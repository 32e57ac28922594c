/* mcuc_maxpool_s8.c: int8 NHWC max pooling over in-bounds taps (TFLite MaxPool). */
#include "mcuc_pool.h"
#include "mcuc_internal.h"

void mcuc_maxpool_s8(const mcuc_maxpool_params_t *params, const int8_t *restrict input,
                     int8_t *restrict output)
{
    mcuc_pool_s8_impl(params, input, output, 1);
}
